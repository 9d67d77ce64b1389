"""`--scheduler` pointing at something that is not a Dask scheduler: a port that accepts the
connection but never speaks the Dask protocol (the scheduler's HTTP dashboard, any TCP service)
is a one-line error within about the connect timeout, not a hang in the Dask handshake, and the
failed connect leaves no thread behind.

The servers here run on 127.0.0.1 in this process. Each hangs up a connection after
`_HANG_UP_S` of silence, so even a client that waited for the handshake forever would come
back (with another message, failing the test) instead of hanging the suite.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import socket
import socketserver
import subprocess
import threading
from collections.abc import Iterator

import pytest

pytest.importorskip("distributed")

from click.testing import CliRunner

from hpt_cli.cli import cli
from hpt_cli.errors import ExitCode
from hpt_cli.executors import dask as dask_module
from hpt_cli.executors.dask import DaskExecutor, DaskUnavailable
from tests.executors.test_contract import wait_until
from tests.helpers import HPT, subprocess_env

_HANG_UP_S = 30.0  # a server closes a connection that sent nothing for this long
_BRANIN = {"architecture": "branin", "parameters": {"x1": 1.0, "x2": 2.0}}  # needs no data


class _Silent(socketserver.BaseRequestHandler):
    """Accepts, reads whatever comes, never answers."""

    def handle(self) -> None:
        self.request.settimeout(_HANG_UP_S)
        with contextlib.suppress(OSError):
            while self.request.recv(65536):
                pass


class _Http(http.server.BaseHTTPRequestHandler):
    """An HTTP server, as a dashboard is: it waits for a request line that Dask never sends."""

    timeout = _HANG_UP_S

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def not_a_scheduler(kind: str) -> Iterator[str]:
    """A server of `kind` ("silent" TCP or "http") on 127.0.0.1; yields its tcp:// address."""
    if kind == "http":
        server: socketserver.TCPServer = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Http)
    else:
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Silent)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"not-a-scheduler-{kind}", daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def not_a_scheduler_error(address: str, timeout: float) -> str:
    return (f"no Dask scheduler answered at {address} within {timeout:g} s (TimeoutError): something "
            "there accepts connections but does not speak the Dask protocol; did you give the "
            "dashboard port? the scheduler listens on 8786 by default (tcp://host:8786)")


@pytest.fixture
def short_connect_timeout(monkeypatch):
    """`hpt run --executor dask` with a 0.5 s connect timeout (the CLI has no option for it)."""
    monkeypatch.setattr(dask_module, "DaskExecutor", functools.partial(DaskExecutor, connect_timeout=0.5))
    return 0.5


@pytest.mark.parametrize("kind", ["silent", "http"])
def test_a_port_that_is_not_a_dask_scheduler_is_a_clear_error(kind):
    with not_a_scheduler(kind) as address:
        before = set(threading.enumerate())
        ex = DaskExecutor(address, connect_timeout=0.5)
        with pytest.raises(DaskUnavailable) as info:
            ex.start()
        assert str(info.value) == not_a_scheduler_error(address, 0.5)
        assert info.value.exit_code == ExitCode.USAGE
        # the client's IO loop thread (and the server's handler for the abandoned connection) end
        assert wait_until(lambda: not set(threading.enumerate()) - before, timeout=10), \
            set(threading.enumerate()) - before


def test_a_refused_connection_is_still_cannot_reach_and_leaves_no_thread():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        address = f"tcp://127.0.0.1:{sock.getsockname()[1]}"
        before = set(threading.enumerate())
        with pytest.raises(DaskUnavailable) as info:
            DaskExecutor(address, connect_timeout=0.5).start()
    assert str(info.value) == (f"cannot reach the Dask scheduler at {address} within 0.5 s (OSError); "
                               "start one with `dask scheduler` and pass its address (tcp://host:8786)")
    assert wait_until(lambda: not set(threading.enumerate()) - before, timeout=10)


@pytest.mark.parametrize("kind", ["silent", "http"])
def test_hpt_run_at_a_port_that_is_not_a_dask_scheduler_is_one_line(kind, tmp_path, short_connect_timeout):
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps(_BRANIN))
    with not_a_scheduler(kind) as address:
        result = CliRunner().invoke(cli, ["run", str(spec), "-o", str(tmp_path / "o"), "--executor", "dask",
                                          "--scheduler", address])
    assert result.exit_code == ExitCode.USAGE
    assert result.output == f"error: {not_a_scheduler_error(address, short_connect_timeout)}\n"
    assert not (tmp_path / "o").exists()  # nothing started


@pytest.mark.slow
def test_hpt_run_process_exits_with_the_default_connect_timeout(tmp_path):
    """The real command, default connect timeout (10 s): one line on stderr, exit 2, and the
    process ends (no thread of the abandoned connect keeps the interpreter alive)."""
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps(_BRANIN))
    with not_a_scheduler("http") as address:
        done = subprocess.run([HPT, "run", str(spec), "-o", str(tmp_path / "o"), "--executor", "dask",
                               "--scheduler", address], check=False, env=subprocess_env(),
                              capture_output=True, text=True, timeout=_HANG_UP_S + 30)
    assert (done.returncode, done.stdout) == (ExitCode.USAGE, "")
    assert done.stderr == f"error: {not_a_scheduler_error(address, 10)}\n"
    assert not (tmp_path / "o").exists()

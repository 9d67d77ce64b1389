"""A fault-injecting HTTP/1.1 reverse proxy to put between google-cloud-storage and the emulator.

Every request is read in full (chunked request bodies are decoded and forwarded with a
Content-Length), then, in this order:

1. ``down`` is true: the connection is closed without a response (status -1).
2. with probability ``fail_rate`` (seeded, thread-safe): one of ``fail_modes``:
   ``"503"`` and ``"429"`` answer with a GCS-like JSON error, ``"drop"`` closes without a response.
3. otherwise the request is forwarded to the target; if it matches the predicate armed with
   ``drop_response_once`` it takes effect on the target but its response is thrown away and the
   client connection is closed (status -1).

Responses keep the client on the proxy: Location headers (resumable upload sessions) and absolute
target URLs in JSON bodies (``selfLink``, ``mediaLink``: the client downloads from ``mediaLink``
once it knows the object) are rewritten from the target's URL to the proxy's. Media downloads are
never rewritten. Connections are kept alive (HTTP/1.1 with exact Content-Length).
"""

from __future__ import annotations

import http.client
import json
import random
import re
import socket
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import urlsplit

Predicate = Callable[[str, str], bool]

FAIL_MODES = frozenset({"503", "429", "drop"})
DROPPED = -1
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade",
})
_ERRORS = {
    503: ("backendError", "Service Unavailable (injected by FaultProxy)"),
    429: ("rateLimitExceeded", "Too Many Requests (injected by FaultProxy)"),
}


class _Drop(Exception):
    """Close the client connection without sending a response."""


class FaultProxy:
    """Reverse proxy on 127.0.0.1 in front of ``target`` (``"http://127.0.0.1:P"``)."""

    def __init__(self, target: str, seed: int = 0, timeout: float = 30.0):
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"target must look like 'http://host:port', but got {target!r}")
        self.target = target.rstrip("/")
        self.timeout = timeout
        self.fail_rate = 0.0
        self.fail_modes: set[str] = set(FAIL_MODES)
        self.down = False
        self._target_host = parts.hostname
        self._target_port = parts.port
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._requests: list[tuple[str, str, int]] = []
        self._uploads: list[tuple[str, str, int]] = []
        self._object_bytes: list[tuple[str, int]] = []  # (object name, body bytes) of uploads
        self._drop_once: Predicate | None = None
        self._server: ThreadingHTTPServer | None = None
        self._url: str | None = None
        self._thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the proxy has no port yet: call start() first")
        return self._url

    def start(self) -> "FaultProxy":
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _make_handler(self))
        self._server = server
        self._url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05},
            name="FaultProxy", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            open_sockets, self._sockets = list(self._sockets), set()
        for sock in open_sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- faults and counters -----------------------------------------------------------------

    def drop_response_once(self, predicate: Predicate) -> None:
        """Forward the next request matching ``predicate(method, path)``, then lose its response."""
        with self._lock:
            self._drop_once = predicate

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        """``(method, path_with_query, status)`` of every request seen; status -1 if dropped."""
        with self._lock:
            return list(self._requests)

    def bytes_uploaded(self, predicate: Predicate | None = None) -> int:
        """Request body bytes received for requests matching ``predicate(method, path)``.

        Counts every attempt, also those then failed or dropped by the proxy, so re-uploads after
        retries show up.
        """
        with self._lock:
            uploads = list(self._uploads)
        return sum(size for method, path, size in uploads if predicate is None or predicate(method, path))

    def bytes_uploaded_for(self, name_predicate: Callable[[str], bool]) -> int:
        """Body bytes of uploads (media, multipart, resumable start) whose object name matches;
        the name is read from the `name=` query parameter or the multipart metadata."""
        with self._lock:
            return sum(size for name, size in self._object_bytes if name_predicate(name))

    def reset_counters(self) -> None:
        with self._lock:
            self._requests.clear()
            self._uploads.clear()
            self._object_bytes.clear()

    # -- used by the handler -----------------------------------------------------------------

    def _decide(self, method: str, path: str, body: bytes) -> str:
        """One of "down", "503", "429", "drop", "drop-response", "forward"."""
        name = _object_name(path, body) if path.startswith("/upload/") else None
        with self._lock:
            self._uploads.append((method, path, len(body)))
            if name is not None:
                self._object_bytes.append((name, len(body)))
            if self.down:
                return "down"
            if self.fail_rate > 0 and self._random.random() < self.fail_rate:
                modes = sorted(self.fail_modes)
                if not modes:
                    raise ValueError("fail_modes is empty while fail_rate > 0")
                return self._random.choice(modes)
            if self._drop_once is not None and self._drop_once(method, path):
                self._drop_once = None
                return "drop-response"
            return "forward"

    def _record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self._requests.append((method, path, status))

    def _track(self, sock: socket.socket, alive: bool) -> None:
        with self._lock:
            if alive:
                self._sockets.add(sock)
            else:
                self._sockets.discard(sock)

    def _rewrite(self, data: bytes) -> bytes:
        return data.replace(self.target.encode(), self.url.encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # a client that resets or times out its connection is routine here
        super().handle_error(request, client_address)


def _make_handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        pass

    Handler.proxy = proxy
    Handler.timeout = proxy.timeout
    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: FaultProxy

    def setup(self) -> None:
        super().setup()
        # Without this, Nagle's algorithm and delayed ACKs add ~40 ms to every keep-alive response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.proxy._track(self.connection, alive=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.proxy._track(self.connection, alive=False)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - signature of the base class
        pass

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def _handle(self) -> None:
        method, path = self.command, self.path
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self._drop(method, path)
            return
        decision = self.proxy._decide(method, path, body)
        if decision in ("down", "drop"):
            self._drop(method, path)
        elif decision in ("503", "429"):
            self._send_error_json(method, path, int(decision))
        else:
            self._forward(method, path, body, lose_response=decision == "drop-response")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline(65537)
                if not size_line:
                    raise ValueError("connection closed inside a chunked body")
                size = int(size_line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    break
                chunks.append(self._read_exactly(size))
                self._read_exactly(2)  # CRLF after the chunk
            while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self._read_exactly(length) if length else b""

    def _read_exactly(self, size: int) -> bytes:
        data = self.rfile.read(size)
        if len(data) != size:
            raise ValueError("connection closed inside a request body")
        return data

    def _drop(self, method: str, path: str) -> None:
        self.proxy._record(method, path, DROPPED)
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send_error_json(self, method: str, path: str, status: int) -> None:
        reason, message = _ERRORS[status]
        payload = json.dumps({"error": {
            "code": status, "message": message,
            "errors": [{"domain": "global", "reason": reason, "message": message}],
        }}).encode()
        self.proxy._record(method, path, status)
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        if status == 429:
            self.send_header("Retry-After", "0")
        self._end_with(b"" if method == "HEAD" else payload)

    def _forward(self, method: str, path: str, body: bytes, lose_response: bool) -> None:
        proxy = self.proxy
        headers = {
            name: value for name, value in self.headers.items()
            if name.lower() not in _HOP_BY_HOP | {"host", "content-length", "expect"}
        }
        headers["Host"] = f"{proxy._target_host}:{proxy._target_port}"
        if body or method in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        upstream = http.client.HTTPConnection(proxy._target_host, proxy._target_port, timeout=proxy.timeout)
        try:
            upstream.request(method, path, body=body or None, headers=headers)
            response = upstream.getresponse()
            payload = response.read()
            status, reason = response.status, response.reason
            response_headers = response.getheaders()
        except (OSError, http.client.HTTPException):
            self._send_bad_gateway(method, path)
            return
        finally:
            upstream.close()
        if lose_response:
            self._drop(method, path)
            return

        media = "alt=media" in path or path.startswith("/download/")
        content_type = response.getheader("Content-Type", "")
        encoded = response.getheader("Content-Encoding")
        if not media and not encoded and "json" in content_type:
            payload = proxy._rewrite(payload)

        self.proxy._record(method, path, status)
        self.send_response(status, reason)
        upstream_length = None
        for name, value in response_headers:
            lower = name.lower()
            if lower in _HOP_BY_HOP or lower in ("date", "server"):
                continue
            if lower == "content-length":
                upstream_length = value
                continue
            if lower == "location":
                value = value.replace(proxy.target, proxy.url)
            self.send_header(name, value)
        if method == "HEAD":
            if upstream_length is not None:
                self.send_header("Content-Length", upstream_length)
        elif status not in (204, 304) and not 100 <= status < 200:
            self.send_header("Content-Length", str(len(payload)))
        self._end_with(b"" if method == "HEAD" else payload)

    def _send_bad_gateway(self, method: str, path: str) -> None:
        payload = b'{"error": {"code": 502, "message": "FaultProxy: target unreachable"}}'
        self.proxy._record(method, path, 502)
        self.send_response(502)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        self._end_with(b"" if method == "HEAD" else payload)

    def _end_with(self, payload: bytes) -> None:
        """End the headers and send them with the body in one write."""
        self._headers_buffer.append(b"\r\n")
        self._headers_buffer.append(payload)
        self.flush_headers()


_NAME_IN_METADATA = re.compile(rb'"name"\s*:\s*"((?:[^"\\]|\\.)*)"')


def _object_name(path: str, body: bytes) -> str | None:
    """The object an upload request writes: `name=` in the query, or in the JSON metadata."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    if "name" in query:
        return query["name"][0]
    match = _NAME_IN_METADATA.search(body[:4096])
    return json.loads(b'"' + match.group(1) + b'"') if match else None

"""What every local fake server shares: a ThreadingHTTPServer on 127.0.0.1 (a free port unless
one is given) serving from a daemon thread, started and stopped, or used as a context manager.

    class FakeThing(LocalServer):
        def __init__(self) -> None:
            ...
            self.serve(self._handler_class())
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

# How often serve_forever looks for a shutdown: a test waits up to this long to stop a server
# (each wakeup costs microseconds; a test suite stops servers hundreds of times).
POLL_INTERVAL = 0.002


class LocalServer:
    _server: ThreadingHTTPServer

    def serve(self, handler: type[BaseHTTPRequestHandler], *, port: int = 0) -> None:
        """Binds the server (not yet answering: `start`)."""
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL}, daemon=True
        )
        thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

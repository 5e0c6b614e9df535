"""Runs an ASGI app with uvicorn, in the foreground or on a background thread.

The data space's services (log, witnesses, hub, nodes) are ordinary FastAPI apps; this is the
one place that knows how to start and stop them.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI


def _ephemeral_ports() -> range:
    """The ports the kernel hands out as the source of outgoing connections."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now, chosen below the ephemeral
    range: a port from that range can be taken by any outgoing connection in the moment
    between choosing it and a server binding it."""
    ephemeral = _ephemeral_ports()
    candidates = list(range(10_000, ephemeral.start)) or list(range(1024, 65536))
    for port in random.sample(candidates, min(200, len(candidates))):
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class BackgroundServer:
    """A uvicorn server on a daemon thread, stopped with ``stop()``.

    ``tls`` takes ``medspace.pki.tls.server_options(...)`` to serve mutual TLS.
    """

    def __init__(
        self,
        app: FastAPI,
        host: str = "127.0.0.1",
        port: int | None = None,
        tls: dict[str, Any] | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._scheme = "https" if tls else "http"
        config = uvicorn.Config(app, host=host, port=self.port, log_level="warning",
                                access_log=False, timeout_graceful_shutdown=3, **(tls or {}))
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="http", daemon=True)

    @property
    def url(self) -> str:
        """The base URL the server answers on."""
        return f"{self._scheme}://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> BackgroundServer:
        """Start serving; return once the socket accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop accepting, finish requests in flight, and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout=15)

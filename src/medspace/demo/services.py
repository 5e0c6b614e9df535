"""Starts the demo's services as separate processes on loopback, and stops them all.

Each service is the real command an operator, a regulator or a hospital would run
(``medspace hub``, ``medspace witness``, ``medspace node run``), with its output in a log file
inside its own folder.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from medspace.demo.setup import HOSPITALS, Layout, Ports
from medspace.hub.space import Space
from medspace.pki.enrollment import participant_tls
from medspace.pki.tls import client_context

STARTUP_SECONDS = 60.0


def command(*args: str) -> list[str]:
    """``medspace *args`` run by this Python."""
    return [sys.executable, "-m", "medspace", *args]


@dataclass(frozen=True)
class Service:
    """One long-running command, its log file, and the URL that answers once it is up."""

    name: str
    command: list[str]
    log_file: Path
    ready_url: str | None = None


def _spawn(service: Service) -> subprocess.Popen[bytes]:
    service.log_file.parent.mkdir(parents=True, exist_ok=True)
    with service.log_file.open("ab") as log:
        return subprocess.Popen(service.command, stdout=log, stderr=subprocess.STDOUT)


def _wait_up(service: Service, client: httpx.Client, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{service.name} exited at start; see {service.log_file}")
        with contextlib.suppress(httpx.HTTPError):
            client.get(service.ready_url or "", timeout=1)
            return
        time.sleep(0.1)
    raise RuntimeError(f"{service.name} did not answer at {service.ready_url} within "
                       f"{STARTUP_SECONDS:.0f} s; see {service.log_file}")


@contextlib.contextmanager
def services(started: list[Service], client: httpx.Client) -> Iterator[dict[str, int]]:
    """Start ``started`` in order, each once the one before answers; stop them all after.

    Yields each service's process id by name.
    """
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for service in started:
            processes[service.name] = _spawn(service)
            if service.ready_url is not None:
                _wait_up(service, client, processes[service.name])
        yield {name: process.pid for name, process in processes.items()}
    finally:
        for process in reversed(processes.values()):
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


@contextlib.contextmanager
def running(layout: Layout, space: Space, ports: Ports) -> Iterator[None]:
    """The regulator's witness, the hub and every hospital's node, for the ``with`` block."""
    started = [
        Service("the regulator's witness",
                command("witness", "--db", str(layout.regulator / "witness.db"),
                        "--key", str(layout.regulator / "keys" / "witness.key"),
                        "--log", space.log_signer().vkey, "--port", str(ports.witness),
                        "--tls", str(layout.regulator)),
                layout.regulator / "witness.log",
                f"https://127.0.0.1:{ports.witness}/witness/v1/key"),
        Service("the hub", command("hub", str(layout.hub), "--port", str(ports.hub)),
                layout.hub / "hub.log", f"https://127.0.0.1:{ports.hub}/log/v1/checkpoint/signed"),
        *(Service(hospital, command("node", "run", str(layout.node(hospital)), "--api-port",
                                    str(ports.api if hospital == HOSPITALS[0] else 0)),
                  layout.node(hospital) / "node.log") for hospital in HOSPITALS),
    ]
    with (httpx.Client(verify=client_context(participant_tls(layout.researcher))) as client,
          services(started, client)):
        yield

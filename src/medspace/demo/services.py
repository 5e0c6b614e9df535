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
from pathlib import Path

import httpx

from medspace.demo.setup import HOSPITALS, Layout, Ports
from medspace.hub.space import Space
from medspace.pki.enrollment import participant_tls
from medspace.pki.tls import client_context

STARTUP_SECONDS = 60.0


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "medspace", *args]


def _spawn(command: list[str], log_file: Path) -> subprocess.Popen[bytes]:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def _wait_up(url: str, client: httpx.Client, process: subprocess.Popen[bytes], name: str,
             log_file: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited at start; see {log_file}")
        with contextlib.suppress(httpx.HTTPError):
            client.get(url, timeout=1)
            return
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer at {url} within {STARTUP_SECONDS:.0f} s; "
                       f"see {log_file}")


@contextlib.contextmanager
def running(layout: Layout, space: Space, ports: Ports) -> Iterator[None]:
    """The regulator's witness, the hub and every hospital's node, for the ``with`` block."""
    processes: list[subprocess.Popen[bytes]] = []
    client = httpx.Client(verify=client_context(participant_tls(layout.researcher)))
    try:
        log_file = layout.regulator / "witness.log"
        processes.append(_spawn(_command(
            "witness", "--db", str(layout.regulator / "witness.db"),
            "--key", str(layout.regulator / "keys" / "witness.key"),
            "--log", space.log_signer().vkey, "--port", str(ports.witness),
            "--tls", str(layout.regulator)), log_file))
        _wait_up(f"https://127.0.0.1:{ports.witness}/witness/v1/key", client, processes[-1],
                 "the regulator's witness", log_file)
        log_file = layout.hub / "hub.log"
        processes.append(_spawn(_command("hub", str(layout.hub), "--port", str(ports.hub)),
                                log_file))
        _wait_up(f"https://127.0.0.1:{ports.hub}/log/v1/checkpoint/signed", client,
                 processes[-1], "the hub", log_file)
        for hospital in HOSPITALS:
            processes.append(_spawn(_command("node", "run", str(layout.node(hospital))),
                                    layout.node(hospital) / "node.log"))
        yield
    finally:
        client.close()
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()

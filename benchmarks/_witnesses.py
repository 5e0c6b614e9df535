"""A consortium of witnesses as separate processes, started with the real ``medspace witness``.

Witnesses in the same process would share the benchmark's interpreter lock and skip HTTP, and
make the append → witnessed latency look better than a deployment's; so each witness here is
its own process, with its own SQLite state, serving the C2SP tlog-witness API on loopback.
The processes are always stopped on the way out, whatever happened in between.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from medspace.httpserve import free_port
from medspace.ledger.cosignature import Cosigner, CosignerVerifier, parse_cosigner_vkey
from medspace.ledger.keys import write_key
from medspace.ledger.publisher import WitnessEndpoint, http_sender
from medspace.ledger.quorum import Policy, consortium_policy

REGULATOR = "regulator"
HOSPITALS = tuple(f"hospital-{letter}" for letter in "abcdef")
STARTUP_SECONDS = 60.0
STOP_SECONDS = 10.0


@dataclass(frozen=True)
class Consortium:
    """The running witnesses: where to reach them and the quorum their cosignatures must meet."""

    urls: dict[str, str]
    keys: dict[str, CosignerVerifier]
    policy: Policy

    def endpoints(self, client: httpx.AsyncClient) -> list[WitnessEndpoint]:
        """The witnesses as the publisher reaches them: HTTP through ``client``."""
        return [WitnessEndpoint(self.keys[name], http_sender(client, url))
                for name, url in self.urls.items()]


def _medspace_command() -> str:
    """The ``medspace`` script next to this interpreter: the one installed in the venv."""
    return str(Path(sys.executable).with_name("medspace"))


def _start(directory: Path, name: str, log_vkey: str, stack: ExitStack) -> tuple[str, str]:
    """Start one witness process; return its vkey and URL. ``stack`` stops it later."""
    cosigner = Cosigner.generate(name)
    key_path = directory / f"{name}.key"
    write_key(key_path, cosigner)
    port = free_port()
    output = stack.enter_context((directory / f"{name}.out").open("wb"))
    process = subprocess.Popen(
        [_medspace_command(), "witness", "--db", str(directory / f"{name}.db"),
         "--key", str(key_path), "--log", log_vkey, "--host", "127.0.0.1", "--port", str(port)],
        stdout=output,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    stack.callback(_stop, process)
    return cosigner.vkey, f"http://127.0.0.1:{port}"


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Ask a witness to stop, then insist: a benchmark must not leave servers behind."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_SECONDS)


def _wait_ready(urls: dict[str, str], vkeys: dict[str, str], directory: Path) -> None:
    """Return once every witness answers with its own key; fail with its output otherwise."""
    deadline = time.monotonic() + STARTUP_SECONDS
    waiting = dict(urls)
    with httpx.Client(timeout=1.0, trust_env=False) as client:
        while waiting:
            if time.monotonic() > deadline:
                names = ", ".join(sorted(waiting))
                tail = (directory / f"{min(waiting)}.out").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"witnesses {names} did not answer in time:\n{tail}")
            for name, url in list(waiting.items()):
                try:
                    answer = client.get(f"{url}/witness/v1/key")
                except httpx.TransportError:
                    continue
                if answer.status_code == 200 and answer.text.strip() == vkeys[name]:
                    del waiting[name]
            time.sleep(0.1)


@contextmanager
def consortium(directory: Path, log_vkey: str) -> Iterator[Consortium]:
    """The regulator's and six hospitals' witnesses, following the log ``log_vkey``."""
    with ExitStack() as stack:
        vkeys: dict[str, str] = {}
        urls: dict[str, str] = {}
        for name in (REGULATOR, *HOSPITALS):
            vkeys[name], urls[name] = _start(directory, name, log_vkey, stack)
        _wait_ready(urls, vkeys, directory)
        keys = {name: parse_cosigner_vkey(vkey) for name, vkey in vkeys.items()}
        policy = consortium_policy(vkeys[REGULATOR], [vkeys[name] for name in HOSPITALS])
        yield Consortium(urls, keys, policy)

"""Real TLS handshakes on loopback: only holders of a certificate from the space's CA get in."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from medspace.httpserve import BackgroundServer
from medspace.pki.ca import PkiError, create_ca, issue, read_identity, write_identity
from medspace.pki.tls import client_context, server_options


@pytest.fixture
def hub(tmp_path: Path):
    ca = create_ca("medspace-test")
    files = write_identity(issue(ca, "hub", ["127.0.0.1", "localhost"]), ca.certificate,
                           tmp_path / "hub", "hub")
    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    server = BackgroundServer(app, tls=server_options(files)).start()
    yield ca, server
    server.stop()


def test_node_with_a_certificate_from_the_space_ca_is_served(hub, tmp_path: Path) -> None:
    ca, server = hub
    node = write_identity(issue(ca, "hospital-a", ["127.0.0.1"]), ca.certificate,
                          tmp_path / "node", "node")
    with httpx.Client(verify=client_context(node)) as client:
        assert client.get(server.url + "/ping").json() == {"pong": "yes"}


def test_client_without_a_certificate_is_refused_in_the_handshake(hub) -> None:
    _, server = hub
    with pytest.raises(httpx.HTTPError):
        httpx.get(server.url + "/ping", verify=False, timeout=5)


def test_certificate_from_another_ca_is_refused(hub, tmp_path: Path) -> None:
    _, server = hub
    other = create_ca("impostor-space")
    files = write_identity(issue(other, "hospital-x", ["127.0.0.1"]), other.certificate,
                           tmp_path / "x", "x")
    with pytest.raises(httpx.HTTPError), httpx.Client(verify=client_context(files)) as client:
        client.get(server.url + "/ping", timeout=5)


def test_expired_certificate_is_refused(hub, tmp_path: Path) -> None:
    ca, server = hub
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=900)
    files = write_identity(issue(ca, "hospital-old", ["127.0.0.1"], now=past), ca.certificate,
                           tmp_path / "old", "old")
    with pytest.raises(httpx.HTTPError), httpx.Client(verify=client_context(files)) as client:
        client.get(server.url + "/ping", timeout=5)


def test_key_file_is_private_and_a_mismatched_pair_is_refused(tmp_path: Path) -> None:
    ca = create_ca("medspace-test")
    a = write_identity(issue(ca, "a", ["127.0.0.1"]), ca.certificate, tmp_path / "a", "a")
    b = write_identity(issue(ca, "b", ["127.0.0.1"]), ca.certificate, tmp_path / "b", "b")
    assert os.stat(a.key).st_mode & 0o777 == 0o600
    assert read_identity(a.key, a.certificate).name == "a"
    with pytest.raises(PkiError, match="does not certify"):
        read_identity(a.key, b.certificate)

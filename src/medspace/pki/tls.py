"""Mutual TLS settings for servers (uvicorn) and clients (httpx), from a participant's files.

Both sides require TLS 1.3 with a peer certificate that chains to the data space's CA, so a
connection from anyone without an issued certificate is refused during the handshake.
"""

from __future__ import annotations

import ssl
from typing import Any

from medspace.pki.ca import IdentityFiles


def server_options(files: IdentityFiles) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config`` that demand a client certificate."""
    return {
        "ssl_keyfile": str(files.key),
        "ssl_certfile": str(files.certificate),
        "ssl_ca_certs": str(files.ca_certificate),
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
    }


def client_context(files: IdentityFiles) -> ssl.SSLContext:
    """An ``ssl.SSLContext`` for httpx that presents our certificate and trusts only the CA."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                         cafile=str(files.ca_certificate))
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(str(files.certificate), str(files.key))
    return context


"""Reads a log over its HTTP API, for verifiers and exporters that do not trust the operator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from medspace.ledger.checkpoint import CheckpointError, parse_checkpoint
from medspace.ledger.logapi import MAX_PAGE
from medspace.ledger.note import NoteError, decode_base64, parse_note
from medspace.ledger.store import StoredCheckpoint
from medspace.ledger.verify import SourceError


class HttpLogSource:
    """The checkpoints and entries a log serves under ``<url>/log/v1``."""

    def __init__(self, url: str, client: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/")
        self.client = client or httpx.Client(timeout=30.0)
        note = self._get("/log/v1/checkpoint/signed").text
        try:
            self.origin = parse_checkpoint(parse_note(note).text).origin
        except (NoteError, CheckpointError) as exc:
            raise SourceError(f"{self.url} does not serve a checkpoint: {exc}") from None

    def _get(self, path: str, **params: int) -> httpx.Response:
        try:
            response = self.client.get(self.url + path, params=params)
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot reach the log at {self.url}: {exc}") from None
        if response.status_code != 200:
            raise SourceError(
                f"{self.url}{path} answered {response.status_code}: {response.text[:200]}"
            )
        return response

    def _json(self, path: str, **params: int) -> dict[str, Any]:
        try:
            document = self._get(path, **params).json()
        except ValueError:
            raise SourceError(f"{self.url}{path} did not answer JSON") from None
        if not isinstance(document, dict):
            raise SourceError(f"{self.url}{path} did not answer a JSON object")
        return document

    def checkpoints(self) -> list[StoredCheckpoint]:
        """Every checkpoint the log signed, fetched page by page."""
        out: list[StoredCheckpoint] = []
        while True:
            after = out[-1].size if out else 0
            page = self._json("/log/v1/checkpoints", after=after).get("checkpoints")
            if not isinstance(page, list):
                raise SourceError(f"{self.url} answered a malformed checkpoint list")
            for item in page:
                try:
                    size, note, cosigned = item["size"], item["note"], item["cosigned"]
                except (KeyError, TypeError):
                    raise SourceError(f"{self.url} answered a malformed checkpoint") from None
                if not isinstance(size, int) or size <= after:
                    raise SourceError(f"{self.url} answered checkpoints out of order")
                out.append(StoredCheckpoint(size, note, cosigned))
                after = size
            if len(page) < MAX_PAGE:
                return out

    def iter_entries(self, start: int = 0) -> Iterator[bytes]:
        """The entries from ``start`` on, fetched a page at a time until the log ends."""
        while True:
            page = self._json("/log/v1/entries", start=start, end=start + MAX_PAGE)
            entries = page.get("entries")
            if not isinstance(entries, list) or page.get("start") != start:
                raise SourceError(f"{self.url} answered a malformed page of entries")
            for item in entries:
                try:
                    yield decode_base64(item)
                except (TypeError, ValueError):
                    raise SourceError(f"{self.url} answered a malformed entry") from None
            if len(entries) < MAX_PAGE:
                return
            start += len(entries)


def fetch_witness_checkpoint(url: str, origin: str, client: httpx.Client | None = None) -> str:
    """The newest checkpoint of ``origin`` that the witness at ``url`` cosigned."""
    client = client or httpx.Client(timeout=30.0)
    try:
        response = client.get(url.rstrip("/") + "/witness/v1/checkpoint", params={"origin": origin})
    except httpx.HTTPError as exc:
        raise SourceError(f"cannot reach the witness at {url}: {exc}") from None
    if response.status_code != 200:
        raise SourceError(f"the witness at {url} answered {response.status_code}: "
                          f"{response.text[:200]}")
    return response.text

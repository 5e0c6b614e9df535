"""Receipts: a portable proof that one audit event is in the witnessed log.

A receipt is the entry, its inclusion proof and a checkpoint cosigned by a quorum of witnesses.
Anyone holding the trust policy (the log's and the witnesses' public keys and the quorum) can
check it offline, years later, without asking the operator anything.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from medspace.ledger import merkle
from medspace.ledger.note import decode_base64
from medspace.ledger.store import LogStore, StoreError
from medspace.ledger.trust import Trust, TrustError

RECEIPT_FORMAT = "medspace-receipt/v1"


class ReceiptError(ValueError):
    """The receipt is malformed or does not prove what it claims."""


def build_receipt(store: LogStore, index: int) -> dict[str, Any]:
    """The receipt of entry ``index`` against the newest witnessed checkpoint covering it."""
    cosigned = store.latest_cosigned(at_least=index + 1)
    if cosigned is None or cosigned.cosigned is None:
        raise StoreError(f"entry {index} is not yet covered by a witnessed checkpoint")
    return {
        "format": RECEIPT_FORMAT,
        "origin": store.origin,
        "index": index,
        "entry": base64.b64encode(store.entries(index, index + 1)[0]).decode("ascii"),
        "proof": [
            base64.b64encode(h).decode("ascii")
            for h in store.inclusion_proof(index, cosigned.size)
        ],
        "checkpoint": cosigned.cosigned,
    }


def verify_receipt(receipt: bytes | str | dict[str, Any], trust: Trust) -> bytes:
    """Check a receipt against ``trust``; return the entry it proves. Raises ReceiptError."""
    try:
        document = receipt if isinstance(receipt, dict) else json.loads(receipt)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReceiptError(f"receipt is not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != RECEIPT_FORMAT:
        raise ReceiptError(f"not a {RECEIPT_FORMAT} receipt")
    try:
        index = document["index"]
        entry = decode_base64(document["entry"])
        proof = [decode_base64(h) for h in document["proof"]]
        note = document["checkpoint"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ReceiptError(f"receipt field is missing or malformed: {exc}") from None
    if not isinstance(index, int) or isinstance(index, bool) or not isinstance(note, str):
        raise ReceiptError("receipt index must be an integer and checkpoint a string")
    try:
        checkpoint = trust.check_witnessed(note)
    except TrustError as exc:
        raise ReceiptError(f"checkpoint: {exc}") from None
    try:
        merkle.verify_inclusion(
            index, checkpoint.size, merkle.leaf_hash(entry), proof, checkpoint.root
        )
    except merkle.ProofError as exc:
        raise ReceiptError(f"entry {index} is not in the witnessed log: {exc}") from None
    return entry

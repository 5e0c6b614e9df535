"""Witness cosignatures: C2SP tlog-cosignature examples, the cosignature/v1 layout, quorums."""

import base64
import hashlib
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from medspace.ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    format_checkpoint,
    open_checkpoint,
    sign_checkpoint,
)
from medspace.ledger.cosignature import (
    MAX_TIMESTAMP,
    CosignatureError,
    Cosigner,
    Cosigners,
    CosignerVerifier,
    cosign,
    cosignature_message,
    cosigners_of,
    format_cosigner_vkey,
    parse_cosigner_vkey,
    verify_cosignature,
)
from medspace.ledger.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    NoteError,
    Signature,
    SignedNote,
    Signer,
    format_note,
    format_signature,
    key_id,
    parse_note,
    parse_signature,
    parse_vkey,
    verify_note,
)

# c2sp.org/tlog-cosignature: the example checkpoint, its cosignature line and signed message.
SPEC_TEXT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_COSIG = (
    "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b"
    "2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)
SPEC_MESSAGE = (
    b"cosignature/v1\n"
    b"time 1679315147\n"
    b"example.com/behind-the-sofa\n"
    b"20852163\n"
    b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)
# transparency-dev/formats note_cosigv1_test.go: a native type 0x04 vkey, a dated cosignature.
REMORA_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
FORMATS_COSIG_B64 = (
    "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBY"
    "JXORmnFBOBA=="
)

ORIGIN = "medspace.example/audit"
CHECKPOINT = format_checkpoint(Checkpoint(ORIGIN, 5, bytes(range(32))))
T = 1_700_000_000


def test_signed_message_matches_the_spec_example():
    assert cosignature_message(SPEC_TEXT, 1679315147) == SPEC_MESSAGE


def test_spec_example_cosignature_line_has_key_id_timestamp_and_signature_layout():
    sig = parse_signature(SPEC_COSIG)
    assert sig.name == "witness.example.com/w1"
    assert sig.key_id.hex() == "8d66cf3f"
    assert len(sig.signature) == 8 + 64
    assert int.from_bytes(sig.signature[:8], "big") == 1679315147  # the spec message's time


def test_transparency_dev_cosignature_carries_its_published_timestamp():
    blob = base64.b64decode(FORMATS_COSIG_B64)
    assert len(blob) == 4 + 8 + 64
    assert int.from_bytes(blob[4:12], "big") == 1727964367


def test_native_cosignature_vkey_from_transparency_dev_parses_and_round_trips():
    v = parse_cosigner_vkey(REMORA_VKEY)
    assert v.name == "remora.n621.de"
    assert v.key_id.hex() == "da77ade7"
    assert v.vkey == REMORA_VKEY


def test_note_vkey_and_cosigner_vkey_are_not_interchangeable():
    with pytest.raises(NoteError, match="type is 0x04, want 0x01"):
        parse_vkey(REMORA_VKEY)
    peter = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    with pytest.raises(NoteError, match="type is 0x01, want 0x04"):
        parse_cosigner_vkey(peter)


def test_cosigner_key_id_uses_signature_type_0x04():
    w = Cosigner.generate("witness.example/w1")
    expected = hashlib.sha256(b"witness.example/w1\n\x04" + w.public_key).digest()[:4]
    assert w.key_id == expected == key_id(w.name, ALG_COSIGNATURE_V1, w.public_key)
    assert w.key_id != key_id(w.name, ALG_ED25519, w.public_key)
    assert base64.b64decode(w.vkey.split("+", 2)[2])[0] == 0x04
    assert (
        w.vkey == f"{w.name}+{expected.hex()}+" + base64.b64encode(b"\x04" + w.public_key).decode()
    )


def test_cosignature_follows_the_spec_layout_byte_for_byte():
    w = Cosigner.from_private_bytes("witness.example/w1", bytes(range(32)))
    line = format_signature(cosign(CHECKPOINT, w, timestamp=T))
    prefix = "— witness.example/w1 "
    assert line.startswith(prefix)
    assert line.endswith("\n")
    blob = base64.b64decode(line[len(prefix) : -1])
    assert blob[:4] == hashlib.sha256(b"witness.example/w1\n\x04" + w.public_key).digest()[:4]
    assert blob[4:12] == T.to_bytes(8, "big")
    message = f"cosignature/v1\ntime {T}\n{CHECKPOINT}".encode()
    Ed25519PublicKey.from_public_bytes(w.public_key).verify(blob[12:], message)  # raises if bad


def test_cosignature_verifies_and_yields_its_timestamp():
    w = Cosigner.generate("witness.example/w1")
    assert verify_cosignature(CHECKPOINT, cosign(CHECKPOINT, w, timestamp=T), w.verifier()) == T


def test_cosignature_is_dated_now_by_default():
    w = Cosigner.generate("witness.example/w1")
    before = int(time.time())
    ts = verify_cosignature(CHECKPOINT, cosign(CHECKPOINT, w), w.verifier())
    assert before <= ts <= int(time.time())


def test_cosigner_round_trips_through_private_bytes_and_vkey():
    w = Cosigner.generate("witness.example/w1")
    again = Cosigner.from_private_bytes(w.name, w.private_bytes())
    assert again.vkey == w.vkey == format_cosigner_vkey(w.name, w.public_key)
    assert parse_cosigner_vkey(w.vkey) == w.verifier()
    with pytest.raises(NoteError, match="31 bytes, want 32"):
        Cosigner.from_private_bytes(w.name, bytes(31))
    with pytest.raises(NoteError, match="33 bytes, want 32"):
        CosignerVerifier(w.name, bytes(33))


def test_cosignature_of_tampered_checkpoint_fails():
    w = Cosigner.generate("witness.example/w1")
    sig = cosign(CHECKPOINT, w, timestamp=T)
    tampered = CHECKPOINT.replace("\n5\n", "\n6\n")
    with pytest.raises(CosignatureError, match="does not verify"):
        verify_cosignature(tampered, sig, w.verifier())


def test_cosignature_with_altered_timestamp_fails():
    w = Cosigner.generate("witness.example/w1")
    sig = cosign(CHECKPOINT, w, timestamp=T)
    moved = Signature(sig.name, sig.key_id, (T + 1).to_bytes(8, "big") + sig.signature[8:])
    with pytest.raises(CosignatureError, match="does not verify"):
        verify_cosignature(CHECKPOINT, moved, w.verifier())


def test_cosignature_by_another_key_under_the_same_name_fails():
    w, impostor = Cosigner.generate("witness.example/w1"), Cosigner.generate("witness.example/w1")
    with pytest.raises(CosignatureError, match="is not by"):
        verify_cosignature(CHECKPOINT, cosign(CHECKPOINT, impostor, timestamp=T), w.verifier())
    forged = cosign(CHECKPOINT, impostor, timestamp=T)
    forged = Signature(forged.name, w.key_id, forged.signature)  # claims w's key id
    with pytest.raises(CosignatureError, match="does not verify"):
        verify_cosignature(CHECKPOINT, forged, w.verifier())


def test_plain_note_signature_by_the_same_key_is_not_a_cosignature():
    w = Cosigner.from_private_bytes("witness.example/w1", bytes(32))
    plain = Signer.from_private_bytes("witness.example/w1", bytes(32)).sign(CHECKPOINT)
    with pytest.raises(CosignatureError, match="is not by"):
        verify_cosignature(CHECKPOINT, plain, w.verifier())
    relabelled = Signature(plain.name, w.key_id, plain.signature)
    with pytest.raises(CosignatureError, match="64 bytes, want 72"):
        verify_cosignature(CHECKPOINT, relabelled, w.verifier())


@pytest.mark.parametrize("size", [1, 71, 73, 200])
def test_cosignature_of_the_wrong_length_fails(size):
    w = Cosigner.generate("witness.example/w1")
    with pytest.raises(CosignatureError, match=f"{size} bytes, want 72"):
        verify_cosignature(CHECKPOINT, Signature(w.name, w.key_id, bytes(size)), w.verifier())


def test_timestamps_beyond_2_63_minus_1_or_negative_are_refused():
    w = Cosigner.generate("witness.example/w1")
    latest = cosign(CHECKPOINT, w, timestamp=MAX_TIMESTAMP)
    assert verify_cosignature(CHECKPOINT, latest, w.verifier()) == MAX_TIMESTAMP
    for bad in (MAX_TIMESTAMP + 1, -1, 1.5):
        with pytest.raises(ValueError, match="timestamp"):
            cosign(CHECKPOINT, w, timestamp=bad)
    sig = Signature(w.name, w.key_id, (MAX_TIMESTAMP + 1).to_bytes(8, "big") + bytes(64))
    with pytest.raises(CosignatureError, match="timestamp"):
        verify_cosignature(CHECKPOINT, sig, w.verifier())


@pytest.mark.parametrize("text", ["hello\n", f"{ORIGIN}\n05\n{'A' * 43}=\n", ""])
def test_witness_refuses_to_cosign_text_that_is_not_a_checkpoint(text):
    w = Cosigner.generate("witness.example/w1")
    with pytest.raises(CheckpointError):
        cosign(text, w, timestamp=T)


def test_extension_lines_are_covered_by_the_cosignature():
    w = Cosigner.generate("witness.example/w1")
    text = format_checkpoint(Checkpoint(ORIGIN, 5, bytes(32), ("ext",)))
    sig = cosign(text, w, timestamp=T)
    assert verify_cosignature(text, sig, w.verifier()) == T
    with pytest.raises(CosignatureError):
        verify_cosignature(text.replace("ext", "exu"), sig, w.verifier())


def witnessed_note(log: Signer, *lines: Signature) -> SignedNote:
    """A checkpoint signed by the log, with cosignature lines appended as a witness returns them."""
    body = sign_checkpoint(Checkpoint(ORIGIN, 5, bytes(range(32))), log)
    return parse_note(body + "".join(format_signature(s) for s in lines))


def test_cosigners_of_reports_trusted_witnesses_and_ignores_unknown_ones():
    log = Signer.generate(ORIGIN)
    w1, w2, stranger = (Cosigner.generate(f"w{i}.example") for i in (1, 2, 3))
    note = witnessed_note(
        log, cosign(CHECKPOINT, w1, timestamp=T), cosign(CHECKPOINT, stranger, timestamp=T)
    )
    note.signatures.append(cosign(CHECKPOINT, w2, timestamp=T + 5))
    assert cosigners_of(note, [w1.verifier(), w2.verifier()]) == Cosigners(
        valid={"w1.example": T, "w2.example": T + 5}, invalid=()
    )


def test_bad_line_from_trusted_witness_is_reported_not_counted_and_does_not_cancel_others():
    log = Signer.generate(ORIGIN)
    w1, w2 = Cosigner.generate("w1.example"), Cosigner.generate("w2.example")
    forged = Signature(w2.name, w2.key_id, T.to_bytes(8, "big") + bytes(64))
    note = witnessed_note(log, cosign(CHECKPOINT, w1, timestamp=T), forged, forged)
    result = cosigners_of(note, [w1.verifier(), w2.verifier()])
    assert result == Cosigners(valid={"w1.example": T}, invalid=("w2.example",))


def test_witness_with_one_good_line_counts_even_if_another_of_its_lines_is_bad():
    log = Signer.generate(ORIGIN)
    w = Cosigner.generate("w1.example")
    bad = Signature(w.name, w.key_id, T.to_bytes(8, "big") + bytes(64))
    note = witnessed_note(log, bad, cosign(CHECKPOINT, w, timestamp=T))
    assert cosigners_of(note, [w.verifier()]) == Cosigners(valid={"w1.example": T}, invalid=())


def test_newest_valid_timestamp_of_a_witness_is_reported():
    log = Signer.generate(ORIGIN)
    w = Cosigner.generate("w1.example")
    note = witnessed_note(
        log, cosign(CHECKPOINT, w, timestamp=T + 9), cosign(CHECKPOINT, w, timestamp=T)
    )
    assert cosigners_of(note, [w.verifier()]).valid == {"w1.example": T + 9}


def test_note_without_trusted_cosignatures_reports_nobody():
    log = Signer.generate(ORIGIN)
    assert cosigners_of(witnessed_note(log), [Cosigner.generate("w").verifier()]) == Cosigners(
        valid={}, invalid=()
    )


def test_cosigners_of_a_note_that_is_not_a_checkpoint_raises():
    s = Signer.generate("x")
    with pytest.raises(CheckpointError):
        cosigners_of(SignedNote("hello\n", [s.sign("hello\n")]), [])


def test_two_different_cosigner_keys_with_the_same_name_and_key_id_are_refused():
    w = Cosigner.generate("w1.example").verifier()
    clash = CosignerVerifier(w.name, bytes(32))
    object.__setattr__(clash, "key_id", w.key_id)
    with pytest.raises(NoteError, match="share key"):
        cosigners_of(witnessed_note(Signer.generate(ORIGIN)), [w, clash])


def test_witnessed_checkpoint_round_trips_through_text_like_a_tlog_witness_response():
    log = Signer.generate(ORIGIN)
    w1, w2 = Cosigner.generate("w1.example"), Cosigner.generate("w2.example")
    signed = sign_checkpoint(Checkpoint(ORIGIN, 5, bytes(range(32))), log)
    response = "".join(format_signature(cosign(CHECKPOINT, w, timestamp=T)) for w in (w1, w2))
    witnessed = signed + response  # c2sp.org/tlog-witness: concatenate to the checkpoint
    assert open_checkpoint(witnessed, log.verifier()).size == 5
    note = parse_note(witnessed)
    assert format_note(note) == witnessed
    assert cosigners_of(note, [w1.verifier(), w2.verifier()]).valid == {
        "w1.example": T,
        "w2.example": T,
    }
    # A cosigner verifier also works with plain note verification, as tlog-witness suggests.
    assert verify_note(note, [w2.verifier(), w1.verifier()]) == ["w1.example", "w2.example"]


@given(st.binary(min_size=72, max_size=72))
def test_random_cosignature_bytes_never_verify_and_never_crash(raw):
    w = Cosigner.from_private_bytes("w1.example", bytes(32))
    with pytest.raises(CosignatureError):
        verify_cosignature(CHECKPOINT, Signature(w.name, w.key_id, raw), w.verifier())

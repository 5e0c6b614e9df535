"""Signed notes: Go sumdb/note and C2SP signed-note vectors, round trips, hostile input."""

import base64
import contextlib
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medspace.ledger.note import (
    ALG_ED25519,
    MAX_NOTE_SIZE,
    MAX_SIGNATURES,
    NoteError,
    Signature,
    SignedNote,
    Signer,
    Verifier,
    decode_base64,
    encode_vkey,
    format_note,
    format_signature,
    format_vkey,
    key_id,
    parse_note,
    parse_signature,
    parse_vkey,
    verify_note,
)

# golang.org/x/mod/sumdb/note: package docs and note_test.go.
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotp"
    "RZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox"
    "33WWd1RvMc+QQ=\n"
)
PETER_NOTE = TEXT + "\n" + PETER_SIG

# c2sp.org/signed-note: the example note, whose text contains an empty line.
QUASIMODO_NOTE = (
    "Ognuno sta solo sul cuor della terra\n"
    "trafitto da un raggio di sole:\n"
    "\n"
    "ed è subito sera.\n"
    "\n"
    "— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMo"
    "uFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
)


def peter_signer() -> Signer:
    seed = base64.b64decode(PETER_SKEY.split("+", 4)[-1])
    assert seed[0] == ALG_ED25519
    return Signer.from_private_bytes("PeterNeumann", seed[1:])


def test_go_example_note_verifies_with_go_example_vkey():
    assert PETER_NOTE == (
        "If you think cryptography is the answer to your problem,\n"
        "then you don't know what your problem is.\n\n"
        "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotp"
        "RZb6KE6RyyBwJnAM=\n"
    )
    note = parse_note(PETER_NOTE)
    assert note.text == TEXT
    assert [(s.name, s.key_id.hex()) for s in note.signatures] == [("PeterNeumann", "c74f20a3")]
    assert verify_note(note, [parse_vkey(PETER_VKEY)]) == ["PeterNeumann"]


def test_go_example_note_parses_from_bytes_and_formats_back_byte_for_byte():
    note = parse_note(PETER_NOTE.encode())
    assert format_note(note) == PETER_NOTE


def test_signing_with_go_example_private_key_reproduces_go_output_exactly():
    signer = peter_signer()
    assert signer.vkey == PETER_VKEY
    assert format_note(SignedNote(TEXT, [signer.sign(TEXT)])) == PETER_NOTE


def test_key_id_is_truncated_sha256_of_name_newline_type_and_key():
    verifier = parse_vkey(PETER_VKEY)
    expected = hashlib.sha256(b"PeterNeumann\n\x01" + verifier.public_key).digest()[:4]
    assert key_id("PeterNeumann", ALG_ED25519, verifier.public_key) == expected
    assert expected.hex() == "c74f20a3"
    assert verifier.key_id == expected


def test_note_signed_by_two_go_keys_verifies_both_in_signature_order():
    note = parse_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG)
    verifiers = [parse_vkey(ENOCH_VKEY), parse_vkey(PETER_VKEY)]
    assert verify_note(note, verifiers) == ["PeterNeumann", "EnochRoot"]


def test_signature_from_unknown_key_is_ignored():
    note = parse_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG)
    assert verify_note(note, [parse_vkey(PETER_VKEY)]) == ["PeterNeumann"]


def test_signature_sharing_only_the_name_or_only_the_key_id_of_a_known_key_is_ignored():
    impostor = Signer.generate("PeterNeumann")  # same name, other key id
    same_id_other_name = Signature("PeterNeumannX", bytes.fromhex("c74f20a3"), b"\x00" * 64)
    note = parse_note(PETER_NOTE)
    note.signatures += [impostor.sign(TEXT), same_id_other_name]
    assert verify_note(note, [parse_vkey(PETER_VKEY)]) == ["PeterNeumann"]


def test_note_signed_only_by_unknown_keys_is_rejected():
    with pytest.raises(NoteError, match="no signature by a known key"):
        verify_note(parse_note(TEXT + "\n" + ENOCH_SIG), [parse_vkey(PETER_VKEY)])
    with pytest.raises(NoteError, match="no signature by a known key"):
        verify_note(parse_note(PETER_NOTE), [])


def test_signature_by_another_key_under_the_same_name_does_not_verify():
    impostor = Signer.generate("PeterNeumann")
    peter = parse_vkey(PETER_VKEY)
    assert not peter.verify(TEXT, impostor.sign(TEXT))
    with pytest.raises(NoteError, match="no signature by a known key"):
        verify_note(SignedNote(TEXT, [impostor.sign(TEXT)]), [peter])


def test_corrupted_signature_from_known_key_rejects_the_whole_note():
    corrupt = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]  # Go's TestOpen case
    note = parse_note(TEXT + "\n" + ENOCH_SIG + corrupt)
    with pytest.raises(NoteError, match=r"invalid signature by key PeterNeumann\+c74f20a3"):
        verify_note(note, [parse_vkey(PETER_VKEY), parse_vkey(ENOCH_VKEY)])


def test_bad_duplicate_signature_from_known_key_rejects_the_note_even_after_a_good_one():
    bad = Signature("PeterNeumann", bytes.fromhex("c74f20a3"), b"\x01" * 64)
    note = parse_note(PETER_NOTE)
    note.signatures.append(bad)
    with pytest.raises(NoteError, match="invalid signature"):
        verify_note(note, [parse_vkey(PETER_VKEY)])


def test_repeated_good_signature_is_reported_once():
    note = parse_note(TEXT + "\n" + PETER_SIG + PETER_SIG)
    assert verify_note(note, [parse_vkey(PETER_VKEY)]) == ["PeterNeumann"]


def test_tampered_text_fails_verification():
    tampered = PETER_NOTE.replace("problem,", "problem;", 1)
    with pytest.raises(NoteError, match="invalid signature"):
        verify_note(parse_note(tampered), [parse_vkey(PETER_VKEY)])


def test_two_different_keys_with_the_same_name_and_key_id_are_refused_as_ambiguous():
    peter = parse_vkey(PETER_VKEY)
    clash = Verifier("PeterNeumann", bytes(32))
    object.__setattr__(clash, "key_id", peter.key_id)  # as if a collision had been ground out
    with pytest.raises(NoteError, match="share key"):
        verify_note(parse_note(PETER_NOTE), [peter, clash])


def test_the_same_verifier_listed_twice_is_not_ambiguous():
    assert verify_note(parse_note(PETER_NOTE), [parse_vkey(PETER_VKEY)] * 2) == ["PeterNeumann"]


def test_spec_example_note_text_ends_at_the_last_blank_line():
    note = parse_note(QUASIMODO_NOTE)
    assert note.text == (
        "Ognuno sta solo sul cuor della terra\n"
        "trafitto da un raggio di sole:\n"
        "\n"
        "ed è subito sera.\n"
    )
    [sig] = note.signatures
    assert (sig.name, sig.key_id.hex(), len(sig.signature)) == (
        "quasimodo.example/salvatore",
        "367ba04b",
        64,
    )
    assert format_note(note) == QUASIMODO_NOTE


def test_signer_round_trips_through_its_private_bytes_and_vkey():
    signer = Signer.generate("medspace.example/log")
    again = Signer.from_private_bytes("medspace.example/log", signer.private_bytes())
    assert again.vkey == signer.vkey
    assert parse_vkey(signer.vkey) == signer.verifier()
    assert format_vkey(signer.name, signer.public_key) == signer.vkey
    text = "hello\n\nworld\n"
    note = parse_note(format_note(SignedNote(text, [signer.sign(text)])))
    assert note.text == text
    assert verify_note(note, [parse_vkey(signer.vkey)]) == ["medspace.example/log"]


def test_note_with_sixteen_signatures_is_accepted_as_the_spec_requires():
    signers = [Signer.generate(f"w{i}.example") for i in range(16)]
    note = parse_note(format_note(SignedNote(TEXT, [s.sign(TEXT) for s in signers])))
    names = verify_note(note, [s.verifier() for s in signers])
    assert names == [s.name for s in signers]


def test_witness_style_signature_line_round_trips():
    sig = peter_signer().sign(TEXT)
    line = format_signature(sig)
    assert line == PETER_SIG
    assert parse_signature(line) == sig
    with pytest.raises(NoteError, match="one line"):
        parse_signature(line.rstrip("\n"))
    with pytest.raises(NoteError, match="one line"):
        parse_signature(line + line)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        pytest.param(TEXT, "no blank line", id="no-signatures"),
        pytest.param(TEXT + "\n", "no signature lines", id="blank-line-only"),
        pytest.param(TEXT + PETER_SIG, "no blank line", id="no-blank-line"),
        pytest.param(PETER_SIG, "no blank line", id="empty-text"),
        pytest.param(TEXT + "\n" + PETER_SIG[:-1], "does not end with a newline", id="no-final-nl"),
        pytest.param("\x01" + PETER_NOTE, "control character", id="control-char"),
        pytest.param(PETER_NOTE.replace("\n", "\r\n", 1), "control character", id="carriage-ret"),
        pytest.param("\t" + PETER_NOTE, "control character", id="tab"),
        pytest.param(b"\xff" + PETER_NOTE.encode(), "not valid UTF-8", id="invalid-utf8"),
        pytest.param(b"\xed\xa0\x80" + PETER_NOTE.encode(), "not valid UTF-8", id="surrogate"),
        pytest.param("\ud800" + PETER_NOTE, "not valid UTF-8", id="lone-surrogate-str"),
        pytest.param(
            PETER_NOTE + "Unexpected line.\n", "does not start with '— '", id="trailing-garbage"
        ),
        pytest.param(PETER_NOTE + "\n", "no signature lines", id="trailing-blank-line"),
        pytest.param(
            TEXT + "\n" + PETER_SIG.replace("—", "-"), "does not start", id="hyphen-not-em-dash"
        ),
        pytest.param(TEXT + "\n" + PETER_SIG.replace("— ", "—"), "does not start", id="no-space"),
        pytest.param(TEXT + "\n— PeterNeumann\n", "no space", id="name-only"),
        pytest.param(TEXT + "\n— Bad Name " + PETER_SIG[15:], "invalid base64", id="bad-name"),
        pytest.param(
            TEXT + "\n— Peter\u00a0Neumann " + PETER_SIG[15:], "contains a space", id="nbsp-name"
        ),
        pytest.param(TEXT + "\n— a+b " + PETER_SIG[15:], "contains '\\+'", id="plus-name"),
        pytest.param(TEXT + "\n—  " + PETER_SIG[15:], "key name is empty", id="empty-name"),
        pytest.param(
            TEXT + "\n— PeterNeumann \n",
            "signature of 'PeterNeumann' is 0 bytes",
            id="empty-base64",
        ),
        pytest.param(
            TEXT + "\n" + PETER_SIG.replace("x08go", "x08g!"), "invalid base64", id="bad-char"
        ),
        pytest.param(
            TEXT + "\n" + PETER_SIG.replace("AM=\n", "AM\n"), "invalid base64", id="no-padding"
        ),
        pytest.param(
            TEXT + "\n" + PETER_SIG.replace("AM=\n", "AN=\n"), "non-canonical", id="padding-bits"
        ),
        pytest.param(
            TEXT + "\n" + PETER_SIG.replace("x08go/", "x08go /"), "invalid base64", id="space-b64"
        ),
        pytest.param(
            TEXT + "\n— PeterNeumann AAAAAA==\n", "4 bytes, want at least 5", id="blob-too-short"
        ),
        pytest.param(
            TEXT + "\n" + PETER_SIG * (MAX_SIGNATURES + 1), "more than 100", id="101-signatures"
        ),
        pytest.param("x" * MAX_NOTE_SIZE + "\n\n" + PETER_SIG, "longer than", id="oversized-str"),
        pytest.param(
            ("é" * (MAX_NOTE_SIZE // 2) + "\n\n" + PETER_SIG),
            "longer than",
            id="oversized-once-encoded",
        ),
        pytest.param(
            b"x" * MAX_NOTE_SIZE + b"\n\n" + PETER_SIG.encode(), "longer than", id="oversized-bytes"
        ),
    ],
)
def test_malformed_note_is_rejected_with_a_clear_error(data, error):
    with pytest.raises(NoteError, match=error):
        parse_note(data)


def test_note_of_exactly_the_maximum_size_is_accepted():
    filler = "x" * (MAX_NOTE_SIZE - len(PETER_NOTE.encode()) - 1) + "\n"
    data = filler + PETER_NOTE
    assert len(data.encode()) == MAX_NOTE_SIZE
    assert parse_note(data).text == filler + TEXT


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "empty"),
        ("abc", "does not end with a newline"),
        ("a\x00b\n", "control character"),
        ("a\rb\n", "control character"),
        ("\udc80\n", "not valid UTF-8"),
    ],
)
def test_signing_or_formatting_a_malformed_text_is_refused(text, error):
    signer = Signer.generate("signer")
    with pytest.raises(NoteError, match=error):
        signer.sign(text)
    with pytest.raises(NoteError, match=error):
        format_note(SignedNote(text, [signer.sign(TEXT)]))


def test_formatting_a_note_without_signatures_or_with_too_many_is_refused():
    sig = Signer.generate("signer").sign(TEXT)
    with pytest.raises(NoteError, match="no signatures"):
        format_note(SignedNote(TEXT, []))
    with pytest.raises(NoteError, match="more than 100"):
        format_note(SignedNote(TEXT, [sig] * (MAX_SIGNATURES + 1)))
    with pytest.raises(NoteError, match="longer than"):
        format_note(SignedNote("x" * MAX_NOTE_SIZE + "\n", [sig]))


@pytest.mark.parametrize(
    ("name", "error"),
    [("", "empty"), ("a b", "space"), ("a\u2003b", "space"), ("a+b", r"'\+'"), ("a\nb", "space")],
)
def test_invalid_key_names_are_refused_everywhere(name, error):
    with pytest.raises(NoteError, match=error):
        Signer.generate(name)
    with pytest.raises(NoteError, match=error):
        key_id(name, ALG_ED25519, bytes(32))
    with pytest.raises(NoteError, match=error):
        Signature(name, bytes(4), bytes(64))


def test_go_vkey_is_parsed_to_its_name_and_key():
    v = parse_vkey(PETER_VKEY)
    assert v.name == "PeterNeumann"
    assert v.public_key == base64.b64decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")[1:]
    assert v.vkey == PETER_VKEY


def test_vkey_key_id_may_be_upper_case_hex_as_go_accepts():
    assert parse_vkey(PETER_VKEY.replace("c74f20a3", "C74F20A3")) == parse_vkey(PETER_VKEY)


def test_every_mangling_of_the_go_vkey_is_rejected():
    # Go's TestNewVerifier: every proper substring, and every single-byte increment.
    for i in range(len(PETER_VKEY) + 1):
        for j in range(i + 1, len(PETER_VKEY) + 1):
            if (i, j) != (0, len(PETER_VKEY)):
                with pytest.raises(NoteError):
                    parse_vkey(PETER_VKEY[i:j])
    for i in range(len(PETER_VKEY)):
        mangled = PETER_VKEY[:i] + chr(ord(PETER_VKEY[i]) + 1) + PETER_VKEY[i + 1 :]
        with pytest.raises(NoteError):
            parse_vkey(mangled)


@pytest.mark.parametrize(
    ("vkey", "error"),
    [
        # Go's TestNewVerifier vectors: key ids adjusted so only the key itself is wrong.
        pytest.param(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
            "non-canonical base64",  # Go decodes it leniently, then finds the key too long
            id="go-wrong-length-key",
        ),
        pytest.param(
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "type is 0x65, want 0x01",
            id="unknown-type",
        ),
        pytest.param(PETER_VKEY.replace("c74f20a3", "c74f20a4"), "does not match", id="wrong-id"),
        pytest.param(PETER_VKEY.replace("c74f20a3", "c74f20a"), "8 hexadecimal", id="short-id"),
        pytest.param(PETER_VKEY.replace("c74f20a3", "0xc74f20"), "8 hexadecimal", id="0x-id"),
        pytest.param(PETER_VKEY.replace("c74f20a3", "c74f_0a3"), "8 hexadecimal", id="under-id"),
        pytest.param(
            PETER_VKEY.replace("y10TW", "y10TW="), "non-canonical base64", id="bad-padding"
        ),
        pytest.param(PETER_VKEY.replace("y10TW", "y10TX"), "does not match", id="other-key"),
        pytest.param(PETER_VKEY.replace("y10TW", "y10T!"), "invalid base64", id="bad-char"),
        pytest.param("PeterNeumann+c74f20a3", "form", id="two-fields"),
        pytest.param("PeterNeumann+c74f20a3+", "empty", id="empty-key"),
        pytest.param("+c74f20a3+ARpc", "key name is empty", id="empty-name"),
        pytest.param("Peter Neumann+c74f20a3+ARpc", "space", id="space-in-name"),
    ],
)
def test_malformed_vkey_is_rejected_with_a_clear_error(vkey, error):
    with pytest.raises(NoteError, match=error):
        parse_vkey(vkey)


def test_vkey_with_a_correct_key_id_for_a_wrong_length_key_is_refused():
    too_long = encode_vkey("PeterNeumann", ALG_ED25519, parse_vkey(PETER_VKEY).public_key + b"!")
    with pytest.raises(NoteError, match="33 bytes, want 32"):
        parse_vkey(too_long)


def test_wrong_length_public_or_private_keys_are_refused():
    with pytest.raises(NoteError, match="31 bytes, want 32"):
        format_vkey("name", bytes(31))
    with pytest.raises(NoteError, match="33 bytes, want 32"):
        Verifier("name", bytes(33))
    with pytest.raises(NoteError, match="64 bytes, want 32"):
        Signer.from_private_bytes("name", bytes(64))


def test_signature_needs_a_four_byte_key_id_and_a_non_empty_signature():
    with pytest.raises(NoteError, match="key id is 3 bytes"):
        Signature("name", bytes(3), bytes(64))
    with pytest.raises(NoteError, match="signature is empty"):
        Signature("name", bytes(4), b"")


def test_strict_base64_accepts_only_the_canonical_encoding():
    assert decode_base64("AAAA") == bytes(3)
    for bad in ("AAA", "AAA==", "AA=A", "AB==", "AAAA\n", " AAAA", "A-AA", "ÅAAA"):
        with pytest.raises(ValueError):
            decode_base64(bad)


names = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), blacklist_characters="+"),
    min_size=1,
    max_size=20,
).filter(lambda s: not any(c.isspace() for c in s))
texts = st.lists(
    st.text(st.characters(blacklist_categories=("Cs",), min_codepoint=0x20), max_size=40),
    min_size=1,
    max_size=5,
).map(lambda lines: "\n".join(lines) + "\n")


@given(name=names, text=texts)
def test_any_valid_text_and_name_round_trip_and_verify(name, text):
    signer = Signer.from_private_bytes(name, bytes(32))
    note = parse_note(format_note(SignedNote(text, [signer.sign(text)])))
    assert note.text == text
    assert verify_note(note, [parse_vkey(signer.vkey)]) == [name]


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_parser(data):
    with contextlib.suppress(NoteError):
        parse_note(data)


@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes_the_parser_or_vkey_parser(data):
    for parse in (parse_note, parse_vkey):
        with contextlib.suppress(NoteError):
            parse(data)


@given(st.text(st.sampled_from("— \nPeterNumn+/=AZaz09xgoK"), max_size=200))
def test_near_miss_notes_never_crash_the_parser(data):
    with contextlib.suppress(NoteError):
        parse_note(TEXT + "\n" + data)

"""Checkpoints: the C2SP tlog-checkpoint example, strict parsing, signing and opening."""

import base64
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medspace.ledger.checkpoint import (
    MAX_TREE_SIZE,
    Checkpoint,
    CheckpointError,
    format_checkpoint,
    open_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
)
from medspace.ledger.note import (
    MAX_NOTE_SIZE,
    NoteError,
    SignedNote,
    Signer,
    format_note,
    parse_note,
)

# c2sp.org/tlog-checkpoint: the example (its signing key is not published).
SPEC_TEXT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_NOTE = (
    SPEC_TEXT
    + "\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/"
    "Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)
SPEC_ROOT = bytes.fromhex("0ac5186a91863e8e1d90c808014aa89bf5da8e3ee1d9f07630f0378f68f1ab62")
ORIGIN = "medspace.example/audit"
ROOT = bytes(range(32))
B64_ROOT = base64.b64encode(ROOT).decode()


def test_spec_example_checkpoint_parses_to_its_origin_size_and_root():
    cp = parse_checkpoint(SPEC_TEXT)
    assert cp == Checkpoint("example.com/behind-the-sofa", 20852163, SPEC_ROOT)
    assert format_checkpoint(cp) == SPEC_TEXT


def test_spec_example_signed_checkpoint_is_a_well_formed_note():
    note = parse_note(SPEC_NOTE)
    assert note.text == SPEC_TEXT
    [sig] = note.signatures
    assert (sig.name, sig.key_id.hex(), len(sig.signature)) == (
        "example.com/behind-the-sofa",
        "033de0ae",
        64,
    )


def test_extension_lines_round_trip_in_order():
    cp = Checkpoint(ORIGIN, 7, ROOT, ("ext one", "ext two"))
    text = format_checkpoint(cp)
    assert text == f"{ORIGIN}\n7\n{B64_ROOT}\next one\next two\n"
    assert parse_checkpoint(text) == cp


@pytest.mark.parametrize("size", [0, 1, 10, MAX_TREE_SIZE])
def test_sizes_from_zero_to_the_uint64_maximum_round_trip(size):
    cp = Checkpoint(ORIGIN, size, ROOT)
    assert parse_checkpoint(format_checkpoint(cp)) == cp


def test_origin_may_contain_spaces_and_plus_signs_since_clients_must_not_assume_its_form():
    cp = parse_checkpoint(f"a log+name\n1\n{B64_ROOT}\n")
    assert cp.origin == "a log+name"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        pytest.param(f"{ORIGIN}\n020852163\n{B64_ROOT}\n", "leading zeros", id="leading-zero"),
        pytest.param(f"{ORIGIN}\n00\n{B64_ROOT}\n", "leading zeros", id="double-zero"),
        pytest.param(f"{ORIGIN}\n-1\n{B64_ROOT}\n", "not a decimal", id="negative"),
        pytest.param(f"{ORIGIN}\n+1\n{B64_ROOT}\n", "not a decimal", id="plus-sign"),
        pytest.param(f"{ORIGIN}\n 1\n{B64_ROOT}\n", "not a decimal", id="space"),
        pytest.param(f"{ORIGIN}\n1.0\n{B64_ROOT}\n", "not a decimal", id="fraction"),
        pytest.param(f"{ORIGIN}\n1e3\n{B64_ROOT}\n", "not a decimal", id="exponent"),
        pytest.param(f"{ORIGIN}\n0x10\n{B64_ROOT}\n", "not a decimal", id="hex"),
        pytest.param(f"{ORIGIN}\n1_000\n{B64_ROOT}\n", "not a decimal", id="underscore"),
        pytest.param(f"{ORIGIN}\n\u0663\n{B64_ROOT}\n", "not a decimal", id="arabic-digit"),
        pytest.param(f"{ORIGIN}\n{2**64}\n{B64_ROOT}\n", r"\[0, 2\^64\)", id="size-2^64"),
        pytest.param(f"{ORIGIN}\n{'9' * 5000}\n{B64_ROOT}\n", "not a decimal", id="huge-size"),
        pytest.param(
            f"{ORIGIN}\n1\n{base64.b64encode(bytes(31)).decode()}\n", "not 32 bytes", id="root-31"
        ),
        pytest.param(
            f"{ORIGIN}\n1\n{base64.b64encode(bytes(33)).decode()}\n", "not 32 bytes", id="root-33"
        ),
        pytest.param(f"{ORIGIN}\n1\n{B64_ROOT[:-1]}\n", "invalid base64", id="root-no-padding"),
        pytest.param(f"{ORIGIN}\n1\n{B64_ROOT[:-2]}9=\n", "non-canonical", id="root-pad-bits"),
        pytest.param(f"{ORIGIN}\n1\n{B64_ROOT.replace('A', '-')}\n", "invalid base64", id="url64"),
        pytest.param(f"\n1\n{B64_ROOT}\n", "empty line", id="empty-origin"),
        pytest.param(f"{ORIGIN}\n\n{B64_ROOT}\n", "empty line", id="empty-size"),
        pytest.param(f"{ORIGIN}\n1\n{B64_ROOT}\n\n", "empty line", id="empty-extension"),
        pytest.param(f"{ORIGIN}\n1\n{B64_ROOT}\n\next\n", "empty line", id="blank-then-ext"),
        pytest.param(f"{ORIGIN}\n1\n{B64_ROOT}", "newline", id="no-final-newline"),
        pytest.param(f"{ORIGIN}\n1\n", "2 lines", id="two-lines"),
        pytest.param("", "newline", id="empty"),
        pytest.param(f"{ORIGIN}\r\n1\n{B64_ROOT}\n", "control character", id="crlf"),
        pytest.param(
            f"{ORIGIN}\n1\n{B64_ROOT}\nx" + "y" * MAX_NOTE_SIZE + "\n",
            "longer than",
            id="oversized",
        ),
    ],
)
def test_malformed_checkpoint_text_is_rejected_with_a_clear_error(text, error):
    with pytest.raises(CheckpointError, match=error):
        parse_checkpoint(text)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"origin": ""}, "empty line"),
        ({"origin": "a\nb"}, "control character"),
        ({"size": -1}, "not an integer"),
        ({"size": 2**64}, "not an integer"),
        ({"size": True}, "not an integer"),
        ({"size": 1.0}, "not an integer"),
        ({"root": bytes(31)}, "not 32 bytes"),
        ({"root": "x" * 32}, "not 32 bytes"),
        ({"extensions": ("",)}, "empty line"),
        ({"extensions": ("a\nb",)}, "control character"),
    ],
)
def test_checkpoint_that_could_not_be_formatted_cannot_be_constructed(kwargs, error):
    with pytest.raises(CheckpointError, match=error):
        Checkpoint(**{"origin": ORIGIN, "size": 1, "root": ROOT, **kwargs})


def test_signed_checkpoint_opens_with_the_log_key():
    log = Signer.generate(ORIGIN)
    cp = Checkpoint(ORIGIN, 42, ROOT)
    note = sign_checkpoint(cp, log)
    assert note.startswith(format_checkpoint(cp) + "\n— " + ORIGIN + " ")
    assert open_checkpoint(note, log.verifier()) == cp
    assert open_checkpoint(note.encode(), log.verifier()) == cp


def test_opening_ignores_signatures_by_other_keys():
    log, other = Signer.generate(ORIGIN), Signer.generate("witness.example")
    note = sign_checkpoint(Checkpoint(ORIGIN, 1, ROOT), log)
    text = parse_note(note).text
    extra = note + f"— witness.example {base64.b64encode(other.key_id + bytes(72)).decode()}\n"
    assert open_checkpoint(extra, log.verifier()).size == 1
    assert parse_note(extra).text == text


def test_checkpoint_signed_by_another_key_does_not_open():
    log, impostor = Signer.generate(ORIGIN), Signer.generate(ORIGIN)
    note = sign_checkpoint(Checkpoint(ORIGIN, 1, ROOT), impostor)
    with pytest.raises(NoteError, match="no signature by a known key"):
        open_checkpoint(note, log.verifier())


def test_checkpoint_with_tampered_size_does_not_open():
    log = Signer.generate(ORIGIN)
    note = sign_checkpoint(Checkpoint(ORIGIN, 41, ROOT), log)
    with pytest.raises(NoteError, match="invalid signature"):
        open_checkpoint(note.replace("\n41\n", "\n42\n", 1), log.verifier())


def test_checkpoint_of_another_origin_signed_by_the_same_key_does_not_open():
    log = Signer.generate(ORIGIN)
    note = sign_checkpoint(Checkpoint("other.example/log", 1, ROOT), log)
    with pytest.raises(CheckpointError, match=r"origin 'other\.example/log' is not"):
        open_checkpoint(note, log.verifier())
    assert open_checkpoint(note, log.verifier(), origin="other.example/log").size == 1


def test_validly_signed_note_that_is_not_a_checkpoint_does_not_open():
    log = Signer.generate(ORIGIN)
    text = f"{ORIGIN}\n01\n{B64_ROOT}\n"
    note = format_note(SignedNote(text, [log.sign(text)]))
    with pytest.raises(CheckpointError, match="leading zeros"):
        open_checkpoint(note, log.verifier())


def test_malformed_note_does_not_open():
    log = Signer.generate(ORIGIN)
    with pytest.raises(NoteError, match="no blank line"):
        open_checkpoint(format_checkpoint(Checkpoint(ORIGIN, 1, ROOT)), log.verifier())


checkpoints = st.builds(
    Checkpoint,
    origin=st.text(st.characters(blacklist_categories=("Cs",), min_codepoint=0x20), min_size=1),
    size=st.integers(0, MAX_TREE_SIZE),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(
        st.text(st.characters(blacklist_categories=("Cs",), min_codepoint=0x20), min_size=1),
        max_size=3,
    ).map(tuple),
)


@given(checkpoints)
def test_any_checkpoint_round_trips_through_its_text_and_a_signed_note(cp):
    assert parse_checkpoint(format_checkpoint(cp)) == cp
    log = Signer.from_private_bytes("log", bytes(32))
    assert open_checkpoint(sign_checkpoint(cp, log), log.verifier(), origin=cp.origin) == cp


@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes_the_checkpoint_parser(text):
    with contextlib.suppress(CheckpointError):
        parse_checkpoint(text)


@given(st.text(st.sampled_from("0123456789-+ \nAQ=/x"), max_size=80))
def test_near_miss_checkpoints_never_crash_the_parser(tail):
    with contextlib.suppress(CheckpointError):
        parse_checkpoint(f"{ORIGIN}\n{tail}")

"""Tests for :mod:`medspace.ledger.merkle` (RFC 9162 §2.1 / RFC 6962 Merkle trees).

Known-answer vectors come from transparency-dev/merkle (Apache-2.0), transcribed into
``data/rfc6962_vectors.json``; the verifier edge cases are rewritten from that project's
``proof/verify_test.go``.  Property tests check that every generated proof verifies and
that every mutation of a proof is rejected with :class:`ProofError`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from medspace.ledger import merkle
from medspace.ledger.merkle import ProofError

_VECTORS = json.loads(
    (Path(__file__).parent / "data" / "rfc6962_vectors.json").read_text(encoding="utf-8")
)


def _unhex(values: Sequence[str]) -> list[bytes]:
    return [bytes.fromhex(value) for value in values]


LEAF_INPUTS = _unhex(_VECTORS["leaf_inputs"])
NODE_HASHES = [_unhex(level) for level in _VECTORS["node_hashes"]]
ROOT_HASHES = _unhex(_VECTORS["root_hashes"])
EMPTY_ROOT = bytes.fromhex(_VECTORS["empty_root_hash"])
SOME_HASH = bytes.fromhex(_VECTORS["some_hash"])

# (0-based index, tree size, proof); upstream numbers leaves from 1 and its {0, 0} entry
# is an invalid path, which is exercised by the edge-case tests below instead.
INCLUSION_VECTORS = [
    (v["leaf"] - 1, v["size"], _unhex(v["proof"]))
    for v in _VECTORS["inclusion_proofs"]
    if v["leaf"] > 0
]
CONSISTENCY_VECTORS = [
    (v["size1"], v["size2"], _unhex(v["proof"])) for v in _VECTORS["consistency_proofs"]
]

PROPERTY = settings(max_examples=200, deadline=None)

# A verifier that loops forever on hostile input should fail here, not stall the suite.
pytestmark = pytest.mark.timeout(60)


# --------------------------------------------------------------------------------------
# An independent, literal transcription of RFC 9162 §2.1.1-§2.1.4 (MTH, PATH, PROOF),
# used only as a differential oracle for randomly generated trees.


def _ref_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _ref_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _ref_split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _ref_mth(entries: Sequence[bytes]) -> bytes:
    if not entries:
        return hashlib.sha256(b"").digest()
    if len(entries) == 1:
        return _ref_leaf(entries[0])
    k = _ref_split(len(entries))
    return _ref_node(_ref_mth(entries[:k]), _ref_mth(entries[k:]))


def _ref_path(m: int, entries: Sequence[bytes]) -> list[bytes]:
    n = len(entries)
    if n == 1:
        return []
    k = _ref_split(n)
    if m < k:
        return [*_ref_path(m, entries[:k]), _ref_mth(entries[k:])]
    return [*_ref_path(m - k, entries[k:]), _ref_mth(entries[:k])]


def _ref_subproof(m: int, entries: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if complete else [_ref_mth(entries)]
    k = _ref_split(n)
    if m <= k:
        return [*_ref_subproof(m, entries[:k], complete), _ref_mth(entries[k:])]
    return [*_ref_subproof(m - k, entries[k:], False), _ref_mth(entries[:k])]


# --------------------------------------------------------------------------------------
# Proof "shapes".  An inclusion proof is not bound to the tree size, nor a consistency
# proof to size2, except through the sequence of left/right combinations the verifier
# performs.  When two parameter sets give the same shape the verifier does the identical
# computation, so changing one into the other is undetectable by design (e.g. a proof for
# leaf 0 of a 3-leaf tree is also a valid proof for leaf 0 of a 4-leaf tree with the same
# root).  Wrong-size mutations are therefore only required to fail when the shape changes.
# (These formulas were checked by brute force against an RFC 9162 verifier for every
# index/size pair up to 40 leaves: a wrong size verifies exactly when the shape is equal.)


def _inclusion_shape(index: int, size: int) -> tuple[bool, ...]:
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return tuple(bool(index >> k & 1) for k in range(inner)) + (True,) * border


def _consistency_shape(size1: int, size2: int) -> tuple[object, ...]:
    if size1 == size2:
        return ("equal",)
    level = (size1 & -size1).bit_length() - 1
    full_inner = ((size1 - 1) ^ (size2 - 1)).bit_length()
    border = ((size1 - 1) >> full_inner).bit_count()
    mask = (size1 - 1) >> level
    inner_bits = tuple(bool(mask >> k & 1) for k in range(full_inner - level))
    return (size1 == 1 << level, inner_bits, border)


# --------------------------------------------------------------------------------------
# Small helpers.


def _flip_bit(value: bytes, bit: int) -> bytes:
    flipped = bytearray(value)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


def _fold_right(leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root reached when every proof hash is a right-hand sibling (leaf index 0)."""
    acc = leaf
    for sibling in proof:
        acc = _ref_node(acc, sibling)
    return acc


def _distinct_hashes(count: int) -> list[bytes]:
    return [hashlib.sha256(b"hash %d" % i).digest() for i in range(count)]


# ======================================================================================
# Hashing known answers.


@pytest.mark.parametrize("i", range(len(LEAF_INPUTS)), ids=lambda i: f"leaf{i}")
def test_leaf_hash_matches_rfc6962_vector(i: int) -> None:
    assert merkle.leaf_hash(LEAF_INPUTS[i]) == NODE_HASHES[0][i]


def test_leaf_hash_is_sha256_of_zero_prefixed_data() -> None:
    assert merkle.leaf_hash(b"data") == hashlib.sha256(b"\x00data").digest()


@pytest.mark.parametrize(
    ("level", "i"),
    [(level, i) for level in range(1, len(NODE_HASHES)) for i in range(len(NODE_HASHES[level]))],
    ids=lambda v: str(v),
)
def test_node_hash_matches_rfc6962_vector(level: int, i: int) -> None:
    left, right = NODE_HASHES[level - 1][2 * i], NODE_HASHES[level - 1][2 * i + 1]
    assert merkle.node_hash(left, right) == NODE_HASHES[level][i]


def test_node_hash_is_sha256_of_one_prefixed_concatenation() -> None:
    left, right = SOME_HASH, EMPTY_ROOT
    assert merkle.node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()


def test_node_hash_depends_on_child_order() -> None:
    assert merkle.node_hash(SOME_HASH, EMPTY_ROOT) != merkle.node_hash(EMPTY_ROOT, SOME_HASH)


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    assert merkle.leaf_hash(SOME_HASH + EMPTY_ROOT) != merkle.node_hash(SOME_HASH, EMPTY_ROOT)


# ======================================================================================
# Root known answers.


def test_empty_tree_root_is_sha256_of_empty_string() -> None:
    assert merkle.root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert merkle.root([]) == ROOT_HASHES[0]


@pytest.mark.parametrize("size", range(1, len(LEAF_INPUTS) + 1), ids=lambda n: f"size{n}")
def test_root_of_prefix_matches_rfc6962_vector(size: int) -> None:
    assert merkle.root(LEAF_INPUTS[:size]) == ROOT_HASHES[size]


def test_root_accepts_any_sequence_of_entries() -> None:
    assert merkle.root(tuple(LEAF_INPUTS)) == ROOT_HASHES[8]


def test_root_of_single_entry_is_its_leaf_hash() -> None:
    assert merkle.root([b"data"]) == merkle.leaf_hash(b"data")


def test_root_of_full_tree_equals_top_node_hash() -> None:
    assert merkle.root(LEAF_INPUTS) == NODE_HASHES[3][0]


# ======================================================================================
# Inclusion proof known answers.


@pytest.mark.parametrize(
    ("index", "size", "expected"),
    INCLUSION_VECTORS,
    ids=[f"index{i}-size{n}" for i, n, _ in INCLUSION_VECTORS],
)
def test_inclusion_proof_matches_rfc6962_vector(
    index: int, size: int, expected: list[bytes]
) -> None:
    assert merkle.inclusion_proof(index, LEAF_INPUTS[:size]) == expected


@pytest.mark.parametrize(
    ("index", "size", "proof"),
    INCLUSION_VECTORS,
    ids=[f"index{i}-size{n}" for i, n, _ in INCLUSION_VECTORS],
)
def test_rfc6962_inclusion_vector_verifies(index: int, size: int, proof: list[bytes]) -> None:
    leaf = merkle.leaf_hash(LEAF_INPUTS[index])
    assert merkle.verify_inclusion(index, size, leaf, proof, ROOT_HASHES[size]) is None


@pytest.mark.parametrize("size", range(1, len(LEAF_INPUTS) + 1), ids=lambda n: f"size{n}")
def test_every_inclusion_proof_of_the_golden_tree_verifies_against_vector_root(size: int) -> None:
    entries = LEAF_INPUTS[:size]
    for index in range(size):
        proof = merkle.inclusion_proof(index, entries)
        assert proof == _ref_path(index, entries)
        leaf = merkle.leaf_hash(entries[index])
        merkle.verify_inclusion(index, size, leaf, proof, ROOT_HASHES[size])


@pytest.mark.parametrize("index", [8, 9, 100], ids=lambda i: f"index{i}")
def test_inclusion_proof_for_index_outside_tree_raises(index: int) -> None:
    with pytest.raises((ValueError, IndexError)):
        merkle.inclusion_proof(index, LEAF_INPUTS)


# ======================================================================================
# Consistency proof known answers.


@pytest.mark.parametrize(
    ("size1", "size2", "expected"),
    CONSISTENCY_VECTORS,
    ids=[f"{m}-to-{n}" for m, n, _ in CONSISTENCY_VECTORS],
)
def test_consistency_proof_matches_rfc6962_vector(
    size1: int, size2: int, expected: list[bytes]
) -> None:
    assert merkle.consistency_proof(size1, LEAF_INPUTS[:size2]) == expected


@pytest.mark.parametrize(
    ("size1", "size2", "proof"),
    CONSISTENCY_VECTORS,
    ids=[f"{m}-to-{n}" for m, n, _ in CONSISTENCY_VECTORS],
)
def test_rfc6962_consistency_vector_verifies(size1: int, size2: int, proof: list[bytes]) -> None:
    root1, root2 = ROOT_HASHES[size1], ROOT_HASHES[size2]
    assert merkle.verify_consistency(size1, size2, proof, root1, root2) is None


@pytest.mark.parametrize("size2", range(1, len(LEAF_INPUTS) + 1), ids=lambda n: f"size{n}")
def test_every_consistency_proof_of_the_golden_tree_verifies_against_vector_roots(
    size2: int,
) -> None:
    entries = LEAF_INPUTS[:size2]
    for size1 in range(1, size2 + 1):
        proof = merkle.consistency_proof(size1, entries)
        assert proof == _ref_subproof(size1, entries, True)
        merkle.verify_consistency(size1, size2, proof, ROOT_HASHES[size1], ROOT_HASHES[size2])


def test_consistency_proof_to_the_same_size_is_empty() -> None:
    assert merkle.consistency_proof(8, LEAF_INPUTS) == []


@pytest.mark.parametrize("size1", [0, 9, 100], ids=lambda m: f"size1_{m}")
def test_consistency_proof_from_size_zero_or_beyond_tree_raises_value_error(size1: int) -> None:
    with pytest.raises(ValueError):
        merkle.consistency_proof(size1, LEAF_INPUTS)


# ======================================================================================
# Verifier edge cases rewritten from transparency-dev/merkle proof/verify_test.go.


def test_proof_error_is_a_value_error() -> None:
    assert issubclass(ProofError, ValueError)


# TestVerifyInclusionSingleEntry: in a one-entry tree the root equals the leaf hash and
# the proof is empty.
_DATA_HASH = hashlib.sha256(b"\x00data").digest()


def test_single_entry_inclusion_with_leaf_hash_as_root_verifies() -> None:
    assert merkle.verify_inclusion(0, 1, _DATA_HASH, [], _DATA_HASH) is None


@pytest.mark.parametrize(
    ("root", "leaf"),
    [
        pytest.param(_DATA_HASH, b"", id="empty-leaf-hash"),
        pytest.param(b"", _DATA_HASH, id="empty-root"),
        pytest.param(b"", b"", id="empty-leaf-hash-and-root"),
    ],
)
def test_single_entry_inclusion_with_empty_hash_is_rejected(root: bytes, leaf: bytes) -> None:
    with pytest.raises(ProofError):
        merkle.verify_inclusion(0, 1, leaf, [], root)


# TestVerifyInclusion probes: an empty proof with mismatched leaf/root or an impossible
# index/size never verifies.
@pytest.mark.parametrize(
    ("index", "size"),
    [(0, 0), (0, 1), (1, 0), (2, 1)],
    ids=lambda v: str(v),
)
@pytest.mark.parametrize(
    ("leaf", "root"),
    [
        pytest.param(SOME_HASH, b"", id="empty-root"),
        pytest.param(b"", EMPTY_ROOT, id="empty-leaf-hash"),
        pytest.param(SOME_HASH, EMPTY_ROOT, id="mismatched-root"),
    ],
)
def test_inclusion_with_empty_proof_and_bad_inputs_is_rejected(
    index: int, size: int, leaf: bytes, root: bytes
) -> None:
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, leaf, [], root)


# TestVerifyConsistency table.  Upstream treats size1 == 0 as trivially consistent; this
# module's contract rejects consistency from size 0, so those rows expect ProofError.
_DONT_CARE_1 = b"don't care 1"
_DONT_CARE_2 = b"don't care 2"


@pytest.mark.parametrize(
    ("size1", "size2", "root1", "root2", "proof"),
    [
        pytest.param(0, 0, _DONT_CARE_1, _DONT_CARE_2, [], id="size0-different-roots"),
        pytest.param(1, 1, _DONT_CARE_1, _DONT_CARE_2, [], id="equal-sizes-different-roots"),
        pytest.param(0, 0, _DONT_CARE_1, _DONT_CARE_1, [], id="size0-to-size0-equal-roots"),
        pytest.param(0, 1, _DONT_CARE_1, _DONT_CARE_2, [], id="size0-to-size1"),
        pytest.param(1, 0, _DONT_CARE_1, _DONT_CARE_2, [], id="time-travel-1-to-0"),
        pytest.param(2, 1, _DONT_CARE_1, _DONT_CARE_2, [], id="time-travel-2-to-1"),
        pytest.param(1, 2, _DONT_CARE_1, _DONT_CARE_2, [], id="growth-with-empty-proof"),
        pytest.param(0, 0, EMPTY_ROOT, _DONT_CARE_2, [], id="size0-roots-differ"),
        pytest.param(1, 1, EMPTY_ROOT, _DONT_CARE_2, [], id="size1-roots-differ"),
        pytest.param(0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], id="size0-nonempty-proof"),
        pytest.param(0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], id="size0-to-1-nonempty"),
        pytest.param(1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], id="equal-sizes-nonempty"),
    ],
)
def test_inconsistent_sizes_roots_or_proof_are_rejected(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> None:
    with pytest.raises(ProofError):
        merkle.verify_consistency(size1, size2, proof, root1, root2)


@pytest.mark.parametrize("root", [SOME_HASH, ROOT_HASHES[5]], ids=["some-hash", "root5"])
@pytest.mark.parametrize("size", [1, 5, 2**40], ids=lambda n: f"size{n}")
def test_consistency_between_equal_sizes_with_equal_roots_and_empty_proof_verifies(
    size: int, root: bytes
) -> None:
    assert merkle.verify_consistency(size, size, [], root, root) is None


def _corrupt_inclusion(
    index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes
) -> list[object]:
    """Rewrite of corruptInclusionProof: each probe must be rejected."""
    uint64 = 1 << 64  # upstream indices are uint64, so 0 - 1 wraps around
    probes = [
        ("leafIndex-1", (index - 1) % uint64, size, leaf, proof, root),
        ("leafIndex+1", index + 1, size, leaf, proof, root),
        ("leafIndex^2", index ^ 2, size, leaf, proof, root),
        ("treeSize*2", index, size * 2, leaf, proof, root),
        ("treeSize/2", index, size // 2, leaf, proof, root),
        ("wrong-leaf", index, size, b"WrongLeaf", proof, root),
        ("empty-root", index, size, leaf, proof, EMPTY_ROOT),
        ("random-root", index, size, leaf, proof, SOME_HASH),
        ("trailing-garbage", index, size, leaf, [*proof, b""], root),
        ("trailing-root", index, size, leaf, [*proof, root], root),
        ("preceding-garbage", index, size, leaf, [b"", *proof], root),
        ("preceding-root", index, size, leaf, [root, *proof], root),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 8]) + wrong[i][1:]
        probes.append((f"modified-proof[{i}]-bit3", index, size, leaf, wrong, root))
    if proof:
        probes.append(("removed-component", index, size, leaf, proof[:-1], root))
    if len(proof) > 1:
        inserted = [proof[0], SOME_HASH, *proof[1:]]
        probes.append(("inserted-component", index, size, leaf, inserted, root))
    return [pytest.param(*probe[1:], id=f"index{index}-size{size}-{probe[0]}") for probe in probes]


def _corrupt_consistency(
    size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes
) -> list[object]:
    """Rewrite of corruptConsistencyProof: each probe must be rejected."""
    probes = [
        ("size1-1", size1 - 1, size2, proof, root1, root2),
        ("size1+1", size1 + 1, size2, proof, root1, root2),
        ("size1^2", size1 ^ 2, size2, proof, root1, root2),
        ("size2*2", size1, size2 * 2, proof, root1, root2),
        ("size2/2", size1, size2 // 2, proof, root1, root2),
        ("wrong-root1", size1, size2, proof, b"WrongRoot", root2),
        ("wrong-root2", size1, size2, proof, root1, b"WrongRoot"),
        ("swapped-roots", size1, size2, proof, root2, root1),
        ("empty-proof", size1, size2, [], root1, root2),
        ("trailing-garbage", size1, size2, [*proof, b""], root1, root2),
        ("trailing-root1", size1, size2, [*proof, root1], root1, root2),
        ("trailing-root2", size1, size2, [*proof, root2], root1, root2),
        ("preceding-garbage", size1, size2, [b"", *proof], root1, root2),
        ("preceding-root1", size1, size2, [root1, *proof], root1, root2),
        ("preceding-root2", size1, size2, [root2, *proof], root1, root2),
        ("preceding-proof[0]", size1, size2, [proof[0], *proof], root1, root2),
        ("truncated-proof", size1, size2, proof[:-1], root1, root2),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 16]) + wrong[i][1:]
        probes.append((f"modified-proof[{i}]-bit4", size1, size2, wrong, root1, root2))
    return [pytest.param(*probe[1:], id=f"{size1}-to-{size2}-{probe[0]}") for probe in probes]


# Upstream corrupts vectors 1..5 (every vector but the invalid {0, 0} path) and every
# consistency vector whose proof is non-empty.
_INCLUSION_PROBES = [
    probe
    for index, size, proof in INCLUSION_VECTORS
    for probe in _corrupt_inclusion(
        index, size, _ref_leaf(LEAF_INPUTS[index]), proof, ROOT_HASHES[size]
    )
]
_CONSISTENCY_PROBES = [
    probe
    for size1, size2, proof in CONSISTENCY_VECTORS
    if proof
    for probe in _corrupt_consistency(size1, size2, proof, ROOT_HASHES[size1], ROOT_HASHES[size2])
]


@pytest.mark.parametrize(("index", "size", "leaf", "proof", "root"), _INCLUSION_PROBES)
def test_corrupted_rfc6962_inclusion_proof_is_rejected(
    index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes
) -> None:
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, leaf, proof, root)


@pytest.mark.parametrize(("size1", "size2", "proof", "root1", "root2"), _CONSISTENCY_PROBES)
def test_corrupted_rfc6962_consistency_proof_is_rejected(
    size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes
) -> None:
    with pytest.raises(ProofError):
        merkle.verify_consistency(size1, size2, proof, root1, root2)


# ======================================================================================
# Input validation rules of this module's contract.


@pytest.mark.parametrize("length", [0, 1, 20, 31, 33, 64], ids=lambda n: f"{n}-bytes")
def test_inclusion_with_leaf_hash_not_32_bytes_is_rejected(length: int) -> None:
    index, size, proof = INCLUSION_VECTORS[2]  # leaf 6 of 8
    leaf = merkle.leaf_hash(LEAF_INPUTS[index])
    bad_leaf = (leaf * 3)[:length]
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, bad_leaf, proof, ROOT_HASHES[size])


def test_single_entry_inclusion_with_short_leaf_hash_equal_to_root_is_rejected() -> None:
    short = _DATA_HASH[:31]
    with pytest.raises(ProofError):
        merkle.verify_inclusion(0, 1, short, [], short)


@pytest.mark.parametrize("length", [0, 31, 33, 64], ids=lambda n: f"{n}-bytes")
@pytest.mark.parametrize("position", [0, 1, 2], ids=lambda i: f"proof[{i}]")
def test_inclusion_proof_element_not_32_bytes_is_rejected(position: int, length: int) -> None:
    index, size, proof = INCLUSION_VECTORS[1]  # leaf 0 of 8
    bad = list(proof)
    bad[position] = (bad[position] * 3)[:length]
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, _ref_leaf(LEAF_INPUTS[index]), bad, ROOT_HASHES[size])


@pytest.mark.parametrize("length", [0, 31, 33, 64], ids=lambda n: f"{n}-bytes")
@pytest.mark.parametrize("position", [0, 1, 2], ids=lambda i: f"proof[{i}]")
def test_consistency_proof_element_not_32_bytes_is_rejected(position: int, length: int) -> None:
    size1, size2, proof = CONSISTENCY_VECTORS[2]  # 6 -> 8
    bad = list(proof)
    bad[position] = (bad[position] * 3)[:length]
    with pytest.raises(ProofError):
        merkle.verify_consistency(size1, size2, bad, ROOT_HASHES[size1], ROOT_HASHES[size2])


@pytest.mark.parametrize(("index", "size"), [(8, 8), (9, 8), (1, 1), (0, 0), (2**64, 8)])
def test_inclusion_with_index_not_below_size_is_rejected(index: int, size: int) -> None:
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, SOME_HASH, [], ROOT_HASHES[8])


# Each negative index below agrees in its low bits with the real index of the proof, so a
# verifier that only checked ``index < size`` would walk the same left/right path and accept.
@pytest.mark.parametrize(("index", "real_index"), [(-1, 7), (-8, 0), (-3, 5)], ids=lambda v: str(v))
def test_inclusion_with_negative_index_is_rejected(index: int, real_index: int) -> None:
    proof = merkle.inclusion_proof(real_index, LEAF_INPUTS)
    leaf = _ref_leaf(LEAF_INPUTS[real_index])
    merkle.verify_inclusion(real_index, 8, leaf, proof, ROOT_HASHES[8])
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, 8, leaf, proof, ROOT_HASHES[8])


# Moving bytes between the leaf hash and its neighbouring proof hash keeps the hashed
# concatenation, and so the computed root, unchanged: only the 32-byte rule rejects it.
@pytest.mark.parametrize("shift", [1, 16, 31], ids=lambda n: f"{n}-bytes")
def test_inclusion_with_bytes_moved_from_proof_into_leaf_hash_is_rejected(shift: int) -> None:
    leaf0, leaf1 = NODE_HASHES[0][0], NODE_HASHES[0][1]
    with pytest.raises(ProofError):
        merkle.verify_inclusion(0, 2, leaf0 + leaf1[:shift], [leaf1[shift:]], ROOT_HASHES[2])


@pytest.mark.parametrize("shift", [1, 16, 31], ids=lambda n: f"{n}-bytes")
def test_inclusion_with_bytes_moved_from_leaf_hash_into_proof_is_rejected(shift: int) -> None:
    leaf0, leaf1 = NODE_HASHES[0][0], NODE_HASHES[0][1]
    with pytest.raises(ProofError):
        merkle.verify_inclusion(1, 2, leaf1[shift:], [leaf0 + leaf1[:shift]], ROOT_HASHES[2])


@pytest.mark.parametrize("size2", [0, 1, 5, 8], ids=lambda n: f"size2_{n}")
def test_consistency_from_size_zero_is_rejected(size2: int) -> None:
    with pytest.raises(ProofError):
        merkle.verify_consistency(0, size2, [], EMPTY_ROOT, ROOT_HASHES[size2])


@pytest.mark.parametrize(("size1", "size2"), [(2, 1), (8, 5), (9, 8)])
def test_consistency_with_size1_greater_than_size2_is_rejected(size1: int, size2: int) -> None:
    proof = merkle.consistency_proof(min(size1, size2), LEAF_INPUTS[: max(size1, size2)])
    with pytest.raises(ProofError):
        merkle.verify_consistency(size1, size2, proof, ROOT_HASHES[1], ROOT_HASHES[1])


def test_consistency_between_equal_sizes_with_different_roots_is_rejected() -> None:
    with pytest.raises(ProofError):
        merkle.verify_consistency(8, 8, [], ROOT_HASHES[8], ROOT_HASHES[7])


def test_consistency_between_equal_sizes_with_nonempty_proof_is_rejected() -> None:
    with pytest.raises(ProofError):
        merkle.verify_consistency(8, 8, [ROOT_HASHES[8]], ROOT_HASHES[8], ROOT_HASHES[8])


# Oversized proofs.  A tree of 2**63 leaves needs 63 hashes to prove leaf 0, and one of
# 2**64 leaves needs 64: the proofs below are arithmetically correct for those sizes, so
# only the 63-hash limit can reject the 64-hash ones.


def test_inclusion_proof_with_63_hashes_is_accepted() -> None:
    proof = _distinct_hashes(63)
    root = _fold_right(_DATA_HASH, proof)
    assert merkle.verify_inclusion(0, 2**63, _DATA_HASH, proof, root) is None


def test_inclusion_proof_with_64_hashes_is_rejected_as_oversized() -> None:
    proof = _distinct_hashes(64)
    root = _fold_right(_DATA_HASH, proof)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(0, 2**64, _DATA_HASH, proof, root)


@pytest.mark.parametrize("count", [64, 65, 1000], ids=lambda n: f"{n}-hashes")
def test_inclusion_proof_with_more_than_63_hashes_is_rejected(count: int) -> None:
    with pytest.raises(ProofError):
        merkle.verify_inclusion(0, 8, _DATA_HASH, [SOME_HASH] * count, ROOT_HASHES[8])


def test_consistency_proof_with_63_hashes_is_accepted() -> None:
    proof = _distinct_hashes(63)
    root2 = _fold_right(_DATA_HASH, proof)
    assert merkle.verify_consistency(1, 2**63, proof, _DATA_HASH, root2) is None


def test_consistency_proof_with_64_hashes_is_rejected_as_oversized() -> None:
    proof = _distinct_hashes(64)
    root2 = _fold_right(_DATA_HASH, proof)
    with pytest.raises(ProofError):
        merkle.verify_consistency(1, 2**64, proof, _DATA_HASH, root2)


@pytest.mark.parametrize("count", [64, 65, 1000], ids=lambda n: f"{n}-hashes")
def test_consistency_proof_with_more_than_63_hashes_is_rejected(count: int) -> None:
    with pytest.raises(ProofError):
        merkle.verify_consistency(3, 8, [SOME_HASH] * count, ROOT_HASHES[3], ROOT_HASHES[8])


# ======================================================================================
# Property tests on random trees.  Entries are unique so that no two subtrees share a
# hash: with repeated entries a proof for one position can legitimately prove another
# position holding the same entry.

_ENTRIES = st.binary(max_size=12)
_UNIQUE_LEAVES = st.lists(_ENTRIES, min_size=2, max_size=70, unique=True)


@st.composite
def _inclusion_cases(draw: st.DrawFn) -> tuple[int, int, bytes, list[bytes], bytes]:
    """(index, size, leaf hash, generated proof, root) for a random tree of 2..70 leaves."""
    leaves = draw(_UNIQUE_LEAVES)
    index = draw(st.integers(0, len(leaves) - 1))
    proof = merkle.inclusion_proof(index, leaves)
    return index, len(leaves), merkle.leaf_hash(leaves[index]), proof, merkle.root(leaves)


@st.composite
def _consistency_cases(draw: st.DrawFn) -> tuple[int, int, list[bytes], bytes, bytes]:
    """(size1, size2, generated proof, root1, root2) with 1 <= size1 < size2 <= 70."""
    leaves = draw(_UNIQUE_LEAVES)
    size1 = draw(st.integers(1, len(leaves) - 1))
    proof = merkle.consistency_proof(size1, leaves)
    return size1, len(leaves), proof, merkle.root(leaves[:size1]), merkle.root(leaves)


@PROPERTY
@given(entries=st.lists(_ENTRIES, max_size=70))
def test_root_of_random_tree_matches_rfc9162_reference(entries: list[bytes]) -> None:
    assert merkle.root(entries) == _ref_mth(entries)


@PROPERTY
@given(entries=st.lists(_ENTRIES, min_size=1, max_size=70), data=st.data())
def test_every_generated_inclusion_proof_matches_reference_and_verifies(
    entries: list[bytes], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(entries) - 1), label="index")
    proof = merkle.inclusion_proof(index, entries)
    assert proof == _ref_path(index, entries)
    assert all(len(h) == 32 for h in proof)
    leaf = merkle.leaf_hash(entries[index])
    assert merkle.verify_inclusion(index, len(entries), leaf, proof, merkle.root(entries)) is None


@PROPERTY
@given(entries=st.lists(_ENTRIES, min_size=1, max_size=70), data=st.data())
def test_every_generated_consistency_proof_matches_reference_and_verifies(
    entries: list[bytes], data: st.DataObject
) -> None:
    size1 = data.draw(st.integers(1, len(entries)), label="size1")
    proof = merkle.consistency_proof(size1, entries)
    assert proof == _ref_subproof(size1, entries, True)
    assert all(len(h) == 32 for h in proof)
    root1, root2 = merkle.root(entries[:size1]), merkle.root(entries)
    assert merkle.verify_consistency(size1, len(entries), proof, root1, root2) is None


# Inclusion proof mutations.


@PROPERTY
@given(case=_inclusion_cases(), data=st.data())
def test_inclusion_proof_with_a_flipped_bit_is_rejected(
    case: tuple[int, int, bytes, list[bytes], bytes], data: st.DataObject
) -> None:
    index, size, leaf, proof, root = case
    position = data.draw(st.integers(0, len(proof) - 1), label="position")
    bit = data.draw(st.integers(0, 255), label="bit")
    bad = list(proof)
    bad[position] = _flip_bit(bad[position], bit)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, leaf, bad, root)


@PROPERTY
@given(case=_inclusion_cases())
def test_inclusion_proof_without_its_last_hash_is_rejected(
    case: tuple[int, int, bytes, list[bytes], bytes],
) -> None:
    index, size, leaf, proof, root = case
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, leaf, proof[:-1], root)


@PROPERTY
@given(case=_inclusion_cases())
def test_inclusion_proof_without_its_first_hash_is_rejected(
    case: tuple[int, int, bytes, list[bytes], bytes],
) -> None:
    index, size, leaf, proof, root = case
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, leaf, proof[1:], root)


@PROPERTY
@given(case=_inclusion_cases(), extra=st.binary(min_size=32, max_size=32), data=st.data())
def test_inclusion_proof_with_extra_hash_is_rejected(
    case: tuple[int, int, bytes, list[bytes], bytes], extra: bytes, data: st.DataObject
) -> None:
    index, size, leaf, proof, root = case
    extra = data.draw(st.sampled_from([extra, root, leaf, *proof]), label="extra")
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, leaf, [*proof, extra], root)


@PROPERTY
@given(case=_inclusion_cases(), data=st.data())
def test_inclusion_proof_with_two_hashes_swapped_is_rejected(
    case: tuple[int, int, bytes, list[bytes], bytes], data: st.DataObject
) -> None:
    index, size, leaf, proof, root = case
    assume(len(proof) >= 2)
    i = data.draw(st.integers(0, len(proof) - 2), label="i")
    j = data.draw(st.integers(i + 1, len(proof) - 1), label="j")
    assume(proof[i] != proof[j])
    bad = list(proof)
    bad[i], bad[j] = bad[j], bad[i]
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, leaf, bad, root)


@PROPERTY
@given(case=_inclusion_cases(), data=st.data())
def test_inclusion_proof_for_a_wrong_index_is_rejected(
    case: tuple[int, int, bytes, list[bytes], bytes], data: st.DataObject
) -> None:
    index, size, leaf, proof, root = case
    wrong = data.draw(st.integers(0, size + 2).filter(lambda i: i != index), label="wrong")
    with pytest.raises(ProofError):
        merkle.verify_inclusion(wrong, size, leaf, proof, root)


@PROPERTY
@given(case=_inclusion_cases(), data=st.data())
def test_inclusion_proof_for_a_wrong_tree_size_is_rejected(
    case: tuple[int, int, bytes, list[bytes], bytes], data: st.DataObject
) -> None:
    index, size, leaf, proof, root = case
    wrong = data.draw(st.integers(0, 2 * size + 2).filter(lambda n: n != size), label="wrong")
    # A size giving the same proof shape is indistinguishable by design (see above).
    assume(wrong <= index or _inclusion_shape(index, wrong) != _inclusion_shape(index, size))
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, wrong, leaf, proof, root)


@PROPERTY
@given(case=_inclusion_cases(), other=_ENTRIES)
def test_inclusion_proof_for_a_different_leaf_is_rejected(
    case: tuple[int, int, bytes, list[bytes], bytes], other: bytes
) -> None:
    index, size, leaf, proof, root = case
    wrong_leaf = merkle.leaf_hash(other)
    assume(wrong_leaf != leaf)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, wrong_leaf, proof, root)


@PROPERTY
@given(case=_inclusion_cases(), data=st.data())
def test_inclusion_with_a_leaf_hash_not_32_bytes_is_rejected(
    case: tuple[int, int, bytes, list[bytes], bytes], data: st.DataObject
) -> None:
    index, size, leaf, proof, root = case
    length = data.draw(st.integers(0, 64).filter(lambda n: n != 32), label="length")
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, (leaf * 2)[:length], proof, root)


# Consistency proof mutations.


@PROPERTY
@given(case=_consistency_cases(), data=st.data())
def test_consistency_proof_with_a_flipped_bit_is_rejected(
    case: tuple[int, int, list[bytes], bytes, bytes], data: st.DataObject
) -> None:
    size1, size2, proof, root1, root2 = case
    position = data.draw(st.integers(0, len(proof) - 1), label="position")
    bit = data.draw(st.integers(0, 255), label="bit")
    bad = list(proof)
    bad[position] = _flip_bit(bad[position], bit)
    with pytest.raises(ProofError):
        merkle.verify_consistency(size1, size2, bad, root1, root2)


@PROPERTY
@given(case=_consistency_cases())
def test_consistency_proof_without_its_last_hash_is_rejected(
    case: tuple[int, int, list[bytes], bytes, bytes],
) -> None:
    size1, size2, proof, root1, root2 = case
    with pytest.raises(ProofError):
        merkle.verify_consistency(size1, size2, proof[:-1], root1, root2)


@PROPERTY
@given(case=_consistency_cases())
def test_consistency_proof_without_its_first_hash_is_rejected(
    case: tuple[int, int, list[bytes], bytes, bytes],
) -> None:
    size1, size2, proof, root1, root2 = case
    with pytest.raises(ProofError):
        merkle.verify_consistency(size1, size2, proof[1:], root1, root2)


@PROPERTY
@given(case=_consistency_cases(), extra=st.binary(min_size=32, max_size=32), data=st.data())
def test_consistency_proof_with_extra_hash_is_rejected(
    case: tuple[int, int, list[bytes], bytes, bytes], extra: bytes, data: st.DataObject
) -> None:
    size1, size2, proof, root1, root2 = case
    extra = data.draw(st.sampled_from([extra, root1, root2, *proof]), label="extra")
    with pytest.raises(ProofError):
        merkle.verify_consistency(size1, size2, [*proof, extra], root1, root2)


@PROPERTY
@given(case=_consistency_cases(), data=st.data())
def test_consistency_proof_with_two_hashes_swapped_is_rejected(
    case: tuple[int, int, list[bytes], bytes, bytes], data: st.DataObject
) -> None:
    size1, size2, proof, root1, root2 = case
    assume(len(proof) >= 2)
    i = data.draw(st.integers(0, len(proof) - 2), label="i")
    j = data.draw(st.integers(i + 1, len(proof) - 1), label="j")
    assume(proof[i] != proof[j])
    bad = list(proof)
    bad[i], bad[j] = bad[j], bad[i]
    with pytest.raises(ProofError):
        merkle.verify_consistency(size1, size2, bad, root1, root2)


@PROPERTY
@given(case=_consistency_cases(), data=st.data())
def test_consistency_proof_for_a_wrong_size1_is_rejected(
    case: tuple[int, int, list[bytes], bytes, bytes], data: st.DataObject
) -> None:
    size1, size2, proof, root1, root2 = case
    wrong = data.draw(st.integers(0, size2 + 2).filter(lambda n: n != size1), label="wrong")
    with pytest.raises(ProofError):
        merkle.verify_consistency(wrong, size2, proof, root1, root2)


@PROPERTY
@given(case=_consistency_cases(), data=st.data())
def test_consistency_proof_for_a_wrong_size2_is_rejected(
    case: tuple[int, int, list[bytes], bytes, bytes], data: st.DataObject
) -> None:
    size1, size2, proof, root1, root2 = case
    wrong = data.draw(st.integers(0, 2 * size2 + 2).filter(lambda n: n != size2), label="wrong")
    # A size2 giving the same proof shape is indistinguishable by design (see above).
    assume(wrong < size1 or _consistency_shape(size1, wrong) != _consistency_shape(size1, size2))
    with pytest.raises(ProofError):
        merkle.verify_consistency(size1, wrong, proof, root1, root2)


@PROPERTY
@given(case=_consistency_cases())
def test_consistency_proof_with_swapped_roots_is_rejected(
    case: tuple[int, int, list[bytes], bytes, bytes],
) -> None:
    size1, size2, proof, root1, root2 = case
    assume(root1 != root2)
    with pytest.raises(ProofError):
        merkle.verify_consistency(size1, size2, proof, root2, root1)


@PROPERTY
@given(case=_consistency_cases(), other=st.binary(min_size=32, max_size=32), data=st.data())
def test_consistency_proof_against_a_wrong_root_is_rejected(
    case: tuple[int, int, list[bytes], bytes, bytes], other: bytes, data: st.DataObject
) -> None:
    size1, size2, proof, root1, root2 = case
    which = data.draw(st.sampled_from(["root1", "root2"]), label="which")
    if which == "root1":
        assume(other != root1)
        root1 = other
    else:
        assume(other != root2)
        root2 = other
    with pytest.raises(ProofError):
        merkle.verify_consistency(size1, size2, proof, root1, root2)

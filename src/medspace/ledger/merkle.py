"""Merkle tree hashing and proofs, exactly as RFC 9162 §2.1 (RFC 6962 hashing).

The tree over entries D[0:n] is the RFC's: split at the largest power of two below n, hash the
left part (always a perfect subtree) and the right part recursively. Every range that the
recursion visits starts at a multiple of a power of two at least as large as the range, so its
hash is a right fold over the perfect, aligned subtrees its binary decomposition names. That is
what lets a store keep only perfect subtree hashes and still answer every proof without
re-hashing the log: the ``*_ranges`` functions say which ranges a proof needs,
``perfect_subtrees`` which stored hashes make a range, and ``fold`` combines them.

The pure interface over raw entries (``root``, ``inclusion_proof``, ``consistency_proof``) and
the verifiers are the ones every part of the data space shares.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
MAX_PROOF_HASHES = 63
"""No tree of fewer than 2**63 leaves needs a longer proof; anything longer is hostile."""

EMPTY_ROOT = hashlib.sha256(b"").digest()

Range = tuple[int, int]
Subtree = tuple[int, int]
"""A perfect, aligned subtree (level, index): leaves [index << level, (index + 1) << level)."""


class ProofError(ValueError):
    """A proof, or the hashes it was checked against, does not hold."""


def leaf_hash(data: bytes) -> bytes:
    """Hash one raw entry as a leaf: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash two children into their parent: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The ranges whose hashes form the inclusion proof of ``index`` in a tree of ``size``."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is outside a tree of size {size}")
    path: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append((start + k, end))
            end = start + k
        else:
            path.append((start, start + k))
            start += k
    path.reverse()
    return path


def consistency_ranges(size1: int, size2: int) -> list[Range]:
    """The ranges whose hashes form the consistency proof from ``size1`` to ``size2``."""
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    path: list[Range] = []
    start, end, m, complete = 0, size2, size1, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            path.append((start + k, end))
            end = start + k
        else:
            path.append((start, start + k))
            start, m, complete = start + k, m - k, False
    if not complete:
        path.append((start, end))
    path.reverse()
    return path


def perfect_subtrees(start: int, end: int) -> list[Subtree]:
    """The perfect, aligned subtrees that make up ``[start, end)``, largest first.

    Valid for ranges whose start is a multiple of a power of two at least ``end - start``:
    every range of the RFC recursion, and every prefix ``[0, n)``.
    """
    subtrees: list[Subtree] = []
    position, remaining = start, end - start
    while remaining:
        level = remaining.bit_length() - 1
        subtrees.append((level, position >> level))
        position += 1 << level
        remaining -= 1 << level
    return subtrees


def fold(hashes: Sequence[bytes]) -> bytes:
    """Combine perfect-subtree hashes, largest first, into the hash of their RFC tree."""
    if not hashes:
        return EMPTY_ROOT
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def range_hash(start: int, end: int, subtree_hash: Callable[[Subtree], bytes]) -> bytes:
    """The hash of the RFC tree over ``[start, end)``, from the hashes of perfect subtrees."""
    return fold([subtree_hash(s) for s in perfect_subtrees(start, end)])


def _tree_hash(hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes, by the RFC's recursion."""
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return node_hash(_tree_hash(hashes[:k]), _tree_hash(hashes[k:]))


def root(leaves: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of raw entries ``leaves``."""
    return _tree_hash([leaf_hash(leaf) for leaf in leaves])


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The RFC 9162 inclusion proof of entry ``index`` in the tree of raw entries ``leaves``."""
    hashes = [leaf_hash(leaf) for leaf in leaves]
    return [_tree_hash(hashes[s:e]) for s, e in inclusion_ranges(index, len(hashes))]


def consistency_proof(size1: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The RFC 9162 consistency proof from the first ``size1`` entries to all of ``leaves``."""
    hashes = [leaf_hash(leaf) for leaf in leaves]
    return [_tree_hash(hashes[s:e]) for s, e in consistency_ranges(size1, len(hashes))]


def _check_hashes(proof: Sequence[bytes], *named: tuple[str, bytes]) -> None:
    if len(proof) > MAX_PROOF_HASHES:
        raise ProofError(f"proof has {len(proof)} hashes; no valid proof has more than 63")
    for name, value in named:
        if len(value) != HASH_SIZE:
            raise ProofError(f"{name} is {len(value)} bytes, not {HASH_SIZE}")
    for i, element in enumerate(proof):
        if len(element) != HASH_SIZE:
            raise ProofError(f"proof hash {i} is {len(element)} bytes, not {HASH_SIZE}")


def verify_inclusion(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is entry ``index`` of the tree of ``size`` with ``root``.

    RFC 9162 §2.1.3.2. Returns None, or raises ProofError saying what failed.
    """
    _check_hashes(proof, ("leaf hash", leaf_hash), ("root", root))
    if not 0 <= index < size:
        raise ProofError(f"index {index} is outside a tree of size {size}")
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the tree is deep")
    if r != root:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of ``size2`` with ``root2`` extends the one of ``size1`` with ``root1``.

    RFC 9162 §2.1.4.2. Returns None, or raises ProofError saying what failed.
    """
    _check_hashes(proof, ("first root", root1), ("second root", root2))
    if size1 <= 0:
        raise ProofError(f"no consistency proof from size {size1}")
    if size1 > size2:
        raise ProofError(f"size {size1} is larger than size {size2}")
    if size1 == size2:
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty")
        if root1 != root2:
            raise ProofError("trees of equal size have different roots")
        return
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    if not path:
        raise ProofError("consistency proof is empty")
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than the trees are deep")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than the trees are deep")
    if fr != root1:
        raise ProofError("consistency proof does not lead to the first root")
    if sr != root2:
        raise ProofError("consistency proof does not lead to the second root")

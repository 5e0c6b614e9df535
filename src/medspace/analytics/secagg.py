"""Secure aggregation: the hub adds hospitals' vectors and sees only the total.

The construction is the double-masking protocol of Bonawitz et al., "Practical Secure
Aggregation for Privacy-Preserving Machine Learning" (CCS 2017), over the group of 64-bit
integers modulo 2**64:

- Every value is encoded in fixed point (``FixedPoint``): round(x * 2**scale_bits), held as
  its two's complement in a uint64. Sums modulo 2**64 are then exact, and decode correctly
  as long as the true sum fits in a signed 64-bit integer, which ``FixedPoint.check_capacity``
  proves from the number of parties and the value bound before anything is masked or decoded.
- Each pair of parties (i, j) agrees on a secret with X25519 (RFC 7748) between their published
  key-agreement keys (the ``kx_key`` of the participant registry) and derives the pair's seed
  for the round with HKDF-SHA256 (RFC 5869), whose info binds the round id, both party ids and
  both public keys in a fixed order, so both ends derive the same seed and no two rounds
  share one. The lower id (in code point order) adds the pair mask, the higher subtracts it,
  so pair masks cancel in the sum.
- Each party also adds a self mask from a seed only it can derive (HKDF over its private key
  and the round id). When a party drops out after masking, the survivors reveal the seeds they
  shared with it, and the hub removes its uncancelled pair masks; survivors also reveal their
  self seeds. A dropped party's self seed is never revealed, so even if its masked input
  reaches the hub late, the revealed pair seeds do not unmask it.
- Seeds are expanded into masks by AES-256 in counter mode (NIST SP 800-38A) with the seed as
  key and a zero initial counter block, the PRG Bonawitz et al. use; every seed keys exactly
  one keystream, so the fixed counter block is never reused under one key.

Each masked input carries SHA-256 commitments to its self seed and to each pair seed. The hub
checks revealed seeds against them, and the two commitments of every pair of survivors against
each other, so a reveal from another round, a tampered seed or a party that used a wrong
public key for a peer is refused instead of yielding a wrong total.

What this protects, against a hub that follows the protocol but tries to learn more (honest but
curious) and colludes with no hospital: the hub learns the sum of the survivors' vectors and
nothing else about any one of them. What it does not: (1) threshold recovery — Bonawitz et al.
Shamir-share the seeds so that any t parties can recover; here every survivor must reveal, and
one that fails to do so fails the round (fail closed: the round is run again under a new id);
(2) a hub that equivocates, telling a party's peers it dropped while asking the party itself
for its self seed, which Bonawitz et al. counter with signed survivor lists (the node's log of
the reveal request it answered is the place to catch it); (3) hub–hospital collusion beyond
the standard bound — colluders learn the sum of the honest parties' vectors; (4) the
correctness of what a hospital puts in. All seeds are derived deterministically from a
party's key and the round id, so a node must mask at most once per round id: two different
vectors masked under one round id would differ by exactly their plaintext difference. The
node's release journal is where that is enforced; this module is pure.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from numpy.typing import ArrayLike, NDArray

SEED_SIZE = 32
MAX_INT64 = 2**63 - 1
MAX_ID_BYTES = 255
MAX_LENGTH = 1 << 24
"""The longest vector masked: 128 MiB of masks per pair already exceeds any partial aggregate."""

_LABEL = b"medspace/secagg/v1/"
_ZERO_COUNTER = bytes(16)


class SecAggError(ValueError):
    """An input to secure aggregation is malformed, inconsistent or would overflow."""


@dataclass(frozen=True)
class FixedPoint:
    """Fixed-point encoding of reals into integers modulo 2**64.

    A value x with |x| <= ``bound`` is encoded as round(x * 2**scale_bits), so each value is off
    by at most 2**-(scale_bits + 1) and a sum of n values by n times that. The defaults hold
    values up to 2**30 (about 1e9) to within 2**-21 (about 5e-7), for up to 8191 parties.
    """

    scale_bits: int = 20
    bound: float = 2.0**30

    def __post_init__(self) -> None:
        if not 0 <= self.scale_bits <= 62:
            raise SecAggError(f"scale_bits must be in 0..62, not {self.scale_bits}")
        if not (math.isfinite(self.bound) and self.bound > 0):
            raise SecAggError(f"bound must be a positive finite number, not {self.bound}")
        if self.limit > MAX_INT64:
            raise SecAggError("bound * 2**scale_bits does not fit in a signed 64-bit integer")

    @property
    def limit(self) -> int:
        """The largest magnitude of one encoded value."""
        return math.ceil(self.bound * 2**self.scale_bits)

    @property
    def resolution(self) -> float:
        """The largest rounding error of one encoded value."""
        return 2.0 ** -(self.scale_bits + 1)

    def check_capacity(self, parties: int) -> None:
        """Refuse ``parties`` values whose sum could leave the signed 64-bit range, where the
        sum modulo 2**64 would wrap and decode to a wrong total without any sign of it."""
        if parties < 1:
            raise SecAggError(f"a sum needs at least one party, not {parties}")
        if parties * self.limit > MAX_INT64:
            raise SecAggError(
                f"the sum of {parties} values bounded by {self.bound} at scale "
                f"2**{self.scale_bits} could overflow 64 bits; lower the bound or the scale")

    def encode(self, vector: ArrayLike) -> NDArray[np.uint64]:
        """The fixed-point encoding of a one-dimensional vector of finite values within bound."""
        values = np.asarray(vector, dtype=np.float64)
        if values.ndim != 1:
            raise SecAggError(f"a vector must be one-dimensional, not of shape {values.shape}")
        if not np.all(np.isfinite(values)):
            raise SecAggError("a vector must hold finite values only")
        if values.size and np.max(np.abs(values)) > self.bound:
            raise SecAggError(f"a value exceeds the bound {self.bound} in magnitude")
        scaled = np.rint(np.ldexp(values, self.scale_bits)).astype(np.int64)
        return scaled.view(np.uint64)

    def decode(self, total: NDArray[np.uint64], parties: int) -> NDArray[np.float64]:
        """The reals a sum of ``parties`` encoded vectors stands for."""
        self.check_capacity(parties)
        return np.ldexp(np.asarray(total, dtype=np.uint64).view(np.int64).astype(np.float64),
                        -self.scale_bits)


@dataclass(frozen=True)
class MaskedInput:
    """What a party sends the hub: its masked vector and commitments to its seeds.

    ``values`` holds the masked vector as little-endian uint64, so its size depends only on the
    vector's length; ``pair_commitments`` has one entry per peer, sorted by peer id.
    """

    round_id: str
    party: str
    roster: tuple[str, ...]
    encoding: FixedPoint
    values: bytes
    self_commitment: bytes
    pair_commitments: tuple[tuple[str, bytes], ...]

    @property
    def vector(self) -> NDArray[np.uint64]:
        """The masked vector."""
        return np.frombuffer(self.values, dtype="<u8").astype(np.uint64)


@dataclass(frozen=True)
class Reveal:
    """What a surviving party sends to unmask the sum: its self seed, and the seeds it shared
    with each party that dropped (sorted by peer id)."""

    round_id: str
    party: str
    dropped: tuple[str, ...]
    self_seed: bytes
    pair_seeds: tuple[tuple[str, bytes], ...]


def load_kx_key(kx_key: str) -> X25519PublicKey:
    """A participant's key-agreement key as the registry publishes it (base64 of 32 bytes)."""
    try:
        raw = base64.b64decode(kx_key, validate=True)
    except (binascii.Error, ValueError):
        raise SecAggError("a key-agreement key must be base64") from None
    if len(raw) != 32:
        raise SecAggError(f"a key-agreement key is 32 bytes, not {len(raw)}")
    return X25519PublicKey.from_public_bytes(raw)


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _framed(*parts: bytes) -> bytes:
    """Length-prefixed concatenation, so no two different part lists give the same bytes."""
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def _check_id(kind: str, value: object) -> bytes:
    if not isinstance(value, str) or not value:
        raise SecAggError(f"a {kind} must be a non-empty string")
    encoded = value.encode("utf-8")
    if len(encoded) > MAX_ID_BYTES:
        raise SecAggError(f"a {kind} is at most {MAX_ID_BYTES} bytes")
    return encoded


def _check_roster(public_keys: Mapping[str, X25519PublicKey], party: str) -> tuple[str, ...]:
    for member, key in public_keys.items():
        _check_id("party id", member)
        if not isinstance(key, X25519PublicKey):
            raise SecAggError(f"the key of {member} is not an X25519 public key")
    roster = tuple(sorted(public_keys))
    _check_id("party id", party)
    if party not in public_keys:
        raise SecAggError(f"party {party} is not in the round's roster")
    if len(roster) < 2:
        raise SecAggError("secure aggregation needs at least two parties")
    return roster


def _check_own_key(public_keys: Mapping[str, X25519PublicKey], party: str,
                   private_key: X25519PrivateKey) -> None:
    if _raw_public(public_keys[party]) != _raw_public(private_key.public_key()):
        raise SecAggError(f"the roster's key for {party} is not this private key's")


def _hkdf(ikm: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=SEED_SIZE, salt=None, info=info).derive(ikm)


def pair_seed(private_key: X25519PrivateKey, party: str, peer: str,
              public_keys: Mapping[str, X25519PublicKey], round_id: str) -> bytes:
    """The seed ``party`` and ``peer`` share in round ``round_id``.

    X25519 (RFC 7748 §6.1) then HKDF-SHA256 (RFC 5869); the info orders the two ids and keys
    by id, so both ends derive the same seed, and binds the round, so revealing one round's seed
    says nothing about another's.
    """
    if party == peer:
        raise SecAggError("a party shares no pair seed with itself")
    low, high = sorted((party, peer))
    try:
        shared = private_key.exchange(public_keys[peer])
    except ValueError:
        raise SecAggError(f"the key of {peer} is a low-order point") from None
    info = _LABEL + b"pair" + _framed(
        _check_id("round id", round_id), low.encode("utf-8"), high.encode("utf-8"),
        _raw_public(public_keys[low]), _raw_public(public_keys[high]))
    return _hkdf(shared, info)


def self_seed(private_key: X25519PrivateKey, party: str, round_id: str) -> bytes:
    """The seed of ``party``'s self mask in ``round_id``: HKDF-SHA256 keyed by its private key,
    so only it can derive the seed, and it can again after a restart."""
    raw = private_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
    info = _LABEL + b"self" + _framed(_check_id("round id", round_id), party.encode("utf-8"))
    return _hkdf(raw, info)


def expand(seed: bytes, length: int) -> NDArray[np.uint64]:
    """``length`` uniformly random uint64 values from ``seed``: the AES-256-CTR keystream."""
    if len(seed) != SEED_SIZE:
        raise SecAggError(f"a seed is {SEED_SIZE} bytes, not {len(seed)}")
    if not 0 <= length <= MAX_LENGTH:
        raise SecAggError(f"a vector holds 0..{MAX_LENGTH} values, not {length}")
    stream = Cipher(algorithms.AES256(seed), modes.CTR(_ZERO_COUNTER)).encryptor()
    return np.frombuffer(stream.update(bytes(8 * length)), dtype="<u8").astype(np.uint64)


def _commit(kind: bytes, round_id: str, seed: bytes, *ids: str) -> bytes:
    return hashlib.sha256(_LABEL + b"commit/" + kind + _framed(
        round_id.encode("utf-8"), *(i.encode("utf-8") for i in ids), seed)).digest()


def _pair_commitment(round_id: str, party: str, peer: str, seed: bytes) -> bytes:
    return _commit(b"pair", round_id, seed, *sorted((party, peer)))


def _self_commitment(round_id: str, party: str, seed: bytes) -> bytes:
    return _commit(b"self", round_id, seed, party)


def mask(vector: ArrayLike, party: str, public_keys: Mapping[str, X25519PublicKey],
         private_key: X25519PrivateKey, round_id: str,
         encoding: FixedPoint | None = None) -> MaskedInput:
    """Mask ``party``'s vector for round ``round_id`` among the parties of ``public_keys``.

    ``public_keys`` is the round's whole roster, the party itself included, as the registry
    publishes it; the party's own entry must match ``private_key``. Refuses a roster whose sum
    could overflow before masking anything.
    """
    encoding = encoding or FixedPoint()
    roster = _check_roster(public_keys, party)
    _check_own_key(public_keys, party, private_key)
    _check_id("round id", round_id)
    encoding.check_capacity(len(roster))
    encoded = encoding.encode(vector)
    own = self_seed(private_key, party, round_id)
    masked = encoded + expand(own, encoded.size)
    commitments = []
    for peer in roster:
        if peer == party:
            continue
        seed = pair_seed(private_key, party, peer, public_keys, round_id)
        pad = expand(seed, encoded.size)
        masked = masked + pad if party < peer else masked - pad
        commitments.append((peer, _pair_commitment(round_id, party, peer, seed)))
    return MaskedInput(round_id=round_id, party=party, roster=roster, encoding=encoding,
                       values=masked.astype("<u8").tobytes(),
                       self_commitment=_self_commitment(round_id, party, own),
                       pair_commitments=tuple(commitments))


def reveal(party: str, public_keys: Mapping[str, X25519PublicKey],
           private_key: X25519PrivateKey, round_id: str, survivors: Collection[str],
           min_survivors: int = 2) -> Reveal:
    """What surviving ``party`` reveals so the hub can unmask the sum of ``survivors``.

    Refuses when the party is not among the survivors (it never reveals its self seed while
    its pair seeds may also be revealed), when a survivor is not on the roster, and when fewer
    than ``min_survivors`` survive: the total of one party is that party's own vector.
    """
    roster = _check_roster(public_keys, party)
    _check_own_key(public_keys, party, private_key)
    _check_id("round id", round_id)
    alive = set(survivors)
    unknown = alive - set(roster)
    if unknown:
        raise SecAggError(f"survivors not on the roster: {', '.join(sorted(unknown))}")
    if party not in alive:
        raise SecAggError(f"party {party} is not among the survivors; it reveals nothing")
    if len(alive) < max(2, min_survivors):
        raise SecAggError(f"{len(alive)} survivors are fewer than the {max(2, min_survivors)} "
                          "a total may be revealed for")
    dropped = tuple(p for p in roster if p not in alive)
    return Reveal(round_id=round_id, party=party, dropped=dropped,
                  self_seed=self_seed(private_key, party, round_id),
                  pair_seeds=tuple((p, pair_seed(private_key, party, p, public_keys, round_id))
                                   for p in dropped))


def _check_inputs(masked_inputs: Sequence[MaskedInput]) -> MaskedInput:
    if not masked_inputs:
        raise SecAggError("no masked inputs to unmask")
    first = masked_inputs[0]
    seen: set[str] = set()
    for item in masked_inputs:
        if item.round_id != first.round_id:
            raise SecAggError(f"masked input of {item.party} is for round {item.round_id}, "
                              f"not {first.round_id}")
        if item.roster != first.roster:
            raise SecAggError(f"masked input of {item.party} names a different roster")
        if item.encoding != first.encoding:
            raise SecAggError(f"masked input of {item.party} uses a different encoding")
        if len(item.values) != len(first.values) or len(item.values) % 8:
            raise SecAggError(f"masked input of {item.party} has the wrong length")
        if item.party not in item.roster:
            raise SecAggError(f"masked input from {item.party}, who is not on the roster")
        if item.party in seen:
            raise SecAggError(f"two masked inputs from {item.party}")
        seen.add(item.party)
        peers = tuple(p for p in item.roster if p != item.party)
        if tuple(p for p, _ in item.pair_commitments) != peers:
            raise SecAggError(f"masked input of {item.party} does not commit to every peer")
    return first


def unmask_sum(masked_inputs: Sequence[MaskedInput], reveals: Sequence[Reveal],
               min_survivors: int = 2) -> NDArray[np.float64]:
    """The sum of the vectors of the parties whose masked inputs arrived.

    Every such party (a survivor) must have revealed, for the same round and the same set of
    dropped parties, a self seed and pair seeds that match its commitments. The pair
    commitments of every two survivors must agree, or one of them masked with a wrong key.
    """
    first = _check_inputs(masked_inputs)
    round_id, roster, encoding = first.round_id, first.roster, first.encoding
    inputs = {item.party: item for item in masked_inputs}
    if len(inputs) < max(2, min_survivors):
        raise SecAggError(f"{len(inputs)} survivors are fewer than the "
                          f"{max(2, min_survivors)} a total may be revealed for")
    dropped = tuple(p for p in roster if p not in inputs)
    commitments = {p: dict(item.pair_commitments) for p, item in inputs.items()}
    for party in inputs:
        for peer in inputs:
            if party < peer and commitments[party][peer] != commitments[peer][party]:
                raise SecAggError(f"{party} and {peer} masked with different pair seeds; "
                                  "one of them used a wrong key")
    by_party: dict[str, Reveal] = {}
    for item in reveals:
        if item.party not in inputs:
            raise SecAggError(f"a reveal from {item.party}, who is not a survivor")
        if item.party in by_party:
            raise SecAggError(f"two reveals from {item.party}")
        by_party[item.party] = item
    missing = sorted(set(inputs) - set(by_party))
    if missing:
        raise SecAggError(f"no reveal from {', '.join(missing)}; the sum cannot be unmasked")
    encoding.check_capacity(len(inputs))
    length = len(first.values) // 8
    total = np.zeros(length, dtype=np.uint64)
    for party, item in inputs.items():
        shown = by_party[party]
        if shown.round_id != round_id:
            raise SecAggError(f"the reveal of {party} is for round {shown.round_id}, "
                              f"not {round_id}")
        if shown.dropped != dropped:
            raise SecAggError(f"the reveal of {party} names other dropped parties")
        if _self_commitment(round_id, party, shown.self_seed) != item.self_commitment:
            raise SecAggError(f"the self seed {party} revealed does not match its commitment")
        if tuple(p for p, _ in shown.pair_seeds) != dropped:
            raise SecAggError(f"the reveal of {party} lacks a seed for a dropped party")
        total = total + item.vector - expand(shown.self_seed, length)
        for peer, seed in shown.pair_seeds:
            if _pair_commitment(round_id, party, peer, seed) != commitments[party][peer]:
                raise SecAggError(f"the seed {party} revealed for {peer} does not match "
                                  "its commitment")
            pad = expand(seed, length)
            total = total - pad if party < peer else total + pad
    return encoding.decode(total, len(inputs))

"""Secure aggregation gives the hub the survivors' total and nothing that looks like an input.

Keys are derived from the parties' names so every test is deterministic; the statistical test
of uniformity therefore always sees the same bytes and cannot fail by chance from run to run.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from medspace.analytics import secagg
from medspace.analytics.secagg import FixedPoint, MaskedInput, Reveal, SecAggError

NAMES = [f"hospital-{c}" for c in "abcdefg"]
PRIVATE = {n: X25519PrivateKey.from_private_bytes(hashlib.sha256(n.encode()).digest())
           for n in NAMES}
PUBLIC = {n: k.public_key() for n, k in PRIVATE.items()}
ENCODING = FixedPoint()


def roster(size: int) -> dict[str, X25519PublicKey]:
    return {n: PUBLIC[n] for n in NAMES[:size]}


def vectors(size: int, length: int, seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: rng.uniform(-1e4, 1e4, length) for n in NAMES[:size]}


def mask_all(data: Mapping[str, np.ndarray], round_id: str = "round-1",
             encoding: FixedPoint = ENCODING) -> dict[str, MaskedInput]:
    keys = {n: PUBLIC[n] for n in data}
    return {n: secagg.mask(v, n, keys, PRIVATE[n], round_id, encoding) for n, v in data.items()}


def reveal_all(keys: Mapping[str, X25519PublicKey], survivors: Collection[str],
               round_id: str = "round-1") -> list[Reveal]:
    return [secagg.reveal(n, keys, PRIVATE[n], round_id, survivors) for n in survivors]


def run(data: Mapping[str, np.ndarray], survivors: Sequence[str]) -> np.ndarray:
    masked = mask_all(data)
    keys = {n: PUBLIC[n] for n in data}
    return secagg.unmask_sum([masked[n] for n in survivors], reveal_all(keys, survivors))


def plain_sum(data: Mapping[str, np.ndarray], survivors: Sequence[str]) -> np.ndarray:
    return np.sum([data[n] for n in survivors], axis=0)


def tolerance(parties: int, total: np.ndarray) -> float:
    # Rounding at encoding, plus float64's own rounding of the decoded total.
    return parties * ENCODING.resolution + float(np.max(np.abs(total), initial=0.0)) * 1e-15


@pytest.mark.parametrize("size", [5, 6, 7])
def test_unmasked_sum_equals_the_plain_sum(size: int) -> None:
    data = vectors(size, 50)
    total = run(data, NAMES[:size])
    expected = plain_sum(data, NAMES[:size])
    assert np.max(np.abs(total - expected)) <= tolerance(size, expected)


def test_counts_sum_exactly() -> None:
    data = {n: np.arange(20, dtype=float) * (i + 1) for i, n in enumerate(NAMES[:5])}
    assert np.array_equal(run(data, NAMES[:5]), plain_sum(data, NAMES[:5]))


def test_a_masked_input_looks_uniformly_random() -> None:
    data = vectors(5, 4096)
    masked = mask_all(data)["hospital-c"]
    plain = ENCODING.encode(data["hospital-c"])
    assert not np.any(masked.vector == plain)
    masked_bytes = np.bincount(np.frombuffer(masked.values, dtype=np.uint8), minlength=256)
    plain_bytes = np.bincount(plain.view(np.uint8), minlength=256)
    assert scipy_stats.chisquare(masked_bytes).pvalue > 1e-3
    assert scipy_stats.chisquare(plain_bytes).pvalue < 1e-100
    assert len(masked.values) == 8 * 4096


def test_masked_inputs_have_a_size_independent_of_the_values() -> None:
    small = {n: np.zeros(10) for n in NAMES[:5]}
    large = {n: np.full(10, 1e9) for n in NAMES[:5]}
    for a, b in zip(mask_all(small).values(), mask_all(large).values(), strict=True):
        assert len(a.values) == len(b.values)
        assert len(a.pair_commitments) == len(b.pair_commitments) == 4


@pytest.mark.parametrize("dropped", [["hospital-b"], ["hospital-a", "hospital-e"]])
def test_dropouts_after_masking_are_recovered(dropped: list[str]) -> None:
    data = vectors(6, 40)
    survivors = [n for n in data if n not in dropped]
    total = run(data, survivors)
    expected = plain_sum(data, survivors)
    assert np.max(np.abs(total - expected)) <= tolerance(len(survivors), expected)


def test_revealed_seeds_do_not_unmask_a_dropped_party_that_arrives_late() -> None:
    data = vectors(5, 64)
    masked = mask_all(data)
    late = "hospital-d"
    survivors = [n for n in data if n != late]
    # The hub strips every pair mask of the late party with the seeds the survivors revealed.
    stripped = masked[late].vector.copy()
    for shown in reveal_all(roster(5), survivors):
        (peer, seed), = shown.pair_seeds
        assert peer == late
        pad = secagg.expand(seed, 64)
        stripped = stripped + pad if shown.party < late else stripped - pad
    assert not np.any(stripped == ENCODING.encode(data[late]))
    counts = np.bincount(stripped.view(np.uint8), minlength=256)
    assert scipy_stats.chisquare(counts).pvalue > 1e-3


def test_masks_differ_between_rounds() -> None:
    data = vectors(5, 32)
    first = mask_all(data, "round-1")["hospital-a"]
    second = mask_all(data, "round-2")["hospital-a"]
    assert not np.any(first.vector == second.vector)
    keys = roster(5)
    seed1 = secagg.pair_seed(PRIVATE["hospital-a"], "hospital-a", "hospital-b", keys, "round-1")
    seed2 = secagg.pair_seed(PRIVATE["hospital-a"], "hospital-a", "hospital-b", keys, "round-2")
    assert seed1 != seed2


def test_pair_seeds_are_the_same_from_both_ends_and_differ_between_pairs() -> None:
    keys = roster(3)
    ab = secagg.pair_seed(PRIVATE["hospital-a"], "hospital-a", "hospital-b", keys, "r")
    ba = secagg.pair_seed(PRIVATE["hospital-b"], "hospital-b", "hospital-a", keys, "r")
    ac = secagg.pair_seed(PRIVATE["hospital-a"], "hospital-a", "hospital-c", keys, "r")
    assert ab == ba != ac


def test_a_masked_input_from_another_round_is_refused() -> None:
    data = vectors(5, 8)
    masked = list(mask_all(data).values())
    masked[2] = mask_all(data, "round-2")[masked[2].party]
    with pytest.raises(SecAggError, match="round round-2, not round-1"):
        secagg.unmask_sum(masked, reveal_all(roster(5), list(data)))


def test_a_reveal_from_another_round_is_refused() -> None:
    data = vectors(5, 8)
    masked = list(mask_all(data).values())
    reveals = reveal_all(roster(5), list(data))
    reveals[1] = reveal_all(roster(5), [reveals[1].party, "hospital-a"], "round-2")[0]
    with pytest.raises(SecAggError, match="round"):
        secagg.unmask_sum(masked, reveals)


def test_a_reveal_relabelled_to_this_round_is_refused() -> None:
    data = vectors(5, 8)
    masked = list(mask_all(data).values())
    reveals = reveal_all(roster(5), list(data))
    other = reveal_all(roster(5), list(data), "round-2")
    reveals[0] = replace(other[0], round_id="round-1")
    with pytest.raises(SecAggError, match=r"self seed .* does not match"):
        secagg.unmask_sum(masked, reveals)


def test_a_missing_reveal_is_refused() -> None:
    data = vectors(5, 8)
    masked = list(mask_all(data).values())
    reveals = reveal_all(roster(5), list(data))[1:]
    with pytest.raises(SecAggError, match="no reveal from hospital-a"):
        secagg.unmask_sum(masked, reveals)


def test_a_reveal_missing_a_dropped_seed_is_refused() -> None:
    data = vectors(5, 8)
    survivors = NAMES[:3]
    masked = [mask_all(data)[n] for n in survivors]
    reveals = reveal_all(roster(5), survivors)
    reveals[0] = replace(reveals[0], pair_seeds=reveals[0].pair_seeds[:1])
    with pytest.raises(SecAggError, match="lacks a seed"):
        secagg.unmask_sum(masked, reveals)


def test_reveals_from_non_survivors_or_twice_are_refused() -> None:
    data = vectors(5, 8)
    survivors = NAMES[:4]
    masked = [mask_all(data)[n] for n in survivors]
    reveals = reveal_all(roster(5), survivors)
    with pytest.raises(SecAggError, match="two reveals from hospital-a"):
        secagg.unmask_sum(masked, [*reveals, reveals[0]])
    outsider = replace(reveals[0], party="hospital-e")
    with pytest.raises(SecAggError, match="hospital-e, who is not a survivor"):
        secagg.unmask_sum(masked, [*reveals, outsider])


def test_a_roster_with_a_malformed_entry_is_refused() -> None:
    keys: dict[str, object] = {**roster(3), "hospital-x": b"\x00" * 32}
    with pytest.raises(SecAggError, match="not an X25519 public key"):
        secagg.mask([1.0], "hospital-a", keys, PRIVATE["hospital-a"], "r")  # type: ignore[arg-type]
    with pytest.raises(SecAggError, match="party id"):
        secagg.mask([1.0], "hospital-a", {**roster(3), "": PUBLIC["hospital-d"]},
                    PRIVATE["hospital-a"], "r")


def test_a_tampered_pair_seed_is_refused() -> None:
    data = vectors(5, 8)
    survivors = NAMES[:4]
    masked = [mask_all(data)[n] for n in survivors]
    reveals = reveal_all(roster(5), survivors)
    peer = reveals[2].pair_seeds[0][0]
    reveals[2] = replace(reveals[2], pair_seeds=((peer, bytes(32)),))
    with pytest.raises(SecAggError, match="does not match its commitment"):
        secagg.unmask_sum(masked, reveals)


def test_reveals_naming_different_dropouts_are_refused() -> None:
    data = vectors(5, 8)
    survivors = NAMES[:4]
    masked = [mask_all(data)[n] for n in survivors]
    reveals = reveal_all(roster(5), survivors)
    reveals[0] = secagg.reveal("hospital-a", roster(5), PRIVATE["hospital-a"], "round-1",
                               NAMES[:3])
    with pytest.raises(SecAggError, match="other dropped parties"):
        secagg.unmask_sum(masked, reveals)


def test_a_party_masking_with_a_wrong_peer_key_is_caught() -> None:
    data = vectors(5, 8)
    masked = mask_all(data)
    wrong = dict(roster(5))
    wrong["hospital-b"] = X25519PrivateKey.generate().public_key()
    masked["hospital-a"] = replace(
        secagg.mask(data["hospital-a"], "hospital-a", wrong, PRIVATE["hospital-a"], "round-1"),
        roster=masked["hospital-b"].roster)
    with pytest.raises(SecAggError, match="hospital-a and hospital-b masked with different"):
        secagg.unmask_sum(list(masked.values()), reveal_all(roster(5), list(data)))


def test_malformed_masked_inputs_are_refused() -> None:
    data = vectors(5, 8)
    masked = list(mask_all(data).values())
    reveals = reveal_all(roster(5), list(data))
    short = [*masked[:-1], replace(masked[-1], values=masked[-1].values[:-8])]
    with pytest.raises(SecAggError, match="wrong length"):
        secagg.unmask_sum(short, reveals)
    twice = [*masked, masked[0]]
    with pytest.raises(SecAggError, match="two masked inputs"):
        secagg.unmask_sum(twice, reveals)
    stranger = [*masked[:-1], replace(masked[-1], party="hospital-z")]
    with pytest.raises(SecAggError, match="not on the roster"):
        secagg.unmask_sum(stranger, reveals)
    scaled = [*masked[:-1], replace(masked[-1], encoding=FixedPoint(scale_bits=16))]
    with pytest.raises(SecAggError, match="different encoding"):
        secagg.unmask_sum(scaled, reveals)
    other = [*masked[:-1], replace(masked[-1], roster=masked[-1].roster[:-1])]
    with pytest.raises(SecAggError, match="different roster"):
        secagg.unmask_sum(other, reveals)
    with pytest.raises(SecAggError, match="no masked inputs"):
        secagg.unmask_sum([], reveals)


def test_mask_refuses_malformed_input() -> None:
    keys = roster(5)
    key = PRIVATE["hospital-a"]
    with pytest.raises(SecAggError, match="not in the round's roster"):
        secagg.mask([1.0], "hospital-z", keys, key, "r")
    with pytest.raises(SecAggError, match="not this private key's"):
        secagg.mask([1.0], "hospital-b", keys, key, "r")
    with pytest.raises(SecAggError, match="one-dimensional"):
        secagg.mask([[1.0]], "hospital-a", keys, key, "r")
    with pytest.raises(SecAggError, match="finite"):
        secagg.mask([float("nan")], "hospital-a", keys, key, "r")
    with pytest.raises(SecAggError, match="round id"):
        secagg.mask([1.0], "hospital-a", keys, key, "")
    with pytest.raises(SecAggError, match="at least two"):
        secagg.mask([1.0], "hospital-a", roster(1), key, "r")
    low_order = dict(keys)
    low_order["hospital-b"] = X25519PublicKey.from_public_bytes(bytes(32))
    with pytest.raises(SecAggError, match="low-order"):
        secagg.mask([1.0], "hospital-a", low_order, key, "r")


def test_reveal_refuses_what_would_expose_a_party() -> None:
    keys = roster(5)
    key = PRIVATE["hospital-a"]
    with pytest.raises(SecAggError, match="not among the survivors"):
        secagg.reveal("hospital-a", keys, key, "r", ["hospital-b", "hospital-c"])
    with pytest.raises(SecAggError, match="fewer than the 2"):
        secagg.reveal("hospital-a", keys, key, "r", ["hospital-a"])
    with pytest.raises(SecAggError, match="fewer than the 4"):
        secagg.reveal("hospital-a", keys, key, "r", NAMES[:3], min_survivors=4)
    with pytest.raises(SecAggError, match="not on the roster"):
        secagg.reveal("hospital-a", keys, key, "r", ["hospital-a", "hospital-z"])


def test_unmask_refuses_a_single_survivor() -> None:
    data = vectors(3, 4)
    masked = mask_all(data)
    with pytest.raises(SecAggError, match="fewer than the 2"):
        secagg.unmask_sum([masked["hospital-a"]], [])


def test_overflow_is_refused() -> None:
    tight = FixedPoint(scale_bits=40, bound=1.75 * 2.0**20)
    assert tight.limit * 4 <= secagg.MAX_INT64 < tight.limit * 5
    tight.check_capacity(4)
    with pytest.raises(SecAggError, match="could overflow"):
        mask_all({n: np.zeros(3) for n in NAMES[:5]}, encoding=tight)
    with pytest.raises(SecAggError, match="exceeds the bound"):
        ENCODING.encode([2.0**30 + 1])
    with pytest.raises(SecAggError, match="signed 64-bit"):
        FixedPoint(scale_bits=40, bound=2.0**23)
    with pytest.raises(SecAggError, match="scale_bits"):
        FixedPoint(scale_bits=63)


def test_sums_at_the_bound_decode_correctly() -> None:
    tight = FixedPoint(scale_bits=40, bound=1.75 * 2.0**20)
    for sign in (1.0, -1.0):
        data = {n: np.full(3, sign * 1.75 * 2.0**20) for n in NAMES[:4]}
        masked = mask_all(data, encoding=tight)
        total = secagg.unmask_sum(list(masked.values()), reveal_all(roster(4), NAMES[:4]))
        assert np.array_equal(total, np.full(3, sign * 7 * 2.0**20))


def test_registry_keys_load() -> None:
    raw = PUBLIC["hospital-a"].public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
    loaded = secagg.load_kx_key(base64.b64encode(raw).decode("ascii"))
    assert loaded.public_bytes(serialization.Encoding.Raw,
                               serialization.PublicFormat.Raw) == raw
    with pytest.raises(SecAggError, match="base64"):
        secagg.load_kx_key("not base64!")
    with pytest.raises(SecAggError, match="32 bytes"):
        secagg.load_kx_key(base64.b64encode(raw[:31]).decode("ascii"))


values = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@st.composite
def rounds(draw: st.DrawFn) -> tuple[dict[str, list[float]], list[str]]:
    size = draw(st.integers(2, 7))
    length = draw(st.integers(0, 12))
    data = {n: draw(st.lists(values, min_size=length, max_size=length)) for n in NAMES[:size]}
    survivors = draw(st.lists(st.sampled_from(NAMES[:size]), min_size=2, max_size=size,
                              unique=True))
    return data, survivors


@settings(deadline=None, max_examples=60)
@given(rounds(), st.text(min_size=1, max_size=20))
def test_any_round_unmasks_to_the_survivors_sum(
    case: tuple[dict[str, list[float]], list[str]], round_id: str
) -> None:
    data, survivors = case
    keys = {n: PUBLIC[n] for n in data}
    masked = {n: secagg.mask(v, n, keys, PRIVATE[n], round_id) for n, v in data.items()}
    total = secagg.unmask_sum([masked[n] for n in survivors],
                              reveal_all(keys, survivors, round_id))
    expected = np.sum([np.asarray(data[n], dtype=float) for n in survivors], axis=0)
    assert total.shape == expected.shape
    assert np.max(np.abs(total - expected), initial=0.0) <= tolerance(len(survivors), expected)

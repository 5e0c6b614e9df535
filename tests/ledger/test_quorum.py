from __future__ import annotations

import base64
import hashlib
import math
from itertools import chain, combinations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medspace.ledger.quorum import (
    Group,
    Policy,
    PolicyError,
    Witness,
    consortium_policy,
    parse_policy,
)


def vkey(name: str, alg: int = 0x04) -> str:
    """A C2SP vkey with a proper key id, for a key derived from ``name``."""
    key = bytes([alg]) + hashlib.sha256(name.encode()).digest()
    key_id = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
    return f"{name}+{key_id.hex()}+{base64.b64encode(key).decode()}"


def hospitals(n: int) -> list[str]:
    return [f"hospital-{i}" for i in range(n)]


def consortium(n: int) -> Policy:
    return consortium_policy(vkey("regulator"), [vkey(h) for h in hospitals(n)])


def subsets(names: list[str]) -> chain[tuple[str, ...]]:
    return chain.from_iterable(combinations(names, k) for k in range(len(names) + 1))


SIGSUM_EXAMPLE = f"""\
# Two organisations, after sigsum-go doc/policy.md
log {vkey("log.example/ledger", 0x01)}
witness X1 {vkey("X1")}
witness X2 {vkey("X2")} https://x2.example/witness   # URLs are optional
witness X3 {vkey("X3")}
group X-witnesses 2 X1 X2 X3

witness Y1 {vkey("Y1")}
witness Y2 {vkey("Y2")}
witness Y3 {vkey("Y3")}
group Y-witnesses any Y1 Y2 Y3

group X-and-Y all X-witnesses Y-witnesses
quorum X-and-Y
"""


# The default consortium policy


@pytest.mark.parametrize("n", range(3, 11))
def test_consortium_needs_the_regulator_and_two_thirds_of_hospitals(n: int) -> None:
    policy = consortium(n)
    t = math.ceil(2 * n / 3)
    names = hospitals(n)
    assert policy.groups[0].required == t
    assert policy.satisfied({"regulator", *names[:t]})
    assert policy.satisfied({"regulator", *names})
    assert not policy.satisfied({"regulator", *names[: t - 1]})
    assert not policy.satisfied(set(names))


@pytest.mark.parametrize("n", range(3, 11))
def test_any_two_consortium_quorums_share_the_regulator_and_a_third_of_hospitals(n: int) -> None:
    policy = consortium(n)
    t = math.ceil(2 * n / 3)
    quorums = [
        {"regulator", *chosen}
        for chosen in subsets(hospitals(n))
        if policy.satisfied({"regulator", *chosen})
    ]
    assert all(not policy.satisfied(set(chosen)) for chosen in subsets(hospitals(n)))
    overlaps = [len(a & b) - 1 for a in quorums for b in quorums if "regulator" in a & b]
    assert len(overlaps) == len(quorums) ** 2
    assert min(overlaps) == 2 * t - n >= math.ceil(n / 3)


@given(st.data())
def test_two_sets_satisfying_the_consortium_share_regulator_and_ceil_n_over_3_hospitals(
    data: st.DataObject,
) -> None:
    n = data.draw(st.integers(3, 10), label="n")
    policy = consortium(n)
    t = math.ceil(2 * n / 3)
    candidates = st.builds(
        lambda regulator, chosen: {"regulator", *chosen} if regulator else set(chosen),
        st.booleans(),
        st.sets(st.sampled_from(hospitals(n)), min_size=t - 1),
    )
    first, second = data.draw(candidates, label="first"), data.draw(candidates, label="second")
    for cosigned in (first, second):
        expected = "regulator" in cosigned and len(cosigned - {"regulator"}) >= t
        assert policy.satisfied(cosigned) == expected
    if policy.satisfied(first) and policy.satisfied(second):
        shared = first & second
        assert "regulator" in shared
        assert len(shared - {"regulator"}) >= max(math.ceil(n / 3), 2 * t - n)


def test_a_bare_majority_lets_two_quorums_share_a_single_hospital() -> None:
    names = hospitals(5)
    majority = Policy(
        witnesses=tuple(Witness(name, vkey(name)) for name in names),
        groups=(Group("hospitals", "3", tuple(names)),),
        quorum="hospitals",
    )
    first, second = set(names[:3]), set(names[2:])
    assert majority.satisfied(first) and majority.satisfied(second)
    assert len(first & second) == 1
    assert not consortium(5).satisfied({"regulator", *first})


def test_cosignatures_from_unknown_witnesses_do_not_count() -> None:
    policy = consortium(3)
    assert not policy.satisfied({"regulator", "hospital-0", "stranger", "hospitals"})


def test_consortium_policy_formats_and_parses_back_unchanged() -> None:
    policy = consortium_policy(
        vkey("regulator"), [vkey(h) for h in hospitals(4)], logs=[vkey("log", 0x01)]
    )
    text = policy.format()
    assert "group hospitals 2/3 hospital-0 hospital-1 hospital-2 hospital-3\n" in text
    assert "group consortium all regulator hospitals\n" in text
    assert text.endswith("quorum consortium\n")
    assert parse_policy(text) == policy
    assert parse_policy(text).format() == text


@pytest.mark.parametrize(
    ("regulator", "members", "message"),
    [
        ("regulator", [], "at least one hospital"),
        ("regulator", ["hospital-0", "hospital-0"], "lists 'hospital-0' twice"),
        ("hospital-0", ["hospital-0", "hospital-1"], "'hospital-0' is defined twice"),
        ("hospitals", ["hospital-0"], "'hospitals' clashes with a consortium group name"),
        ("regulator", ["consortium"], "'consortium' clashes"),
    ],
)
def test_consortium_policy_refuses_inconsistent_members(
    regulator: str, members: list[str], message: str
) -> None:
    with pytest.raises(PolicyError, match=message):
        consortium_policy(vkey(regulator), [vkey(m) for m in members])


# Explanations


def test_explain_says_what_the_consortium_still_needs() -> None:
    policy = consortium(5)
    three = {"hospital-0", "hospital-1", "hospital-2"}
    assert policy.explain(three) == (
        "quorum not met: needs regulator and 4 of 5 hospitals; has 3 of 5 hospitals"
    )
    assert policy.explain({"regulator", *three}) == (
        "quorum not met: needs regulator and 4 of 5 hospitals; has regulator and 3 of 5 hospitals"
    )
    assert policy.explain({"regulator", *hospitals(5)}) == (
        "quorum met: needs regulator and 4 of 5 hospitals; has regulator and 5 of 5 hospitals"
    )


def test_explain_describes_nested_and_single_witness_quorums() -> None:
    nested = parse_policy(SIGSUM_EXAMPLE)
    assert nested.explain({"X1", "Y2"}) == (
        "quorum not met: needs 2 of 3 X-witnesses and 1 of 3 Y-witnesses; "
        "has 1 of 3 X-witnesses and 1 of 3 Y-witnesses"
    )
    single = parse_policy(f"witness solo {vkey('solo')}\nquorum solo\n")
    assert single.explain(set()) == "quorum not met: needs solo; has no cosignature that counts"
    assert single.explain({"solo"}) == "quorum met: needs solo; has solo"
    threshold = parse_policy(SIGSUM_EXAMPLE.replace("quorum X-and-Y", "quorum X-witnesses"))
    assert threshold.explain({"X3"}) == (
        "quorum not met: needs 2 of 3 X-witnesses; has 1 of 3 X-witnesses"
    )


# The policy file


def test_sigsum_style_policy_requires_two_x_and_one_y_witness() -> None:
    policy = parse_policy(SIGSUM_EXAMPLE)
    assert [w.name for w in policy.witnesses] == ["X1", "X2", "X3", "Y1", "Y2", "Y3"]
    assert policy.witnesses[1].url == "https://x2.example/witness"
    assert len(policy.logs) == 1
    assert policy.satisfied({"X1", "X3", "Y2"})
    assert not policy.satisfied({"X1", "Y1", "Y2", "Y3"})
    assert not policy.satisfied({"X1", "X2", "X3"})
    assert parse_policy(policy.format()) == policy


@pytest.mark.parametrize(
    ("threshold", "n", "required"),
    [
        ("any", 5, 1),
        ("all", 5, 5),
        ("3", 5, 3),
        ("2/3", 3, 2),
        ("2/3", 5, 4),
        ("2/3", 9, 6),
        ("1/2", 4, 2),
        ("1/2", 5, 3),
        ("3/3", 4, 4),
    ],
)
def test_thresholds_resolve_to_a_member_count(threshold: str, n: int, required: int) -> None:
    assert Group("g", threshold, tuple(hospitals(n))).required == required


WITNESSES = f"witness a {vkey('a')}\nwitness b {vkey('b')}\nwitness c {vkey('c')}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (WITNESSES + "witnesses d x\nquorum a\n", "line 4: unknown directive 'witnesses'"),
        (WITNESSES + "group g 2 a b\nquorum g\nsubmitter x\n", "line 6: unknown directive"),
        (WITNESSES + "group g 2 a d\nquorum g\n", "line 4: .*member 'd' is not defined"),
        (WITNESSES + "group g 1 a\ngroup g 1 b\nquorum g\n", "line 5: name 'g' is defined twice"),
        (WITNESSES + "group a 1 b\nquorum a\n", "line 4: name 'a' is defined twice"),
        (WITNESSES + f"witness a {vkey('a')}\nquorum a\n", "line 4: name 'a' is defined twice"),
        (WITNESSES + "group g 1 h\ngroup h 1 a\nquorum g\n", "line 4: .*'h' is defined after it"),
        (WITNESSES + "group g 1 h\ngroup h 1 g\nquorum g\n", "cycle: g -> h -> g"),
        (WITNESSES + "group g 1 a g\nquorum g\n", "cycle: g -> g"),
        (WITNESSES + "group g 0 a b\nquorum g\n", "not a positive count"),
        (WITNESSES + "group g 02 a b\nquorum g\n", "not a positive count"),
        (WITNESSES + "group g -1 a b\nquorum g\n", "not a positive count"),
        (WITNESSES + "group g most a b\nquorum g\n", "not a positive count"),
        (WITNESSES + "group g 4 a b c\nquorum g\n", "threshold 4 exceeds its 3 members"),
        (WITNESSES + "group g 4/3 a b c\nquorum g\n", "more than all members"),
        (WITNESSES + "group g 2/0 a b c\nquorum g\n", "not a positive count"),
        (WITNESSES + "group g 1 a a\nquorum g\n", "lists 'a' twice"),
        (WITNESSES + "group g 1\nquorum g\n", "wrong number of fields for 'group'"),
        (WITNESSES, "exactly one quorum line, found 0"),
        (WITNESSES + "quorum a\nquorum b\n", "exactly one quorum line, found 2"),
        (WITNESSES + "quorum d\n", "quorum 'd' is not a defined witness or group"),
        (WITNESSES + "quorum none\n", "'quorum none' is refused"),
        (WITNESSES + "quorum a b\n", "wrong number of fields for 'quorum'"),
        (f"witness none {vkey('none')}\nquorum none\n", "line 1: 'none' is reserved"),
        (f"witness a {vkey('b')}\nquorum a\n", "line 1: .*differs from its key's name 'b'"),
        (
            f"witness a {vkey('a')}\nwitness b {vkey('a')}\nquorum a\n",
            "line 2: witness 'b': name differs",
        ),
        ("witness a 0123abcd\nquorum a\n", "line 1: .*not a C2SP vkey"),
        ("witness a a+0123abcd+!!!!\nquorum a\n", "not a C2SP vkey"),
        ("witness a a+0123abcd+AAA\nquorum a\n", "invalid base64"),
        (f"witness a {vkey('a')} ftp://a.example\nquorum a\n", r"not an http\(s\) URL"),
        (f"witness a {vkey('a')} https://a.example extra\nquorum a\n", "wrong number of fields"),
        (f"log {vkey('l', 1)}\nlog {vkey('l', 1)}\n" + WITNESSES + "quorum a\n", "log key"),
        ("log\n" + WITNESSES + "quorum a\n", "line 1: wrong number of fields for 'log'"),
    ],
)
def test_malformed_policies_are_refused_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(text)


def test_group_cycles_built_in_code_are_refused() -> None:
    witnesses = (Witness("a", vkey("a")),)
    groups = (Group("g", "any", ("a", "h")), Group("h", "any", ("g",)))
    with pytest.raises(PolicyError, match="cycle: g -> h -> g"):
        Policy(witnesses, groups, "g")

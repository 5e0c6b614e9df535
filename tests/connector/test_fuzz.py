"""Hostile export files never crash an ingest: each bad record ends in the quarantine with a
reason, and the good records around it still load."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medspace.connector.quarantine import read_quarantine
from medspace.synth.writer import ExportSummary
from tests.connector.conftest import open_node

Mutation = Callable[[bytes], bytes]


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _mutations() -> st.SearchStrategy[tuple[str, Mutation]]:
    """A named change to one export file."""
    blob = st.binary(min_size=1, max_size=64)
    return st.one_of(
        st.tuples(st.just("random bytes inserted"), blob).map(
            lambda t: (t[0], lambda d, b=t[1]: d[: len(d) // 2] + b + d[len(d) // 2:])),
        st.tuples(st.just("truncated"), st.floats(0.05, 0.95)).map(
            lambda t: (t[0], lambda d, f=t[1]: d[: int(len(d) * f)])),
        st.just(("non-UTF-8 byte", lambda d: d[:40] + b"\xff\xfe\xc3" + d[40:])),
        st.just(("line endings \\r\\n", lambda d: d.replace(b"\n", b"\r\n"))),
        st.just(("line endings \\r only", lambda d: d.replace(b"\n", b"\r"))),
        st.just(("huge field", lambda d: d.replace(b"|", b"|" + b"9" * 200_000 + b"|", 1)
                 if b"|" in d else d[:20] + b"\"" + b"x" * 200_000 + b"\"" + d[20:])),
        st.just(("deep nesting", lambda d: b"\n".join(
            [b"[" * 5000 + b"]" * 5000, *_lines(d)]))),
        st.just(("wrong JSON types", lambda d: d.replace(b'"id":', b'"id": [1, {"a": null}], '
                                                         b'"x":', 1))),
        st.just(("missing MSH", lambda d: d.replace(b"MSH|", b"XXX|", 1))),
        st.just(("wrong encoding characters", lambda d: d.replace(b"^~\\&", b"#", 1))),
        st.just(("empty file", lambda _d: b"")),
    )


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=_mutations(), hospital=st.integers(0, 4), pick=st.integers(0, 1000))
def test_a_mutated_export_file_never_crashes_the_ingest(
    exports: ExportSummary, mutation: tuple[str, Mutation], hospital: int, pick: int,
) -> None:
    name, mutate = mutation
    source = exports.hospitals[hospital].directory
    with tempfile.TemporaryDirectory() as scratch:
        export = Path(scratch) / "export"
        shutil.copytree(source, export)
        files = sorted(p for p in export.iterdir() if p.suffix in (".ndjson", ".hl7"))
        target = files[pick % len(files)]
        target.write_bytes(mutate(target.read_bytes()))
        node = open_node(Path(scratch) / "node")
        try:
            report = node.load(export, batch_size=20)
        finally:
            node.store.close()
        entries = read_quarantine(report.quarantine_file)
        assert all(e["reason"] and e["source"] and e["record"] is not None for e in entries), name
        assert report.quarantined >= len(entries), name


def test_undecodable_and_deeply_nested_lines_are_quarantined_with_their_reason(
    exports: ExportSummary, tmp_path: Path,
) -> None:
    export = tmp_path / "export"
    shutil.copytree(exports.hospitals[0].directory, export)
    conditions = export / "Condition.ndjson"
    lines = conditions.read_bytes().split(b"\n")
    lines[0] = lines[0][:30] + b"\xff\xfe" + lines[0][30:]
    lines[1] = b"[" * 5000 + b"]" * 5000
    conditions.write_bytes(b"\n".join(lines))
    node = open_node(tmp_path / "node")
    try:
        report = node.load(export)
    finally:
        node.store.close()
    reasons = {(e["position"], e["reason"]) for e in read_quarantine(report.quarantine_file)}
    assert {(1, "not decodable"), (2, "malformed JSON")} <= reasons
    assert report.patients == exports.hospitals[0].patients

"""The durable, append-only store behind a transparency log.

One database holds one log: its entries, the hash of every perfect subtree (so a proof reads
O(log² n) stored hashes and never re-hashes the log), the signed checkpoint of every committed
batch, and the cosignatures witnesses returned for some of them.

An append is one transaction: it locks the log head, extends the tree from its right edge,
writes the entries and the new subtree hashes, and stores a checkpoint signed for the new size.
Either all of that is committed or none of it, so the stored head is always a signed tree and a
crash never leaves half a batch. Several processes may append to the same database: the head row
lock (``BEGIN IMMEDIATE`` on SQLite) puts their batches one after the other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from medspace.ledger import merkle
from medspace.ledger.merkle import Subtree
from medspace.sqldb import read_only

MAX_ENTRY_BYTES = 64 * 1024
_LEVEL_BITS = 6

CheckpointSigner = Callable[[int, bytes], str]
"""Signs the checkpoint of a tree: (size, root) → signed note text."""

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
metadata = sa.MetaData()
head_table = sa.Table(
    "ledger_head",
    metadata,
    sa.Column("origin", sa.String(255), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("root", sa.LargeBinary(32), nullable=False),
)
entries_table = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("idx", _PK, primary_key=True, autoincrement=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)
nodes_table = sa.Table(
    "ledger_nodes",
    metadata,
    sa.Column("id", _PK, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.LargeBinary(32), nullable=False),
)
checkpoints_table = sa.Table(
    "ledger_checkpoints",
    metadata,
    sa.Column("size", _PK, primary_key=True, autoincrement=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("cosigned", sa.Text, nullable=True),
)
# Built once: an append runs these on every commit, and building them costs more than the fsync.
_LOCK_HEAD = (
    sa.select(head_table.c.size)
    .where(head_table.c.origin == sa.bindparam("log"))
    .with_for_update()
)
_MOVE_HEAD = (
    head_table.update()
    .where(head_table.c.origin == sa.bindparam("log"))
    .values(size=sa.bindparam("new_size"), root=sa.bindparam("new_root"))
)
_INSERT_CHECKPOINT = checkpoints_table.insert()
_INSERT_ROWS = {entries_table: entries_table.insert(), nodes_table: nodes_table.insert()}


def _select_nodes_sql(paramstyle: str, count: int) -> str:
    """``SELECT`` of ``count`` tree hashes, in the driver's own parameter style."""
    marker = "?" if paramstyle == "qmark" else "%s"
    return f"SELECT id, hash FROM ledger_nodes WHERE id IN ({', '.join([marker] * count)})"


class StoreError(RuntimeError):
    """The store cannot do what was asked: an unknown log, a bad range, an oversized entry."""


@dataclass(frozen=True)
class StoredCheckpoint:
    """A checkpoint the log signed, with the witnesses' cosignatures once it has them."""

    size: int
    note: str
    cosigned: str | None


def subtree_id(subtree: Subtree) -> int:
    """The key a perfect subtree is stored under: its index with its level in the low bits."""
    level, index = subtree
    return (index << _LEVEL_BITS) | level


class LogStore:
    """A log's entries, tree and checkpoints in one SQL database."""

    def __init__(self, engine: Engine, origin: str) -> None:
        self.engine = engine
        self.origin = origin
        self._reader = read_only(engine)
        metadata.create_all(engine)
        self._paramstyle = engine.dialect.paramstyle
        self._copy = engine.dialect.name == "postgresql"
        self._cache: dict[int, bytes] = {}
        self._cache_lock = threading.Lock()
        self._known_size = 0
        with engine.begin() as conn:
            row = conn.execute(sa.select(head_table.c.origin)).first()
            if row is None:
                conn.execute(
                    head_table.insert().values(origin=origin, size=0, root=merkle.EMPTY_ROOT)
                )
            elif row.origin != origin:
                raise StoreError(f"this database holds the log {row.origin!r}, not {origin!r}")

    @classmethod
    def open(cls, engine: Engine) -> LogStore:
        """The log already in ``engine``'s database, whatever its origin."""
        metadata.create_all(engine)
        with read_only(engine).connect() as conn:
            origin = conn.execute(sa.select(head_table.c.origin)).scalar()
        if origin is None:
            raise StoreError("this database holds no log")
        return cls(engine, origin)

    def head(self) -> tuple[int, bytes]:
        """The committed size and root."""
        with self._reader.connect() as conn:
            row = conn.execute(sa.select(head_table.c.size, head_table.c.root)).one()
        self._known_size = max(self._known_size, row.size)
        return row.size, bytes(row.root)

    @property
    def size(self) -> int:
        """How many entries are committed."""
        return self.head()[0]

    def append(self, entries: Sequence[bytes], sign: CheckpointSigner) -> int:
        """Append ``entries`` in one durable transaction; return the index of the first.

        The checkpoint of the new tree is signed with ``sign`` and committed with it.
        """
        if not entries:
            raise StoreError("nothing to append")
        for data in entries:
            if len(data) > MAX_ENTRY_BYTES:
                raise StoreError(f"entry of {len(data)} bytes exceeds {MAX_ENTRY_BYTES}")
        with self.engine.begin() as conn:
            start = conn.execute(_LOCK_HEAD, {"log": self.origin}).scalar_one()
            edge = merkle.perfect_subtrees(0, start)
            frontier = list(zip(edge, self._read_subtrees(conn.connection.dbapi_connection,
                                                           edge), strict=True))
            nodes: list[tuple[int, bytes]] = []
            for offset, data in enumerate(entries):
                node = ((0, start + offset), merkle.leaf_hash(data))
                nodes.append((subtree_id(node[0]), node[1]))
                while frontier and frontier[-1][0][0] == node[0][0]:
                    (level, index), left = frontier.pop()
                    node = ((level + 1, index >> 1), merkle.node_hash(left, node[1]))
                    nodes.append((subtree_id(node[0]), node[1]))
                frontier.append(node)
            size = start + len(entries)
            tree_root = merkle.fold([h for _, h in frontier])
            self._insert(conn, entries_table, enumerate(entries, start))
            self._insert(conn, nodes_table, nodes)
            conn.execute(_MOVE_HEAD, {"log": self.origin, "new_size": size, "new_root": tree_root})
            conn.execute(_INSERT_CHECKPOINT, {"size": size, "note": sign(size, tree_root)})
        self._known_size = max(self._known_size, size)
        return start

    def _insert(self, conn: sa.Connection, table: sa.Table,
                rows: Iterable[tuple[int, bytes]]) -> None:
        """Insert (key, bytes) rows; PostgreSQL takes them as one ``COPY``, several times faster
        than a multi-row ``INSERT`` through the driver."""
        if not self._copy:
            key, value = table.c
            conn.execute(_INSERT_ROWS[table], [{key.name: k, value.name: v} for k, v in rows])
            return
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            columns = ", ".join(c.name for c in table.c)
            with cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        finally:
            cursor.close()

    def _read_subtrees(self, dbapi_connection: Any, subtrees: Iterable[Subtree]) -> list[bytes]:
        """The hashes of ``subtrees``, from the cache or in one query on the driver's connection.

        Proofs go straight to the driver: SQLAlchemy's per-statement work (connection events,
        result wrapping, expanding the ``IN`` list) costs more than the query itself.
        """
        ids = [subtree_id(s) for s in subtrees]
        found = {i: h for i in ids if (h := self._cache.get(i)) is not None}
        missing = [i for i in ids if i not in found]
        if missing:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(_select_nodes_sql(self._paramstyle, len(missing)), missing)
                loaded = {i: bytes(h) for i, h in cursor.fetchall()}
            finally:
                cursor.close()
            if len(loaded) != len(set(missing)):
                raise StoreError("the store lacks tree hashes it should hold; it is damaged")
            found.update(loaded)
            with self._cache_lock:
                if len(self._cache) > 1 << 20:
                    self._cache.clear()
                self._cache.update(loaded)
        return [found[i] for i in ids]

    def _range_hashes(self, ranges: Sequence[merkle.Range]) -> list[bytes]:
        parts = [merkle.perfect_subtrees(s, e) for s, e in ranges]
        connection = self._reader.raw_connection()
        try:
            hashes = iter(self._read_subtrees(connection, [p for part in parts for p in part]))
        finally:
            connection.close()
        return [merkle.fold([next(hashes) for _ in part]) for part in parts]

    def _check_size(self, size: int) -> None:
        if 0 < size <= self._known_size:
            return
        committed = self.size
        if not 0 < size <= committed:
            raise StoreError(f"size {size} is not within the log's 1..{committed} entries")

    def root_at(self, size: int) -> bytes:
        """The root of the tree of the first ``size`` entries."""
        if size == 0:
            return merkle.EMPTY_ROOT
        self._check_size(size)
        return self._range_hashes([(0, size)])[0]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The inclusion proof of entry ``index`` in the tree of ``size`` entries."""
        self._check_size(size)
        if not 0 <= index < size:
            raise StoreError(f"index {index} is outside a tree of size {size}")
        return self._range_hashes(merkle.inclusion_ranges(index, size))

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """The consistency proof from the tree of ``size1`` entries to that of ``size2``."""
        self._check_size(size2)
        if not 0 < size1 <= size2:
            raise StoreError(f"no consistency proof from size {size1} to size {size2}")
        return self._range_hashes(merkle.consistency_ranges(size1, size2))

    def entries(self, start: int, end: int) -> list[bytes]:
        """Entries ``[start, end)``."""
        if not 0 <= start <= end:
            raise StoreError(f"bad entry range {start}..{end}")
        with self._reader.connect() as conn:
            rows = conn.execute(
                sa.select(entries_table.c.data)
                .where(entries_table.c.idx >= start, entries_table.c.idx < end)
                .order_by(entries_table.c.idx)
            ).all()
        return [bytes(row.data) for row in rows]

    def iter_entries(self, start: int = 0, batch: int = 10_000) -> Iterator[bytes]:
        """Every entry from ``start`` on, read in batches."""
        end = self.size
        for first in range(start, end, batch):
            yield from self.entries(first, min(first + batch, end))

    def checkpoint(self, size: int | None = None) -> StoredCheckpoint:
        """The checkpoint the log signed for ``size`` (default: the latest)."""
        query = sa.select(checkpoints_table)
        if size is None:
            query = query.order_by(checkpoints_table.c.size.desc()).limit(1)
        else:
            query = query.where(checkpoints_table.c.size == size)
        with self._reader.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise StoreError("the log has no checkpoint yet" if size is None else
                             f"the log signed no checkpoint of size {size}")
        return StoredCheckpoint(row.size, row.note, row.cosigned)

    def latest_cosigned(self, at_least: int = 0) -> StoredCheckpoint | None:
        """The newest checkpoint witnesses cosigned, if it covers ``at_least`` entries."""
        with self._reader.connect() as conn:
            row = conn.execute(
                sa.select(checkpoints_table)
                .where(checkpoints_table.c.cosigned.is_not(None))
                .order_by(checkpoints_table.c.size.desc())
                .limit(1)
            ).first()
        if row is None or row.size < at_least:
            return None
        return StoredCheckpoint(row.size, row.note, row.cosigned)

    def checkpoints(self, after: int = 0, limit: int | None = None) -> list[StoredCheckpoint]:
        """The checkpoints the log signed for sizes above ``after``, oldest first."""
        query = (
            sa.select(checkpoints_table)
            .where(checkpoints_table.c.size > after)
            .order_by(checkpoints_table.c.size)
            .limit(limit)
        )
        with self._reader.connect() as conn:
            rows = conn.execute(query).all()
        return [StoredCheckpoint(r.size, r.note, r.cosigned) for r in rows]

    def record_cosigned(self, size: int, note: str) -> None:
        """Keep the cosigned form of the checkpoint of ``size``."""
        with self.engine.begin() as conn:
            updated = conn.execute(
                checkpoints_table.update()
                .where(checkpoints_table.c.size == size)
                .values(cosigned=note)
            ).rowcount
        if updated != 1:
            raise StoreError(f"the log signed no checkpoint of size {size}")

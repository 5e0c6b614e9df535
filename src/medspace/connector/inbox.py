"""The HL7 v2 inbox: every message a hospital's interface engine sent, durable before its ACK.

An interface engine deletes or forgets a message once it has its ``AA``, so the node commits
each accepted message (with ``synchronous=FULL``) before it answers. A message is known by its
sender (MSH-3 and MSH-4) and control id (MSH-10): one resent after a lost ACK is acknowledged
again and stored once. The inbox holds identifying data (it is the feed itself), so it lives in
the node's folder beside the vault, never in the clinical store.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from medspace.sqldb import create_engine, read_only, sqlite_url

metadata = sa.MetaData()
inbox_table = sa.Table(
    "hl7_inbox",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("received_ms", sa.BigInteger, nullable=False),
    sa.Column("peer", sa.String(255), nullable=False),
    sa.Column("sender", sa.String(255), nullable=False),
    sa.Column("control_id", sa.String(199), nullable=False),
    sa.Column("message_type", sa.String(32), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.UniqueConstraint("sender", "control_id", name="hl7_inbox_once"),
)
loaded_table = sa.Table(
    "hl7_inbox_loaded",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("seq", sa.Integer, nullable=False),
)


@dataclass(frozen=True)
class Received:
    """A message as the inbox keeps it."""

    seq: int
    sender: str
    control_id: str
    message_type: str
    message: str


class Inbox:
    """The durable, de-duplicated store of received HL7 v2 messages, in arrival order."""

    def __init__(self, engine: Engine, path: Path | None = None) -> None:
        self.engine = engine
        self.path = path or Path(engine.url.database or "hl7-inbox")
        self._reader = read_only(engine)
        metadata.create_all(engine)

    @classmethod
    def open(cls, folder: Path) -> Inbox:
        """The inbox of the node in ``folder`` (``hl7-inbox.db``)."""
        path = folder / "hl7-inbox.db"
        return cls(create_engine(sqlite_url(path)), path)

    def accept(self, message: str, sender: str, control_id: str, message_type: str,
               peer: str) -> tuple[int, bool]:
        """Keep ``message`` durably; its sequence number and whether it was already here."""
        with self.engine.begin() as conn:
            found = conn.execute(
                sa.select(inbox_table.c.seq).where(inbox_table.c.sender == sender,
                                                   inbox_table.c.control_id == control_id)
            ).scalar()
            if found is not None:
                return int(found), True
            seq = conn.execute(inbox_table.insert().values(
                received_ms=time.time_ns() // 1_000_000, peer=peer, sender=sender,
                control_id=control_id, message_type=message_type, message=message,
            )).inserted_primary_key[0]
        return int(seq), False

    def messages(self, after: int = 0, limit: int = 10_000) -> list[Received]:
        """Messages in arrival order, from sequence number ``after`` on."""
        query = (sa.select(inbox_table).where(inbox_table.c.seq > after)
                 .order_by(inbox_table.c.seq).limit(limit))
        with self._reader.connect() as conn:
            return [Received(row.seq, row.sender, row.control_id, row.message_type, row.message)
                    for row in conn.execute(query)]

    def count(self) -> int:
        """How many messages the inbox holds."""
        with self._reader.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(inbox_table))
                       .scalar_one())

    def iterate(self, after: int, up_to: int, page: int = 10_000) -> Iterator[Received]:
        """Messages with sequence numbers in ``(after, up_to]``, a page at a time."""
        while after < up_to:
            found = [m for m in self.messages(after, page) if m.seq <= up_to]
            if not found:
                return
            yield from found
            after = found[-1].seq

    def last_seq(self) -> int:
        """The sequence number of the newest message (0 for an empty inbox)."""
        with self._reader.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(inbox_table.c.seq))).scalar() or 0)

    def loaded_up_to(self) -> int:
        """The sequence number up to which messages are in the clinical store."""
        with self._reader.connect() as conn:
            return int(conn.execute(sa.select(loaded_table.c.seq)).scalar() or 0)

    def mark_loaded(self, seq: int) -> None:
        """Record that every message up to ``seq`` is in the clinical store."""
        with self.engine.begin() as conn:
            conn.execute(loaded_table.delete())
            conn.execute(loaded_table.insert().values(id=1, seq=seq))

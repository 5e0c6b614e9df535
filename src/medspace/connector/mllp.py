"""HL7 v2 over MLLP: a hospital points its interface engine at the node, as at any HIS system.

Each frame (``0x0b`` message ``0x1c 0x0d``) gets an original-mode acknowledgement, the way
interface engines expect:

* ``AA`` — the message is in the node's inbox, durably (``medspace.connector.inbox``); a message
  sent again after a lost ACK is acknowledged again and kept once;
* ``AE`` — the message is understood but its content cannot be used (no medical record number
  in PID-3, say); it is kept whole in the quarantine with the reason, and the ACK carries the
  error so the interface team can fix it at the source;
* ``AR`` — the message cannot be processed at all: not HL7, not decodable, no control id, a
  message type the node does not take, or larger than ``MAX_MESSAGE_BYTES``.

Segments may end with ``\\r``, ``\\n`` or ``\\r\\n``; they are normalised to ``\\r`` before
parsing. Text is UTF-8, or GB 18030 (which covers GBK and GB 2312) when it is not, as exports
of Chinese HIS often are.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
from dataclasses import dataclass

import hl7

from medspace.connector.encoding import decode
from medspace.connector.hl7v2 import mrn_from_pid3
from medspace.connector.inbox import Inbox
from medspace.connector.quarantine import Quarantine, Rejected
from medspace.ledger.events import new_id

log = logging.getLogger(__name__)

START, END = b"\x0b", b"\x1c\r"
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
DEFAULT_PORT = 2575
SUPPORTED: dict[str, frozenset[str]] = {
    "ADT": frozenset({"A01", "A03", "A04", "A08", "A28", "A31", "A40"}),
    "ORU": frozenset({"R01"}),
    "RDE": frozenset({"O11"}),
    "RAS": frozenset({"O17"}),
}
"""Message types and trigger events the node takes; anything else is rejected (``AR``)."""
_ESCAPES = {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Answer:
    """How the node answered one message: its ACK code, why, and where the message went."""

    code: str
    text: str
    seq: int | None = None
    error_code: str = ""


def normalise(text: str) -> str:
    """Segments separated by ``\\r`` only, with no empty segments (python-hl7 needs this)."""
    return "\r".join(s for s in re.split(r"\r\n|\r|\n", text) if s.strip())


def _escape(value: str) -> str:
    """``value`` safe inside a field with the standard separators (HL7 escape sequences)."""
    value = _CONTROL.sub(" ", value)
    return "".join(_ESCAPES.get(c, c) for c in value)


def _field(segment: hl7.Segment, n: int) -> str:
    return str(segment[n]) if len(segment) > n else ""


class Listener:
    """Answers HL7 v2 messages: checks each, keeps it in the inbox, and says how it went."""

    def __init__(self, inbox: Inbox, quarantine: Quarantine, application: str = "MEDSPACE",
                 facility: str = "") -> None:
        self.inbox = inbox
        self.quarantine = quarantine
        self.application = application
        self.facility = facility

    def receive(self, data: bytes, peer: str) -> tuple[Answer, bytes]:
        """The answer to one message, and the ACK message to send back (unframed)."""
        header: list[str] = []
        try:
            text = normalise(decode(data))
            if not text.startswith("MSH") or len(text) < 8:
                raise Rejected("not an HL7 v2 message", "it does not start with an MSH segment")
            header = text.split("\r", 1)[0].split(text[3])
            parsed = hl7.parse(text)
        except Rejected as rejected:
            answer = Answer("AR", str(rejected), error_code="100")
        except Exception as exc:  # python-hl7 raises assorted errors on malformed input
            answer = Answer("AR", f"the message does not parse: {type(exc).__name__}: {exc}",
                            error_code="100")
        else:
            try:
                answer = self._answer(parsed, text, peer)
            except Exception as exc:  # fail closed: what cannot be checked is not accepted
                log.exception("could not check HL7 message from %s", peer)
                answer = Answer("AR", f"the node could not check the message: "
                                      f"{type(exc).__name__}", error_code="207")
        return answer, self._ack(header, answer)

    def _answer(self, parsed: hl7.Message, text: str, peer: str) -> Answer:
        msh = parsed.segment("MSH")
        control_id = _field(msh, 10)
        kind = _field(msh, 9).split("^")
        message_type = "^".join(kind[:2])
        if not control_id:
            return Answer("AR", "MSH-10 (message control id) is empty", error_code="101")
        if kind[0] not in SUPPORTED:
            return Answer("AR", f"message type {kind[0] or '(empty)'} is not taken here; "
                                f"send {', '.join(sorted(SUPPORTED))}", error_code="200")
        if len(kind) < 2 or kind[1] not in SUPPORTED[kind[0]]:
            events = ", ".join(sorted(SUPPORTED[kind[0]]))
            return Answer("AR", f"trigger event {message_type} is not taken here; "
                                f"send {kind[0]} {events}", error_code="201")
        sender = f"{_field(msh, 3)}|{_field(msh, 4)}"
        try:
            pid = parsed.segment("PID")
        except KeyError:
            return self._quarantined(sender, control_id, message_type, text,
                                     Rejected("missing required field", "PID segment"))
        if mrn_from_pid3(_field(pid, 3)) is None:
            return self._quarantined(sender, control_id, message_type, text, Rejected(
                "missing required field", "PID-3 holds no identifier of type MR"))
        try:
            seq, again = self.inbox.accept(text, sender, control_id, message_type, peer)
        except Exception:
            log.exception("could not keep HL7 message %s from %s", control_id, sender)
            return Answer("AE", "the node could not store the message; send it again",
                          error_code="207")
        return Answer("AA", "already received" if again else "", seq)

    def _quarantined(self, sender: str, control_id: str, message_type: str, text: str,
                     rejected: Rejected) -> Answer:
        self.quarantine.add(f"mllp {sender}", 0, message_type, rejected, text)
        self.quarantine.flush()
        return Answer("AE", f"{rejected.reason}: {rejected.detail}; the message is kept in the "
                            f"node's quarantine (control id {control_id})", error_code="101")

    def _ack(self, header: list[str], answer: Answer) -> bytes:
        """The ACK to the message whose MSH fields are ``header`` (empty if it had none).

        Built field by field with the standard separators, echoing only the sender, trigger,
        control, processing and version ids, each escaped: a malformed header cannot break it.
        """
        def msh(n: int) -> str:
            return _escape(header[n - 1]) if 1 < n <= len(header) else ""

        trigger = header[8].split(header[1][:1] or "^") if len(header) > 8 else []
        message_type = "ACK^" + _escape(trigger[1]) + "^ACK" if len(trigger) > 1 else "ACK"
        now = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
        segments = [
            f"MSH|^~\\&|{_escape(self.application)}|{_escape(self.facility)}|{msh(3)}|{msh(4)}|"
            f"{now}||{message_type}|{new_id(20)}|{msh(11) or 'P'}|{msh(12) or '2.5.1'}",
            f"MSA|{answer.code}|{msh(10)}" + (f"|{_escape(answer.text)}" if answer.text else ""),
        ]
        if answer.error_code:
            segments.append(f"ERR|||{answer.error_code}^{_escape(answer.text)}^HL70357|E")
        return ("\r".join(segments) + "\r").encode("utf-8")

    async def serve(self, host: str, port: int) -> asyncio.Server:
        """Listen for MLLP connections on ``host:port``."""
        return await asyncio.start_server(self._connection, host, port,
                                          limit=MAX_MESSAGE_BYTES + len(START) + len(END))

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        address = writer.get_extra_info("peername")
        peer = f"{address[0]}:{address[1]}" if address else "unknown"
        try:
            while True:
                try:
                    frame = await reader.readuntil(END)
                except asyncio.IncompleteReadError:
                    return
                except asyncio.LimitOverrunError:
                    answer = Answer("AR", f"the message is larger than {MAX_MESSAGE_BYTES} bytes",
                                    error_code="100")
                    writer.write(START + self._ack([], answer) + END)
                    await writer.drain()
                    return
                start = frame.find(START)
                data = frame[start + 1 if start >= 0 else 0:-len(END)]
                answer, ack = await asyncio.to_thread(self.receive, data, peer)
                log.info("HL7 from %s: %s %s", peer, answer.code, answer.text)
                writer.write(START + ack + END)
                await writer.drain()
        except ConnectionError:
            return
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

"""The MLLP listener over a real TCP socket: ACK, NAK, durability and duplicates."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medspace.connector.inbox import Inbox
from medspace.connector.mllp import END, MAX_MESSAGE_BYTES, START, Listener
from medspace.connector.quarantine import Quarantine, read_quarantine
from medspace.httpserve import free_port

ADT_A01 = (
    "MSH|^~\\&|HIS|SH-HOSP-A|MEDSPACE|NODE|20261123101500||ADT^A01^ADT_A01|MSG00001|P|2.5.1\r"
    "EVN|A01|20261123101500\r"
    "PID|1||0012345^^^SH-HOSP-A^MR||ZHANG^WEI||19800101|M\r"
    "PV1|1|I|WARD1^101^1\r"
)
ORU_R01 = (
    "MSH|^~\\&|LIS|SH-HOSP-A|MEDSPACE|NODE|20261123103000||ORU^R01|LAB777|P|2.5.1\n"
    "PID|1||0012345^^^SH-HOSP-A^MR||ZHANG^WEI||19800101|M\n"
    "OBR|1|||2345-7^Glucose^LN\n"
    "OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L|||||F\n"
)


@dataclass
class Running:
    """A listener serving on a loopback port from a thread of its own."""

    listener: Listener
    port: int
    folder: Path

    def send(self, *payloads: bytes) -> list[str]:
        """Send framed messages on one connection; the ACKs, unframed."""
        answers = []
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as conn:
            for payload in payloads:
                conn.sendall(START + payload + END)
                answers.append(_read_frame(conn))
        return answers


def _read_frame(conn: socket.socket) -> str:
    data = b""
    while not data.endswith(END):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    assert data.startswith(START) and data.endswith(END), data
    return data[len(START):-len(END)].decode("utf-8")


def _msa(ack: str) -> list[str]:
    segment = next(s for s in ack.split("\r") if s.startswith("MSA|"))
    return segment.split("|")


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    listener = Listener(Inbox.open(tmp_path), Quarantine(tmp_path / "quarantine.ndjson"),
                        facility="hospital-a")
    port = free_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()

    async def serve() -> None:
        server = await listener.serve("127.0.0.1", port)
        ready.set()
        async with server:
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield Running(listener, port, tmp_path)
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()
    listener.quarantine.close()


def test_good_message_gets_aa_and_is_durably_in_the_inbox(running: Running) -> None:
    [ack] = running.send(ADT_A01.encode())
    msa = _msa(ack)
    assert msa[1:3] == ["AA", "MSG00001"]
    header = ack.split("\r")[0].split("|")
    assert header[8] == "ACK^A01^ACK" and header[4:6] == ["HIS", "SH-HOSP-A"]
    reopened = Inbox.open(running.folder)
    [kept] = reopened.messages()
    assert (kept.control_id, kept.message_type) == ("MSG00001", "ADT^A01")
    assert kept.message == ADT_A01.rstrip("\r")


def test_newline_separated_segments_are_taken_as_one_message(running: Running) -> None:
    [ack] = running.send(ORU_R01.encode())
    assert _msa(ack)[1:3] == ["AA", "LAB777"]
    [kept] = running.listener.inbox.messages()
    assert "\n" not in kept.message and kept.message.count("\r") == 3


def test_a_message_sent_twice_is_acknowledged_twice_and_kept_once(running: Running) -> None:
    first, second = running.send(ADT_A01.encode(), ADT_A01.encode())
    assert _msa(first)[1] == "AA" and _msa(second)[1] == "AA"
    assert "already received" in second
    assert running.listener.inbox.count() == 1


def test_gb18030_message_is_decoded(running: Running) -> None:
    chinese = ADT_A01.replace("ZHANG^WEI", "张^伟").replace("MSG00001", "MSG-GB")
    [ack] = running.send(chinese.encode("gb18030"))
    assert _msa(ack)[1] == "AA"
    assert "张^伟" in running.listener.inbox.messages()[0].message


def test_garbage_gets_ar_and_nothing_is_kept(running: Running) -> None:
    [ack] = running.send(b"this is not HL7 at all")
    assert _msa(ack)[1] == "AR"
    assert "MSH" in ack and "ERR|||100^" in ack
    assert running.listener.inbox.count() == 0


def test_unsupported_message_type_gets_ar_naming_what_is_taken(running: Running) -> None:
    siu = ADT_A01.replace("ADT^A01^ADT_A01", "SIU^S12").replace("MSG00001", "SCH1")
    [ack] = running.send(siu.encode())
    msa = _msa(ack)
    assert msa[1:3] == ["AR", "SCH1"]
    assert "SIU is not taken here" in msa[3] and "ERR|||200^" in ack


def test_message_without_control_id_gets_ar(running: Running) -> None:
    [ack] = running.send(ADT_A01.replace("MSG00001", "").encode())
    assert _msa(ack)[1] == "AR" and "MSH-10" in ack


def test_message_without_a_record_number_gets_ae_and_is_quarantined_whole(
    running: Running,
) -> None:
    no_mrn = ADT_A01.replace("0012345^^^SH-HOSP-A^MR", "0012345^^^SH-HOSP-A^PI")
    [ack] = running.send(no_mrn.encode())
    msa = _msa(ack)
    assert msa[1:3] == ["AE", "MSG00001"] and "PID-3" in msa[3]
    assert running.listener.inbox.count() == 0
    [entry] = read_quarantine(running.folder / "quarantine.ndjson")
    assert entry["reason"] == "missing required field"
    assert entry["record"] == no_mrn.rstrip("\r")


def test_oversized_frame_gets_ar_and_the_connection_closes(running: Running) -> None:
    huge = ADT_A01.encode() + b"NTE|1||" + b"x" * (MAX_MESSAGE_BYTES + 10)
    with socket.create_connection(("127.0.0.1", running.port), timeout=30) as conn:
        conn.sendall(START + huge + END)
        ack = _read_frame(conn)
        assert _msa(ack)[1] == "AR" and "larger than" in ack
        assert conn.recv(1) == b""
    assert running.listener.inbox.count() == 0


def test_several_messages_on_one_connection_each_get_their_ack(running: Running) -> None:
    messages = [ADT_A01.replace("MSG00001", f"M{i}").encode() for i in range(20)]
    acks = running.send(*messages)
    assert [_msa(a)[2] for a in acks] == [f"M{i}" for i in range(20)]
    assert running.listener.inbox.count() == 20


def _mutations() -> st.SearchStrategy[bytes]:
    base = ADT_A01.encode()
    return st.one_of(
        st.binary(max_size=2000),
        st.integers(0, len(base)).map(lambda n: base[:n]),
        st.tuples(st.integers(0, len(base) - 1), st.binary(min_size=1, max_size=8)).map(
            lambda cut: base[:cut[0]] + cut[1] + base[cut[0] + len(cut[1]):]),
        st.text(max_size=300).map(lambda t: ("MSH" + t).encode("utf-8", "surrogatepass")),
        st.sampled_from([base.replace(b"^~\\&", b"#"), base.replace(b"|", b"!"),
                         base.replace(b"\r", b"\n"), b"MSH|", b"MSH|^~\\&|" + b"|" * 5000,
                         base.decode().encode("utf-16")]),
    )


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=_mutations())
def test_any_input_gets_an_ack_and_never_a_crash(data: bytes, tmp_path: Path) -> None:
    listener = Listener(Inbox.open(tmp_path), Quarantine(tmp_path / "q.ndjson"))
    answer, ack = listener.receive(data, "fuzz")
    assert answer.code in ("AA", "AE", "AR")
    text = ack.decode("utf-8")
    assert text.startswith("MSH|") and f"\rMSA|{answer.code}|" in text
    if answer.code != "AA":
        assert answer.text and "ERR|||" in text
    listener.quarantine.close()


# The ORU^R01 example that HL7 v2.x material uses (v2.4, PID-3 without an identifier type).
STANDARD_ORU = (
    "MSH|^~\\&|GHH LAB|ELAB-3|GHH OE|BLDG4|200202150930||ORU^R01|CNTRL-3456|P|2.4\r"
    "PID|||555-44-4444||EVERYWOMAN^EVE^E^^^^L|JONES|19620320|F|||"
    "153 FERNWOOD DR.^^STATESVILLE^OH^35292||(206)3345232|(206)752-121||||AC555444444||"
    "67-A4335^OH^20030520\r"
    "OBR|1|845439^GHH OE|1045813^GHH LAB|15545^GLUCOSE|||200202150730|||||||||"
    "555-55-5555^PRIMARY^PATRICIA P^^^^MD^^|||||||||F||||||444-44-4444^HIPPOCRATES^HOWARD H^^^^MD\r"
    "OBX|1|SN|1554-5^GLUCOSE^POST 12H CFST:MCNC:PT:SER/PLAS:QN||^182|mg/dl|70_105|H|||F\r"
)
STANDARD_ADT = (
    "MSH|^~\\&|ADT1|GOOD HEALTH HOSPITAL|GHH LAB, INC.|GOOD HEALTH HOSPITAL|198808181126|"
    "SECURITY|ADT^A01^ADT_A01|MSG00001|P|2.8||\r"
    "EVN|A01|200708181123||\r"
    "PID|1||PATID1234^^^GOOD HEALTH HOSPITAL^MR^GOOD HEALTH HOSPITAL~123456789^^^USSSA^SS||"
    "EVERYMAN^ADAM^A^III||19610615|M||2106-3|2222 HOME STREET^^GREENSBORO^NC^27401-1020\r"
    "NK1|1|NUCLEAR^NELDA^W|SPO^SPOUSE||||NK^NEXT OF KIN\r"
    "PV1|1|I|2000^2012^01||||004777^ATTEND^AARON^A|||SUR||||ADM|A0|\r"
)


@pytest.mark.parametrize("message", [STANDARD_ORU, STANDARD_ADT])
def test_the_standards_example_messages_are_accepted(running: Running, message: str) -> None:
    [ack] = running.send(message.encode())
    assert _msa(ack)[1] == "AA", ack
    assert running.listener.inbox.count() == 1

"""The node's own API, for the hospital's people: studies, consent, the journal, accounts.

The node serves it next to its agent, in the same process, so it works on the store the
running node holds: a patient's consent changes while the node runs, and counts from the next
task on. It listens on the hospital network only, over HTTPS with the node's own certificate
(``tls/participant.crt``, issued by the data space's CA, whose ``tls/ca.crt`` clients trust);
every call carries a person's bearer token (:mod:`medspace.node.people`).

Every route checks its permission before it reads anything else of the request. A caller
without a valid token gets 401, a person whose role does not reach what they asked gets 403
with the reason, and both refusals go into the node's journal as ``access.denied`` under the
person's id (``unknown`` without a token) and never with personal data. A patient reaches their
own consent only: whatever MRN or ID number they send, a request about anyone else is refused
the same way, whether or not that patient exists, so the API is no oracle for other records.
No route answers without a token, not even a description of the API.

Routes (JSON):

=====================================  ==============  =============================================
``GET /v1/studies``                    admin, auditor  the studies offered here and their decisions
``POST /v1/studies/{id}/approve``      admin           ``{"reason": …}`` (optional)
``POST /v1/studies/{id}/deny``         admin           ``{"reason": …}``, told to the researcher
``POST /v1/studies/{id}/revoke``       admin           ``{"reason": …}``, told to the researcher
``GET /v1/consent?mrn=|id_number=``    admin, desk,    one patient's consent history (a patient:
                                       patient         their own, and may leave both out)
``POST /v1/consent``                   admin, desk,    ``{"action": "grant"|"revoke", "purpose",
                                       patient         "mrn"|"id_number", "from", "until"}``
``GET /v1/journal?start=&end=``        admin, auditor  the journal's events, as recorded
``GET|POST /v1/people``,               admin           accounts; a new token is shown once
``DELETE /v1/people/{id}``
=====================================  ==============  =============================================
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool

from medspace.httpserve import BackgroundServer
from medspace.ledger.events import Action, EventError, Role, new_event
from medspace.node.agent import Node
from medspace.node.consent import PatientNotFound, change_consent, find_patient
from medspace.node.people import (
    OWN_RECORDS_ONLY,
    PERMISSIONS,
    People,
    PeopleError,
    Permission,
    Person,
    TokenHeld,
    Unauthenticated,
    allowed,
)
from medspace.node.people import Role as PersonRole
from medspace.node.review import ReviewError, decide_study, revoke_study
from medspace.node.setup import node_secrets, open_vault
from medspace.node.state import StudyRecord
from medspace.pki.ca import read_identity
from medspace.pki.enrollment import participant_tls
from medspace.store.consent import ConsentError, history
from medspace.store.schema import CONSENT_PURPOSES
from medspace.store.tokens import TokenError, linkage_token
from medspace.store.vault import IdentityVault
from medspace.wire.messages import ID

__all__ = ["API_PORT", "MAX_JOURNAL_ENTRIES", "api_tls", "create_app", "node_api", "serve_api"]

API_PORT = 8443
MAX_JOURNAL_ENTRIES = 1000
"""The most journal entries one call returns; page with ``start``."""
MAX_BODY_BYTES = 64 * 1024
MAX_REASON_CHARS = 300
"""Room for a decision's reason inside the journal's 500 characters, after who decided."""

_WHAT = {
    Permission.LIST_STUDIES: "list the studies offered to this hospital",
    Permission.DECIDE_STUDIES: "approve, deny or revoke studies",
    Permission.READ_CONSENT: "read patients' consent",
    Permission.WRITE_CONSENT: "record patients' consent",
    Permission.READ_JOURNAL: "read the node's journal",
    Permission.MANAGE_PEOPLE: "manage the people who use this node",
}
_OWN_ONLY = "a patient may see and change only their own consent"

_Model = TypeVar("_Model", bound=BaseModel)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)


class Approval(_Body):
    """An approval, with why if the administrator says."""

    reason: str | None = Field(None, min_length=1, max_length=MAX_REASON_CHARS)


class Reasoned(_Body):
    """A refusal or revocation: the researcher is told the reason."""

    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)


class _Patient(_Body):
    mrn: str | None = Field(None, min_length=1, max_length=64)
    id_number: str | None = Field(None, min_length=1, max_length=32)


class ConsentChange(_Patient):
    """A patient's decision for one purpose over a period (from today, until changed, unless
    the body says otherwise)."""

    action: Literal["grant", "revoke"]
    purpose: str
    start: dt.date | None = Field(None, alias="from")
    until: dt.date | None = None

    @field_validator("purpose")
    @classmethod
    def _known_purpose(cls, purpose: str) -> str:
        if purpose not in CONSENT_PURPOSES:
            raise ValueError(f"unknown purpose {purpose!r}; purposes are "
                             f"{', '.join(CONSENT_PURPOSES)}")
        return purpose


class NewPerson(_Patient):
    """An account to make: a patient's names the patient by MRN or ID number."""

    id: str = Field(min_length=1, max_length=128)
    role: PersonRole


def _explain(errors: Sequence[Any]) -> str:
    """Pydantic's errors as one plain sentence naming each field and what is wrong with it."""
    parts = []
    for error in errors[:5]:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        parts.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


async def _body(request: Request, model: type[_Model]) -> _Model:
    """The request's JSON body as ``model``, read only after the caller was let in; 413 for
    a body too large, 422 naming what is wrong with one that does not fit."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise HTTPException(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        return model.model_validate_json(bytes(raw) or b"{}")
    except ValidationError as exc:
        raise HTTPException(422, f"the request body is malformed: {_explain(exc.errors())}"
                            ) from None


def _time(ms: int | None) -> str | None:
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(
        timespec="seconds")


def _study(record: StudyRecord) -> dict[str, Any]:
    return {"id": record.id, "researcher": record.researcher,
            "title": record.request.get("title"),
            "purpose": record.request.get("purpose", "research"),
            "kind": record.request.get("kind"), "query": record.request.get("query"),
            "status": record.status, "decided_by": record.decided_by, "reason": record.reason,
            "offered": _time(record.offered_ms), "decided": _time(record.decided_ms),
            "revoked_by": record.revoked_by, "revoked": _time(record.revoked_ms)}


def _account(person: Person) -> dict[str, Any]:
    return {"id": person.id, "role": person.role.value, "person_id": person.person_id,
            "created": _time(person.created_ms), "revoked": _time(person.revoked_ms)}


def _screened_reason(reason: str | None) -> None:
    """Refuse (422) a reason the journal could not hold, before anything is recorded."""
    if reason is None:
        return
    try:
        new_event(actor="node", org="node", role=Role.HOSPITAL, action=Action.STUDY_APPROVED,
                  subject="study", decision="info", reason=reason)
    except EventError as exc:
        raise HTTPException(422, f"the reason cannot go on the audit log: {exc}") from None


def create_app(node: Node, people: People, vault: IdentityVault, *, node_key: bytes,
               linkage_key: bytes) -> FastAPI:
    """The API of ``node`` for its ``people``; ``vault`` and the keys find patients by MRN or
    ID number, as the hospital's desk knows them."""
    app = FastAPI(title=f"medspace node {node.id}", version="1", openapi_url=None,
                  docs_url=None, redoc_url=None)
    token = Depends(HTTPBearer(auto_error=False,
                               description="A token from `medspace node people add`."))
    store_lock = threading.Lock()
    """One consent change or look-up at a time: they share the store's one connection."""

    async def journal_denial(person: Person | None, permission: Permission,
                             subject: str | None, reason: str) -> None:
        """Record a refusal in the node's journal; a subject the log could not hold (it came
        from the request) gives way to the permission's name, and the refusal stands."""
        actor = "unknown" if person is None else person.id
        role = Role.HOSPITAL if person is None else person.ledger_role
        generic = f"api:{permission.value}"
        for about, why in ((subject or generic, reason), (generic, None)):
            try:
                event = new_event(actor=actor, org=node.id, role=role,
                                  action=Action.ACCESS_DENIED, subject=about, decision="deny",
                                  reason=why)
            except EventError:
                continue
            await node.journal.record_async(event)
            return

    async def refuse(person: Person, permission: Permission, reason: str,
                     subject: str | None = None) -> HTTPException:
        await journal_denial(person, permission, subject, reason)
        return HTTPException(403, reason)

    def guard(permission: Permission) -> Callable[..., Awaitable[Person]]:
        """The dependency that lets in only a person whose role holds ``permission``."""

        async def caller(request: Request,
                         credentials: HTTPAuthorizationCredentials | None = token) -> Person:
            try:
                if credentials is None:
                    raise Unauthenticated("no bearer token")
                person = await run_in_threadpool(people.authenticate, credentials.credentials)
            except Unauthenticated as exc:
                await journal_denial(None, permission, None,
                                     f"{request.method} {permission.value}: {exc}")
                raise HTTPException(401, f"{exc}: send `Authorization: Bearer <token>` with a "
                                         "token from `medspace node people add`",
                                    headers={"WWW-Authenticate": "Bearer"}) from None
            if not allowed(person, permission, person.person_id):
                holders = ", ".join(sorted(r.value for r in PERMISSIONS[permission]))
                study = request.path_params.get("study_id")
                raise await refuse(person, permission,
                                   f"{person.id} is a {person.role.value} and may not "
                                   f"{_WHAT[permission]}; only {holders} may",
                                   f"study:{study}" if study else None)
            return person

        return caller

    def find(mrn: str | None, id_number: str | None) -> str:
        if id_number is not None:
            try:
                linkage_token(id_number, linkage_key)
            except TokenError as exc:
                raise HTTPException(422, f"the ID number is not valid: {exc}") from None
        try:
            with store_lock:
                return find_patient(node.store, vault, node_key=node_key,
                                    linkage_key=linkage_key, mrn=mrn, id_number=id_number)
        except TokenError as exc:
            raise HTTPException(422, f"the MRN is not valid: {exc}") from None

    async def patient_of(person: Person, permission: Permission, mrn: str | None,
                         id_number: str | None) -> str:
        """The ``person_id`` a request is about; a patient's is their own or nobody's."""
        if mrn is not None and id_number is not None:
            raise HTTPException(422, "give the patient's MRN or their ID number, not both")
        if person.role in OWN_RECORDS_ONLY:
            target = person.person_id
            if mrn is not None or id_number is not None:
                try:
                    target = await run_in_threadpool(find, mrn, id_number)
                except PatientNotFound:
                    target = None
            if target is None or not allowed(person, permission, target):
                raise await refuse(person, permission, _OWN_ONLY, target)
            return target
        if mrn is None and id_number is None:
            raise HTTPException(422, "give the patient's MRN or their ID number")
        try:
            target = await run_in_threadpool(find, mrn, id_number)
        except PatientNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        if not allowed(person, permission, target):
            raise await refuse(person, permission, f"{person.id} may not {_WHAT[permission]}",
                               target)
        return target

    @app.exception_handler(RequestValidationError)
    async def _malformed(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": f"the request is malformed: {_explain(exc.errors())}"},
                            status_code=422)

    lister = Depends(guard(Permission.LIST_STUDIES))

    @app.get("/v1/studies")
    def studies(_: Person = lister,
                undecided: bool = Query(False, description="Only those awaiting a decision.")
                ) -> list[dict[str, Any]]:
        """The studies offered to this hospital, oldest first, with their decisions."""
        return [_study(r) for r in node.state.studies(undecided=undecided)]

    async def recorded(study_id: str, reason: str | None,
                       record: Callable[[dt.datetime], object]) -> dict[str, Any]:
        """Record a decision on an offered study (404 if none was offered, 409 if the decision
        does not fit the study's state) and return the study as it now stands."""
        _screened_reason(reason)
        if await run_in_threadpool(node.state.study, study_id) is None:
            raise HTTPException(404, f"no study {study_id} has been offered to this hospital")
        try:
            await run_in_threadpool(record, dt.datetime.now(dt.UTC))
        except ReviewError as exc:
            raise HTTPException(409, str(exc)) from None
        found = await run_in_threadpool(node.state.study, study_id)
        if found is None:
            raise HTTPException(404, f"no study {study_id} has been offered to this hospital")
        return _study(found)

    def deciding(person: Person, study_id: str, decision: str,
                 reason: str | None) -> Callable[[dt.datetime], object]:
        return lambda now: decide_study(node.state, node.journal, node.governance,
                                        study=study_id, decision=decision,
                                        decided_by=person.id, reason=reason, now=now)

    decider = Depends(guard(Permission.DECIDE_STUDIES))

    @app.post("/v1/studies/{study_id}/approve")
    async def approve(study_id: str, request: Request, person: Person = decider
                      ) -> dict[str, Any]:
        """Approve an offered study: its tasks then run here under the usage policy. The
        agent sends the decision to the hub with its next poll."""
        body = await _body(request, Approval)
        return await recorded(study_id, body.reason,
                              deciding(person, study_id, "permit", body.reason))

    @app.post("/v1/studies/{study_id}/deny")
    async def deny(study_id: str, request: Request, person: Person = decider
                   ) -> dict[str, Any]:
        """Deny an offered study: no task of it runs here; the researcher is told why."""
        body = await _body(request, Reasoned)
        return await recorded(study_id, body.reason,
                              deciding(person, study_id, "deny", body.reason))

    @app.post("/v1/studies/{study_id}/revoke")
    async def revoke(study_id: str, request: Request, person: Person = decider
                     ) -> dict[str, Any]:
        """Withdraw an approved study: from now on no task of it runs here."""
        body = await _body(request, Reasoned)
        return await recorded(study_id, body.reason, lambda now: revoke_study(
            node.state, node.journal, node.governance, study=study_id, revoked_by=person.id,
            reason=body.reason, now=now))

    reader = Depends(guard(Permission.READ_CONSENT))
    writer = Depends(guard(Permission.WRITE_CONSENT))

    async def decisions(target: str) -> dict[str, Any]:
        def read() -> list[Any]:
            with store_lock:
                return history(node.store, target)

        return {"person_id": target,
                "decisions": [{"purpose": d.purpose, "decision": d.decision,
                               "from": d.start_date.isoformat(),
                               "until": None if d.end_date is None else d.end_date.isoformat(),
                               "recorded": _time(d.recorded_ms)}
                              for d in await run_in_threadpool(read)],
                "defaults": dict(node.governance.consent_defaults)}

    @app.get("/v1/consent")
    async def own_consent(person: Person = reader) -> dict[str, Any]:
        """A patient's own consent decisions, oldest first, and the node's default for each
        purpose (which applies where the patient has said nothing). Staff ask about a patient
        with ``POST /v1/consent/query``: identifiers never go in a URL, where proxies log them."""
        return await decisions(await patient_of(person, Permission.READ_CONSENT, None, None))

    @app.post("/v1/consent/query")
    async def consent(request: Request, person: Person = reader) -> dict[str, Any]:
        """One patient's consent decisions, found by the MRN or ID number in the body."""
        body = await _body(request, _Patient)
        return await decisions(await patient_of(person, Permission.READ_CONSENT, body.mrn,
                                                body.id_number))

    @app.post("/v1/consent")
    async def change(request: Request, person: Person = writer) -> dict[str, Any]:
        """Record a patient's grant or revocation for one purpose: in force for every
        computation from its first day, journalled, and passed on to the data space's log."""
        body = await _body(request, ConsentChange)
        target = await patient_of(person, Permission.WRITE_CONSENT, body.mrn, body.id_number)
        now = dt.datetime.now(dt.UTC)
        start = body.start or now.date()
        decision = "permit" if body.action == "grant" else "deny"

        def write() -> int:
            with store_lock:
                return change_consent(
                    node.store, vault, node.journal, node_id=node.id, actor=person.id,
                    linkage_key=linkage_key, person_id=target, purpose=body.purpose,
                    decision=decision, start=start, end=body.until, now=now).journal_index

        try:
            index = await run_in_threadpool(write)
        except ConsentError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"person_id": target, "purpose": body.purpose, "decision": decision,
                "from": start.isoformat(),
                "until": None if body.until is None else body.until.isoformat(),
                "journal_index": index}

    auditor = Depends(guard(Permission.READ_JOURNAL))

    @app.get("/v1/journal")
    async def journal(
        _: Person = auditor,
        start: int = Query(0, ge=0, description="Index of the first entry."),
        end: int | None = Query(None, ge=0, description=f"One past the last entry (default: "
                                f"{MAX_JOURNAL_ENTRIES} on, or the end)."),
    ) -> dict[str, Any]:
        """The node's journal of releases, refusals, decisions, consent changes and denied
        calls: each entry the canonical event the journal holds, as a JSON object."""
        store = node.journal.store
        size = await run_in_threadpool(lambda: store.size)
        stop = min(size, start + MAX_JOURNAL_ENTRIES) if end is None else end
        if not start <= stop <= size or stop - start > MAX_JOURNAL_ENTRIES:
            raise HTTPException(422, f"the journal holds entries 0 to {size}; ask for start <= "
                                     f"end <= {size}, at most {MAX_JOURNAL_ENTRIES} at a time")
        entries = await run_in_threadpool(store.entries, start, stop)
        return {"size": size, "start": start, "end": stop,
                "entries": [json.loads(entry) for entry in entries]}

    manager = Depends(guard(Permission.MANAGE_PEOPLE))

    @app.get("/v1/people")
    def accounts(_: Person = manager,
                 revoked: bool = Query(False, description="Also revoked accounts.")
                 ) -> list[dict[str, Any]]:
        """The people who may call this API, by id (never their tokens)."""
        return [_account(p) for p in people.people(revoked=revoked)]

    @app.post("/v1/people")
    async def add(request: Request, _: Person = manager) -> dict[str, Any]:
        """Make an account and return its token, shown this once; a patient's account is
        tied to the patient the MRN or ID number finds."""
        body = await _body(request, NewPerson)
        patient = None
        if body.role is PersonRole.PATIENT:
            if (body.mrn is None) == (body.id_number is None):
                raise HTTPException(422, "a patient's account needs their MRN or their ID "
                                         "number, one of the two")
            try:
                patient = await run_in_threadpool(find, body.mrn, body.id_number)
            except PatientNotFound as exc:
                raise HTTPException(404, str(exc)) from None
        elif body.mrn is not None or body.id_number is not None:
            raise HTTPException(422, "only a patient's account names a patient")
        try:
            token = await run_in_threadpool(lambda: people.add_person(body.id, body.role,
                                                                      patient=patient))
        except TokenHeld as exc:
            raise HTTPException(409, str(exc)) from None
        except PeopleError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"id": body.id, "role": body.role.value, "person_id": patient, "token": token}

    @app.delete("/v1/people/{person}")
    def remove(person: str, _: Person = manager) -> dict[str, str]:
        """Revoke a person's token at once."""
        if re.fullmatch(ID, person) is None or not people.revoke_person(person):
            raise HTTPException(404, f"no one with id {person!r} holds a live token")
        return {"id": person, "status": "revoked"}

    return app


def node_api(root: Path, node: Node) -> FastAPI:
    """The API of the node in folder ``root``, over the opened ``node``."""
    node_key, linkage_key = node_secrets(root)
    return create_app(node, People.open(root), open_vault(root), node_key=node_key,
                      linkage_key=linkage_key)


def api_tls(root: Path) -> dict[str, Any]:
    """``uvicorn.Config`` settings that serve HTTPS with the node's certificate. Staff and
    patients' apps hold no data space certificate, so none is asked of them; their token
    says who they are. Raises :class:`medspace.pki.ca.PkiError` if the node has none."""
    files = participant_tls(root)
    read_identity(files.key, files.certificate)
    return {"ssl_keyfile": str(files.key), "ssl_certfile": str(files.certificate)}


def serve_api(app: FastAPI, root: Path, host: str, port: int) -> BackgroundServer:
    """Serve ``app`` on its own thread; return once it accepts connections. Raises OSError
    (saying why) if nothing may listen on ``host``:``port``, RuntimeError if the server did
    not start for another reason."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.create_server((host, port), family=family):
        pass
    return BackgroundServer(app, host=host, port=port, tls=api_tls(root)).start()

"""The agent desktop: state buttons, the screen pop over WebSocket, the case form, knowledge
base suggestions, e-mail tasks with replies, and fax/letters registered by hand.

`DeskHub` watches the distributor (`on_change`, `agents`, `connected`) and pushes to each
agent's open desktops: their state, and — the moment a call is connected to them or a task is
given to them — the pop with everything known about the contact.
"""
from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp_jinja2
from aiohttp import WSMsgType, web

from cases import access, categories, knowledge, messages, records, tasks
from cases.email import build_reply, send_reply
from cases.retention import PSEUDONYM_PREFIX
from kc import queries
from schedules import schedule_store
from kc.audit import audit
from kc.clock import iso
from kc.domain import AgentState
from kc.errors import InvalidInput, NotFound
from kc.i18n import N_, gettext as _

from .auth import agent_district, require_page_role
from .errors import json_object
from .wallboard import hub as wallboard_hub
from .words import desk_words
from .keys import CLOCK, DISTRIBUTOR, HUB, MAIL, SETTINGS, STORE, STREAMS, TASKS, TELEMETRY, USER

log = logging.getLogger(__name__)


# Pause reasons as stored (the value) and as shown (translated on the page).
PAUSE_REASONS = {"Rast": N_("Break"), "Lunch": N_("Lunch"), "Möte": N_("Meeting"),
                 "Utbildning": N_("Training"), "Administration": N_("Administration"),
                 "Annat": N_("Other")}
routes = web.RouteTableDef()


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


class DeskHub:
    def __init__(self, app: web.Application):
        self.app = app
        self.sockets: dict[str, dict[web.WebSocketResponse, dict[str, Any]]] = {}
        self._dirty = asyncio.Event()
        self._task: asyncio.Task | None = None

    # -- lifecycle
    def start(self) -> None:
        self.app[DISTRIBUTOR].on_change.append(self.changed)
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        dist = self.app[DISTRIBUTOR]
        if self.changed in dist.on_change:
            dist.on_change.remove(self.changed)
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for socks in list(self.sockets.values()):
            for ws in list(socks):
                await ws.close()

    def online(self, agent_id: str) -> bool:
        return bool(self.sockets.get(agent_id))

    def changed(self) -> None:
        self._dirty.set()

    async def _loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("desktop sync failed")

    # -- pushing
    def _current(self, agent_id: str) -> tuple[dict[str, Any], int | None, float | None]:
        dist = self.app[DISTRIBUTOR]
        rt = dist.agents[agent_id]
        state = {"type": "state", "state": rt.state.value, "reason": rt.reason,
                 "pending": rt.pending.value if rt.pending else None}
        contact_id, wait = None, None
        for conn in dist.connected.values():
            if conn.agent == agent_id:
                contact_id, wait = conn.contact_id, conn.wait
        if contact_id is None and rt.state is AgentState.ON_CALL and rt.contact_id:
            contact_id = rt.contact_id          # a task (e-mail / web)
        return state, contact_id, wait

    async def sync(self) -> None:
        for agent_id, socks in list(self.sockets.items()):
            if not socks or agent_id not in self.app[DISTRIBUTOR].agents:
                continue
            state, contact_id, wait = self._current(agent_id)
            pop = None
            for ws, sent in list(socks.items()):
                if sent.get("state") != state:
                    sent["state"] = state
                    await self._send(ws, state)
                if contact_id is not None and sent.get("contact") != contact_id:
                    if pop is None:
                        user = next(iter(socks.values()))["user"]
                        pop = await build_pop(self.app, user, contact_id, wait)
                    sent["contact"] = contact_id
                    await self._send(ws, pop)

    async def _send(self, ws: web.WebSocketResponse, message: dict[str, Any]) -> None:
        if ws.closed:
            return
        try:
            await ws.send_str(_dumps(message))
        except (ConnectionError, RuntimeError):
            pass

    async def notify(self, agent_id: str, message: dict[str, Any]) -> None:
        for ws in list(self.sockets.get(agent_id, {})):
            await self._send(ws, message)


async def build_pop(app: web.Application, user: dict[str, Any], contact_id: int,
                    wait: float | None) -> dict[str, Any]:
    """Everything the agent needs the moment the contact reaches them."""
    store, clock = app[STORE], app[CLOCK]
    history_days = app[SETTINGS].history_days
    app[TELEMETRY].step("web", "desk_popped", contact_id, agent=user.get("agent"))
    contact = await store.run(records.contact_row, contact_id)
    skills = await store.run(records.skill_names)
    cleared = await store.run(access.agent_clearance, user.get("agent"))
    since = iso(clock() - timedelta(days=history_days))
    history = await store.run(records.caller_history, contact["caller"], contact_id, since)
    for h in history:
        if h["confidential"] and not access.may_read(user, h["district"], cleared):
            h["category"], h["case_outcome"], h["skill"] = None, None, None
            h["redacted"] = True
    category = await store.run(categories.category_for_skill, contact["skill"])
    kb = await store.run(knowledge.kb_for_category, category["id"] if category else None, 5)
    thread = []
    if contact["channel"] != "phone":
        thread = [{k: m[k] for k in ("direction", "at", "from_addr", "to_addr", "subject", "body",
                                     "attachments")}
                  for m in await store.run(messages.contact_messages, contact_id)]
    if wait is None:
        wait = contact["wait_seconds"]
    district_names = {d.id: d.name for d in await store.run(queries.list_districts)}
    return {
        "type": "pop", "contact_id": contact_id, "channel": contact["channel"],
        "caller": contact["caller"], "caller_name": contact["caller_name"],
        "district": contact["district"], "district_name": district_names.get(contact["district"] or "", contact["district"]),
        "language": contact["language"], "menu_path": contact["menu_path"],
        "skill": contact["skill"], "matter": skills.get(contact["skill"] or "", contact["skill"]),
        "wait_seconds": round(wait, 1) if wait is not None else None,
        "confidential": contact["confidential"], "started_at": contact["started_at"],
        "history": history, "history_days": history_days,
        "prefill": {"contact_id": contact_id, "category_id": category["id"] if category else None},
        "kb": kb, "messages": thread,
    }


# ---------------------------------------------------------------------------- pages

def _agent_user(request: web.Request) -> dict[str, Any]:
    user = require_page_role(request, "agent")
    if not user.get("agent") or user["agent"] not in request.app[DISTRIBUTOR].agents:
        raise web.HTTPForbidden(text=_("This user is not linked to an agent."))
    return user


@routes.get("/desk")
@aiohttp_jinja2.template("desk.html")
async def desk_page(request: web.Request) -> dict:
    user = _agent_user(request)
    store, clock = request.app[STORE], request.app[CLOCK]
    rt = request.app[DISTRIBUTOR].agents[user["agent"]]
    since = iso(clock() - timedelta(days=1))
    return {
        "agent": rt, "categories": await store.run(categories.category_tree),
        "departments": await store.run(categories.list_departments, True),
        "districts": await store.run(queries.list_districts), "pause_reasons": PAUSE_REASONS,
        "desk_words": desk_words({code: _(label) for code, label in PAUSE_REASONS.items()}),
        "outcomes": records.OUTCOMES, "todo": await store.run(records.open_contacts_without_case,
                                                             user["agent"], since),
    }


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True                      # not a browser cross-site request
    return urlsplit(origin).netloc == request.host


@routes.get("/desk/ws")
async def desk_ws(request: web.Request) -> web.StreamResponse:
    user = request.get(USER)
    if user is None or user["role"] != "agent" or not user.get("agent"):
        raise web.HTTPForbidden(text="agents only")
    if not _same_origin(request):       # no cross-site WebSocket hijacking
        raise web.HTTPForbidden(text="cross-origin WebSocket refused")
    hub: DeskHub = request.app[HUB]
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=4096)
    await ws.prepare(request)
    agent_id = user["agent"]
    hub.sockets.setdefault(agent_id, {})[ws] = {"user": user}

    async def close() -> None:           # the session ended (log-out, password changed)
        hub.sockets.get(agent_id, {}).pop(ws, None)   # no state, no pops, no tasks from now
        await ws.close(code=4001, message=b"session ended")
    unregister = request.app[STREAMS].add(request, close)
    hub.changed()
    request.app[TASKS].kick()            # an agent with a desktop may now take tasks
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and msg.data == "ping":
                await ws.send_str('{"type": "pong"}')
    finally:
        unregister()
        hub.sockets.get(agent_id, {}).pop(ws, None)
    return ws


async def _payload(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        return await json_object(request, undecodable="body must be JSON")
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _int(value: Any, name: str, required: bool = False) -> int | None:
    if value in (None, ""):
        if required:
            raise InvalidInput(_("%(field)s: required") % {"field": name})
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInput(_("%(field)s: must be a number") % {"field": name}) from None


def _text(value: Any, limit: int) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


@routes.post("/desk/state")
async def desk_state(request: web.Request) -> web.Response:
    user = _agent_user(request)
    body = await _payload(request)
    state = _text(body.get("state"), 20)
    reason = _text(body.get("reason"), 64) or None
    if state == "paused" and not reason:
        raise InvalidInput(_("pause: give a reason"))
    rt = await request.app[DISTRIBUTOR].request_state(user["agent"], state, reason)
    return web.json_response({"state": rt.state.value, "reason": rt.reason,
                              "pending": rt.pending.value if rt.pending else None})


async def _save_case(request: web.Request, user: dict[str, Any], body: dict[str, Any],
                     contact_id: int) -> dict[str, Any]:
    store, clock = request.app[STORE], request.app[CLOCK]
    case_id = await store.run(
        records.save_case, contact_id=contact_id,
        category_id=_int(body.get("category_id"), "category", True),
        subcategory_id=_int(body.get("subcategory_id"), "subcategory"),
        note=body.get("note") if isinstance(body.get("note"), str) else "",
        outcome=_text(body.get("outcome"), 40),
        forwarded_to=_int(body.get("forwarded_to"), "department"),
        forward_reason=_text(body.get("forward_reason"), 400),
        eservice=_text(body.get("eservice"), 200), agent=user.get("agent"),
        created_by=user["username"], at=iso(clock()))
    await audit(store, clock, user["username"], "case.create", str(case_id), None,
                {"contact": contact_id, "outcome": body.get("outcome")})
    request.app[TELEMETRY].step("web", "case_saved", contact_id, case=case_id,
                                outcome=_text(body.get("outcome"), 40), by=user["username"])
    wallboard_hub(request.app).notify()      # one uncategorised contact fewer
    return {"case_id": case_id}


@routes.post("/desk/cases")
async def desk_save_case(request: web.Request) -> web.Response:
    """Save the case of a contact this agent handled; ends wrap-up; for a task, sends the
    reply (if any) and finishes the task."""
    user = _agent_user(request)
    body = await _payload(request)
    contact_id = _int(body.get("contact_id"), "contact", True)
    store = request.app[STORE]
    try:
        contact = await store.run(records.contact_row, contact_id)
    except NotFound:
        raise InvalidInput(_("there is no such contact")) from None
    after_hours = False       # an after-hours request this agent took (desk_after_hours)
    if contact["agent"] != user["agent"]:
        after_hours = await store.run(schedule_store.handled_by, contact_id, user["username"])
        if not after_hours:
            raise web.HTTPForbidden(text='{"error": "this contact was not handled by you"}',
                                    content_type="application/json")
    task = await store.run(tasks.task_for, contact_id)
    reply = body.get("reply") if isinstance(body.get("reply"), str) else ""
    if task and task["state"] == "assigned" and reply.strip():
        await _send_reply(request, user, contact, reply.strip())
    result = await _save_case(request, user, body, contact_id)
    dist = request.app[DISTRIBUTOR]
    if task and task["state"] == "assigned" and task["assigned_to"] == user["agent"]:
        await request.app[TASKS].complete(user["agent"], contact_id)
    elif not after_hours:     # a call-back's case does not end another call's wrap-up
        await dist.release(user["agent"])   # wrap-up ends now
    return web.json_response(result)


async def _send_reply(request: web.Request, user: dict[str, Any], contact: dict[str, Any],
                      text: str) -> None:
    if len(text) > 20000:
        raise InvalidInput(_("reply: at most 20000 characters"))
    to_addr = contact["caller"] or ""
    if "@" not in to_addr or to_addr.startswith(PSEUDONYM_PREFIX):
        raise InvalidInput(_("this contact has no e-mail address to reply to"))
    store, clock = request.app[STORE], request.app[CLOCK]
    mailboxes, _keywords = await request.app[MAIL].current()
    received = await store.run(messages.contact_messages, contact["id"])
    first = received[0] if received else {}
    from_addr = mailboxes.reply_from(first.get("to_addr"), contact["district"])
    msg = build_reply(mailboxes.domain, from_addr, to_addr, first.get("subject") or "Ditt ärende",
                      text, first.get("message_id"))
    await send_reply(*request.app[SETTINGS].smtp_relay_address, msg)
    await store.run(messages.add_reply, contact["id"], iso(clock()), from_addr, to_addr,
                    str(msg["Subject"]), text, str(msg["Message-ID"]))


@routes.post("/desk/tasks/{contact_id}/reply")
async def desk_reply(request: web.Request) -> web.Response:
    """Reply to an e-mail/web contact without closing it yet."""
    user = _agent_user(request)
    contact_id = _int(request.match_info["contact_id"], "contact", True)
    body = await _payload(request)
    contact = await request.app[STORE].run(records.contact_row, contact_id)
    if contact["agent"] != user["agent"]:
        raise web.HTTPForbidden(text=_("This contact is not yours."))
    text = body.get("reply") if isinstance(body.get("reply"), str) else ""
    if not text.strip():
        raise InvalidInput(_("reply: write something"))
    await _send_reply(request, user, contact, text.strip())
    return web.json_response({"sent": True})


@routes.post("/desk/tasks/{contact_id}/back")
async def desk_hand_back(request: web.Request) -> web.Response:
    """Put an e-mail task back in the queue (e.g. needs another skill)."""
    user = _agent_user(request)
    contact_id = _int(request.match_info["contact_id"], "contact", True)
    task = await request.app[STORE].run(tasks.task_for, contact_id)
    if not task or task["state"] != "assigned" or task["assigned_to"] != user["agent"]:
        raise InvalidInput(_("this is not a task of yours"))
    await request.app[TASKS].hand_back(user["agent"], contact_id)
    return web.json_response({"queued": True})


@routes.post("/desk/manual")
async def desk_manual(request: web.Request) -> web.Response:
    """A fax or letter registered by hand: contact and case in one go."""
    user = _agent_user(request)
    body = await _payload(request)
    channel = _text(body.get("channel"), 10)
    if channel not in messages.MANUAL_CHANNELS:
        raise InvalidInput(_("channel: fax or letter"))
    store, clock = request.app[STORE], request.app[CLOCK]
    district = _text(body.get("district"), 40)
    if district not in {d.id for d in await store.run(queries.list_districts)}:
        raise InvalidInput(_("district: choose one"))
    category_id = _int(body.get("category_id"), "category", True)
    known = {c["id"]: c for c in await store.run(categories.list_categories)}
    if category_id not in known:
        raise InvalidInput(_("category: choose one"))
    sender = _text(body.get("sender"), 200) or None
    now = iso(clock())
    rt = request.app[DISTRIBUTOR].agents[user["agent"]]
    contact_id = await store.run(
        messages.create_written_contact, channel=channel, district=district, caller=sender,
        caller_name=None, skill=known[category_id]["skill"], at=now,
        subject=_text(body.get("subject"), 200) or None, body=None)
    await store.run(messages.mark_handled, contact_id, user["agent"], rt.agent.district, now)
    try:
        result = await _save_case(request, user, body, contact_id)
    except InvalidInput:
        await store.run(messages.drop_contact, contact_id)
        raise
    return web.json_response({"contact_id": contact_id, **result})


@routes.get(r"/desk/attachments/{attachment_id:\d+}")
async def desk_attachment(request: web.Request) -> web.Response:
    """A file sent with an e-mail, as a download (never shown inline). Agents of the contact's
    district or handling it, supervisors of the district and admins; a confidential matter's
    only for those cleared for it. Every download is audited."""
    user = require_page_role(request, "agent", "admin", "supervisor")
    store = request.app[STORE]
    row = await store.run(messages.attachment, int(request.match_info["attachment_id"]))
    if row["confidential"]:
        cleared = await store.run(access.agent_clearance, user.get("agent"))
        allowed = access.may_read(user, row["district"], cleared)
    elif user["role"] == "agent":     # an agent user with no agent linked has no contacts
        mine, district = user.get("agent"), agent_district(request, user)
        allowed = bool(mine) and (row["agent"] == mine or
                                  (district is not None and district == row["district"]))
    else:
        allowed = user["role"] == "admin" or access.supervises(user, row["district"])
    if not allowed:
        raise web.HTTPForbidden(text=_("This contact's files are not yours to open."))
    await audit(store, request.app[CLOCK], user["username"], "attachment.download", str(row["id"]),
                None, {"contact": row["contact_id"], "confidential": bool(row["confidential"])})
    return web.Response(body=row["data"], headers={
        "Content-Type": "application/octet-stream", "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(row['filename'], safe='')}"})


@routes.get("/desk/kb")
async def desk_kb(request: web.Request) -> web.Response:
    require_page_role(request, "agent", "admin", "supervisor")
    q = request.query.get("q", "")[:200]
    category = _int(request.query.get("category") or None, "category")
    rows = await request.app[STORE].run(knowledge.kb_search, q, category) if q.strip() else \
        await request.app[STORE].run(knowledge.kb_for_category, category)
    return web.json_response({"articles": [{k: r[k] for k in ("id", "question", "answer", "category")}
                                           for r in rows]}, dumps=_dumps)

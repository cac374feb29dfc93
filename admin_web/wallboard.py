"""Live wallboard per district and queue, pushed to the browser with Server-Sent Events.

The ACD calls `Distributor.on_change` after every change of an agent or a caller; the hub
debounces those (≤ 0.25 s), builds one snapshot (live state from the ACD, today's answered /
abandoned / service level / uncategorised from the recorded contacts via `reporting.reports`,
per agent via `reporting.uncategorised`) and wakes every open
stream. Streams also send the snapshot every 15 s as a keep-alive.

- `GET /wallboard` the page (large type for a wall screen; `?district=` narrows it);
- `GET /wallboard/events` the SSE stream (`data: <snapshot JSON>`); `?only=alerts` sends only
  the queues the user watches for callers waiting too long (`wait_alerts`, every page's header);
- `GET /api/wallboard` the snapshot as JSON.
Everyone logged in may watch (no caller details are shown).
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from kc import queries
from kc.i18n import current, gettext

from reporting import reports, uncategorised
from cases import tasks as task_store
from kc.clock import iso, parse_iso
from kc.domain import AgentState
from kc.store import StoreError

from . import wait_alerts
from .auth import require_page_role, require_role
from .keys import AMI, CLOCK, DISTRIBUTOR, STORE, STREAMS

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
VIEWERS = ("admin", "supervisor", "manager", "agent")
DEBOUNCE = 0.25
KEEPALIVE = 15.0
STATES = [s.value for s in AgentState]


class Hub:
    def __init__(self, app: web.Application):
        self.app = app
        self.version = 0
        self.snapshot: dict[str, Any] | None = None
        self.built_at = 0.0           # time.monotonic() of the snapshot
        self.changed = asyncio.Event()
        self._pending: asyncio.TimerHandle | None = None
        self._building: asyncio.Task | None = None
        self._subscribed = False

    def subscribe(self) -> None:
        if not self._subscribed:
            self.app[DISTRIBUTOR].on_change.append(self.notify)
            self._subscribed = True

    def notify(self) -> None:
        """From the ACD (synchronous, on the loop): rebuild soon."""
        if self._pending is None:
            self._pending = asyncio.get_running_loop().call_later(DEBOUNCE, self._rebuild_soon)

    def _rebuild_soon(self) -> None:
        self._pending = None
        if self._building is None or self._building.done():
            self._building = asyncio.create_task(self.rebuild())
        else:                      # one is running: build again after it
            self._building.add_done_callback(lambda _t: self.notify())

    async def rebuild(self) -> dict[str, Any]:
        try:
            snap = await build_snapshot(self.app)
        except Exception:
            log.exception("wallboard snapshot failed")
            raise
        self.snapshot, self.built_at = snap, time.monotonic()
        self.version += 1
        self.changed.set()
        self.changed = asyncio.Event()
        return snap

    async def current(self, max_age: float | None = None) -> dict[str, Any]:
        """The snapshot; rebuilt first when there is none, or it is older than `max_age`
        seconds (a poller asks for now, not for the last change the ACD told of: the
        organisation, the reports and the e-mail queue change without it)."""
        self.subscribe()
        if self.snapshot is None or (max_age is not None
                                     and time.monotonic() - self.built_at > max_age):
            return await self.rebuild()
        return self.snapshot


_HUBS: "weakref.WeakKeyDictionary[web.Application, Hub]" = weakref.WeakKeyDictionary()


def hub(app: web.Application) -> Hub:
    h = _HUBS.get(app)
    if h is None:
        h = _HUBS[app] = Hub(app)
    return h


async def build_snapshot(app: web.Application) -> dict[str, Any]:
    dist = app[DISTRIBUTOR]
    store = app[STORE]
    now = app[CLOCK]()
    period = reports.today(now)
    try:
        by_queue, by_district, districts = await store.run(_today_figures, period)
    except StoreError:   # the database refuses writes: figures from the contacts, cache untouched
        by_queue, by_district, districts = await store.read(_today_figures, period, False)
    per_agent = await store.read(uncategorised.by_agent, period)
    skills = sorted(dist.skills.values(), key=lambda s: s.id)
    waiting: dict[tuple[str, str], list[float]] = {}
    for w in dist.waiting.values():
        waiting.setdefault((w.call.district, w.call.skill), []).append(w.call.enqueued_at)
    # written contacts (e-mail, the web form) waiting in the same queues
    written: dict[tuple[str, str], list[float]] = {}
    for t in await store.read(task_store.queued_tasks):
        written.setdefault((t["district"], t["skill"]), []).append(
            parse_iso(t["created_at"]).timestamp())

    def agent_counts(pred) -> dict[str, int]:
        counts = {s: 0 for s in STATES}
        for rt in dist.agents.values():
            if pred(rt):
                counts[rt.state.value] += 1
        return counts

    def today(rows: dict[str, dict[str, Any]], key: str) -> dict[str, Any]:
        f = rows.get(key) or {}
        return {"offered": f.get("offered", 0), "answered": f.get("answered", 0),
                "abandoned": f.get("abandoned", 0) + f.get("abandoned_short", 0),
                "service_level": f.get("service_level"), "uncategorised": f.get("uncategorised", 0)}

    out_districts, out_queues = [], []
    for d in districts:
        since = [t for (dd, _), ts in waiting.items() if dd == d.id for t in ts]
        out_districts.append({
            "id": d.id, "name": d.name, "waiting": len(since),
            "longest_wait_since": min(since) if since else None,
            "agents": agent_counts(lambda rt, d=d: rt.agent.district == d.id),
            **today(by_district, d.id),
        })
        for s in skills:
            name = f"{s.id}@{d.id}"
            ts = waiting.get((d.id, s.id), [])
            mail = written.get((d.id, s.id), [])
            out_queues.append({
                "name": name, "district": d.id, "district_name": d.name, "skill": s.id,
                "skill_name": s.name,
                "waiting": len(ts), "longest_wait_since": min(ts) if ts else None,
                "written_waiting": len(mail),
                "written_longest_wait_since": min(mail) if mail else None,
                "alert_seconds": dist.policy.queue(s.id, d.id).alert_seconds or None,
                "agents": agent_counts(lambda rt, d=d, s=s: rt.agent.district == d.id and s.id in rt.agent.skills),
                **today(by_queue, name),
            })
    return {"at": iso(now), "now": now.timestamp(), "day": period.as_json()["from_local"][:10],
            "districts": out_districts, "queues": out_queues, "states": STATES,
            "agents_uncategorised": [dict(r, name=_agent_name(dist, r["agent"])) for r in per_agent
                                     if r["uncategorised"]],
            "records_delayed": store.delayed, "nodes_down": _nodes_down(app)}


def _nodes_down(app: web.Application) -> list[str]:
    """The cluster's nodes whose AMI link is down (their agents cannot be rung)."""
    nodes = getattr(app.get(AMI), "nodes", None) or {}
    return sorted(name for name, link in nodes.items() if not link.up)


def _agent_name(dist: Any, agent_id: str) -> str:
    rt = dist.agents.get(agent_id)
    return rt.agent.name if rt is not None else agent_id


def _today_figures(db, period: reports.Period, use_cache: bool = True):
    by_queue = {r["queue"]: r for r in reports.figures(db, period, by="queue", use_cache=use_cache)
                if r["queue"]}
    by_district = {r["district"]: r for r in reports.figures(db, period, by="district",
                                                             use_cache=use_cache) if r["district"]}
    return by_queue, by_district, queries.list_districts(db)


@routes.get("/api/wallboard")
async def wallboard_json(request: web.Request) -> web.Response:
    require_role(request, *VIEWERS)
    snap = await hub(request.app).current(max_age=1.0)
    return web.json_response(snap, dumps=lambda o: json.dumps(o, ensure_ascii=False))


@routes.get("/wallboard/events")
async def wallboard_events(request: web.Request) -> web.StreamResponse:
    user = require_page_role(request, *VIEWERS)
    h = hub(request.app)
    snap = await h.current()
    shape = _alerts_shape(request, user) if request.query.get("only") == "alerts" else dict
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                       "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    ended = asyncio.Event()               # the session ended: the stream ends with it
    unregister = request.app[STREAMS].add(request, ended.set)
    sent = -1
    try:
        while not ended.is_set():
            if h.version != sent:
                sent = h.version
                snap = h.snapshot or snap
            payload = json.dumps({**shape(snap), "sent": time.time()}, ensure_ascii=False)
            await resp.write(f"event: snapshot\ndata: {payload}\n\n".encode())
            waits = [asyncio.ensure_future(h.changed.wait()), asyncio.ensure_future(ended.wait())]
            await asyncio.wait(waits, timeout=KEEPALIVE, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
    except ConnectionResetError:      # the screen went away
        pass
    finally:
        unregister()
    return resp


def _alerts_shape(request: web.Request, user: dict[str, Any]):
    """The header's view of a snapshot: the queues this user watches (an agent's as of now)."""
    def shape(snap: dict[str, Any]) -> dict[str, Any]:
        rt = request.app[DISTRIBUTOR].agents.get(user.get("agent") or "")
        works = (rt.agent.district, frozenset(rt.agent.skills)) if rt is not None else None
        return wait_alerts.payload(snap, user, works)
    return shape


@routes.get("/wallboard")
@aiohttp_jinja2.template("wallboard.html")
async def wallboard_page(request: web.Request) -> dict[str, Any]:
    require_page_role(request, *VIEWERS)
    return {"district": request.query.get("district", "")[:64], "wallboard_words": {
        "waiting": gettext("waiting"), "longest": gettext("longest wait"), "ready": gettext("ready"),
        "busy": gettext("busy"), "paused": gettext("paused"), "answered": gettext("answered today"),
        "abandoned": gettext("abandoned today"), "service_level": gettext("service level today"),
        "delayed": gettext("records delayed (%(n)s)"), "live": gettext("live"),
        "reconnecting": gettext("reconnecting…"), "under": gettext("under target"),
        "uncategorised": gettext("uncategorised today"),
        "nodes_down": gettext("node down: %(nodes)s"),
        **wait_alerts.words(),
        "goal": reports.SERVICE_LEVEL_GOAL * 100, "lang": current()}}

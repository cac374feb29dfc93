"""The live distributor under random event sequences, with a scripted PBX and a real store.

The routing core's own properties are tested in test_routing_core.py; this checks what the
distributor adds on top: its router index never disagrees with the agents and callers it holds
(whoever changed them), no agent is ever offered two calls, and after every event no free
agent is left idle while a caller they may take waits unoffered.
"""
from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from acd.ami_events import parse_event
from acd.distributor import Distributor, Queued
from acd.queue_log import EXITS, QueueLog, check_line
from acd.telephony import PbxSnapshot
from kc import queries
from demo_template import load_demo
from kc.domain import AgentState
from kc.errors import InvalidInput, TelephonyDown
from kc.store import Store


class ScriptedPbx:
    """Ringing an agent gives a future the test resolves (answered or not)."""

    def __init__(self) -> None:
        self.rings: dict[str, asyncio.Future] = {}      # leg id -> answered?
        self.down = False
        self.hung_up: list[str] = []

    def _ring(self, leg_id: str) -> asyncio.Future:
        if self.down:
            raise TelephonyDown("scripted: AMI down")
        fut = asyncio.get_running_loop().create_future()
        self.rings[leg_id] = fut
        return fut

    def ring_agent(self, *, agent, caller_channel, contact_id, leg_id, caller_id, timeout):
        return self._ring(leg_id)

    def call_back(self, *, agent, contact_id, leg_id, number, caller_id, timeout, ring_resident):
        return self._ring(leg_id)

    async def hangup(self, channel: str) -> None:
        self.hung_up.append(channel)

    async def redirect(self, channel: str, context: str, exten: str) -> None:
        pass

    async def snapshot(self, endpoints) -> PbxSnapshot:
        return PbxSnapshot(frozenset(endpoints), (), frozenset())


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


async def caller_waits(store: Store, dist: Distributor, clock, skill: str, caller: str,
                       priority: int | None = None, district: str = "bromma") -> int:
    """A caller the menu sends to wait in `skill`@`district`: the contact, the menu's hand-over
    and the dialplan's KcWaiting event. Returns the contact id."""
    cid = await store.run(queries.create_contact, channel="phone", district=district,
                          caller=caller, skill=skill, language="sv",
                          started_at=clock.now.isoformat())
    dist.expect(cid, Queued(skill, district, "sv", caller, priority))
    dist.on_event(parse_event({"Event": "UserEvent", "UserEvent": "KcWaiting",
                               "ContactID": str(cid), "Uniqueid": f"u{cid}",
                               "Channel": f"PJSIP/residents-{cid}"}))
    return cid


def check(dist: Distributor, idle_check: bool = True) -> None:
    router = dist.router
    now = dist.now()
    # the router's index is what the runtime says
    for agent_id, rt in dist.agents.items():
        assert router.agent(agent_id) == rt.snapshot(), agent_id
    unoffered = {cid for cid, w in dist.waiting.items() if w.offered_to is None}
    assert {c.contact_id for c in router.waiting()} == unoffered
    # nobody is offered two calls; whoever is rung is ringing for that call
    offered = [w.offered_to for w in dist.waiting.values() if w.offered_to]
    assert len(offered) == len(set(offered))
    for w in dist.waiting.values():
        if w.offered_to:
            rt = dist.agents[w.offered_to]
            assert rt.state is AgentState.RINGING and rt.contact_id == w.call.contact_id
    # each caller's announced place: the one computed from scratch (the room keeps its
    # ranking between changes)
    for cid, w in dist.waiting.items():
        me = w.call
        ahead = sum(1 for o in dist.waiting.values()
                    if (o.call.skill, o.call.district) == (me.skill, me.district)
                    and (-o.call.priority, o.call.enqueued_at, o.call.contact_id)
                    < (-me.priority, me.enqueued_at, me.contact_id))
        assert dist.room.position(cid) == ahead + 1, cid
    talking = [c.agent for c in dist.connected.values()]
    assert len(talking) == len(set(talking)) and not set(talking) & set(offered)
    # no free agent idles while a caller they may take waits unoffered (while the PBX is
    # unreachable, offers wait for the reconnect)
    for rt in dist.agents.values() if idle_check else ():
        snap = rt.snapshot()
        if snap.free:
            for cid in unoffered:
                assert not snap.eligible_for(dist.waiting[cid].call, dist.policy, now), \
                    (rt.agent.id, cid)


@pytest.mark.parametrize("seed", range(6))
def test_random_events_keep_router_and_offers_consistent(tmp_path: Path, seed: int):
    asyncio.run(_run(tmp_path, seed))


async def _run(tmp_path: Path, seed: int) -> None:
    rnd = random.Random(seed)
    clock = Clock()
    store = Store(tmp_path / "kc.db")
    await store.run(load_demo, clock)
    pbx = ScriptedPbx()
    dist = Distributor(store, pbx, clock, QueueLog(tmp_path / "queue_log"), ring_timeout=15,
                       wrap_up_seconds=0)
    try:
        await dist.load()
        agents = list(dist.agents)
        skills = ["elderly-care", "school", "social-services", "switchboard"]
        districts = ["bromma", "hasselby-vallingby"]
        next_uid = 0
        for step in range(250):
            kind = rnd.choice(["arrive", "arrive", "state", "register", "answer", "answer",
                               "hangup", "hangup", "tick", "down"])
            if kind == "arrive":
                next_uid += 1
                skill, district = rnd.choice(skills), rnd.choice(districts)
                cid = await store.run(queries.create_contact, channel="phone", district=district,
                                      caller=f"0701{next_uid:06d}", skill=skill, language="sv",
                                      started_at=clock.now.isoformat())
                if rnd.random() < 0.7:      # the menu handed over; else the event reads the store
                    dist.expect(cid, Queued(skill, district, "sv", f"0701{next_uid:06d}", None))
                dist.on_event(parse_event({"Event": "UserEvent", "UserEvent": "KcWaiting",
                                           "ContactID": str(cid), "Uniqueid": f"u{cid}",
                                           "Channel": f"PJSIP/residents-{cid}"}))
            elif kind == "state":
                try:
                    await dist.request_state(rnd.choice(agents),
                                             rnd.choice(["ready", "ready", "paused", "logged_out"]))
                except InvalidInput:        # pausing while logged out: refused, nothing changes
                    pass
            elif kind == "register":
                dist.set_registered(rnd.choice(agents), rnd.random() < 0.8)
            elif kind == "answer" and pbx.rings:
                leg = rnd.choice(sorted(pbx.rings))
                fut = pbx.rings.pop(leg)
                if not fut.done():
                    fut.set_result(rnd.random() < 0.8)
            elif kind == "hangup":
                live = [w.uniqueid for w in dist.waiting.values()] + \
                       [c.uniqueid for c in dist.connected.values()]
                if live:
                    uid = rnd.choice(live)
                    dist.on_event(parse_event({"Event": "Hangup", "Uniqueid": uid,
                                               "Channel": f"PJSIP/{uid}"}))
            elif kind == "tick":
                clock.now += timedelta(seconds=rnd.choice([1, 5, 31]))
                dist.dispatch()
            elif kind == "down":
                pbx.down = not pbx.down
                if not pbx.down:
                    dist.dispatch()         # as the resync after a reconnect ends
            for _ in range(6):              # let every task the event started run to its end
                for _ in range(20):
                    await asyncio.sleep(0)
                await store.run(lambda db: None)
            check(dist, idle_check=not pbx.down)
        # every caller still here hangs up: then each queue call has entered once, left once
        for fut in pbx.rings.values():
            if not fut.done():
                fut.set_result(False)
        for uid in [w.uniqueid for w in dist.waiting.values() if w.channel] + \
                [c.uniqueid for c in dist.connected.values()]:
            dist.on_event(parse_event({"Event": "Hangup", "Uniqueid": uid, "Channel": f"PJSIP/{uid}"}))
        for _ in range(6):
            for _ in range(20):
                await asyncio.sleep(0)
            await store.run(lambda db: None)
        check_queue_log((tmp_path / "queue_log").read_text().splitlines(),
                        {w.log_callid for w in dist.waiting.values()})
    finally:
        await dist.close()
        store.close()


def check_queue_log(lines: list[str], still_waiting: set[str]) -> None:
    """Every line in app_queue's format; every call id enters once and leaves exactly once
    (but the call-backs still owed), and nothing happens to it before it enters."""
    entered: dict[str, int] = {}
    exits: dict[str, int] = {}
    for line in lines:
        assert check_line(line) == [], line
        _, callid, queue, agent, event, *data = line.split("|")
        if event == "ENTERQUEUE":
            assert callid not in entered, f"{callid} entered twice"
            entered[callid] = int(data[2])
        elif event in EXITS:
            assert callid in entered, f"{event} before ENTERQUEUE: {line}"
            exits[callid] = exits.get(callid, 0) + 1
            orig = data[-2] if event in ("ABANDON", "EXITWITHKEY", "EXITWITHTIMEOUT") else data[-1]
            assert orig == str(entered[callid]), f"original position differs from ENTERQUEUE's: {line}"
        elif event in ("CONNECT", "RINGNOANSWER", "RINGCANCELED"):
            assert callid in entered and callid not in exits, line
    assert {c for c, n in exits.items() if n != 1} == set(), "a call left twice"
    assert set(entered) - set(exits) == still_waiting


@pytest.mark.parametrize("needs_category", [False, True])
def test_wrap_up_is_recorded_per_contact_and_may_wait_for_the_category(tmp_path: Path, needs_category):
    asyncio.run(_wrap_up(tmp_path, needs_category))


async def _wrap_up(tmp_path: Path, needs_category: bool) -> None:
    from acd.options import AcdOptions
    clock = Clock()
    store = Store(tmp_path / "kc.db")
    await store.run(load_demo, clock)
    await store.run(lambda db: db.execute("update queues set wrap_up_seconds = 0.2"))
    pbx = ScriptedPbx()
    dist = Distributor(store, pbx, clock, QueueLog(tmp_path / "queue_log"), ring_timeout=15,
                       options=AcdOptions(wrap_up_needs_category=needs_category))
    dist.room.agents.CATEGORY_CHECK_SECONDS = 0.05
    try:
        await dist.load()
        dist.set_registered("bromma-101", True)
        await dist.request_state("bromma-101", "ready")
        cid = await store.run(queries.create_contact, channel="phone", district="bromma",
                              caller="0701000001", skill="elderly-care", language="sv",
                              started_at=clock.now.isoformat())
        dist.expect(cid, Queued("elderly-care", "bromma", "sv", "0701000001", None))
        dist.on_event(parse_event({"Event": "UserEvent", "UserEvent": "KcWaiting", "ContactID": str(cid),
                                   "Uniqueid": "u1", "Channel": "PJSIP/residents-1"}))
        for _ in range(50):
            await asyncio.sleep(0.01)
            if pbx.rings:
                break
        next(iter(pbx.rings.values())).set_result(True)
        await asyncio.sleep(0.05)
        clock.now += timedelta(seconds=40)
        dist.on_event(parse_event({"Event": "Hangup", "Uniqueid": "u1", "Channel": "PJSIP/residents-1"}))
        await asyncio.sleep(0.6)              # the wrap-up time (0.2 s) has passed
        rt = dist.agents["bromma-101"]
        contact = await store.run(queries.get_contact, cid)
        if not needs_category:
            assert rt.state is AgentState.READY and contact["wrap_up_seconds"] is not None
            return
        assert rt.state is AgentState.WRAP_UP and contact["wrap_up_seconds"] is None
        await store.run(lambda db: db["cases"].insert({"contact_id": cid, "outcome": "resolved_first_contact",
                                                        "created_at": clock.now.isoformat()}))
        await asyncio.sleep(0.3)
        contact = await store.run(queries.get_contact, cid)
        assert rt.state is AgentState.READY and contact["wrap_up_seconds"] is not None
    finally:
        await dist.close()
        store.close()


def test_an_announcement_never_waits_for_the_writer(tmp_path: Path):
    """Place and estimate come from memory and a reader: a writer busy with other jobs (a
    thousand callers' records, a purge window) does not delay what the caller hears."""
    asyncio.run(_announce_with_busy_writer(tmp_path))


async def _announce_with_busy_writer(tmp_path: Path) -> None:
    import threading
    clock = Clock()
    store = Store(tmp_path / "kc.db")
    await store.run(load_demo, clock)
    dist = Distributor(store, ScriptedPbx(), clock, QueueLog(tmp_path / "queue_log"),
                       ring_timeout=15, wrap_up_seconds=0)
    release = threading.Event()
    try:
        await dist.load()
        cids = []
        for n in range(2):
            cids.append(await caller_waits(store, dist, clock, "school", f"070100000{n}"))
        for _ in range(20):
            await asyncio.sleep(0)
        await store.run(lambda db: None)
        busy = asyncio.ensure_future(store.run(lambda db: release.wait(30)))   # the writer is held
        await asyncio.sleep(0.05)
        info = await asyncio.wait_for(dist.waiting_info(cids[1]), 5)
        assert info is not None and info[0] == 2 and info[2] == "sv"
        release.set()
        await busy
        await store.run(lambda db: None)
        events = await store.run(lambda db: [r[0] for r in db.execute(
            "select kind from contact_events where contact_id = ?", [cids[1]])])
        assert "announced" in events                      # written once the writer was free
    finally:
        release.set()
        await dist.close()
        store.close()


def test_a_failing_listener_does_not_keep_the_floors_news_from_the_others():
    """A listener that raises (a desk's socket gone wrong) is logged; the ones after it (the
    wallboard's) are still told."""
    from types import SimpleNamespace

    from acd.floor import Floor

    told = []

    def boom():
        raise RuntimeError("a desk's listener failed")
    Floor.changed(SimpleNamespace(on_change=[boom, lambda: told.append("wallboard")]))
    assert told == ["wallboard"]

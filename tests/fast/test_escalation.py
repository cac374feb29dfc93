"""Escalation beyond overflow: a caller's priority rises with the wait by the queue's rule
(pure, clock passed in), and the distributor decides on the risen priority."""
from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from acd.distributor import Distributor
from acd.queue_log import QueueLog
from acd.routing import escalated_priority
from kc.domain import EscalationStep, QueueConfig
from kc.errors import InvalidInput
from kc.queue_config import get_queue_config, save_queue_config
from kc.store import Store
from kommuncentral.demo import load_demo
from test_distributor_state import Clock, ScriptedPbx, _run, caller_waits

STEPS = (EscalationStep(60, 5), EscalationStep(180, 20))


@pytest.mark.parametrize("base, waited, expected", [
    (0, 0, (0, 60)), (0, 59.9, (0, 60)), (0, 60, (5, 180)), (3, 100, (8, 180)),
    (0, 180, (20, None)), (-2, 1000, (18, None)),
])
def test_the_priority_rises_with_the_wait(base, waited, expected):
    assert escalated_priority(base, waited, STEPS) == expected
    assert escalated_priority(base, waited, ()) == (base, None)


@pytest.mark.parametrize("escalation, alert, message", [
    ([(60, 5), (30, 5)], 0, "more than the step before"),
    ([(60, 0)], 0, "by 1 to 1000"),
    ([(60, True)], 0, "by 1 to 1000"),
    ([(float("nan"), 1)], 0, "more than the step before"),
    ([], -1, "alert limit"),
])
def test_bad_escalation_is_refused(escalation, alert, message):
    with pytest.raises(InvalidInput, match=message):
        QueueConfig("school", "bromma", escalation=tuple(escalation), alert_seconds=alert)


def test_escalation_is_kept_in_the_store_and_the_api_shape(tmp_path):
    store = Store(tmp_path / "kc.db")
    try:
        store.run_sync(load_demo, Clock())
        config = QueueConfig("school", "bromma", escalation=STEPS, alert_seconds=240)
        assert QueueConfig.from_dict(config.to_dict()) == config
        store.run_sync(save_queue_config, config)
        assert store.run_sync(get_queue_config, "school", "bromma") == config
        with pytest.raises(InvalidInput):
            QueueConfig.from_dict({"skill": "school", "district": "bromma", "escalation": [{"after_seconds": 5}]})
    finally:
        store.close()


def test_a_long_waiting_caller_overtakes_a_higher_priority_one(tmp_path: Path):
    """Switchboard callers have priority 5, elderly care 0 rising by 10 after 30 s: the agent
    who becomes free after 45 s takes the elderly-care caller who waited longest, not the
    switchboard caller who came first."""
    asyncio.run(_overtake(tmp_path, escalate=True))
    with pytest.raises(AssertionError):           # without the rule: the switchboard caller
        asyncio.run(_overtake(tmp_path / "plain", escalate=False))


async def _overtake(tmp_path: Path, escalate: bool) -> None:
    tmp_path.mkdir(parents=True, exist_ok=True)
    clock, pbx = Clock(), ScriptedPbx()
    store = Store(tmp_path / "kc.db")
    await store.run(load_demo, clock)
    await store.run(save_queue_config, QueueConfig("switchboard", "bromma", priority=5, overflow=()))
    await store.run(save_queue_config, QueueConfig(
        "elderly-care", "bromma", overflow=(),
        escalation=(EscalationStep(30, 10),) if escalate else ()))
    dist = Distributor(store, pbx, clock, QueueLog(tmp_path / "queue_log"), ring_timeout=15,
                       wrap_up_seconds=0)
    try:
        await dist.load()
        ids = []
        for n, skill in enumerate(("switchboard", "elderly-care")):
            ids.append(await caller_waits(store, dist, clock, skill, f"070100000{n}"))
            clock.now += timedelta(seconds=5)
        clock.now += timedelta(seconds=40)
        dist.set_registered("bromma-101", True)
        await dist.request_state("bromma-101", "ready")      # elderly care and switchboard
        for _ in range(20):
            await asyncio.sleep(0)
        rung = [leg for leg in pbx.rings]
        assert len(rung) == 1
        assert rung[0].startswith(f"kc-{ids[1]}-"), rung
    finally:
        await dist.close()
        store.close()


@pytest.mark.parametrize("seed", [3, 11])
def test_random_events_with_escalating_queues_keep_the_router_consistent(tmp_path: Path, seed: int, monkeypatch):
    """The distributor's random-event check again, with every queue escalating fast."""
    original = load_demo

    def demo_with_escalation(db, clock):
        original(db, clock)
        for skill in ("elderly-care", "school", "social-services", "switchboard"):
            for district in ("bromma", "hasselby-vallingby"):
                save_queue_config(db, QueueConfig(skill, district, escalation=(
                    EscalationStep(5, 1), EscalationStep(31, 3))))
    monkeypatch.setattr("test_distributor_state.load_demo", demo_with_escalation)
    asyncio.run(_run(tmp_path, seed))


def _queue(name: str, district: str, skill: str, since: float | None, limit: float | None):
    return {"name": name, "district": district, "district_name": district.title(), "skill": skill,
            "skill_name": skill, "longest_wait_since": since, "alert_seconds": limit, "waiting": 1}


def test_waiting_too_long_reaches_the_supervisors_and_agents_of_the_queue():
    from admin_web.wait_alerts import payload, shown
    queues = [_queue("school@north", "north", "school", 100.0, 60),
              _queue("school@south", "south", "school", 100.0, 60),
              _queue("parking@north", "north", "parking", 100.0, 60),
              _queue("social@north", "north", "social", None, 60),      # nobody waiting
              _queue("care@north", "north", "care", 100.0, None)]        # no limit
    snap = {"now": 200.0, "queues": queues}
    names = lambda user, works=None: [q["name"] for q in payload(snap, user, works)["queues"]]
    supervisor = {"role": "supervisor", "districts": '["north"]'}
    assert names(supervisor) == ["school@north", "parking@north"]
    agent = {"role": "agent", "agent": "a1"}
    assert names(agent, ("north", frozenset({"school", "care"}))) == ["school@north"]
    assert names(agent, None) == []                      # a user with no agent watches nothing
    assert names({"role": "manager"}) == [] and names({"role": "admin"}) == [] and names(None) == []
    assert set(payload(snap, supervisor, None)["queues"][0]) == {
        "name", "district", "district_name", "skill", "skill_name", "longest_wait_since",
        "alert_seconds"}
    assert shown(supervisor, "/reports") and shown(agent, "/desk")
    assert not shown(supervisor, "/wallboard?district=north") and not shown({"role": "admin"}, "/")


def test_a_caller_whose_priority_rises_is_announced_the_place_it_gives(tmp_path: Path):
    """Two callers of one queue: the second came with a higher priority (a menu option's) and
    is ahead; once the first has waited past the escalation step, the first is ahead, and the
    places said to them change with it (the room's ranking is not kept past the change)."""
    asyncio.run(_places(tmp_path))


async def _places(tmp_path: Path) -> None:
    clock = Clock()
    store = Store(tmp_path / "kc.db")
    await store.run(load_demo, clock)
    await store.run(save_queue_config, QueueConfig(
        "school", "bromma", overflow=(), escalation=(EscalationStep(30, 10),)))
    dist = Distributor(store, ScriptedPbx(), clock, QueueLog(tmp_path / "queue_log"),
                       ring_timeout=15, wrap_up_seconds=0)
    try:
        await dist.load()
        ids = []
        for n, priority in enumerate((0, 5)):
            ids.append(await caller_waits(store, dist, clock, "school", f"070200000{n}", priority))
            clock.now += timedelta(seconds=20)
        for _ in range(20):
            await asyncio.sleep(0)
        assert [(await dist.waiting_info(c))[0] for c in ids] == [2, 1]
        # now the first has waited 40 s (0 + 10 > 5), the second 20 s (still 5); escalation is
        # decided at the next dispatch (no agent: nobody is offered)
        dist.room.dispatch()
        assert [(await dist.waiting_info(c))[0] for c in ids] == [1, 2]
    finally:
        await dist.close()
        store.close()

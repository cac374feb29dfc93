"""Recorded AMI frame sequences of real calls, replayed into the distributor.

The frames in tests/ami_frames/ were captured from the real Asterisk while real calls ran
through the real service (tests/capture_ami_frames.py). Here they go, in their order, through
the AMI seam (the frame parser and the typed events) into a distributor with a real SQLite
store and a scripted telephony that answers each Originate as the recorded
`OriginateResponse` says. What reached the distributor from elsewhere than AMI (the menu's
contact, an agent set ready, a call-back asked for, a transfer) is in the recordings as
`TestStep` frames. The assertions are on the contact records and the queue_log lines.
"""
from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path


from acd.ami import read_frames
from acd.ami_events import AMI_EVENTS, CallerWaiting, parse_event
from acd.distributor import Distributor
from acd.queue_log import QueueLog, check_line
from acd.telephony import PbxSnapshot
from kc import queries
from demo_template import load_demo
from kc.domain import AgentState
from kc.store import Store

FRAMES = Path(__file__).resolve().parents[1] / "ami_frames"
LEG = re.compile(r"^kc-(\d+)-(\d+)-\d+$")     # our agent legs: kc-<contact>-<offer>-<epoch>


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


class ReplayPbx:
    """The distributor's Originates are answered as the recording says; the recorded leg ids
    (which carry the epoch of the capture) are mapped to the ones the distributor made."""

    def __init__(self) -> None:
        self.legs: dict[tuple[str, str], str] = {}
        self.answers: dict[str, asyncio.Future] = {}
        self.rung: list[tuple[str, str]] = []          # (kind, agent)
        self.redirects: list[tuple[str, str, str]] = []
        self.hung_up: list[str] = []

    def _ring(self, kind: str, agent: str, leg_id: str) -> asyncio.Future:
        m = LEG.match(leg_id)
        assert m, leg_id
        self.legs[(m[1], m[2])] = leg_id
        self.rung.append((kind, agent))
        fut = asyncio.get_running_loop().create_future()
        self.answers[leg_id] = fut
        return fut

    def ring_agent(self, *, agent, caller_channel, contact_id, leg_id, caller_id, timeout):
        return self._ring("call", agent, leg_id)

    def call_back(self, *, agent, contact_id, leg_id, number, caller_id, timeout, ring_resident):
        return self._ring("callback", agent, leg_id)

    async def hangup(self, channel: str) -> None:
        self.hung_up.append(channel)

    async def redirect(self, channel: str, context: str, exten: str) -> None:
        self.redirects.append((channel, context, exten))

    async def snapshot(self, endpoints) -> PbxSnapshot:
        return PbxSnapshot(frozenset(), (), frozenset())

    def live(self, value: str) -> str:
        m = LEG.match(value)
        return self.legs.get((m[1], m[2]), value) if m else value

    def answer(self, frame: dict[str, str]) -> None:
        leg = self.live(frame.get("Uniqueid", ""))
        fut = self.answers.get(leg)
        assert fut is not None and not fut.done(), f"OriginateResponse for no pending ring: {frame}"
        fut.set_result(frame.get("Response") == "Success")


async def _settle(store: Store) -> None:
    for _ in range(6):              # let every task the frame started run to its end
        for _ in range(20):
            await asyncio.sleep(0)
        await store.run(lambda db: None)


async def _replay(name: str, tmp_path: Path) -> tuple[Store, Distributor, ReplayPbx, list[list[str]]]:
    frames = read_frames((FRAMES / f"{name}.txt").read_text(encoding="utf-8"))
    clock = Clock()
    store = Store(tmp_path / "kc.db")
    await store.run(load_demo, clock)
    pbx = ReplayPbx()
    dist = Distributor(store, pbx, clock, QueueLog(tmp_path / "queue_log"), ring_timeout=5,
                       wrap_up_seconds=0)
    await dist.load()
    try:
        for frame in frames:
            clock.now += timedelta(seconds=1)
            name_ = frame.get("Event")
            if name_ == "TestStep":
                await _step(store, dist, frame, clock)
            elif name_ == "OriginateResponse":
                pbx.answer(frame)
            else:
                assert name_ in AMI_EVENTS, f"the PBX sent {name_}, which it is told not to"
                event = parse_event({k: pbx.live(v) for k, v in frame.items()})
                if event is not None:
                    dist.on_event(event)
            await _settle(store)
    finally:
        await dist.close()
    text = (tmp_path / "queue_log").read_text()
    assert [(ln, check_line(ln)) for ln in text.splitlines() if check_line(ln)] == []
    lines = [ln.split("|") for ln in text.splitlines()]
    return store, dist, pbx, lines


async def _step(store: Store, dist: Distributor, step: dict[str, str], clock: Clock) -> None:
    kind = step["Step"]
    if kind == "contact":               # the menu created it before sending the caller to wait
        await store.run(queries.create_contact, id=int(step["ContactID"]), channel="phone",
                        district=step["District"], caller=step["Caller"], skill=step["Skill"],
                        language=step["Language"], started_at=clock.now.isoformat())
    elif kind == "ready":
        await dist.request_state(step["Agent"], "ready")
    elif kind == "callback":
        assert await dist.request_callback(int(step["ContactID"]))
    elif kind == "transfer":
        await dist.transfer(int(step["ContactID"]), step["To"])
    else:
        raise AssertionError(f"unknown step {step}")


def replay(name: str, tmp_path: Path):
    return asyncio.run(_replay(name, tmp_path))


def kinds(store: Store, contact_id: int) -> list[str]:
    return [e["kind"] for e in store.run_sync(queries.contact_events, contact_id)]


def log_events(lines: list[list[str]]) -> list[tuple[str, str, str]]:
    """(queue, agent, event) of each queue_log line."""
    return [(ln[2], ln[3], ln[4]) for ln in lines]


def test_every_recorded_frame_is_one_the_seam_reads_or_the_link_needs():
    for path in sorted(FRAMES.glob("*.txt")):
        frames = read_frames(path.read_text(encoding="utf-8"))
        names = {f["Event"] for f in frames} - {"TestStep"}
        assert names <= set(AMI_EVENTS), (path.name, names - set(AMI_EVENTS))
        waiting = [parse_event(f) for f in frames if f.get("UserEvent") == "KcWaiting"]
        assert waiting and all(isinstance(e, CallerWaiting) for e in waiting), path.name


def test_answered_call(tmp_path):
    store, dist, pbx, lines = replay("answered", tmp_path)
    contact = store.run_sync(queries.get_contact, 1)
    assert contact["outcome"] == "answered" and contact["agent"] == "bromma-101"
    assert contact["overflowed"] is False and contact["answered_at"] and contact["ended_at"]
    assert kinds(store, 1) == ["enqueued", "offered", "connected", "completed"]
    completed = store.run_sync(queries.contact_events, 1)[-1]["data"]
    assert completed["by"] == "agent"          # the agent's leg asked to hang up first
    assert log_events(lines) == [
        ("NONE", "bromma-101", "AGENTLOGIN"),
        ("elderly-care@bromma", "bromma-101", "ADDMEMBER"),
        ("switchboard@bromma", "bromma-101", "ADDMEMBER"),
        ("elderly-care@bromma", "NONE", "ENTERQUEUE"),
        ("elderly-care@bromma", "bromma-101", "CONNECT"),
        ("elderly-care@bromma", "bromma-101", "COMPLETEAGENT"),
    ]
    assert lines[3][5:] == ["", "0711000001", "1"]   # url, the caller's number, first in line
    hold, member, ring = lines[4][5:]
    assert member.startswith("kc-1-") and int(ring) > 0 and int(hold) >= int(ring)
    assert lines[5][5:] == [hold, lines[5][6], "1"]   # holdtime, calltime, original position
    assert pbx.rung == [("call", "bromma-101")]
    assert dist.agents["bromma-101"].state is AgentState.READY and not dist.connected


def test_abandoned_while_waiting(tmp_path):
    store, dist, pbx, lines = replay("abandoned", tmp_path)
    contact = store.run_sync(queries.get_contact, 1)
    assert contact["outcome"] == "abandoned" and contact["agent"] is None
    assert contact["wait_seconds"] > 0
    assert kinds(store, 1) == ["enqueued", "abandoned"]
    assert log_events(lines) == [
        ("school@bromma", "NONE", "ENTERQUEUE"),
        ("school@bromma", "NONE", "ABANDON"),
    ]
    assert lines[1][5:7] == ["1", "1"] and int(lines[1][7]) == int(contact["wait_seconds"])
    assert pbx.rung == [] and not dist.waiting


def test_ring_no_answer_then_the_caller_gives_up(tmp_path):
    store, dist, pbx, lines = replay("ring-no-answer", tmp_path)
    contact = store.run_sync(queries.get_contact, 1)
    assert contact["outcome"] == "abandoned" and contact["agent"] is None
    assert kinds(store, 1) == ["enqueued", "offered", "ring_no_answer", "abandoned"]
    rt = dist.agents["bromma-102"]
    assert rt.state is AgentState.PAUSED and rt.reason == "rona"
    assert log_events(lines) == [
        ("NONE", "bromma-102", "AGENTLOGIN"),
        ("elderly-care@bromma", "bromma-102", "ADDMEMBER"),
        ("switchboard@bromma", "bromma-102", "ADDMEMBER"),
        ("elderly-care@bromma", "NONE", "ENTERQUEUE"),
        ("elderly-care@bromma", "bromma-102", "RINGNOANSWER"),
        ("elderly-care@bromma", "bromma-102", "PAUSE"),
        ("switchboard@bromma", "bromma-102", "PAUSE"),
        ("elderly-care@bromma", "NONE", "ABANDON"),
    ]
    assert lines[5][5] == "rona" and lines[6][5] == "rona"


def test_callback_keeps_the_place_then_rings_agent_and_resident(tmp_path):
    store, dist, pbx, lines = replay("callback", tmp_path)
    contact = store.run_sync(queries.get_contact, 1)
    assert contact["outcome"] == "answered" and contact["agent"] == "bromma-101"
    assert contact["callback_number"] == "0711000004"
    assert kinds(store, 1) == ["enqueued", "callback_requested", "offered",
                               "callback_agent_answered", "callback_connected", "completed"]
    assert pbx.rung == [("callback", "bromma-101")]
    # the caller leaves by key 1; the call-back is a queue call of its own, in the same place
    assert log_events(lines) == [
        ("elderly-care@bromma", "NONE", "ENTERQUEUE"),
        ("elderly-care@bromma", "NONE", "EXITWITHKEY"),
        ("elderly-care@bromma", "NONE", "ENTERQUEUE"),
        ("NONE", "bromma-101", "AGENTLOGIN"),
        ("elderly-care@bromma", "bromma-101", "ADDMEMBER"),
        ("switchboard@bromma", "bromma-101", "ADDMEMBER"),
        ("elderly-care@bromma", "bromma-101", "CONNECT"),
        ("elderly-care@bromma", "bromma-101", "COMPLETEAGENT"),
    ]
    assert lines[1][1] == lines[0][1] and lines[1][5:8] == ["1", "1", "1"]
    assert lines[2][1] == lines[0][1] + "-cb" and lines[2][6:] == ["0711000004", "1"]
    assert {ln[1] for ln in lines[-2:]} == {lines[2][1]}
    assert not dist.waiting and not dist.connected


def test_transfer_to_another_skill_queue(tmp_path):
    store, dist, pbx, lines = replay("transfer", tmp_path)
    first, second = (store.run_sync(queries.get_contact, cid) for cid in (1, 2))
    assert first["outcome"] == "transferred" and first["agent"] == "bromma-102"
    assert second["outcome"] == "answered" and second["agent"] == "bromma-103"
    assert second["skill"] == "school" and second["caller"] == "0711000005"
    assert kinds(store, 1) == ["enqueued", "offered", "connected", "transferred"]
    assert kinds(store, 2) == ["transferred_in", "enqueued", "offered", "connected", "completed"]
    assert pbx.redirects and pbx.redirects[0][1:] == ("kc-transfer-queue", "2")
    assert log_events(lines) == [
        ("NONE", "bromma-102", "AGENTLOGIN"),
        ("elderly-care@bromma", "bromma-102", "ADDMEMBER"),
        ("switchboard@bromma", "bromma-102", "ADDMEMBER"),
        ("elderly-care@bromma", "NONE", "ENTERQUEUE"),
        ("elderly-care@bromma", "bromma-102", "CONNECT"),
        ("NONE", "bromma-103", "AGENTLOGIN"),
        ("school@bromma", "bromma-103", "ADDMEMBER"),
        ("switchboard@bromma", "bromma-103", "ADDMEMBER"),
        ("elderly-care@bromma", "bromma-102", "TRANSFER"),
        ("school@bromma", "NONE", "ENTERQUEUE"),
        ("school@bromma", "bromma-103", "CONNECT"),
        ("school@bromma", "bromma-103", "COMPLETEAGENT"),
    ]
    assert lines[8][5] == "school@bromma"

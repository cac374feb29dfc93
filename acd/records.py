"""What the distributor writes down: contacts and their events in the store, and Asterisk's
`queue_log` lines (so existing queue-reporting tools can read our records).

One method per step of a call; the parts of the distributor decide, this writes. Times are
taken from the clock at each write, as the steps happen. Every write is a record
(`Store.record`): a database fault delays it, never loses it nor stops the call.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from kc import queries, transfer_log
from datetime import datetime, timezone

from kc.clock import Clock, iso, parse_iso
from kc.domain import Agent, AgentState, queue_name
from kc.store import Store
from kc.telemetry import Telemetry

from .queue_log import QueueLog

if TYPE_CHECKING:
    from .calls import Connected


# What of a contact event's data goes into the call log too (never a number or an address:
# the call log is kept past the retention of personal data).
LOGGED = frozenset({"agent", "skill", "position", "wait", "talk", "by", "reason", "where", "end",
                    "status", "ms", "leg", "callback", "new_contact", "from_contact",
                    "estimate_seconds", "staffed", "after"})


def where(queue: str) -> dict[str, str]:
    """A queue's name (`skill@district`) as the call log's and the metrics' labels."""
    skill, _, district = queue.partition("@")
    return {"district": district, "queue": skill}


class Records:
    def __init__(self, store: Store, clock: Clock, queue_log: QueueLog,
                 telemetry: Telemetry | None = None):
        self.store, self.clock, self.queue_log = store, clock, queue_log
        self.telemetry = telemetry or Telemetry()

    def _at(self, when: float | None = None) -> str:
        """Now, or `when` (a step that ended earlier than we learnt it: the PBX was lost)."""
        if when is None:
            return iso(self.clock())
        return iso(datetime.fromtimestamp(when, timezone.utc))

    async def _event(self, contact_id: int, kind: str, data: dict[str, Any],
                     when: float | None = None, at: str | None = None,
                     queue: str | None = None, **labels: Any) -> None:
        """A contact event: stored, and told as a step of the call (`queue`: its labels)."""
        told = {k: v for k, v in data.items() if k in LOGGED}
        told.update(where(queue) if queue else {}, **labels)
        self.telemetry.step("acd", kind, contact_id, **told)
        await self.store.record(queries.add_event, contact_id, at or self._at(when), kind, data)

    async def _update(self, contact_id: int, **fields: Any) -> None:
        await self.store.record(queries.update_contact, contact_id, **fields)

    # ---------------------------------------------------------------------- reading back
    async def contact(self, contact_id: int) -> dict[str, Any]:
        return await self.store.run(queries.get_contact, contact_id)

    async def read_contact(self, contact_id: int) -> dict[str, Any]:
        """Read on a reader connection (hot path: a caller reached the waiting room)."""
        return await self.store.read(queries.get_contact, contact_id)

    async def open_queued_contacts(self, before: str) -> list[dict[str, Any]]:
        return await self.store.run(queries.open_queued_contacts, before)

    async def open_calls(self, before: str) -> list[dict[str, Any]]:
        return await self.store.run(queries.open_calls, before)

    async def recent_handle_times(self, skill: str, wrap_up: float) -> list[float]:
        return await self.store.read(queries.recent_handle_times, skill, wrap_up)

    # ---------------------------------------------------------------------- agents
    async def agent_state(self, now: float, agent_id: str, before: AgentState, state: AgentState,
                          reason: str | None, queues: Sequence[str] = (),
                          logged_in_at: float | None = None) -> None:
        """An agent's state changed: log-in/out, membership and pause lines (one per queue the
        agent serves, as app_queue writes them), and the stored state."""
        log, channel = self.queue_log, f"PJSIP/{agent_id}"
        if before is AgentState.LOGGED_OUT and state is not AgentState.LOGGED_OUT:
            log.write(now, "NONE", "NONE", agent_id, "AGENTLOGIN", channel)
            paused = "PAUSED" if state is AgentState.PAUSED else ""
            for q in queues:
                log.write(now, "NONE", q, agent_id, "ADDMEMBER", paused)
        elif state is AgentState.LOGGED_OUT and before is not AgentState.LOGGED_OUT:
            for q in queues:
                log.write(now, "NONE", q, agent_id, "REMOVEMEMBER", "")
            since = now if logged_in_at is None else logged_in_at
            log.write(now, "NONE", "NONE", agent_id, "AGENTLOGOFF", channel, int(max(0.0, now - since)))
        elif state is AgentState.PAUSED and before is not AgentState.PAUSED:
            for q in queues:
                log.write(now, "NONE", q, agent_id, "PAUSE", reason or "")
        elif before is AgentState.PAUSED and state is not AgentState.PAUSED:
            for q in queues:
                log.write(now, "NONE", q, agent_id, "UNPAUSE", "")
        await self.stored_state(agent_id, state, reason)

    async def has_case(self, contact_id: int) -> bool:
        """Is the contact's matter registered (a case, so a category)?"""
        def read(db: Any) -> bool:
            return db.execute("select 1 from cases where contact_id = ?", [contact_id]).fetchone() is not None
        return await self.store.read(read)

    async def wrapped_up(self, contact_id: int, seconds: float) -> None:
        """The agent's wrap-up after this contact ended (0: none)."""
        await self._update(contact_id, wrap_up_seconds=round(max(0.0, seconds), 3))

    async def stored_state(self, agent_id: str, state: AgentState, reason: str | None = None) -> None:
        await self.store.record(queries.set_agent_state, agent_id, state, reason, self._at())

    # ---------------------------------------------------------------------- waiting and offers
    def entered_queue(self, now: float, uniqueid: str, queue: str, caller: str,
                      position: int) -> None:
        self.queue_log.write(now, uniqueid, queue, "NONE", "ENTERQUEUE", "", caller, position)

    async def enqueued(self, contact_id: int, queue: str, skill: str, confidential: bool,
                       uniqueid: str, channel: str, position: int) -> None:
        at = self._at()
        await self._update(contact_id, enqueued_at=at, confidential=confidential,
                           uniqueid=uniqueid, channel_name=channel, queue_position=position)
        await self._event(contact_id, "enqueued", {"skill": skill, "queue": queue, "position": position},
                          at=at, queue=queue)

    async def offered(self, contact_id: int, agent_id: str, leg_id: str | None,
                      callback: bool) -> None:
        at = self._at()
        await self.store.record(queries.set_agent_state, agent_id, AgentState.RINGING, None, at)
        await self._event(contact_id, "offered",
                          {"agent": agent_id, "leg": leg_id, **({"callback": True} if callback else {})},
                          at=at)

    async def ring_no_answer(self, now: float, uniqueid: str, queue: str, agent_id: str,
                             ring_ms: int, contact_id: int) -> None:
        self.queue_log.write(now, uniqueid, queue, agent_id, "RINGNOANSWER", ring_ms)
        await self._event(contact_id, "ring_no_answer", {"agent": agent_id, "ms": ring_ms})

    async def connected(self, now: float, contact_id: int, agent: Agent, district: str,
                        uniqueid: str, queue: str, wait: float, leg_id: str, ring: float,
                        log_wait: float, nodes: tuple[str | None, str | None] = (None, None)) -> None:
        """`wait`: the contact's, since it first reached a queue; `log_wait`: since this
        queue_log call entered its queue (differs after the caller's queue closed); `nodes`: in
        a cluster, the caller's node and the agent's."""
        await self._update(contact_id, agent=agent.id, agent_district=agent.district,
                           overflowed=agent.district != district, answered_at=self._at(),
                           wait_seconds=round(wait, 3),
                           **({"node": nodes[0], "agent_node": nodes[1]} if nodes[0] else {}))
        await self._event(contact_id, "connected", {"agent": agent.id, **(
            {"node": nodes[0], "agent_node": nodes[1]} if nodes[0] else {})}, queue=queue,
                          overflowed=agent.district != district, wait=round(wait, 3))
        self.queue_log.write(now, uniqueid, queue, agent.id, "CONNECT", int(log_wait), leg_id,
                             int(ring))

    def ring_canceled(self, now: float, uniqueid: str, queue: str, agent_id: str,
                      ring_ms: int) -> None:
        """The caller left while this agent's phone rang."""
        self.queue_log.write(now, uniqueid, queue, agent_id, "RINGCANCELED", max(0, ring_ms))

    async def abandoned(self, now: float, uniqueid: str, queue: str, contact_id: int,
                        wait: float, position: int, orig_position: int, log_wait: float,
                        reason: str | None = None, outcome: str = "abandoned") -> None:
        """The caller left the queue at `now` (or the PBX lost them then: `reason`; `failed`
        when the node that held the call stopped)."""
        self.queue_log.write(now, uniqueid, queue, "NONE", "ABANDON", position, orig_position,
                             int(log_wait))
        await self._update(contact_id, outcome=outcome, ended_at=self._at(now),
                           wait_seconds=round(wait, 3))
        await self._event(contact_id, outcome, {"where": "queue", "wait": round(wait, 3),
                                                    **({"reason": reason} if reason else {})},
                          when=now, queue=queue)

    def left_queue(self, now: float, uniqueid: str, queue: str, wait: float, position: int,
                   orig_position: int, key: str | None = None) -> None:
        """The caller left the queue without an agent: by a key (EXITWITHKEY: 1 asks for a
        call-back), or because the queue closed (EXITWITHTIMEOUT: its opening hours ran out)."""
        if key is not None:
            self.queue_log.write(now, uniqueid, queue, "NONE", "EXITWITHKEY", key, position,
                                 orig_position, int(wait))
        else:
            self.queue_log.write(now, uniqueid, queue, "NONE", "EXITWITHTIMEOUT", position,
                                 orig_position, int(wait))

    def announced(self, contact_id: int, position: int, eta: float, staffed: int) -> None:
        """Queued for the writer, not waited for: the caller hears the announcement at once,
        however many writes are ahead of it."""
        self.store.record_soon(queries.add_event, contact_id, self._at(), "announced",
                               {"position": position, "estimate_seconds": round(eta),
                                "staffed": staffed})

    # ---------------------------------------------------------------------- calls
    async def completed(self, now: float, conn: "Connected", talk: float) -> None:
        event = "COMPLETEAGENT" if conn.agent_hung_up or conn.callback else "COMPLETECALLER"
        self.queue_log.write(now, conn.log_callid, conn.queue, conn.agent, event,
                             int(conn.wait), int(talk), conn.position)
        await self._update(conn.contact_id, outcome="answered", ended_at=self._at(now),
                           talk_seconds=round(talk, 3))
        by = conn.ended_by if conn.ended_by == "pbx" else "agent" if conn.agent_hung_up else "caller"
        await self._event(conn.contact_id, "completed",
                          {"by": by, "talk": round(talk, 3),
                           **({"callback": True} if conn.callback else {})}, when=now,
                          queue=conn.queue)

    async def adopted_answer(self, contact_id: int, agent: Agent, contact: dict[str, Any],
                             wait: float) -> None:
        """A caller found talking to an agent after a restart: answered, if not yet written."""
        if not contact["answered_at"]:
            await self._update(contact_id, agent=agent.id, agent_district=agent.district,
                               overflowed=agent.district != contact["district"],
                               answered_at=self._at(), wait_seconds=round(wait, 3))

    async def adopted(self, contact_id: int, agent_id: str) -> None:
        await self._event(contact_id, "adopted", {"agent": agent_id, "after": "restart"})

    async def closed_unseen(self, end: float, contact: dict[str, Any], queue: str,
                            reason: str, outcome: str = "abandoned") -> None:
        """A contact left open (a crash, a lost PBX link) whose call the PBX no longer has:
        closed at `end`, the last moment it was seen, never the time we noticed (`failed`
        when the node that held it stopped)."""
        cid, at = contact["id"], self._at(end)
        uniqueid = contact["uniqueid"] or "NONE"
        where = ("talking" if contact["answered_at"] else "waiting" if contact["enqueued_at"]
                 else "menu")
        data = {"reason": reason, "where": where, "end": "last seen"}
        if contact["answered_at"]:
            talk = max(0.0, end - parse_iso(contact["answered_at"]).timestamp())
            await self._update(cid, outcome="answered", ended_at=at, talk_seconds=round(talk, 3))
            await self._event(cid, "completed", {"by": "unknown", "talk": round(talk, 3), **data},
                              at=at, queue=queue)
            self.queue_log.write(end, uniqueid, queue, contact["agent"] or "NONE",
                                 "COMPLETECALLER", int(contact["wait_seconds"] or 0), int(talk),
                                 contact.get("queue_position") or 1)
        else:
            wait = (max(0.0, end - parse_iso(contact["enqueued_at"]).timestamp())
                    if contact["enqueued_at"] else None)
            await self._update(cid, outcome=outcome, ended_at=at,
                               **({"wait_seconds": round(wait, 3)} if wait is not None else {}))
            await self._event(cid, outcome, data, at=at,
                              **({"queue": queue} if contact["enqueued_at"] else {}))
            if wait is not None:
                place = contact.get("queue_position") or 1   # from before positions were kept
                self.queue_log.write(end, uniqueid, queue, "NONE", "ABANDON", place, place,
                                     int(wait))

    # ---------------------------------------------------------------------- call-backs
    async def callback_requested(self, contact_id: int, number: str, position: int | None) -> None:
        at = self._at()
        await self._update(contact_id, callback_number=number)
        await self._event(contact_id, "callback_requested", {"number": number, "position": position},
                          at=at)

    async def callback_agent_answered(self, contact_id: int, agent: Agent, district: str,
                                      wait: float, skill: str = "") -> None:
        await self._update(contact_id, agent=agent.id, agent_district=agent.district,
                           overflowed=agent.district != district, wait_seconds=round(wait, 3))
        await self._event(contact_id, "callback_agent_answered", {"agent": agent.id},
                          queue=queue_name(skill, district), overflowed=agent.district != district,
                          wait=round(wait, 3))

    async def callback_dial(self, now: float, conn: "Connected", status: str) -> None:
        at = self._at()
        if status == "ANSWER":
            await self._update(conn.contact_id, answered_at=at)
            await self._event(conn.contact_id, "callback_connected", {"agent": conn.agent}, at=at)
            self.queue_log.write(now, conn.log_callid, conn.queue, conn.agent, "CONNECT",
                                 int(conn.wait), conn.leg_id, int(conn.ring))
        else:
            await self._event(conn.contact_id, "callback_dial", {"status": status}, at=at)

    async def callback_retry(self, now: float, conn: "Connected", missed: int,
                             delay: float) -> None:
        """The resident did not answer; the call-back waits again in `delay` seconds."""
        await self._event(conn.contact_id, "callback_retry",
                          {"agent": conn.agent, "missed": missed, "after": delay}, when=now)

    async def callback_failed(self, now: float, conn: "Connected") -> None:
        """The agent called, the resident did not answer: the call-back's queue call was
        abandoned (the resident, its caller, was not there)."""
        self.queue_log.write(now, conn.log_callid, conn.queue, "NONE", "ABANDON",
                             conn.position, conn.position, int(conn.wait))
        await self._update(conn.contact_id, outcome="failed", ended_at=self._at(now))
        await self._event(conn.contact_id, "callback_unanswered", {"agent": conn.agent}, when=now)

    # ---------------------------------------------------------------------- transfers
    async def transfer_contact(self, contact: dict[str, Any], skill: str, conn: "Connected") -> int:
        """The new contact that waits in the target queue: same caller, same channel."""
        return await self.store.insert_record(
            queries.create_contact, "contacts", channel="phone", district=contact["district"],
            dialed=contact["dialed"], caller=contact["caller"], caller_name=contact["caller_name"],
            started_at=self._at(), menu_path=contact["menu_path"],
            language=contact["language"], skill=skill, uniqueid=conn.uniqueid,
            channel_name=conn.channel)

    async def transfer_logged(self, contact_id: int, agent: str, kind: str, target: str,
                              name: str | None, outcome: str, ended: bool = True) -> int:
        """A row of the transfers log (`kc.transfer_log`); its id."""
        at = self._at()
        return await self.store.insert_record(
            transfer_log.add_transfer, "transfers", contact_id=contact_id, agent=agent, kind=kind,
            target=target, target_name=name, started_at=at, ended_at=at if ended else None,
            outcome=outcome)

    async def transfer_consulting(self, contact_id: int, agent: str, number: str,
                                  transfer_id: int) -> None:
        await self._event(contact_id, "transfer_consulting",
                          {"to": number, "agent": agent, "transfer": transfer_id})

    async def transfer_ended(self, transfer_id: int, outcome: str) -> None:
        await self.store.record(transfer_log.end_transfer, transfer_id, outcome, self._at())

    async def transfer_failed(self, new_id: int) -> None:
        await self._update(new_id, outcome="failed", ended_at=self._at())

    async def transferred(self, now: float, conn: "Connected", talk: float, to: str,
                          extension: str, context: str, new_id: int | None) -> None:
        at = self._at()
        self.queue_log.write(now, conn.log_callid, conn.queue, conn.agent, "TRANSFER", extension,
                             context, int(conn.wait), int(talk), conn.position)
        await self._update(conn.contact_id, outcome="transferred", ended_at=at,
                           talk_seconds=round(talk, 3))
        await self._event(conn.contact_id, "transferred",
                          {"to": to, "agent": conn.agent, "new_contact": new_id}, at=at,
                          queue=conn.queue)
        if new_id is not None:
            await self._event(new_id, "transferred_in",
                              {"from_contact": conn.contact_id, "agent": conn.agent}, at=at)

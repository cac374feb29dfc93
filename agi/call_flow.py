"""The FastAGI routes: a resident's call through the menu, and agents' feature codes.

The menu itself is decided by `agi.menu.MenuSession` (pure); this module only plays what it
says, reads digits, and records the contact. When the caller is to wait for an agent, the AGI
session ends with `KC_NEXT=wait`: the dialplan holds them with music and announces them to the
ACD (UserEvent `KcWaiting`), so waiting callers never depend on this process staying up.
"""
from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from kc import queries
from kc.clock import Clock, iso
from kc.errors import CallerGone, InvalidInput, NotFound
from kc.store import Store

from . import menu_flow
from .fastagi import AgiChannel
from .menu import Collect, Hangup, Menu, MenuSession, Queue, Speech, Transfer
from .prompts import PromptCache

log = logging.getLogger(__name__)

ALL_DIGITS = "0123456789*#"
SWITCHBOARD = "switchboard"

AGENT_PHRASES = {
    "ready": "Du är inloggad och redo.",
    "logged_out": "Du är utloggad.",
    "paused": "Du har paus.",
    "error": "Det gick inte. Försök igen.",
}


def clean_caller(value: str, limit: int = 300) -> str:
    """Caller ID as we store it: control characters out (whitespace ones become spaces),
    bounded length. Asterisk hands the SIP display name over as it was on the wire (quoted-pairs
    kept) and cut to 79 characters by PJSIP; we keep exactly that."""
    return "".join(ch if ch.isprintable() else " " if ch.isspace() else ""
                   for ch in value)[:limit]


def decode_raw_caller(value: str, limit: int = 512) -> str:
    """The dialplan's base64 of a refused caller ID, as text with every control character
    written as an escape (so it can be shown and stored, never acted on)."""
    try:
        raw = base64.b64decode(value[:2048], validate=True)
    except (binascii.Error, ValueError):
        return f"(not base64) {value[:64]!r}"
    text = raw.decode("utf-8", "backslashreplace")[:limit]
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)


AGENT_CONTEXT = "from-agents"   # the only context an agent endpoint's calls start in


def from_agent_phone(chan: AgiChannel, agent: str) -> bool:
    """A feature code counts only from the agent's own, authenticated SIP endpoint: the call
    started in the agents' context on a PJSIP channel of that very endpoint."""
    return (bool(agent) and chan.header("context") == AGENT_CONTEXT
            and chan.header("type") == "PJSIP"
            and chan.header("channel").startswith(f"PJSIP/{agent}-"))


@dataclass
class CallFlow:
    store: Store
    prompts: PromptCache
    clock: Clock
    on_feature: Callable[[str, str], Awaitable[str]]   # (agent id, code) -> new state
    after_hours: Any = None   # agi.after_hours.AfterHours: opening hours (set by kommuncentral.service)
    # told as a caller is sent to wait (contact id, skill, district, language, caller,
    # priority or None), so the ACD needs not read the contact back: see Distributor.expect
    on_queued: Callable[[int, str, str, str, str, int | None], None] | None = None

    async def _play(self, chan: AgiChannel, speech: Speech) -> str | None:
        """Play a speech; returns the digit that cut an interruptible one short."""
        path = await self.prompts.resolve(speech.text, speech.language, speech.audio)
        return await chan.stream(str(path), ALL_DIGITS if speech.interruptible else "")

    async def _collect(self, chan: AgiChannel, step: Collect, early: str | None) -> str | None:
        digit = early or await self._play(chan, step.prompt)
        if digit is None:
            digit = await chan.wait_for_digit(step.timeout)
        return digit

    # ------------------------------------------------------------------ the resident's call
    async def menu(self, chan: AgiChannel) -> None:
        district, raw_caller = (chan.args + ["", ""])[:2]
        now = iso(self.clock())
        caller = clean_caller(chan.header("callerid"), 64)
        contact_id = await self.store.run(
            queries.create_contact, channel="phone", district=district or None,
            dialed=clean_caller(chan.header("dnid") or chan.header("extension"), 64),
            caller=caller or None,
            caller_name=clean_caller(chan.header("calleridname")) or None,
            started_at=now, uniqueid=chan.header("uniqueid"), channel_name=chan.header("channel"),
        )
        if raw_caller:   # the dialplan refused a malformed caller ID: keep it, escaped, as data
            await self.store.run(queries.add_event, contact_id, now, "caller_id_refused",
                                 {"raw": decode_raw_caller(raw_caller)})
        if self.after_hours is not None and district:   # closed: a partner's menu, or handled
            district = await self.after_hours.before_menu(chan, contact_id, district)
            if district is None:
                return
        published = await menu_flow.published_menu(self, contact_id, district)
        if published is None:
            log.error("no published menu for district %r", district)
            await self._finish(contact_id, "failed", {"reason": "no menu"})
            await chan.set_variable("KC_NEXT", "fallback")
            return
        version, body = published
        session = MenuSession(Menu.from_dict(body))
        try:
            await menu_flow.play_announcement(self, chan, district, session.menu, contact_id)
            step = session.start()
            while True:
                early = None   # a digit pressed during an announcement answers the next prompt
                for speech in step.say:
                    if early is None:
                        early = await self._play(chan, speech)
                then = step.then
                if isinstance(then, Collect):
                    digit = await self._collect(chan, then, early)
                    step = session.press(digit) if digit is not None else session.timeout()
                    continue
                break
        except CallerGone:
            await self._record_menu(contact_id, session, version)
            await self._finish(contact_id, "abandoned", {"where": "menu"})
            raise
        await self._record_menu(contact_id, session, version)
        if isinstance(then, Transfer) and then.target == SWITCHBOARD:
            then = Queue(SWITCHBOARD, 0)
        if isinstance(then, Queue):
            await self.store.run(queries.update_contact, contact_id, skill=then.skill)
            await chan.set_variable("KC_CONTACT_ID", contact_id)
            await chan.set_variable("KC_SKILL", then.skill)
            await menu_flow.queued(self, contact_id, then.priority)
            if self.on_queued is not None:
                self.on_queued(contact_id, then.skill, district, session.language, caller,
                               then.priority or None)
            await chan.set_variable("KC_NEXT", "wait")
        elif isinstance(then, Transfer):   # to an outside number: the dialplan dials it
            await menu_flow.transfer_out(self, chan, contact_id, then.target)
        elif isinstance(then, Hangup):
            await self._finish(contact_id, "info", {"reason": then.reason})
            await chan.set_variable("KC_NEXT", "hangup")

    async def _record_menu(self, contact_id: int, session: MenuSession, version: int) -> None:
        await self.store.run(queries.update_contact, contact_id, menu_path=list(session.path),
                             language=session.language)
        await self.store.run(queries.add_event, contact_id, iso(self.clock()), "menu",
                             {"version": version, "events": [list(map(str, e)) for e in session.events]})
        await menu_flow.record_referrals(self, contact_id, session)

    async def _finish(self, contact_id: int, outcome: str, data: dict) -> None:
        at = iso(self.clock())
        await self.store.run(queries.update_contact, contact_id, outcome=outcome, ended_at=at)
        await self.store.run(queries.add_event, contact_id, at, outcome, data)

    # ------------------------------------------------------------------ agents' phones
    async def agent_feature(self, chan: AgiChannel) -> None:
        args = chan.args
        code, agent = (args + ["", ""])[:2]
        if not from_agent_phone(chan, agent):
            log.warning("feature code %r for %r refused: not from that agent's own phone "
                        "(context %r, channel %r)", code, agent, chan.header("context"),
                        chan.header("channel"))
            return
        try:
            state = await self.on_feature(agent, code)
            phrase = AGENT_PHRASES.get(state, AGENT_PHRASES["error"])
        except (InvalidInput, NotFound) as exc:
            log.info("feature code %s from %s refused: %s", code, agent, exc)
            phrase = AGENT_PHRASES["error"]
        await chan.stream(str(await self.prompts.ensure(phrase, "sv")))

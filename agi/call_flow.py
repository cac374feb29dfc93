"""The FastAGI routes: a resident's call through the menu, and agents' feature codes.

A call is decided on the data held in memory (`agi.call_catalogue`), taken once at its start:
opening hours (`agi.after_hours`), then the menu the district plays, with its temporary
announcement before it. The menu itself is decided by `agi.menu.MenuSession` (pure); this
module only plays what it says, reads digits, and records the contact (the menu path, the
e-service referrals as contact events). When the caller is to wait for an agent, the AGI
session ends with `KC_NEXT=wait`: the dialplan holds them with music and announces them to the
ACD (UserEvent `KcWaiting`), so waiting callers never depend on this process staying up; a
transfer to an outside number ends with `KC_NEXT=transfer`, dialled by the dialplan.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from kc import queries, transfer_log
from kc.clock import Clock, iso
from kc.errors import CallerGone, InvalidInput, NotFound
from kc.store import Store
from kc.telemetry import Telemetry

from .call_catalogue import Catalogue, CallMenu, LiveCatalogue
from .fastagi import AgiChannel
from .dial_by_name import DialByName as DirectoryDialogue
from .menu import (Collect, DialByName, EServiceAction, Hangup, MenuSession, Queue, Speech,
                   Transfer)
from .prompts import PromptCache

log = logging.getLogger(__name__)

ALL_DIGITS = "0123456789*#"
SWITCHBOARD = "switchboard"
_NUMBER = re.compile(r"^\+?[0-9]{2,20}$")

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


# A step's fields that go into the call log (never the caller's number or name).
TOLD = ("district", "menu_path", "language", "skill", "outcome")


@dataclass
class CallFlow:
    store: Store
    prompts: PromptCache
    clock: Clock
    catalogue: LiveCatalogue                          # what calls decide on, held in memory
    on_feature: Callable[[str, str], Awaitable[str]]   # (agent id, code) -> new state
    after_hours: Any = None   # agi.after_hours.AfterHours: opening hours (set by the root)
    # told as a caller is sent to wait (contact id, skill, district, language, caller,
    # priority or None), so the ACD needs not read the contact back: see Distributor.expect
    on_queued: Callable[[int, str, str, str, str, int | None], None] | None = None
    telemetry: Telemetry = field(default_factory=Telemetry)   # each step told (kc.telemetry)
    directory: DirectoryDialogue | None = None   # dial by name (set by the root)
    # A caller who stays silent: the longest wait for a digit after a prompt (a node's own
    # shorter one is kept), and how many prompts in a row go unanswered before the node's
    # default action (KC_MENU_TIMEOUT, KC_MENU_SILENT_TRIES).
    digit_wait: float = 4.0
    silent_tries: int = 2
    _pending: set = field(default_factory=set, repr=False)   # records queued for the writer, not yet written

    async def _play(self, chan: AgiChannel, speech: Speech) -> str | None:
        """Play a speech; returns the digit that cut an interruptible one short (also one
        pressed while its prompt was still being prepared)."""
        return await self._say(chan, speech.text, speech.language, speech.audio,
                               ALL_DIGITS if speech.interruptible else "")

    async def _say(self, chan: AgiChannel, text: str, language: str, audio: str | None,
                   escape: str) -> str | None:
        preparing = self.prompts.resolve(text, language, audio)
        if escape:
            path, digit = await chan.listening(preparing)
            if digit is not None:
                return digit
        else:
            path = await preparing
        return await chan.stream(str(path), escape)

    async def _collect(self, chan: AgiChannel, step: Collect, early: str | None) -> str | None:
        digit = early or await self._play(chan, step.prompt)
        if digit is None:
            digit = await chan.wait_for_digit(min(step.timeout, self.digit_wait))
        return digit

    # ------------------------------------------------------------------ the resident's call
    def _write(self, record: queries.ContactRecord) -> None:
        """The contact's records of one call step, queued for the writer in one job and not
        waited for: the call goes on at once. Jobs run in the order queued, so whatever the
        ACD writes about this contact later lands after them."""
        if not record:
            return
        told = {k: v for k, v in record.fields.items() if k in TOLD}
        for _, kind, _ in record.events:
            self.telemetry.step("agi", kind, record.contact_id, **told)
        done = self.store.record_soon(queries.write_record, *record.plain())
        self._pending.add(done)
        done.add_done_callback(self._written)

    def _written(self, done: "asyncio.Future[None]") -> None:
        self._pending.discard(done)
        if not done.cancelled() and done.exception() is not None:
            log.error("contact records not written: %s", done.exception())

    async def settle(self) -> None:
        """Wait for the records still queued (tests, shutdown)."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def menu(self, chan: AgiChannel) -> None:
        district, raw_caller = (chan.args + ["", ""])[:2]
        now = iso(self.clock())
        caller = clean_caller(chan.header("callerid"), 64)
        contact_id = await self.store.insert_record(   # a database fault delays it only
            queries.create_contact, "contacts", channel="phone", district=district or None,
            dialed=clean_caller(chan.header("dnid") or chan.header("extension"), 64),
            caller=caller or None,
            caller_name=clean_caller(chan.header("calleridname")) or None,
            started_at=now, uniqueid=chan.header("uniqueid"), channel_name=chan.header("channel"),
        )
        self.telemetry.step("agi", "started", contact_id, district=district or None)
        record = queries.ContactRecord(contact_id)
        if raw_caller:   # the dialplan refused a malformed caller ID: keep it, escaped, as data
            record.event(now, "caller_id_refused", {"raw": decode_raw_caller(raw_caller)})
        catalogue = await self.catalogue.current()   # this call keeps it to the end
        if self.after_hours is not None and district:   # closed: a partner's menu, or handled
            self._write(record)
            record = queries.ContactRecord(contact_id)
            district = await self.after_hours.before_menu(chan, contact_id, district, catalogue)
            if district is None:
                return
        call_menu = catalogue.menu_for(district)
        if call_menu is None:
            log.error("no published menu for district %r", district)
            self._write(self._finish(record, "failed", {"reason": "no menu"}))
            await chan.set_variable("KC_NEXT", "fallback")
            return
        if call_menu.owner != district:
            record.event(iso(self.clock()), "shared_menu",
                         {"menu_of": call_menu.owner, "version": call_menu.version})
        version = call_menu.version
        session = MenuSession(call_menu.menu)
        try:
            announced = await self._announcement(chan, catalogue, district, call_menu)
            self._announcement_record(record, announced)
            self._write(record)
            record = queries.ContactRecord(contact_id)
            step = session.start()
            # a digit pressed during the district's announcement answers the menu's first prompt
            pressed = announced[2] if announced else None
            silent = 0            # prompts in a row the caller let pass without a digit
            while True:
                early, pressed = pressed, None   # a digit pressed during a speech answers the next prompt
                for speech in step.say:
                    if early is None:
                        early = await self._play(chan, speech)
                then = step.then
                if isinstance(then, Collect):
                    digit = await self._collect(chan, then, early)
                    silent = 0 if digit is not None else silent + 1
                    step = (session.press(digit) if digit is not None
                            else session.give_up() if silent >= self.silent_tries
                            else session.timeout())
                    continue
                break
        except CallerGone:
            self._record_menu(record, session, version)
            self._write(self._finish(record, "abandoned", {"where": "menu"}))
            raise
        # The decision is made: hand the caller on first, the records follow in one job.
        self._record_menu(record, session, version)
        if isinstance(then, DialByName):
            if await self._dial_by_name(chan, record, contact_id, session.language):
                return
            then = Transfer(SWITCHBOARD)      # nobody chosen: the switchboard answers
        if isinstance(then, Transfer) and then.target == SWITCHBOARD:
            if catalogue.switchboard_skill is None:     # a centre without a switchboard
                await self._finish(contact_id, "failed", {"reason": "no switchboard skill"})
                await chan.set_variable("KC_NEXT", "hangup")
                return
            then = Queue(catalogue.switchboard_skill, 0)
        if isinstance(then, Queue) and then.skill == catalogue.switchboard_skill:
            district = catalogue.switchboard_of(district)   # whose switchboard answers for it
        if isinstance(then, Queue):
            record.set(skill=then.skill)
            if then.priority:   # the priority the menu option gave the call (0: default)
                record.set(menu_priority=then.priority)
            self._write(record)
            if self.on_queued is not None:
                self.on_queued(contact_id, then.skill, district, session.language, caller,
                               then.priority or None)
            await chan.set_variables(KC_CONTACT_ID=contact_id, KC_SKILL=then.skill,
                                     KC_SURVEY="yes" if then.survey else "no", KC_NEXT="wait")
        elif isinstance(then, Transfer):   # to an outside number: the dialplan dials it
            await self._transfer_out(chan, record, then.target)
        elif isinstance(then, Hangup):
            self._write(self._finish(record, "info", {"reason": then.reason}))
            await chan.set_variable("KC_NEXT", "hangup")

    def _record_menu(self, record: queries.ContactRecord, session: MenuSession, version: int) -> None:
        record.set(menu_path=list(session.path), language=session.language)
        record.event(iso(self.clock()), "menu",
                     {"version": version, "events": [list(map(str, e)) for e in session.events]})
        self._record_referrals(record, session)

    async def _announcement(self, chan: AgiChannel, catalogue: Catalogue, district: str,
                            call_menu: CallMenu) -> tuple[list[str], str, str | None] | None:
        """The district's temporary announcement, in each menu language it has (default first);
        a caller who knows the menu may press its digit during it (the rest is skipped).
        Returns (languages played, end time, the digit pressed or None), or None when there
        is none."""
        ann = catalogue.announcement(district, self.clock())
        if ann is None:
            return None
        played: list[str] = []
        for lang in call_menu.menu.languages:
            text, audio = ann.texts.get(lang), ann.audio.get(lang)
            if not (text or audio):
                continue
            played.append(lang)
            digit = await self._say(chan, text or "", lang, audio, ALL_DIGITS)
            if digit is not None:
                return played, ann.ends_at, digit
        return played, ann.ends_at, None

    def _announcement_record(self, record: queries.ContactRecord,
                             played: tuple[list[str], str, str | None] | None) -> None:
        if played is not None:
            data = {"languages": played[0], "ends_at": played[1]}
            if played[2] is not None:
                data["interrupted_by"] = played[2]
            record.event(iso(self.clock()), "announcement", data)

    def _record_referrals(self, record: queries.ContactRecord, session: MenuSession) -> None:
        """Each e-service the caller was pointed to becomes a contact event `eservice_referral`."""
        services = {}
        for node in session.menu.nodes.values():
            for action in [o.action for o in node.options] + [node.on_fail]:
                if isinstance(action, EServiceAction):
                    services.setdefault(action.name, action)
        for kind, name in session.events:
            if kind != "eservice":
                continue
            action = services.get(name)
            address = ""
            if action is not None:
                address = (action.address.get(session.language)
                           or action.address.get(session.menu.default_language, ""))
            record.event(iso(self.clock()), "eservice_referral",
                         {"name": name, "address": address, "language": session.language})

    async def _dial_by_name(self, chan: AgiChannel, record: queries.ContactRecord,
                            contact_id: int, language: str) -> bool:
        """The caller picks a person of the staff directory; True when they are being
        connected (through the outbound trunk, `kc-transfer-out`), False for the switchboard."""
        if self.directory is None:
            return False
        try:
            person = await self.directory.pick(chan, None, language)
        except CallerGone:
            self._write(self._finish(record, "abandoned", {"where": "directory"}))
            raise
        if person is None:
            record.event(iso(self.clock()), "dial_by_name", {"chosen": None})
            return False
        at = iso(self.clock())
        record.event(at, "dial_by_name", {"chosen": person["id"], "to": person["number"]})
        await self.store.insert_record(
            transfer_log.add_transfer, "transfers", contact_id=contact_id, agent=None,
            kind="dial_by_name", target=person["number"], target_name=person["name"],
            started_at=at, ended_at=at, outcome="transferred")
        await self._transfer_out(chan, record, person["number"], "directory")
        return True

    async def _transfer_out(self, chan: AgiChannel, record: queries.ContactRecord,
                            number: str, how: str = "transfer") -> None:
        """A transfer to an outside number: recorded `transferred`, dialled by the dialplan
        (`kc-transfer`), which plays an apology if the number cannot be reached."""
        if not _NUMBER.match(number):   # validated at publish; never hand anything else to Dial()
            log.error("refusing transfer to %r", number)
            number = ""
        self._write(self._finish(record, "transferred", {"to": number}))
        if number:
            await chan.set_variables(KC_TRANSFER=number, KC_NEXT=how)
        else:
            await chan.set_variable("KC_TRANSFER", "")
            await chan.set_variable("KC_NEXT", "transfer")

    def _finish(self, record: queries.ContactRecord, outcome: str,
                data: dict) -> queries.ContactRecord:
        at = iso(self.clock())
        return record.set(outcome=outcome, ended_at=at).event(at, outcome, data)

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

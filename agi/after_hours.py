"""After-hours handling of a resident's call, carried out: route to an open partner, or inform
and take a voice message or a callback request. Never dead air: every branch says something.

What to do is decided by `agi.after_hours_decision.decide` (pure) over the opening hours held
in memory (`agi.call_catalogue`: a change over the API or the pages applies to the next call,
no restart); this module plays the decision on the AGI channel and records it. Three entry points:

- `before_menu(chan, contact_id, district, catalogue)` -- the hook at the start of
  `CallFlow.menu`: returns the district whose menu the call continues in (the called one when
  open, else the first open district of its `after_hours.route_to`), or None when the call was
  handled here (`KC_NEXT=hangup` set).
- `queue_closed(chan)` -- FastAGI route `after-hours` (dialplan `kc-after-hours`): a caller
  whose queue closed while waiting, redirected out of `kc-wait` by `QueueCloser`; the same
  choices, or back to waiting in a partner's queue (`KC_NEXT=wait`).
- `QueueCloser.sweep()` -- what the ACD calls (every few seconds): waiting callers whose queue
  (district or per-queue hours) is closed are released and redirected to `kc-after-hours`.

Voice messages are recorded by Asterisk (AGI `RECORD FILE`, the AGI form of `Record()`) into
`<asterisk root>/spool/kc-messages/` and registered, like callback requests, as the contact's
outcome `after_hours` plus a row in `after_hours_requests` due at the next opening.
"""
from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kc import queries

from schedules import schedule_store
from kc.clock import Clock, iso
from kc.errors import CallerGone, KcError
from kc.store import Store
from kc.telemetry import Telemetry

from .after_hours_decision import (LANGUAGES, Decision, Offer, Open, Routed, decide, next_language,
                                   text)
from .call_catalogue import Catalogue, LiveCatalogue
from .fastagi import AgiChannel
from .prompts import PromptCache

log = logging.getLogger(__name__)

VOICE, CALLBACK = "1", "2"
LANGUAGE_KEY = "9"
CHOICE_ROUNDS = 2
AFTER_HOURS_CONTEXT = "kc-after-hours"


def _caller(chan: AgiChannel) -> str:
    return (chan.header("callerid") or "").strip()


@dataclass
class AfterHours:
    store: Store
    prompts: PromptCache
    clock: Clock
    catalogue: LiveCatalogue
    recordings_dir: Path
    run_ids: tuple[int, int] | None = None   # Asterisk's (uid, gid) when it runs as its own user
    max_record_seconds: int = 120
    choice_timeout: float = 6.0
    telemetry: Telemetry = field(default_factory=Telemetry)   # each step told (kc.telemetry)

    def __post_init__(self) -> None:
        self.recordings_dir = Path(self.recordings_dir).absolute()
        try:   # Asterisk (its own user) writes the recordings; we read them
            self.recordings_dir.mkdir(parents=True, exist_ok=True)
            if self.run_ids:
                os.chown(self.recordings_dir, *self.run_ids)
            os.chmod(self.recordings_dir, 0o770 if self.run_ids else 0o700)
        except OSError as exc:
            log.warning("recordings directory %s: %s", self.recordings_dir, exc)

    def routes(self) -> dict[str, Any]:
        return {"after-hours": self.queue_closed}

    # ------------------------------------------------------------------ entry points
    async def before_menu(self, chan: AgiChannel, contact_id: int, district: str,
                          catalogue: Catalogue) -> str | None:
        decision = decide(catalogue.hours, catalogue.menus, district, self.clock(),
                          caller=_caller(chan))
        if isinstance(decision, Open):
            return decision.district
        try:
            return await self._carry_out(chan, contact_id, decision,
                                         offered=self._offered(catalogue, district))
        except CallerGone:
            await self._abandoned(contact_id)
            raise

    async def queue_closed(self, chan: AgiChannel) -> None:
        """FastAGI `after-hours,<contact id>`: the caller's queue closed while they waited."""
        await chan.set_variable("KC_NEXT", "hangup")
        try:
            contact_id = int((chan.args or [""])[0])
            contact = await self.store.run(queries.get_contact, contact_id)
        except (ValueError, KcError):
            log.warning("after-hours route without a valid contact: %s", chan.args)
            await self._say(chan, text("goodbye", "sv"), "sv")
            return
        district, skill = contact["district"], contact["skill"]
        catalogue = await self.catalogue.current()
        decision = decide(catalogue.hours, catalogue.menus, district, self.clock(), skill,
                          caller=_caller(chan))
        if isinstance(decision, Open):       # opened again meanwhile: back to waiting
            await chan.set_variable("KC_NEXT", "wait")
            return
        self.telemetry.step("agi", "queue_closed", contact_id, district=district, queue=skill)
        await self.store.record(queries.add_event, contact_id, iso(self.clock()), "queue_closed",
                             {"district": district, "skill": skill})
        try:
            target = await self._carry_out(chan, contact_id, decision, skill,
                                           language=contact["language"],
                                           offered=self._offered(catalogue, district))
        except CallerGone:
            await self._abandoned(contact_id)
            raise
        if target is not None:
            await chan.set_variable("KC_NEXT", "wait")

    # ------------------------------------------------------------------ the closed call
    def _offered(self, catalogue: Catalogue, district: str) -> list[str]:
        """The languages a caller may switch to with 9: the district's menu languages the
        after-hours texts are said in (a voice here), Swedish first when there is no menu."""
        menu = catalogue.menu_for(district)
        languages = menu.menu.languages if menu is not None else ["sv", "en"]
        return [lang for lang in languages if lang in LANGUAGES and lang in self.prompts.voices]

    async def _carry_out(self, chan: AgiChannel, contact_id: int, decision: Decision,
                         skill: str | None = None, language: str | None = None,
                         offered: list[str] | None = None) -> str | None:
        """Play and record a closed district's decision; returns the partner that took the
        call, or None when it ends here (`KC_NEXT=hangup`)."""
        if language not in LANGUAGES:
            language = await self.store.run(schedule_store.last_language, _caller(chan) or None)
        language = language if language in LANGUAGES and language in self.prompts.voices else "sv"
        if isinstance(decision, Routed):
            await self._routed(chan, contact_id, decision, skill, language)
            return decision.target
        assert isinstance(decision, Offer)
        await self._inform_and_offer(chan, contact_id, decision, _caller(chan), language,
                                     offered if offered is not None else ["sv", "en"])
        await chan.set_variable("KC_NEXT", "hangup")
        return None

    async def _routed(self, chan: AgiChannel, contact_id: int, routed: Routed, skill: str | None,
                      language: str) -> None:
        at = iso(self.clock())
        self.telemetry.step("agi", "after_hours", contact_id, kind="routed", district=routed.district,
                            to=routed.target, reason=routed.reason)
        await self.store.record(queries.update_contact, contact_id, district=routed.target)
        await self.store.record(queries.add_event, contact_id, at, "after_hours",
                             {"kind": "routed", "from": routed.district, "to": routed.target,
                              "reason": routed.reason, "skill": skill})
        await self.store.run(schedule_store.add_request, contact_id=contact_id,
                             district=routed.district, kind="routed", target=routed.target,
                             language=language, created_at=at)
        await self._say(chan, routed.sentence(language), language)

    async def _inform_and_offer(self, chan: AgiChannel, contact_id: int, offer: Offer,
                                caller: str, language: str, offered: list[str]) -> None:
        choices = offer.choices(language) is not None
        info_spoken, digit, rounds, switches = False, None, 0, 0
        while True:
            sentences = [] if info_spoken else [(s, language) for s in offer.info(language)]
            info_spoken = True
            other = next_language(offered, language)
            if choices:
                sentences.append((offer.choices(language), language))
                if other is not None:          # 9: the next of the menu's languages, said in it
                    sentences.append((text("this_language", other), other))
            digit = None
            for sentence, lang in sentences:
                digit = await self._say(chan, sentence, lang, interruptible=choices)
                if digit:
                    break
            if not choices:
                break
            if digit is None:
                digit = await chan.wait_for_digit(self.choice_timeout)
            if digit == LANGUAGE_KEY and other is not None and switches < 2 * len(offered):
                language, info_spoken, switches = other, False, switches + 1
                continue
            if (digit == VOICE and offer.voice) or (digit == CALLBACK and offer.callback):
                break
            rounds += 1
            if rounds >= CHOICE_ROUNDS:
                digit = None
                break
        due = iso(offer.due) if offer.due else None
        base = dict(contact_id=contact_id, district=offer.district, language=language,
                    created_at=iso(self.clock()), due_at=due)
        if digit == VOICE and offer.voice:
            recording, seconds = await self._record(chan, contact_id, language)
            await self._register(contact_id, "voice_message",
                                 {**base, "recording": recording}, {"seconds": seconds})
            if not chan.hung_up:
                await self._say(chan, text("recorded", language), language)
        elif digit == CALLBACK and offer.callback:
            await self._register(contact_id, "callback", {**base, "callback_number": caller}, {})
            await self._say(chan, text("callback", language), language)
        else:
            await self._register(contact_id, "informed", None, {"next_open": due})
            await self._say(chan, text("goodbye", language), language)

    async def _abandoned(self, contact_id: int) -> None:
        contact = await self.store.run(queries.get_contact, contact_id)
        if contact["outcome"] is None:
            at = iso(self.clock())
            self.telemetry.step("agi", "abandoned", contact_id, where="after_hours")
            await self.store.record(queries.update_contact, contact_id, outcome="abandoned", ended_at=at)
            await self.store.record(queries.add_event, contact_id, at, "abandoned", {"where": "after_hours"})

    async def _register(self, contact_id: int, kind: str, request: dict[str, Any] | None,
                        extra: dict[str, Any]) -> None:
        at = iso(self.clock())
        self.telemetry.step("agi", "after_hours", contact_id, kind=kind)
        await self.store.record(queries.update_contact, contact_id, outcome="after_hours", ended_at=at)
        data = {"kind": kind, **extra}
        if request:
            data.update({k: request.get(k) for k in ("recording", "callback_number", "due_at")
                         if request.get(k)})
            await self.store.run(schedule_store.add_request, kind=kind, **request)
        await self.store.record(queries.add_event, contact_id, at, "after_hours", data)

    async def _record(self, chan: AgiChannel, contact_id: int, language: str) -> tuple[str, float]:
        await self._say(chan, text("record", language), language)
        stamp = self.clock().strftime("%Y%m%dT%H%M%S")
        base = self.recordings_dir / f"contact-{contact_id}-{stamp}"
        seconds = 0.0
        try:
            result = await chan.command(
                "RECORD FILE", str(base), "wav", "#", self.max_record_seconds * 1000, 0, "BEEP",
                "s=6", timeout=self.max_record_seconds + 15)
            if "endpos=" in result.line:
                try:
                    seconds = int(result.line.rsplit("endpos=", 1)[1].split()[0]) / 8000
                except ValueError:
                    pass
            if result.result == "-1":
                chan.hung_up = True
        except CallerGone:
            pass   # hung up while recording: Asterisk keeps what it recorded
        return str(base) + ".wav", round(seconds, 1)

    async def _say(self, chan: AgiChannel, sentence: str, language: str,
                   interruptible: bool = False) -> str | None:
        if chan.hung_up:
            raise CallerGone("caller left")
        if not interruptible:
            return await chan.stream(str(await self.prompts.ensure(sentence, language)), "")
        path, digit = await chan.listening(self.prompts.ensure(sentence, language))
        return digit if path is None else await chan.stream(str(path), "0123456789*#")


# ---------------------------------------------------------------------- the ACD side

@dataclass
class QueueCloser:
    """Takes waiting callers out of queues that closed, to the after-hours choices."""

    store: Store
    clock: Clock
    catalogue: LiveCatalogue
    distributor: Any                 # acd.distributor.Distributor
    ami: Any                         # acd.ami.AmiLink
    interval: float = 5.0
    _task: asyncio.Task | None = field(default=None, repr=False)

    async def closed_queues(self, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of the (district, skill) queues are closed now: the function for the ACD."""
        hours = (await self.catalogue.current()).hours
        now = self.clock()
        return {(district, skill) for district, skill in pairs
                if not hours.is_open(district, now, skill)}

    async def sweep(self) -> list[int]:
        dist = self.distributor
        # a caller with a pending call-back has no channel: they keep their place for the opening
        waiting = {cid: w for cid, w in dist.waiting.items()
                   if w.offered_to is None and not getattr(w, "callback", None) and w.channel}
        if not waiting:
            return []
        closed = await self.closed_queues({(w.call.district, w.call.skill) for w in waiting.values()})
        moved = []
        for cid, entry in waiting.items():
            if (entry.call.district, entry.call.skill) not in closed:
                continue
            if dist.waiting.get(cid) is not entry or dist.take_waiting(cid) is None:
                continue   # offered or gone meanwhile
            try:
                await self.ami.action("Redirect", Channel=entry.channel,
                                      Context=AFTER_HOURS_CONTEXT, Exten="s", Priority="1")
            except Exception as exc:   # the caller hung up, or AMI is down: keep them waiting
                log.warning("could not move contact %s out of its closed queue: %s", cid, exc)
                dist.return_waiting(entry)
                continue
            dist.closed_out(entry)
            await self.store.record(queries.add_event, cid, iso(self.clock()), "queue_closing",
                                 {"queue": dist.queue_name(entry.call.skill, entry.call.district)})
            moved.append(cid)
        return moved

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("after-hours sweep failed")

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


def setup(settings: Any, store: Store, prompts: PromptCache, clock: Clock,
          catalogue: LiveCatalogue, distributor: Any, ami: Any,
          run_ids: tuple[int, int] | None) -> tuple[AfterHours, QueueCloser]:
    """Built by the composition root: the call-flow hook and the running queue closer
    (`run_ids`: the (uid, gid) Asterisk runs as, who must read the voice messages; None: ours)."""
    hours = AfterHours(store, prompts, clock, catalogue,
                       settings.asterisk_root / "spool" / "kc-messages", run_ids=run_ids)
    closer = QueueCloser(store, clock, catalogue, distributor, ami)
    closer.start()
    return hours, closer

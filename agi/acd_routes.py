"""FastAGI routes of the waiting room and of agents' transfers (the ACD's run-time side).

- `announce,<contact>,ahead`: from `kc-wait` a few seconds before a waiting caller's announcement
  is due: sets `KC_ANNOUNCE` to the announcement's files (`<file>&<file>...`, one command),
  which the dialplan plays itself the moment the wait ends. Nothing crosses to this process
  when the words are due: with 1,000 callers waiting, the round trips at that moment (the
  connection, then one per part) are what made announcements late.
- `announce,<contact>`: from `kc-wait` when nothing was set ahead (this process was busy or
  restarting): the caller hears their place in the queue and the estimated wait, in their
  language, part by part, and goes back to the music with their place kept (nothing is
  re-enqueued).
- `callback,<contact>`: the waiting caller pressed 1: the place is kept for a call-back; sets
  `KC_CALLBACK=yes` when accepted, so the dialplan can hang up.
- `transfer,<contact>,<digits>`: the agent's phone blind-transferred the caller (REFER or `#1`):
  a short code is one of the organisation's transfer codes (data, held by the call catalogue),
  three or more digits a back-office number. Sets `KC_NEXT=wait` (with the new `KC_CONTACT_ID`) or `KC_NEXT=out`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acd.options import NUMBER_RE
from kc.errors import CallerGone, KcError

from . import phrasebook, phrases
from .fastagi import AgiChannel, Handler
from .phrase_recordings import phrase
from .phrases import PhraseParts
from .prompts import PromptCache, PromptError

log = logging.getLogger(__name__)

# What the dialplan's `Background(${KC_ANNOUNCE})` would split a file name at.
_DIALPLAN_SEPARATORS = frozenset(",&|()")


def _playable(directory: Path) -> bool:
    """Can the dialplan play files from here as one `Background` argument? (The files' own
    names are hashes.)"""
    return not _DIALPLAN_SEPARATORS & set(str(directory))


def _contact_id(chan: AgiChannel) -> int | None:
    try:
        return int((chan.args or [""])[0])
    except ValueError:
        return None


@dataclass
class AcdRoutes:
    distributor: Any            # acd.distributor.Distributor
    prompts: PromptCache
    catalogue: Any = None       # agi.call_catalogue.LiveCatalogue: the transfer codes

    def routes(self) -> dict[str, Handler]:
        return {"announce": self.announce, "callback": self.callback, "transfer": self.transfer}

    async def announce(self, chan: AgiChannel) -> None:
        contact_id = _contact_id(chan)
        ahead = chan.args[1:2] == ["ahead"]
        if ahead and not _playable(self.prompts.directory):
            return                    # nothing set: the dialplan asks when due, part by part
        info = await self.distributor.waiting_info(contact_id) if contact_id is not None else None
        if info is None:
            if contact_id is not None and await self._finished(contact_id):
                await chan.set_variable("KC_WAIT_DONE", "yes")   # nothing left to wait for
            return
        position, eta, language = info
        parts, lang = phrases.announcement(self._spoken(language), position, eta)
        paths = PhraseParts(self.prompts).ready(parts, lang)   # never synthesised at call time
        if paths is None:
            return                    # still rendering at start-up: the next turn says it
        if ahead:
            await chan.set_variable("KC_ANNOUNCE", "&".join(map(str, paths)))
            return
        try:
            for path in paths:
                digit = await chan.stream(str(path), "1")
                if digit == "1":      # pressed during the announcement: a call-back
                    await self._callback(chan, contact_id)
                    return
        except CallerGone:
            return

    def _spoken(self, language: str) -> str:
        """The caller's language when it has a voice here, else Swedish (the announcement is
        composed with numbers: a language without a voice cannot have it recorded whole)."""
        return language if language in self.prompts.voices else phrasebook.DEFAULT_LANGUAGE

    async def _finished(self, contact_id: int) -> bool:
        from kc import queries
        try:
            contact = await self.distributor.store.run(queries.get_contact, contact_id)
        except KcError:
            return True
        return contact["outcome"] is not None

    async def callback(self, chan: AgiChannel) -> None:
        contact_id = _contact_id(chan)
        if contact_id is not None:
            await self._callback(chan, contact_id)

    async def _callback(self, chan: AgiChannel, contact_id: int) -> None:
        if not await self.distributor.request_callback(contact_id):
            return   # the caller keeps waiting with music
        await chan.set_variable("KC_CALLBACK", "yes")
        entry = self.distributor.waiting.get(contact_id)
        language = entry.call.language if entry else phrasebook.DEFAULT_LANGUAGE
        try:
            await chan.stream(str(await phrase(self.prompts, "callback_confirmed", language)))
        except (CallerGone, PromptError):
            pass

    async def transfer(self, chan: AgiChannel) -> None:
        args = chan.args + ["", ""]
        contact_id, digits = _contact_id(chan), args[1]
        if contact_id is None:
            return
        codes = (await self.catalogue.current()).transfer_codes if self.catalogue else {}
        target = codes.get(digits) or (digits if NUMBER_RE.match(digits) else "")
        try:
            done = await self.distributor.transfer(contact_id, target, redirect=False)
        except KcError as exc:
            log.info("transfer of contact %s to %r refused: %s", contact_id, digits, exc)
            return
        if done["new_contact"] is not None:
            await chan.set_variable("KC_CONTACT_ID", done["new_contact"])
            await chan.set_variable("KC_NEXT", "wait")
        else:
            await chan.set_variable("KC_NEXT", "out")

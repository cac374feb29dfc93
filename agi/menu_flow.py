"""What the menu call flow does around the engine: the temporary announcement before the
menu, e-service referrals as contact events, and the end of a menu call on the dialplan side.

Kept apart from `agi.call_flow` (a shared file) so that file only carries one-line hooks.
"""
from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from kc import queries

from agi import menu_store
from kc.clock import iso

from .menu import EServiceAction, Menu, MenuSession, with_district

if TYPE_CHECKING:
    from .call_flow import CallFlow
    from .fastagi import AgiChannel

log = logging.getLogger(__name__)

_NUMBER = re.compile(r"^\+?[0-9]{2,20}$")


async def play_announcement(flow: "CallFlow", chan: "AgiChannel", district: str,
                            menu: Menu, contact_id: int) -> None:
    """The district's temporary announcement, in each menu language it has (default first)."""
    ann = await flow.store.run(menu_store.active_announcement, district, iso(flow.clock()))
    if not ann:
        return
    played = []
    for lang in menu.languages:
        text, audio = ann["texts"].get(lang), ann["audio"].get(lang)
        if not (text or audio):
            continue
        path = await flow.prompts.resolve(text or "", lang, audio)
        await chan.stream(str(path), "")
        played.append(lang)
    await flow.store.run(queries.add_event, contact_id, iso(flow.clock()), "announcement",
                         {"languages": played, "ends_at": ann["ends_at"]})


async def record_referrals(flow: "CallFlow", contact_id: int, session: MenuSession) -> None:
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
        await flow.store.run(queries.add_event, contact_id, iso(flow.clock()), "eservice_referral",
                             {"name": name, "address": address, "language": session.language})


async def transfer_out(flow: "CallFlow", chan: "AgiChannel", contact_id: int, number: str) -> None:
    """A transfer to an outside number: recorded `transferred`, dialled by the dialplan
    (`kc-transfer`), which plays an apology if the number cannot be reached."""
    if not _NUMBER.match(number):   # validated at publish; never hand anything else to Dial()
        log.error("refusing transfer to %r", number)
        number = ""
    await flow._finish(contact_id, "transferred", {"to": number})
    await chan.set_variable("KC_TRANSFER", number)
    await chan.set_variable("KC_NEXT", "transfer")


async def queued(flow: "CallFlow", contact_id: int, priority: int) -> None:
    """Remember the priority the menu option gave the call (0 is the default)."""
    if priority:
        await flow.store.run(queries.update_contact, contact_id, menu_priority=priority)


async def published_menu(flow: "CallFlow", contact_id: int, district: str) -> tuple[int, dict] | None:
    """(version, body) the call to `district` plays: its owner's live menu when it shares one
    (recorded as a contact event `shared_menu`), with `{district}` replaced by the called
    district's name. The contact keeps the called district, so queues route per district."""
    found = await flow.store.run(menu_store.menu_for_call, district)
    if found is None:
        return None
    if found["owner"] != district:
        await flow.store.run(queries.add_event, contact_id, iso(flow.clock()), "shared_menu",
                             {"menu_of": found["owner"], "version": found["version"]})
    return found["version"], with_district(found["body"], found["name"])

"""Every change is written down: who, what, when, before and after."""
from __future__ import annotations

from typing import Any

from .clock import Clock, iso
from .store import Store
from . import web_store


async def audit(store: Store, clock: Clock, username: str, action: str, target: str,
                before: Any = None, after: Any = None) -> None:
    await store.run(web_store.add_audit, iso(clock()), username, action, target, before, after)

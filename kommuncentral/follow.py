"""The running service follows the organisation: when districts, numbers, agents, skills or
queues change -- through the admin site, the API, or `kc config import` from another process --
the ACD reloads them and, where what Asterisk needs changed (the numbers residents dial, the
agents' endpoints), the dialplan and PJSIP are rendered again and reloaded. No restart.

The database's change stamp (`kc.organisation.data_stamp`, moved by triggers) says that
something changed; a fingerprint of what the PBX is rendered from says whether Asterisk must
reload.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import sqlite_utils

from kc import organisation, queries
from kc.store import Store

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0


def pbx_fingerprint(db: sqlite_utils.Database) -> tuple:
    """What the PBX's configuration is rendered from."""
    return (tuple((d.id, d.numbers) for d in queries.list_districts(db)),
            tuple(queries.agent_sip_credentials(db)))


class Follower:
    def __init__(self, store: Store, reload_acd: Callable[[], Awaitable[None]],
                 reload_pbx: Callable[[], Awaitable[str]]):
        self.store, self.reload_acd, self.reload_pbx = store, reload_acd, reload_pbx
        self._stamp: int | None = None
        self._pbx: tuple | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._stamp = await self.store.read(organisation.data_stamp)
        self._pbx = await self.store.read(pbx_fingerprint)

    async def changed(self) -> str:
        """Bring the ACD and the PBX up to date now; says what was done."""
        async with self._lock:
            self._stamp = await self.store.read(organisation.data_stamp)
            await self.reload_acd()
            pbx = await self.store.read(pbx_fingerprint)
            if pbx == self._pbx:
                return "ACD reloaded"
            out = await self.reload_pbx()
            self._pbx = pbx
            return f"ACD reloaded; Asterisk reloaded: {out[:200]}"

    async def run(self) -> None:
        """Poll the stamp; follow any change (e.g. `kc config import` from a shell)."""
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                if await self.store.read(organisation.data_stamp) != self._stamp:
                    log.info("organisation changed: %s", await self.changed())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("following an organisation change failed; retried")

"""The e-mail channel's directory, held in memory and refreshed when the organisation changes:
which address belongs to which district (districts in service only), the mail domain, and the
keywords that send a written matter to a skill. All of it is data (`kc.organisation`); a district
added, given an address or retired reaches the SMTP intake, the desk's replies and the case
form at their next use, without a restart.
"""
from __future__ import annotations

import asyncio
import logging

import sqlite_utils

from kc import organisation
from kc.errors import KcError
from kc.store import Store

from .email import Mailboxes
from .messages import Categoriser

log = logging.getLogger(__name__)

NO_DOMAIN = "localhost"   # the SMTP greeting and Message-IDs of a centre without a mail domain


def load(db: sqlite_utils.Database) -> tuple[int, Mailboxes, Categoriser]:
    at = organisation.data_stamp(db)
    domain, addresses, keywords, fallback = organisation.mail_directory(db)
    return (at, Mailboxes(domain or NO_DOMAIN, addresses),
            Categoriser({skill: tuple(words) for skill, words in keywords.items()}, fallback))


class MailDirectory:
    """The current `Mailboxes` and `Categoriser` (built by the composition root)."""

    def __init__(self, store: Store):
        self._store = store
        self._held: tuple[int, Mailboxes, Categoriser] | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:
            self._held = await self._store.run(load)

    async def current(self) -> tuple[Mailboxes, Categoriser]:
        if self._held is None:
            await self.refresh()
        else:
            try:
                now = await self._store.read(organisation.data_stamp)
            except KcError:
                log.exception("organisation stamp unreadable; using the directory held")
                now = self._held[0]
            if now != self._held[0]:
                await self.refresh()
        assert self._held is not None
        return self._held[1], self._held[2]

    @property
    def domain(self) -> str:
        """The mail domain as last loaded (the SMTP greeting)."""
        return self._held[1].domain if self._held else NO_DOMAIN

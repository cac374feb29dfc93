"""The SMTP intake (aiosmtpd): mail for the centre's mailboxes is accepted, parsed and
registered as an `email` contact with a queued task; the ACD's task runner offers it to an
agent. Everything else is refused at RCPT (unknown mailbox) or DATA (not a usable e-mail).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

from aiosmtpd.smtp import SMTP, Envelope, Session

from kc.clock import Clock, iso
from kc.errors import InvalidInput
from kc.store import Store

from .email import parse_message
from .mail_directory import MailDirectory
from .messages import create_written_contact

log = logging.getLogger(__name__)


class IntakeHandler:
    """aiosmtpd handler: accepts mail for the centre's mailboxes only."""

    MAX_RCPT = 5

    def __init__(self, store: Store, clock: Clock, directory: MailDirectory,
                 on_contact: Callable[[int], None] | None = None):
        self.store, self.clock, self.on_contact = store, clock, on_contact
        self.directory = directory     # addresses and keywords: data, current at each message

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        mailboxes, _ = await self.directory.current()
        if mailboxes.district_of(address) is None:
            return "550 5.1.1 No such mailbox here"
        if len(envelope.rcpt_tos) >= self.MAX_RCPT:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            incoming = parse_message(raw)
        except InvalidInput as exc:
            log.info("refused a malformed message from %s: %s", session.peer, exc)
            return f"554 5.6.0 Malformed message: {exc}"
        ids = []
        mailboxes, categorise = await self.directory.current()
        for rcpt in dict.fromkeys(a.lower() for a in envelope.rcpt_tos):
            district = mailboxes.district_of(rcpt)
            if district is None:     # retired since RCPT
                continue
            skill = categorise(f"{incoming.subject}\n{incoming.body}")
            contact_id = await self.store.run(
                create_written_contact, channel="email", district=district,
                caller=incoming.sender, caller_name=incoming.sender_name, skill=skill,
                at=iso(self.clock()), subject=incoming.subject, body=incoming.body,
                to_addr=rcpt, message_id=incoming.message_id, queue_task=True,
                attachments=[(a.filename, a.content_type, a.data) for a in incoming.attachments])
            ids.append(contact_id)
            log.info("e-mail to %s registered as contact %s (%s)", rcpt, contact_id, skill)
        if self.on_contact:
            for contact_id in ids:
                self.on_contact(contact_id)
        return "250 2.0.0 Message accepted for delivery"


class SmtpIntake:
    """The listening SMTP server; `start` raises OSError when the address is taken."""

    def __init__(self, host: str, port: int, max_message_bytes: int, handler: IntakeHandler):
        self.host, self.port, self.max_message_bytes = host, port, max_message_bytes
        self.handler = handler
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await self.handler.directory.current()

        def factory() -> SMTP:
            return SMTP(self.handler, data_size_limit=self.max_message_bytes,
                        hostname=self.handler.directory.domain,
                        ident="Kommuncentral intake", enable_SMTPUTF8=True, loop=loop,
                        command_call_limit=100, timeout=60)

        self.server = await loop.create_server(factory, self.host, self.port)
        log.info("SMTP intake on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()



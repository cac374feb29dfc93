"""Written channels into the centre: the SMTP intake (aiosmtpd), replies through a relay,
keyword categorisation, and the settings of this area (`KC_SMTP_*`, `KC_RETENTION_DAYS`).

The intake registers each accepted message as an `email` contact with a queued task; the ACD
side (`acd.tasks.TaskRunner`) offers it to an agent.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import smtplib
from dataclasses import dataclass
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import make_msgid, parseaddr
from html.parser import HTMLParser
from typing import Any, Callable

from aiosmtpd.smtp import SMTP, Envelope, Session

from . import cases
from .clock import Clock, iso
from .errors import ConfigError, InvalidInput
from .store import Store

log = logging.getLogger(__name__)

MAIL_DOMAIN = "kontakt.example"
DISTRICT_ADDRESSES = {
    f"bromma@{MAIL_DOMAIN}": "bromma",
    f"hasselby-vallingby@{MAIL_DOMAIN}": "hasselby-vallingby",
}
BODY_LIMIT = 20000          # characters of text kept from a message
SUBJECT_LIMIT = 200


@dataclass(frozen=True)
class ChannelSettings:
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    relay_host: str = "127.0.0.1"
    relay_port: int = 2526
    max_message_bytes: int = 1024 * 1024
    retention_days: int = 90
    history_days: int = 30
    form_limit: int = 5               # web form posts per client address ...
    form_window: float = 600.0        # ... per this many seconds

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "ChannelSettings":
        env = dict(os.environ if env is None else env)

        def number(name: str, default: int, low: int = 1, high: int = 10 ** 9) -> int:
            raw = env.get(name, "")
            if raw == "":
                return default
            try:
                value = int(raw)
            except ValueError:
                raise ConfigError(f"{name}={raw!r} is not a number") from None
            if not low <= value <= high:
                raise ConfigError(f"{name}={value} is outside {low}..{high}")
            return value

        relay = env.get("KC_SMTP_RELAY", "") or "127.0.0.1:2526"
        host, _, port = relay.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ConfigError(f"KC_SMTP_RELAY={relay!r}: give host:port")
        return cls(
            smtp_host=env.get("KC_SMTP_HOST", "127.0.0.1"),
            smtp_port=number("KC_SMTP_PORT", 2525, 1, 65535),
            relay_host=host, relay_port=int(port),
            max_message_bytes=number("KC_SMTP_MAX_BYTES", 1024 * 1024, 1024),
            retention_days=number("KC_RETENTION_DAYS", 90, 1, 3650),
            history_days=number("KC_HISTORY_DAYS", 30, 1, 3650),
            form_limit=number("KC_FORM_LIMIT", 5, 1, 10000),
            form_window=float(number("KC_FORM_WINDOW", 600, 1, 86400)),
        )


# ---------------------------------------------------------------------------- categorising

KEYWORDS: dict[str, tuple[str, ...]] = {
    "social-services": ("bistånd", "försörjningsstöd", "socialtjänst", "socialsekreterare",
                        "orosanmälan", "missbruk", "våld", "hyresskuld", "skuld"),
    "elderly-care": ("hemtjänst", "äldreomsorg", "äldreboende", "trygghetslarm", "färdtjänst",
                     "omsorg", "pension", "äldre", "matlåd"),
    "school": ("förskol", "skola", "skolan", "skolval", "skolskjuts", "fritids", "elev", "lärare",
               "barnomsorg", "dagis", "rektor"),
}


def categorise(text: str) -> str:
    """The skill for a written matter: the one with most keyword hits, else the switchboard."""
    low = (text or "").lower()
    scores = {skill: sum(low.count(word) for word in words) for skill, words in KEYWORDS.items()}
    best = max(scores, key=lambda s: scores[s])
    return best if scores[best] > 0 else "switchboard"


# ---------------------------------------------------------------------------- parsing

class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("br", "p", "div", "li", "tr"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    return re.sub(r"\n{3,}", "\n\n", "".join(parser.parts)).strip()


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Incoming:
    sender: str
    sender_name: str | None
    subject: str
    body: str
    message_id: str | None
    attachments: tuple[Attachment, ...] = ()


MAX_ATTACHMENTS = 20


def safe_filename(name: str | None, fallback: str) -> str:
    """A sender's file name as we keep and offer it: no path, no control or quoting characters."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '"<>:|?*;')
    name = name.strip(" .")[:100]
    return name or fallback


def _attachments(msg: Any) -> tuple[Attachment, ...]:
    out = []
    for part in msg.iter_attachments():
        if part.is_multipart():
            continue
        try:
            data = part.get_payload(decode=True) or b""
        except (ValueError, LookupError, AssertionError) as exc:
            raise InvalidInput(f"undecodable attachment ({type(exc).__name__})") from None
        out.append(Attachment(safe_filename(part.get_filename(), f"bilaga-{len(out) + 1}"),
                              part.get_content_type()[:100], bytes(data)))
    if len(out) > MAX_ATTACHMENTS:
        raise InvalidInput(f"more than {MAX_ATTACHMENTS} attachments")
    return tuple(out)


def parse_message(raw: bytes) -> Incoming:
    """A message from the wire → its parts, or InvalidInput when it is not a usable e-mail."""
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        name, sender = parseaddr(str(msg.get("From", "")))
        subject = " ".join(str(msg.get("Subject", "") or "").split())[:SUBJECT_LIMIT]
        message_id = str(msg.get("Message-ID", "") or "").strip()[:200] or None
    except (ValueError, TypeError, IndexError, LookupError) as exc:
        raise InvalidInput(f"unreadable headers ({type(exc).__name__})") from None
    if not msg.keys():
        raise InvalidInput("no headers")
    if not sender or not re.fullmatch(r"[^@\s<>\"]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}", sender):
        raise InvalidInput("no valid From address")
    attachments = _attachments(msg) if msg.is_multipart() else ()
    try:
        part = msg.get_body(preferencelist=("plain", "html"))
        if part is None:
            if msg.is_multipart() and not attachments:
                raise InvalidInput("no text part")
            part = None if msg.is_multipart() else msg
        text = part.get_content() if part is not None else ""
    except (LookupError, ValueError, AssertionError, KeyError, UnicodeError) as exc:
        raise InvalidInput(f"undecodable body ({type(exc).__name__})") from None
    if not isinstance(text, str):
        raise InvalidInput("the body is not text")
    if part is not None and part.get_content_type() == "text/html":
        text = html_to_text(text)
    text = text.replace("\x00", "").replace("\r\n", "\n").strip()
    if not text and not subject and not attachments:
        raise InvalidInput("empty message")
    return Incoming(sender.lower(), (name or None) and name[:100], subject, text[:BODY_LIMIT],
                    message_id, attachments)


# ---------------------------------------------------------------------------- intake

class IntakeHandler:
    """aiosmtpd handler: accepts mail for the district addresses only."""

    MAX_RCPT = 5

    def __init__(self, store: Store, clock: Clock, on_contact: Callable[[int], None] | None = None):
        self.store, self.clock, self.on_contact = store, clock, on_contact

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address.lower() not in DISTRICT_ADDRESSES:
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
        for rcpt in dict.fromkeys(a.lower() for a in envelope.rcpt_tos):
            district = DISTRICT_ADDRESSES[rcpt]
            skill = categorise(f"{incoming.subject}\n{incoming.body}")
            contact_id = await self.store.run(
                cases.create_written_contact, channel="email", district=district,
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
    def __init__(self, settings: ChannelSettings, handler: IntakeHandler):
        self.settings, self.handler = settings, handler
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        s = self.settings

        def factory() -> SMTP:
            return SMTP(self.handler, data_size_limit=s.max_message_bytes, hostname=MAIL_DOMAIN,
                        ident="Kommuncentral intake", enable_SMTPUTF8=True, loop=loop,
                        command_call_limit=100, timeout=60)

        self.server = await loop.create_server(factory, s.smtp_host, s.smtp_port)
        log.info("SMTP intake on %s:%s", s.smtp_host, s.smtp_port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


# ---------------------------------------------------------------------------- replies

def build_reply(from_addr: str, to_addr: str, subject: str, body: str,
                in_reply_to: str | None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = Address("Kommuncentral", addr_spec=from_addr)
    msg["To"] = to_addr
    clean = " ".join((subject or "").split())[:SUBJECT_LIMIT]
    msg["Subject"] = clean if clean.lower().startswith("re:") else f"Re: {clean}".strip()
    msg["Message-ID"] = make_msgid(domain=MAIL_DOMAIN)
    if in_reply_to and re.fullmatch(r"<[^<>\s]{1,200}>", in_reply_to):
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg.set_content(body)
    return msg


async def send_reply(settings: ChannelSettings, msg: EmailMessage) -> None:
    """Hand the reply to the relay (blocking smtplib in a thread)."""
    def send() -> None:
        with smtplib.SMTP(settings.relay_host, settings.relay_port, timeout=15) as smtp:
            smtp.send_message(msg)

    try:
        await asyncio.get_running_loop().run_in_executor(None, send)
    except (OSError, smtplib.SMTPException) as exc:
        raise InvalidInput(f"the reply could not be handed to the mail relay "
                           f"({settings.relay_host}:{settings.relay_port}): {exc}") from None

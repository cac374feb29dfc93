"""The e-mail channel: a message from the wire parsed into its parts (text, attachments), the
centre's mailboxes (which address belongs to which district), and replies built and handed
to the mail relay. The SMTP server that receives mail is `cases.smtp_intake`.
"""
from __future__ import annotations

import asyncio
import re
import smtplib
from dataclasses import dataclass
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import make_msgid, parseaddr
from html.parser import HTMLParser
from typing import Any, Mapping

from kc.errors import InvalidInput

BODY_LIMIT = 20000          # characters of text kept from a message
SUBJECT_LIMIT = 200


@dataclass(frozen=True)
class Mailboxes:
    """The centre's e-mail addresses, each belonging to a district (data: given by the
    composition root)."""
    domain: str                       # our mail domain: the SMTP greeting, Message-IDs
    districts: Mapping[str, str]      # address (lower case) → district id

    def district_of(self, address: str) -> str | None:
        return self.districts.get(address.lower())

    def reply_from(self, received_at: str | None, district: str | None) -> str:
        """The address a reply goes out from: the one the message came to, else the
        district's, else the first mailbox."""
        if received_at in self.districts:
            return received_at
        fallback = next(iter(self.districts), f"kontakt@{self.domain}")
        return next((a for a, d in self.districts.items() if d == district), fallback)


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


# One mailbox, nothing else: no list, no display name, no whitespace or control characters
# (a comma would send the reply to several people, CR/LF would break the header).
MAILBOX = re.compile(r"[^@\s<>\"(),;:\\\[\]\x00-\x1f\x7f]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}")


def is_mailbox(value: str) -> bool:
    return bool(MAILBOX.fullmatch(value))


MAX_MIME_DEPTH = 20


def _mime_depth(msg: Any, depth: int = 0) -> int:
    """How deep multiparts nest (stops counting past MAX_MIME_DEPTH)."""
    if depth > MAX_MIME_DEPTH or not msg.is_multipart():
        return depth
    payload = msg.get_payload()
    return max([_mime_depth(part, depth + 1) for part in payload if hasattr(part, "is_multipart")]
               or [depth + 1])


def parse_message(raw: bytes) -> Incoming:
    """A message from the wire → its parts, or InvalidInput when it is not a usable e-mail."""
    try:
        return _parse_message(raw)
    except RecursionError:
        raise InvalidInput(f"MIME parts nested too deep (at most {MAX_MIME_DEPTH})") from None


def _parse_message(raw: bytes) -> Incoming:
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        name, sender = parseaddr(str(msg.get("From", "")))
        subject = " ".join(str(msg.get("Subject", "") or "").split())[:SUBJECT_LIMIT]
        message_id = str(msg.get("Message-ID", "") or "").strip()[:200] or None
    except (ValueError, TypeError, IndexError, LookupError) as exc:
        raise InvalidInput(f"unreadable headers ({type(exc).__name__})") from None
    if not msg.keys():
        raise InvalidInput("no headers")
    if _mime_depth(msg) > MAX_MIME_DEPTH:
        raise InvalidInput(f"MIME parts nested too deep (at most {MAX_MIME_DEPTH})")
    if not sender or not is_mailbox(sender):
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


# ---------------------------------------------------------------------------- replies

def build_reply(domain: str, from_addr: str, to_addr: str, subject: str, body: str,
                in_reply_to: str | None) -> EmailMessage:
    if not is_mailbox(to_addr):
        raise InvalidInput("the contact's reply address is not one valid e-mail address")
    msg = EmailMessage()
    msg["From"] = Address("Kommuncentral", addr_spec=from_addr)
    msg["To"] = to_addr
    clean = " ".join((subject or "").split())[:SUBJECT_LIMIT]
    msg["Subject"] = clean if clean.lower().startswith("re:") else f"Re: {clean}".strip()
    msg["Message-ID"] = make_msgid(domain=domain)
    if in_reply_to and re.fullmatch(r"<[^<>\s]{1,200}>", in_reply_to):
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg.set_content(body)
    return msg


async def send_reply(relay_host: str, relay_port: int, msg: EmailMessage) -> None:
    """Hand the reply to the relay (blocking smtplib in a thread)."""
    def send() -> None:
        with smtplib.SMTP(relay_host, relay_port, timeout=15) as smtp:
            smtp.send_message(msg)

    try:
        await asyncio.get_running_loop().run_in_executor(None, send)
    except (OSError, smtplib.SMTPException) as exc:
        raise InvalidInput(f"the reply could not be handed to the mail relay "
                           f"({relay_host}:{relay_port}): {exc}") from None

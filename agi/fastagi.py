"""The FastAGI seam: a small asyncio server speaking AGI over TCP.

panoramisk's `fast_agi` has no read timeouts and reads exactly one line per command, so a
hang-up line or a silent peer would stall it; this server keeps its shape (routes keyed by
`agi_network_script`, async handlers) and adds what the pitfalls call for: bounded header
reading, per-command timeouts, `HANGUP`/511 translated into `CallerGone`, and quoting of every
argument. Handlers see an `AgiChannel`, never the socket.
"""
from __future__ import annotations

import asyncio
import codecs
import hmac
import ipaddress
import logging
import re
from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar
from urllib.parse import unquote

from kc.errors import AgiLinkError, CallerGone

from .quoting import command_line

log = logging.getLogger(__name__)

MAX_HEADER_LINES = 256
MAX_LINE = 8192
HEADER_TIMEOUT = 5.0
# Connections Asterisk may open before the service accepts them. asyncio's default, 100, was
# overrun by 1,000 waiting callers' announcements: Asterisk gives up on a FastAGI connect after
# 2 s, and the AGI failed. The kernel caps it at net.core.somaxconn (4096 on Debian 12).
ACCEPT_BACKLOG = 1024

_RESULT = re.compile(r"^(?P<code>\d{3})(?P<sep>[ -])(?P<rest>.*)$")
_PLAIN_VALUE = re.compile(r"^[A-Za-z0-9_.:+@/-]+$")
_VAR_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_KV = re.compile(r"result=(?P<value>\S*)(?:\s+\((?P<data>[^)]*)\))?")


@dataclass(frozen=True)
class AgiResult:
    code: int
    result: str
    data: str
    line: str

    @property
    def as_int(self) -> int:
        try:
            return int(self.result)
        except ValueError:
            raise AgiLinkError(f"non-numeric AGI result {self.line!r}") from None


def parse_result(line: str) -> AgiResult:
    m = _RESULT.match(line)
    if not m:
        raise AgiLinkError(f"unparseable AGI reply {line[:200]!r}")
    code = int(m["code"])
    kv = _KV.search(m["rest"]) if code == 200 else None
    return AgiResult(code, kv["value"] if kv else "", (kv["data"] or "") if kv else "", line)


Handler = Callable[["AgiChannel"], Awaitable[None]]
T = TypeVar("T")


def _consume(task: "asyncio.Future") -> None:
    """A preparation nobody waits for any more: its failure is logged, not left unretrieved."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("a prompt prepared while the caller pressed on failed: %s", task.exception())


class AgiChannel:
    """One AGI session: the call's `agi_*` headers and a way to send commands."""

    def __init__(self, headers: dict[str, str], reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, command_timeout: float = 120.0):
        self.headers = headers
        self._reader = reader
        self._writer = writer
        self._timeout = command_timeout
        self.hung_up = False

    # headers -----------------------------------------------------------------------------
    def header(self, name: str, default: str = "") -> str:
        value = self.headers.get(f"agi_{name}", default)
        return default if value == "unknown" else value

    @property
    def script(self) -> str:
        return self.headers.get("agi_network_script", "")

    @property
    def args(self) -> list[str]:
        out = []
        n = 1
        while f"agi_arg_{n}" in self.headers:
            out.append(self.headers[f"agi_arg_{n}"])
            n += 1
        return out

    # commands ----------------------------------------------------------------------------
    async def _readline(self, timeout: float) -> str:
        try:
            raw = await asyncio.wait_for(self._reader.readline(), timeout)
        except asyncio.TimeoutError:
            raise AgiLinkError(f"no AGI reply within {timeout:.0f} s") from None
        except (ConnectionError, asyncio.LimitOverrunError, ValueError) as exc:
            raise AgiLinkError(f"AGI link broke: {exc}") from exc
        if not raw:
            self.hung_up = True
            raise CallerGone("AGI connection closed")
        return raw.decode("utf-8", "replace").rstrip("\r\n")

    async def command(self, verb: str, *args: object, timeout: float | None = None) -> AgiResult:
        if self.hung_up:
            raise CallerGone("channel already hung up")
        line = command_line(verb, *args)
        try:
            self._writer.write(line.encode("utf-8") + b"\n")
            await self._writer.drain()
        except ConnectionError as exc:
            self.hung_up = True
            raise CallerGone(f"AGI connection lost: {exc}") from exc
        limit = timeout or self._timeout
        while True:
            reply = await self._readline(limit)
            if reply.startswith("HANGUP"):  # unsolicited; the real reply follows
                self.hung_up = True
                continue
            if reply == "":
                continue
            result = parse_result(reply)
            if result.code == 100:      # "Trying...": the real reply follows
                continue
            if result.code == 520 and reply[3] == "-":   # usage text until "520 End..."
                while not (await self._readline(limit)).startswith("520 "):
                    pass
                raise AgiLinkError(f"AGI usage error for {verb}")
            break
        if result.code == 511:
            self.hung_up = True
            raise CallerGone("command on a dead channel")
        if result.code != 200:
            raise AgiLinkError(f"AGI {verb} failed: {result.line[:200]}")
        return result

    async def answer(self) -> None:
        await self.command("ANSWER")

    async def set_variable(self, name: str, value: object) -> None:
        await self.command("SET VARIABLE", name, value)

    async def set_variables(self, **values: object) -> None:
        """Several channel variables in one round trip (`EXEC MSet`) when every value is plain
        (letters, digits, `_.:+@/-`), so MSet's own argument syntax (`,` `=` `\\` `"` `(`)
        never comes into play; any other value goes by its own SET VARIABLE."""
        plain = {k: v for k, v in values.items() if _PLAIN_VALUE.match(str(v))}
        for name in values:
            if not _VAR_NAME.match(name):
                raise ValueError(f"bad channel variable name {name!r}")
        if plain:
            await self.command("EXEC", "MSet", ",".join(f"{k}={v}" for k, v in plain.items()))
        for name, value in values.items():
            if name not in plain:
                await self.set_variable(name, value)

    async def get_variable(self, name: str) -> str | None:
        result = await self.command("GET VARIABLE", name)
        return result.data if result.result == "1" else None

    async def stream(self, path: str, escape_digits: str = "") -> str | None:
        """Play a file; returns the digit that interrupted it, if any."""
        result = await self.command("STREAM FILE", path, escape_digits)
        code = result.as_int
        if code < 0:
            self.hung_up = True
            raise CallerGone("hang-up during playback")
        return chr(code) if code > 0 else None

    async def listening(self, preparing: Awaitable[T], poll: float = 0.25) -> tuple[T | None, str | None]:
        """Await `preparing` (e.g. a prompt being synthesised) while the caller is heard:
        Asterisk drops a digit pressed between two AGI commands, so while the next prompt is
        not ready the channel waits for a digit in short turns. Returns (what `preparing`
        gave, None) or, when a digit came first, (None, the digit); the preparation then
        goes on by itself (a prompt is still written for the next caller)."""
        task = asyncio.ensure_future(preparing)
        await asyncio.wait({task}, timeout=0.02)    # ready at once: no extra round trip
        while not task.done():
            try:
                digit = await self.wait_for_digit(poll)
            except BaseException:
                task.add_done_callback(_consume)
                raise
            if digit is not None:
                task.add_done_callback(_consume)
                return None, digit
        return task.result(), None

    async def wait_for_digit(self, timeout: float) -> str | None:
        result = await self.command("WAIT FOR DIGIT", int(timeout * 1000), timeout=timeout + 10)
        code = result.as_int
        if code < 0:
            self.hung_up = True
            raise CallerGone("hang-up while waiting for a digit")
        return chr(code) if code > 0 else None


# The header block exactly as res_agi.c writes it (launch_netscript, then setup_env): these
# keys, once each, in this order, then agi_arg_1..N. Asterisk writes the values unescaped, so a
# caller ID carrying a newline would add lines of its own: anything else is refused.
HEADER_ORDER = (
    "agi_network", "agi_network_script", "agi_request", "agi_channel", "agi_language",
    "agi_type", "agi_uniqueid", "agi_version", "agi_callerid", "agi_calleridname",
    "agi_callingpres", "agi_callingani2", "agi_callington", "agi_callingtns", "agi_dnid",
    "agi_rdnis", "agi_context", "agi_extension", "agi_priority", "agi_enhanced",
    "agi_accountcode", "agi_threadid",
)
_HEADER_RANK = {key: n for n, key in enumerate(HEADER_ORDER)}
_HEADER_LINE = re.compile(r"^(agi_[a-z0-9_]+): (.*)$")
_ARG_KEY = re.compile(r"^agi_arg_([1-9][0-9]{0,2})$")


class HeaderCheck:
    """Checks one header line after another against the order Asterisk writes them in."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self._rank = -1
        self._args = 0

    def add(self, line: str) -> None:
        m = _HEADER_LINE.match(line)
        if m is None:
            raise AgiLinkError(f"malformed AGI header line {line[:80]!r}")
        key, value = m.groups()
        if key in self.headers:
            raise AgiLinkError(f"duplicate AGI header {key}")
        arg = _ARG_KEY.match(key)
        if arg is not None:
            if int(arg.group(1)) != self._args + 1 or self._rank != len(HEADER_ORDER) - 1:
                raise AgiLinkError(f"AGI header {key} out of order")
            self._args += 1
        elif key not in _HEADER_RANK:
            raise AgiLinkError(f"unknown AGI header {key}")
        elif self._args or _HEADER_RANK[key] <= self._rank:
            raise AgiLinkError(f"AGI header {key} out of order")
        else:
            self._rank = _HEADER_RANK[key]
        self.headers[key] = value

    def done(self) -> dict[str, str]:
        missing = [key for key in HEADER_ORDER if key not in self.headers]
        if missing:
            raise AgiLinkError(f"AGI headers ended early, missing {', '.join(missing[:3])}")
        return self.headers


def decode_line(raw: bytes) -> str:
    """A header line as text. Asterisk cuts long values (a caller name over 79 bytes) without
    regard to UTF-8: a character cut at the end is dropped, not stored as U+FFFD; other invalid
    bytes are replaced."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    return decoder.decode(raw.rstrip(b"\r\n"), final=False)


async def read_headers(reader: asyncio.StreamReader, timeout: float = HEADER_TIMEOUT) -> dict[str, str]:
    """The `agi_*` header block, refused whole when it is not exactly what Asterisk writes."""
    check = HeaderCheck()

    async def _read() -> dict[str, str]:
        for _ in range(MAX_HEADER_LINES):
            raw = await reader.readline()
            if not raw:
                raise AgiLinkError("peer closed before the end of the AGI headers")
            if len(raw) > MAX_LINE:
                raise AgiLinkError("AGI header line too long")
            line = decode_line(raw)
            if line == "":
                return check.done()
            check.add(line)
        raise AgiLinkError("too many AGI header lines")

    try:
        return await asyncio.wait_for(_read(), timeout)
    except asyncio.TimeoutError:
        raise AgiLinkError("AGI headers not received in time") from None
    except (ConnectionError, ValueError, asyncio.LimitOverrunError) as exc:
        raise AgiLinkError(f"AGI header read failed: {exc}") from exc


def script_name(headers: dict[str, str]) -> str:
    """`agi_network_script` without query string, URL-decoded."""
    return unquote(headers.get("agi_network_script", "").split("?", 1)[0]).strip("/")


def authenticated_route(name: str, secret: str) -> str | None:
    """The route of a script `<secret>/<route>` (the dialplan's AGI URLs carry the per-install
    secret as their first path segment), or None when the secret is missing or wrong."""
    given, sep, route = name.partition("/")
    if not sep or not secret or not hmac.compare_digest(given.encode(), secret.encode()):
        return None
    return route


def peer_allowed(peer: object, allow: frozenset[str]) -> bool:
    """Is the connecting address one of the configured Asterisk addresses? (IPv4-mapped IPv6
    addresses count as their IPv4 address.)"""
    if not isinstance(peer, tuple) or not peer:
        return False
    try:
        ip = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip) in allow


def parse_allow(addresses: str | tuple[str, ...] | list[str]) -> frozenset[str]:
    """`KC_AGI_ALLOW`: comma-separated IP addresses, each normalised; ValueError for a bad one."""
    items = addresses.split(",") if isinstance(addresses, str) else list(addresses)
    return frozenset(str(ipaddress.ip_address(a.strip())) for a in items if a.strip())


class FastAgiServer:
    """Routes AGI sessions to handlers. Only connections from `allow` (Asterisk's addresses)
    whose script starts with the shared `secret` reach a handler; anything else is closed and
    logged (FastAGI itself has no authentication, and `agent-feature` changes agents' states)."""

    def __init__(self, routes: dict[str, Handler], host: str, port: int,
                 command_timeout: float = 120.0, *, secret: str,
                 allow: frozenset[str] | tuple[str, ...] = ("127.0.0.1", "::1")):
        if len(secret) < 16:
            raise ValueError("the FastAGI secret must be at least 16 characters")
        self._routes = dict(routes)
        self._host, self._port = host, port
        self._timeout = command_timeout
        self._secret = secret
        self._allow = parse_allow(tuple(allow))
        self.refused = 0   # sessions refused (wrong peer or secret), for tests and logs
        self._server: asyncio.base_events.Server | None = None
        self._sessions: set[asyncio.Task] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    @property
    def sessions(self) -> int:
        """FastAGI sessions open now (calls in a menu or an AGI step)."""
        return len(self._sessions)

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._host, self._port,
                                                  limit=MAX_LINE * 2, backlog=ACCEPT_BACKLOG)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._sessions):
            task.cancel()
        if self._sessions:
            await asyncio.gather(*self._sessions, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            peer = writer.get_extra_info("peername")
            if not peer_allowed(peer, self._allow):
                self.refused += 1
                log.warning("FastAGI: refused a connection from %s (not an allowed Asterisk "
                            "address)", peer[0] if isinstance(peer, tuple) else peer)
                return
            headers = await read_headers(reader)
            name = authenticated_route(script_name(headers), self._secret)
            if name is None:
                self.refused += 1
                log.warning("FastAGI: refused a session from %s without the shared secret",
                            peer[0])
                return
            handler = self._routes.get(name)
            if handler is None:
                log.warning("FastAGI: no route %r", name)
                return
            channel = AgiChannel(headers, reader, writer, self._timeout)
            try:
                await handler(channel)
            except CallerGone:
                log.info("FastAGI %s: caller hung up", name)
        except AgiLinkError as exc:
            log.warning("FastAGI session failed: %s", exc)
        except Exception:  # a handler bug must not take the server down
            log.exception("FastAGI handler crashed")
        finally:
            self._sessions.discard(task)
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, asyncio.CancelledError):
                pass

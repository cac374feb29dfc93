"""The AMI seam: one panoramisk connection, kept alive by us.

panoramisk parses AMI and matches responses by ActionID; it does not notice a dead link
(`ping` never times out), reconnects at a fixed pace and leaves futures of lost actions pending.
`AmiLink` adds a heartbeat with a timeout, reconnection with backoff, an `on_ready` hook to
resynchronise after every (re)connect, and timeouts on every action. Everything above sees
typed events (`acd.ami_events`), plain dicts as action replies and `TelephonyDown`, never
panoramisk.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable

from panoramisk import Manager
from panoramisk.message import Message

from kc.errors import KcError, TelephonyDown

from .ami_events import AmiEvent, parse_event

log = logging.getLogger(__name__)

Event = dict[str, str]


class AmiActionFailed(KcError):
    """Asterisk answered an action with an error."""


def _clean(value: Any) -> str:
    """Header values are written verbatim by panoramisk: no CR/LF may reach the wire."""
    return str(value).replace("\r", " ").replace("\n", " ")


def _plain(message: Any) -> Event:
    return {str(k): str(v) for k, v in message.items()}


def read_frames(text: str) -> list[Event]:
    """AMI wire text (as recorded from the PBX) as frames, parsed as the link parses them."""
    frames = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        message = Message.from_line(block.strip("\n").replace("\n", "\r\n"))
        if message is not None:
            frames.append(_plain(message))
    return frames


class _Manager(Manager):
    """panoramisk Manager whose reconnect logic is ours."""

    def __init__(self, on_lost: Callable[[], None], **config: Any):
        super().__init__(**config)
        self._on_lost = on_lost
        self.login_future: asyncio.Future | None = None
        self.made = asyncio.Event()

    def connection_made(self, f: Any) -> None:
        try:
            if f.cancelled() or f.exception() is not None:
                return  # the supervisor sees the failure and retries with backoff
            super().connection_made(f)
            # panoramisk sets `authenticated_future` back to None as soon as the reply is in
            # (which may be before we look): keep the future itself
            self.login_future = self.authenticated_future
        finally:
            self.made.set()

    def connection_lost(self, exc: Any) -> None:  # called by the protocol
        self._connected = False
        self._on_lost()


class AmiLink:
    def __init__(self, host: str, port: int, username: str, secret: str,
                 on_event: Callable[[AmiEvent], None],
                 on_ready: Callable[[], Awaitable[None]] | None = None,
                 heartbeat: float = 5.0, action_timeout: float = 10.0,
                 backoff: tuple[float, float] = (0.1, 0.5),
                 on_gone: Callable[[float], None] | None = None,
                 on_down: Callable[[], None] | None = None, name: str = "ami-link"):
        self._config = dict(host=host, port=port, username=username, secret=secret)
        self._on_event = on_event
        self._on_ready = on_ready
        self._heartbeat = heartbeat
        self._timeout = action_timeout
        self._backoff = backoff
        self._manager: _Manager | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._on_gone = on_gone
        self._on_down = on_down    # the link was lost (told at once, before any reconnect)
        self.name = name
        self.up = False
        self.reachable = False        # TCP connect to AMI worked: Asterisk is running
        self.connects = 0
        self.pbx_version: str | None = None   # CoreSettings' AsteriskVersion, as Asterisk says it
        # when the link was lost: the peer closed it, or the last frame before a heartbeat
        # failed (the truest end time for calls the PBX no longer has); None while up
        self.lost_at: float | None = None
        self._closed_at: float | None = None
        self._last_frame = 0.0
        self._gone_told = False

    # lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=self.name)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._drop()

    async def wait_up(self, timeout: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.up:
            if asyncio.get_running_loop().time() > deadline:
                raise TelephonyDown("AMI not connected")
            await asyncio.sleep(0.05)

    def _drop(self) -> None:
        self.up = False
        manager, self._manager = self._manager, None
        if manager is None:
            return
        protocol = getattr(manager, "protocol", None)
        pending = list(getattr(protocol, "responses", {}).values()) if protocol else []
        pending += list(manager.awaiting_actions)  # panoramisk parks these for a replay we don't want
        manager.awaiting_actions.clear()
        for action in pending:
            if not action.future.done():
                action.future.set_exception(TelephonyDown("AMI connection lost"))
        try:
            manager.close()
        except Exception:  # closing a broken transport may raise; it is gone either way
            pass

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        self._lost = asyncio.Event()
        self._closed_at = None
        lost = self._lost

        def on_lost() -> None:
            self._closed_at = time.time()
            lost.set()
        manager = _Manager(on_lost, loop=loop, ping_delay=10**9, events="on", **self._config)
        manager.register_event("*", self._dispatch)
        try:
            transport_task = manager.connect()
            await asyncio.wait_for(asyncio.shield(transport_task), self._timeout)
        except ConnectionRefusedError as exc:
            self._pbx_gone()
            raise TelephonyDown(f"cannot reach AMI: {exc}") from exc
        except (OSError, asyncio.TimeoutError) as exc:
            raise TelephonyDown(f"cannot reach AMI: {exc}") from exc
        self._manager = manager
        try:   # panoramisk's done-callback sends Login
            await asyncio.wait_for(manager.made.wait(), self._timeout)
        except asyncio.TimeoutError:
            raise TelephonyDown("AMI connection failed") from None
        if manager.protocol is None or manager.login_future is None:
            raise TelephonyDown("AMI connection failed")
        self.reachable = True
        try:
            ok = await asyncio.wait_for(manager.login_future, self._timeout)
        except asyncio.TimeoutError:
            raise TelephonyDown("AMI login timed out") from None
        if not ok or not getattr(ok, "success", False):
            raise TelephonyDown(f"AMI login refused: {dict(ok) if ok else ok}")

    def _pbx_gone(self) -> None:
        """AMI refuses connections after the link was lost: Asterisk is not running, so every
        call it held ended when the link was lost. Told once per loss."""
        if self.lost_at is None or self._gone_told or self._on_gone is None:
            return
        self._gone_told = True
        try:
            self._on_gone(self.lost_at)
        except Exception:
            log.exception("AMI: handling the PBX's loss failed")

    async def _supervise(self) -> None:
        delay = self._backoff[0]
        quiet_until = 0.0
        while True:
            was_up = False
            try:
                await self._connect()
                self.up = was_up = True
                self.connects += 1
                self._last_frame = time.time()
                delay = self._backoff[0]
                quiet_until = 0.0
                log.info("AMI connected (%d)", self.connects)
                asyncio.create_task(self._learn_version())
                if self._on_ready is not None:
                    asyncio.create_task(self._run_ready())
                await self._watch()
            except asyncio.CancelledError:
                raise
            except TelephonyDown as exc:
                if time.monotonic() >= quiet_until:   # retried often: said every 30 s
                    log.warning("AMI: %s; retrying every %.1f s", exc, self._backoff[1])
                    quiet_until = time.monotonic() + 30.0
            except Exception:
                log.exception("AMI supervisor error")
            if was_up:
                self.lost_at = self._closed_at or self._last_frame
                self._gone_told = False
                log.warning("AMI link %s lost (last alive %s)", self.name,
                            time.strftime("%H:%M:%S", time.localtime(self.lost_at)))
                self.up = False
                if self._on_down is not None:
                    try:
                        self._on_down()
                    except Exception:
                        log.exception("AMI: handling the link's loss failed")
            self._drop()
            self.reachable = self.reachable and self.up
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff[1])

    async def _learn_version(self) -> None:
        """Which Asterisk answers (after every connect: it may have been upgraded)."""
        try:
            reply = await self.action("CoreSettings")
        except KcError as exc:
            log.warning("AMI CoreSettings: %s", exc)
            return
        self.pbx_version = reply.get("AsteriskVersion") or None

    async def _run_ready(self) -> None:
        try:
            await self._on_ready()  # type: ignore[misc]
            self.lost_at = None
        except TelephonyDown as exc:
            log.warning("AMI resync interrupted: %s", exc)
        except Exception:
            log.exception("AMI resync failed")

    async def _watch(self) -> None:
        """Heartbeat: a Ping must come back in time, or the link is declared dead."""
        while True:
            try:
                await asyncio.wait_for(self._lost.wait(), self._heartbeat)
                raise TelephonyDown("AMI connection lost")
            except asyncio.TimeoutError:
                pass
            try:
                await self.action("Ping")
                self._last_frame = time.time()
            except TelephonyDown:
                self.reachable = False
                raise

    def _dispatch(self, _manager: Any, message: Any) -> None:
        self._last_frame = time.time()
        event = _plain(message)
        if event.get("Event") == "Shutdown":
            self._lost.set()
        try:
            typed = parse_event(event)
            if typed is not None:
                self._on_event(typed)
        except Exception:  # a bug in a consumer must not kill the link
            log.exception("AMI event handler failed on %s", event.get("Event"))

    # actions -------------------------------------------------------------------------------
    def _send(self, name: str, fields: dict[str, Any]) -> asyncio.Future:
        manager = self._manager
        if manager is None or not self.up and name != "Ping":
            raise TelephonyDown(f"AMI is down; {name} not sent")
        action: dict[str, Any] = {"Action": name}
        for key, value in fields.items():
            if value is None:
                continue
            action[key] = [_clean(v) for v in value] if isinstance(value, (list, tuple)) else _clean(value)
        return manager.send_action(action)

    def send(self, name: str, timeout: float | None = None, **fields: Any) -> "asyncio.Task[Event]":
        """Send an action *now* (before this returns; `TelephonyDown` if the link is down) and
        return a task for its final message: a caller on a hot path (ringing an agent) does
        not wait for a turn of the event loop before the request leaves."""
        future = self._send(name, fields)
        return asyncio.ensure_future(self._reply(name, future, timeout))

    async def action(self, name: str, timeout: float | None = None, **fields: Any) -> Event:
        """Send an action; returns the final message (for async Originate, its OriginateResponse)."""
        return await self._reply(name, self._send(name, fields), timeout)

    async def _reply(self, name: str, future: asyncio.Future, timeout: float | None) -> Event:
        try:
            result = await asyncio.wait_for(future, timeout or self._timeout)
        except asyncio.TimeoutError:
            raise TelephonyDown(f"no AMI answer to {name}") from None
        final = result[-1] if isinstance(result, list) else result
        event = _plain(final)
        if event.get("Response") in ("Error", "Failure", "Fail"):
            raise AmiActionFailed(f"{name}: {event.get('Message') or event.get('Reason') or event}")
        return event

    async def action_list(self, name: str, timeout: float | None = None, **fields: Any) -> list[Event]:
        """A list action: the events between `EventList: start` and the `...Complete` event."""
        future = self._send(name, fields)
        try:
            result = await asyncio.wait_for(future, timeout or self._timeout)
        except asyncio.TimeoutError:
            raise TelephonyDown(f"no AMI answer to {name}") from None
        messages = result if isinstance(result, list) else [result]
        first = _plain(messages[0])
        if first.get("Response") == "Error":
            return []  # e.g. "No endpoints found"
        return [_plain(m) for m in messages[1:] if not str(m.get("Event", "")).endswith("Complete")]

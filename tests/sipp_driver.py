"""Drive SIPp (3.6) against Kommuncentral's Asterisk: residents' calls and agents' phones.

Synchronous subprocess wrappers. Every SIPp run gets its own files in ``workdir``
(``<name>-<n>.{xml,msg.log,err.log,logs.log,screen.log,out.log}``) so failures can be
diagnosed; SippError carries the tails of these files.

Scenarios live in tests/sipp/ (static XML or jinja2 templates rendered here). Each scenario
writes "KC-RESULT ..." lines via <log>; SippResult exposes them parsed (answered,
hangup="far"|"us", status for rejected calls, dtmf digits sent, invites received).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import jinja2

SCENARIO_DIR = Path(__file__).resolve().parent / "sipp"
DTMF_PCAP_DIR = Path(os.environ.get("KC_SIPP_PCAP_DIR", "/usr/share/sip-tester"))
REJECT_CODES = (400, 403, 404, 408, 410, 480, 484, 486, 488, 500, 501, 503, 603)
_DTMF_NAMES = {**{str(d): str(d) for d in range(10)}, "*": "star", "#": "pound"}

__all__ = [
    "SippError",
    "SippResult",
    "SippRun",
    "SipPhone",
    "call",
    "free_udp_port",
    "free_media_port",
    "sip_quote",
]

_counter = itertools.count(1)
_counter_lock = threading.Lock()
_reserved_ports: set[int] = set()


class SippError(RuntimeError):
    pass


def _sipp_binary() -> str:
    found = os.environ.get("KC_SIPP_BIN") or shutil.which("sipp")
    if not found:
        raise SippError("sipp not found on PATH")
    return found


def _port_free(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_udp_port() -> int:
    """A UDP port free right now on 127.0.0.1 (bind to 0), never handed out twice by us."""
    for _ in range(200):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        with _counter_lock:
            if port in _reserved_ports:
                continue
            _reserved_ports.add(port)
        return port
    raise SippError("no free UDP port")


def free_media_port() -> int:
    """An even port p with p..p+3 free (SIPp uses p, p+1 (RTCP), p+2 (video), p+3)."""
    for _ in range(200):
        base = free_udp_port() & ~1
        if base < 1024:
            continue
        block = range(base, base + 4)
        with _counter_lock:
            if any(p in _reserved_ports and p != base and p != base + 1 for p in block):
                continue
        if all(_port_free(p) for p in block):
            with _counter_lock:
                _reserved_ports.update(block)
            return base
    raise SippError("no free media port block")


def sip_quote(value: str) -> str:
    """Content of a SIP quoted-string (RFC 3261 quoted-pair): escape \\ and ", drop CR/LF/NUL."""
    value = re.sub(r"[\r\n\0]", "", value)
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


@dataclass
class SippResult:
    returncode: int
    successful_calls: int
    failed_calls: int
    log: str  # the KC-RESULT log lines (and anything else written by <log>)
    events: list[str] = field(default_factory=list)  # "answered", "hangup=far", ...

    @property
    def answered(self) -> bool:
        return "answered" in self.events

    @property
    def hangup(self) -> str | None:
        """'far' (the other side sent BYE), 'us' (this SIPp sent BYE) or None."""
        for e in reversed(self.events):
            if e.startswith("hangup="):
                return e.split("=", 1)[1]
        return None

    @property
    def status(self) -> int | None:
        """Final SIP status of a rejected call (e.g. 404), else None."""
        for e in self.events:
            if e.startswith("rejected "):
                try:
                    return int(e.split()[1])
                except ValueError:
                    return None
        return None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.failed_calls == 0

    def count(self, event: str) -> int:
        return sum(1 for e in self.events if e == event or e.startswith(event + " "))


class SippRun:
    """One SIPp process running in the background."""

    def __init__(self, name: str, argv: list[str], workdir: Path, files: dict[str, Path], timeout: float):
        self.name = name
        self.argv = argv
        self.workdir = workdir
        self.files = files
        self._out = open(files["out"], "wb")
        self.proc = subprocess.Popen(
            argv,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started = time.monotonic()
        self.timeout = timeout
        self._result: SippResult | None = None

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def diagnostics(self) -> str:
        parts = [f"sipp run {self.name!r}: {' '.join(self.argv)}"]
        for key in ("err", "logs", "out", "msg"):
            t = _tail(self.files[key], 40 if key == "msg" else 20)
            if t:
                parts.append(f"--- {self.files[key].name} ---\n{t}")
        return "\n".join(parts)

    def _kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(2)
        if not self._out.closed:
            self._out.close()

    def stop(self) -> None:
        """Stop SIPp (if still running) without raising."""
        self._kill()

    def result(self) -> SippResult:
        rc = self.proc.returncode if self.proc.returncode is not None else -1
        log = ""
        try:
            log = self.files["logs"].read_text(errors="replace")
        except OSError:
            pass
        events = [m.group(1).strip() for m in re.finditer(r"KC-RESULT (.*)", log)]
        ok, failed = _parse_screen(self.files["screen"])
        return SippResult(rc, ok, failed, log, events)

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for SIPp to finish; raise SippError on timeout (SIPp is killed) or if SIPp
        could not run at all (exit code 255 / -1 etc). Failed calls are reported in the
        result (failed_calls, returncode 1), not raised."""
        if self._result is not None:
            return self._result
        timeout = self.timeout if timeout is None else timeout
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            raise SippError(f"timeout after {timeout}s\n{self.diagnostics()}") from None
        if not self._out.closed:
            self._out.close()
        self._result = self.result()
        if self.proc.returncode not in (0, 1, 97, 99):
            raise SippError(f"sipp exited with {self.proc.returncode}\n{self.diagnostics()}")
        return self._result

    def wait_ok(self, timeout: float | None = None) -> SippResult:
        """wait(), and raise SippError unless every call succeeded."""
        res = self.wait(timeout)
        if not res.ok:
            raise SippError(
                f"sipp: rc={res.returncode} ok={res.successful_calls} failed={res.failed_calls} "
                f"events={res.events}\n{self.diagnostics()}"
            )
        return res

    def wait_for_event(self, event: str, timeout: float, count: int = 1) -> None:
        """Block until the scenario logged `event` `count` times (e.g. 'answered')."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.result().count(event) >= count:
                return
            if not self.running:
                break
            time.sleep(0.05)
        if self.result().count(event) >= count:
            return
        raise SippError(f"event {event!r} x{count} not seen within {timeout}s\n{self.diagnostics()}")

    def __enter__(self) -> "SippRun":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _parse_screen(path: Path) -> tuple[int, int]:
    """Successful/failed call counts from the last screen in -trace_screen output."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return 0, 0

    def last(label: str) -> int:
        vals = re.findall(rf"{label}\s*\|\s*(\d+)\s*\|\s*(\d+)", text)
        return int(vals[-1][1]) if vals else 0

    return last("Successful call"), last("Failed call")


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(SCENARIO_DIR)),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,
)


def _start(
    workdir: Path,
    name: str,
    scenario: Path | tuple[str, dict],
    sip_port: int,
    local_port: int,
    media_port: int,
    *,
    calls: int = 1,
    keys: dict[str, str] | None = None,
    extra: Sequence[str] = (),
    timeout: float = 60.0,
    remote_host: str = "127.0.0.1",
) -> SippRun:
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    with _counter_lock:
        n = next(_counter)
    stem = f"{name}-{n}"
    if isinstance(scenario, tuple):
        template, variables = scenario
        path = workdir / f"{stem}.xml"
        path.write_text(_env.get_template(template).render(**variables))
        scenario = path
    files = {
        "msg": workdir / f"{stem}.msg.log",
        "err": workdir / f"{stem}.err.log",
        "logs": workdir / f"{stem}.logs.log",
        "screen": workdir / f"{stem}.screen.log",
        "out": workdir / f"{stem}.out.log",
    }
    argv = [
        _sipp_binary(), f"{remote_host}:{sip_port}",
        "-sf", str(scenario),
        "-i", "127.0.0.1", "-p", str(local_port), "-mp", str(media_port),
        "-m", str(calls), "-l", "1",
        "-nostdin",
        "-trace_msg", "-message_file", str(files["msg"]),
        "-trace_err", "-error_file", str(files["err"]),
        "-trace_logs", "-log_file", str(files["logs"]),
        "-trace_screen", "-screen_file", str(files["screen"]),
        "-timeout", f"{int(timeout) + 1}s", "-timeout_error",
        "-max_retrans", "5",
    ]
    for k, v in (keys or {}).items():
        argv += ["-key", k, str(v)]
    argv += list(extra)
    return SippRun(stem, argv, workdir, files, timeout + 5)


def _digits(digits: Iterable[tuple[float, str]]) -> list[tuple[int, str, str]]:
    out = []
    for pause, digit in digits:
        if digit not in _DTMF_NAMES:
            raise ValueError(f"unsupported DTMF digit {digit!r}")
        pcap = DTMF_PCAP_DIR / f"dtmf_2833_{_DTMF_NAMES[digit]}.pcap"
        if not pcap.exists():
            raise SippError(f"missing {pcap}")
        out.append((max(1, int(pause * 1000)), digit, str(pcap)))
    return out


def call(
    workdir: Path,
    sip_port: int,
    number: str,
    *,
    digits: Sequence[tuple[float, str]] = (),
    caller_number: str = "0701234567",
    caller_name: str = "Test Caller",
    hangup_after: float | None = 10.0,
    wait_far_bye: float = 60.0,
    local_port: int | None = None,
    media_port: int | None = None,
) -> SippRun:
    """A resident's call through the trunk (source 127.0.0.1), in the background.

    digits: (pause seconds before the digit, digit) pairs, sent as RFC 4733 after answer.
    hangup_after: seconds after the last digit before we send BYE (a far-end BYE first
    ends the call too); None = wait up to wait_far_bye for the far end's BYE."""
    if not re.fullmatch(r"[0-9+*#]{1,32}", number):
        raise ValueError(f"bad number {number!r}")
    # a number, or (to test hostile callers) any percent-encoded SIP URI user part
    if not re.fullmatch(r"[0-9A-Za-z%+._~-]{1,300}", caller_number):
        raise ValueError(f"bad caller number {caller_number!r}")
    dl = _digits(digits)
    # Stock pcaps share RTP seq/timestamps: Asterisk would drop every digit after the first.
    from dtmf_pcap import shifted
    dl = [(p, d, str(shifted(Path(pcap), Path(workdir) / f"dtmf-{i}-{_DTMF_NAMES[d]}.pcap", i)))
          for i, (p, d, pcap) in enumerate(dl)]
    variables = dict(
        auth=False,
        reject_codes=REJECT_CODES,
        digits=dl,
        hangup_after_ms=None if hangup_after is None else max(1, int(hangup_after * 1000)),
        wait_far_bye_ms=int(wait_far_bye * 1000),
    )
    total = sum(p for p, _, _ in dl) / 1000 + (hangup_after if hangup_after is not None else wait_far_bye)
    return _start(
        workdir, "call", ("uac_call.xml.j2", variables), sip_port,
        local_port or free_udp_port(), media_port or free_media_port(),
        keys={"caller_number": caller_number, "caller_name": sip_quote(caller_name)},
        extra=["-s", number],
        timeout=total + 30,
    )


class SipPhone:
    """An agent's SIP phone: one local SIP port, one media port, digest credentials."""

    def __init__(
        self,
        workdir: Path,
        sip_port: int,
        username: str,
        password: str,
        local_port: int | None = None,
        media_port: int | None = None,
    ):
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", username):
            raise ValueError(f"bad username {username!r}")
        self.workdir = Path(workdir)
        self.sip_port = sip_port
        self.username = username
        self.password = password
        self.local_port = local_port or free_udp_port()
        self.media_port = media_port or free_media_port()
        self._bg: SippRun | None = None

    def _check_port_idle(self) -> None:
        if self._bg is not None and self._bg.running:
            raise SippError(f"phone {self.username}: a background run still owns port {self.local_port}")

    def _auth(self) -> list[str]:
        return ["-au", self.username, "-ap", self.password]

    def register(self, expires: int = 3600, timeout: float = 15.0) -> SippResult:
        self._check_port_idle()
        run = _start(
            self.workdir, f"register-{self.username}", SCENARIO_DIR / "register.xml",
            self.sip_port, self.local_port, self.media_port,
            keys={"user": self.username, "expires": str(int(expires))},
            extra=self._auth(), timeout=timeout,
        )
        return run.wait_ok()

    def unregister(self, timeout: float = 15.0) -> SippResult:
        return self.register(expires=0, timeout=timeout)

    def dial(self, number: str, hold_seconds: float = 2.0, hangup: bool = False) -> SippResult:
        """Dial e.g. "*21" (digest-authenticated INVITE). Waits up to hold_seconds+10 for the
        far end's BYE (hangup=False) or sends BYE after hold_seconds (hangup=True)."""
        self._check_port_idle()
        if not re.fullmatch(r"[0-9*#+]{1,32}", number):
            raise ValueError(f"bad number {number!r}")
        variables = dict(
            auth=True,
            reject_codes=REJECT_CODES,
            digits=[],
            hangup_after_ms=int(hold_seconds * 1000) if hangup else None,
            wait_far_bye_ms=int((hold_seconds + 10) * 1000),
        )
        run = _start(
            self.workdir, f"dial-{self.username}", ("uac_call.xml.j2", variables),
            self.sip_port, self.local_port, self.media_port,
            keys={"caller_number": self.username, "caller_name": self.username},
            extra=["-s", number, *self._auth()], timeout=hold_seconds + 25,
        )
        return run.wait()

    def answer_calls(
        self,
        count: int = 1,
        ring_seconds: float = 1.0,
        talk_seconds: float = 3.0,
        hangup: str = "agent",
        timeout: float = 120.0,
        refer_to: str = "",
    ) -> SippRun:
        """Background UAS on the phone's port answering `count` calls. hangup="agent": we send
        BYE after talk_seconds (unless the far end does first); "far": wait up to
        talk_seconds for the far end's BYE; "refer": after talk_seconds, blind-transfer the
        far end to `refer_to` (digits) by REFER, then wait for the PBX's BYE."""
        if hangup not in ("agent", "far", "refer"):
            raise ValueError("hangup must be 'agent', 'far' or 'refer'")
        if hangup == "refer" and not re.fullmatch(r"[0-9]{1,20}", refer_to):
            raise ValueError("refer_to must be digits")
        self._check_port_idle()
        variables = dict(ring_ms=max(1, int(ring_seconds * 1000)), talk_ms=max(1, int(talk_seconds * 1000)),
                         hangup=hangup, refer_to=refer_to)
        self._bg = _start(
            self.workdir, f"answer-{self.username}", ("uas_answer.xml.j2", variables),
            self.sip_port, self.local_port, self.media_port,
            calls=count, extra=["-s", self.username, "-aa"], timeout=timeout,
        )
        return self._bg

    def ring_no_answer(self, count: int = 1, timeout: float = 120.0) -> SippRun:
        self._check_port_idle()
        self._bg = _start(
            self.workdir, f"noanswer-{self.username}", SCENARIO_DIR / "uas_ring_no_answer.xml",
            self.sip_port, self.local_port, self.media_port,
            calls=count, extra=["-s", self.username, "-aa"], timeout=timeout,
        )
        return self._bg

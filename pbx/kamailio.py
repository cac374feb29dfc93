"""The cluster's SIP front door: Kamailio's configuration rendered from the nodes' data, the
Kamailio process, and a SIP OPTIONS probe of it.

Kamailio runs as ``kamailio -f <root>/kamailio.cfg -P <root>/kamailio.pid -Y <root>/run -DD -E``:
its own files only, its own port, never as root (as `nobody` when started by root), in the
foreground so that whoever started it sees it end.
"""
from __future__ import annotations

import asyncio
import os
import pwd
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .asterisk import AsteriskError, _jinja_env, _write

__all__ = ["FrontDoor", "Destination", "render_front_door", "FrontDoorProcess", "probe"]

MODULE_DIRS = ("/usr/lib/x86_64-linux-gnu/kamailio/modules", "/usr/lib/aarch64-linux-gnu/kamailio/modules",
               "/usr/lib/kamailio/modules", "/usr/local/lib64/kamailio/modules")


@dataclass(frozen=True)
class Destination:
    node: str
    host: str
    port: int


@dataclass(frozen=True)
class FrontDoor:
    root: Path
    host: str
    port: int
    # per district: its numbers and its nodes, the home node first
    districts: tuple[tuple[str, tuple[str, ...], tuple[Destination, ...]], ...]
    ping_interval: int = 1       # s between OPTIONS probes of every node
    fail_over_ms: int = 1500     # an INVITE a node does not answer in this time goes on
    binary: str = "/usr/sbin/kamailio"

    @property
    def config_path(self) -> Path:
        return Path(self.root) / "kamailio.cfg"

    @property
    def list_path(self) -> Path:
        return Path(self.root) / "dispatcher.list"

    @property
    def pid_path(self) -> Path:
        return Path(self.root) / "kamailio.pid"


def _module_dir() -> str:
    for path in MODULE_DIRS:
        if (Path(path) / "dispatcher.so").exists():
            return path
    raise AsteriskError("Kamailio's modules (dispatcher.so) not found: install the kamailio package")


def render_front_door(door: FrontDoor) -> Path:
    """Write kamailio.cfg and dispatcher.list under `door.root`; returns the cfg's path."""
    root = Path(door.root).resolve()
    (root / "run").mkdir(parents=True, exist_ok=True)
    lines, numbers = ["# set  destination  flags  priority  attributes (rendered from the nodes' data)"], []
    for set_id, (district, nums, destinations) in enumerate(door.districts, start=1):
        lines.append(f"# {district}")
        for rank, dest in enumerate(destinations):
            # higher priority first: the home node, then the others in the data's order
            lines.append(f"{set_id} sip:{dest.host}:{dest.port} 8 {100 - rank} node={dest.node}")
        numbers += [(number, set_id) for number in nums]
    _write(door.list_path, "\n".join(lines) + "\n", 0o644, None)
    text = _jinja_env().get_template("kamailio.cfg.j2").render(
        host=door.host, port=door.port, module_dir=_module_dir(), list_file=str(door.list_path),
        numbers=numbers, ping_interval=int(door.ping_interval), fail_over_ms=int(door.fail_over_ms))
    _write(door.config_path, text, 0o644, None)
    return door.config_path


def _unprivileged() -> list[str]:
    """Never root: as `nobody` when we are root (our files stay readable: 0644 in dirs 0755)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        raise AsteriskError("running as root and no user 'nobody' for Kamailio") from None
    return ["-u", "nobody", "-g", "nogroup"]


class FrontDoorProcess:
    def __init__(self, door: FrontDoor):
        self.door = door
        self._proc: asyncio.subprocess.Process | None = None
        self._running_files = ""    # the configuration it was started with

    def _files(self) -> str:
        try:
            return self.door.config_path.read_text() + self.door.list_path.read_text()
        except OSError:
            return ""

    @property
    def stale(self) -> bool:
        """Its configuration was rendered anew since it started (numbers or nodes changed)."""
        return self.running and self._files() != self._running_files

    async def restart(self) -> None:
        """Kamailio reads its routes only at start: stopped and started on the new files
        (calls already set up go on; their in-dialog requests need no state here)."""
        await self.stop()
        self._proc = None
        await self.start(render=False)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    def command(self) -> list[str]:
        door = self.door
        return [door.binary, "-f", str(door.config_path), "-P", str(door.pid_path),
                "-Y", str(Path(door.root) / "run"), "-DD", "-E", *_unprivileged()]

    async def start(self, timeout: float = 15, render: bool = True) -> None:
        if self.running:
            return
        if not shutil.which(self.door.binary):
            raise AsteriskError(f"{self.door.binary} not found: install the kamailio package")
        if render:
            render_front_door(self.door)
        self._running_files = self._files()
        check = await asyncio.create_subprocess_exec(
            self.door.binary, "-c", "-f", str(self.door.config_path),
            stdout=asyncio.subprocess.PIPE, stderr=subprocess.STDOUT)
        out, _ = await check.communicate()
        if check.returncode != 0:
            raise AsteriskError(f"Kamailio refuses its configuration:\n{out.decode(errors='replace')[-2000:]}")
        log = open(Path(self.door.root) / "kamailio.log", "ab")
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self.command(), stdin=asyncio.subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        deadline = asyncio.get_running_loop().time() + timeout
        while not await probe(self.door.host, self.door.port, 0.5):
            if not self.running:
                raise AsteriskError(f"Kamailio exited with {self.returncode}; see "
                                    f"{Path(self.door.root) / 'kamailio.log'}")
            if asyncio.get_running_loop().time() > deadline:
                await self.stop()
                raise AsteriskError(f"Kamailio does not answer on {self.door.host}:{self.door.port}")

    async def stop(self, timeout: float = 5) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                await asyncio.wait_for(proc.wait(), timeout)
                return
            except asyncio.TimeoutError:
                continue


class _Probe(asyncio.DatagramProtocol):
    def __init__(self, call_id: str):
        self.call_id = call_id
        self.answer: asyncio.Future = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr) -> None:
        text = data.decode(errors="replace")
        if text.startswith("SIP/2.0 ") and self.call_id in text and not self.answer.done():
            self.answer.set_result(text.split(" ", 2)[1])


async def probe(host: str, port: int, timeout: float = 1.0) -> bool:
    """Does a SIP server answer an OPTIONS at host:port (any final answer) within `timeout`?"""
    loop = asyncio.get_running_loop()
    call_id = secrets.token_hex(8)
    try:
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _Probe(call_id), local_addr=(host, 0))
    except OSError:
        return False
    try:
        local_port = transport.get_extra_info("sockname")[1]
        branch = "z9hG4bK" + secrets.token_hex(6)
        message = (f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP {host}:{local_port};branch={branch};rport\r\n"
                   f"Max-Forwards: 70\r\nFrom: <sip:kc-health@{host}>;tag={secrets.token_hex(4)}\r\n"
                   f"To: <sip:{host}:{port}>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\n"
                   f"Content-Length: 0\r\n\r\n")
        transport.sendto(message.encode(), (host, port))
        try:
            code = await asyncio.wait_for(protocol.answer, timeout)
        except asyncio.TimeoutError:
            return False
        return code.isdigit() and int(code) >= 200
    finally:
        transport.close()



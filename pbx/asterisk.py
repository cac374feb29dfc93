"""Render Kommuncentral's Asterisk configuration and run Asterisk from a project-local tree.

Asterisk always runs as ``asterisk -C <root>/etc/asterisk.conf -f``: every file it reads
or writes lives under ``ctx.root`` (except the read-only modules and system sounds, which
are linked), never /etc/asterisk or the system's var directories.

The telephony contract the service relies on is documented in dialplan/extensions.conf.j2.
"""

from __future__ import annotations

import grp
import hashlib
import ipaddress
import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
import wave
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from .runtime import AsteriskRuntime, RuntimeMissing, system_runtime

__all__ = [
    "AgentEndpoint",
    "DistrictNumber",
    "PeerNode",
    "AsteriskContext",
    "AsteriskError",
    "render_config",
    "ha1",
    "default_run_user",
    "AsteriskRuntime",
    "TEMPLATE_DIR",
]

# The dialplan is the telephony contract (dialplan/); every other Asterisk file is rendered
# from pbx/templates/.
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
DIALPLAN_DIR = Path(__file__).resolve().parent.parent / "dialplan"

# Templates rendered into <root>/etc; (template, output name, secret?)
_CONFIG_FILES: tuple[tuple[str, bool], ...] = (
    ("asterisk.conf", False),
    ("modules.conf", False),
    ("logger.conf", False),
    ("cdr.conf", False),
    ("cel.conf", False),
    ("rtp.conf", False),
    ("musiconhold.conf", False),
    ("extensions.conf", True),   # carries the FastAGI secret
    ("pjsip.conf", True),
    ("manager.conf", True),
    ("indications.conf", False),
    ("features.conf", False),    # attended transfer by agents (kc-consult)
)
# Files Asterisk's core/modules look for; empty = defaults, but no "Unable to load" noise.
_EMPTY_FILES = ("acl.conf", "udptl.conf", "ccss.conf", "pjproject.conf", "stasis.conf")

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_DISTRICT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_NUMBER_RE = re.compile(r"^\+?[0-9]{1,32}$")
_HEX32_RE = re.compile(r"^[0-9a-f]{32}$")
_SAFE_VALUE_RE = re.compile(r"^[^\s;\[\]\\\"',()$]{1,128}$")
_SOCKET_MAX = 100  # sun_path is 108 bytes; keep a margin


class AsteriskError(RuntimeError):
    """Asterisk failed to start, died, or a CLI command failed."""


@dataclass(frozen=True)
class AgentEndpoint:
    id: str  # PJSIP endpoint, auth username and aor name (the agent's id)
    district: str
    ha1: str  # md5("id:realm:password") hex


@dataclass(frozen=True)
class DistrictNumber:
    district: str  # the district's id
    number: str  # one of the numbers residents dial for it (a district may have several)


@dataclass(frozen=True)
class PeerNode:
    """Another Asterisk of the cluster: reached (and recognised) at its SIP address."""
    name: str
    host: str
    port: int


@dataclass(frozen=True)
class AsteriskContext:
    root: Path  # var/asterisk -- everything Asterisk writes/reads lives under it
    sip_host: str
    sip_port: int
    rtp_start: int
    rtp_end: int
    ami_host: str
    ami_port: int
    ami_user: str
    ami_secret: str
    agi_host: str
    agi_port: int
    trunk_match: str
    districts: tuple[DistrictNumber, ...]
    agents: tuple[AgentEndpoint, ...]
    fallback_command: tuple[str, ...]
    realm: str = "kommuncentral"
    run_user: str | None = None
    # Extras (defaults keep the contract above):
    qualify_frequency: int = 0  # aor qualify (s); 0 = contact is reachable while registered
    ami_write_system: bool = True  # needed for PJSIPShowEndpoints / PJSIPShowContacts
    ami_permit: str | None = None  # AMI ACL; default: 127.0.0.1 when ami_host is loopback
    announce_seconds: int = 45  # waiting callers hear place + estimated wait this often
    callback_trunk: str = "127.0.0.1:5070"  # host:port for call-backs and transfers out
    # The only events AMI sends (the service's list, acd.ami_events.AMI_EVENTS, given by the
    # composition root); None: all.
    ami_events: tuple[str, ...] | None = None
    # Which Asterisk runs it (pbx/runtime.py); None: the system's /usr/sbin/asterisk.
    runtime: AsteriskRuntime | None = None
    # Host directories outside `root` whose files Asterisk reads or writes (prompts, recordings):
    # a runtime in a private root mounts them at the same path.
    shared_dirs: tuple[Path, ...] = ()
    agi_secret: str = ""  # first path segment of every FastAGI URL: the service's shared secret
    # Agents' phones over SIP TLS with SRTP (pbx/tls.py): the port (0: no TLS) and the PEM
    # texts of the certificate and key, copied into `keys/` for Asterisk.
    tls_port: int = 0
    tls_cert_pem: str = field(default="", repr=False)
    tls_key_pem: str = field(default="", repr=False)
    # In a cluster: this node's name (Asterisk's system name: every uniqueid starts with it)
    # and the other nodes, linked by one PJSIP trunk each (`kc-node-<name>`).
    node: str | None = None
    peers: tuple[PeerNode, ...] = ()

    @property
    def etc_dir(self) -> Path:
        return Path(self.root) / "etc"

    @property
    def config_path(self) -> Path:
        return self.etc_dir / "asterisk.conf"

    @property
    def log_dir(self) -> Path:
        return Path(self.root) / "log"

    @property
    def fallback_agi(self) -> Path:
        return Path(self.root) / "agi-bin" / "kc-fallback"

    @property
    def announce_ahead(self) -> int:
        """Seconds before a waiting caller's announcement is due that `kc-wait` asks the service
        for it (AGI announce,<contact>,ahead), so it is played on time even when the service
        is slow to answer; what it says is at most this much older. At most 10 s: with
        1,000 callers waiting on a 2-core machine that round trip took up to 12.5 s (p95
        8.3 s); at 600 callers at most 165 ms (README, Benchmarks)."""
        return max(1, min(10, self.announce_seconds // 4))

    @property
    def moh_dir(self) -> Path:
        return Path(self.root) / "moh"

    @property
    def sounds_dir(self) -> Path:
        return Path(self.root) / "sounds"


def ha1(username: str, realm: str, password: str) -> str:
    """md5("username:realm:password") as PJSIP's md5_cred wants it."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).hexdigest()


def default_run_user(runtime: AsteriskRuntime | None = None) -> str | None:
    """'asterisk' when we are root and that user exists (for a private root: in its own
    passwd), else None (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    if (runtime or AsteriskRuntime()).user_ids("asterisk") is None:
        return None
    return "asterisk"


def _runtime(ctx: AsteriskContext) -> AsteriskRuntime:
    if ctx.runtime is not None:
        return ctx.runtime
    try:
        return system_runtime()
    except RuntimeMissing as exc:
        raise AsteriskError(str(exc)) from None


def _binds(ctx: AsteriskContext) -> tuple[Path, ...]:
    """What Asterisk in a private root must see: its tree, the control socket's directory
    (which may be outside it) and the shared directories."""
    return (Path(ctx.root).resolve(), _run_dir(ctx), *ctx.shared_dirs)


# --------------------------------------------------------------------------- helpers


def _validate(ctx: AsteriskContext) -> None:
    for port in (ctx.sip_port, ctx.ami_port, ctx.agi_port, ctx.rtp_start, ctx.rtp_end):
        if not (0 < int(port) < 65536):
            raise ValueError(f"bad port {port}")
    if ctx.rtp_end <= ctx.rtp_start:
        raise ValueError("rtp_end must be > rtp_start")
    for host in (ctx.sip_host, ctx.ami_host, ctx.agi_host):
        ipaddress.ip_address(host)
    ipaddress.ip_network(ctx.trunk_match, strict=False)
    if not _ID_RE.match(ctx.ami_user):
        raise ValueError(f"bad AMI user {ctx.ami_user!r}")
    if not _SAFE_VALUE_RE.match(ctx.ami_secret):
        raise ValueError("AMI secret must be 1-128 chars without whitespace, ; [ ] \\ \" ' , ( ) $")
    if ctx.agi_secret and not re.fullmatch(r"[A-Za-z0-9_-]{16,128}", ctx.agi_secret):
        raise ValueError("FastAGI secret must be 16-128 of A-Z a-z 0-9 _ -")
    if not _ID_RE.match(ctx.realm):
        raise ValueError(f"bad realm {ctx.realm!r}")
    reserved = {"global", "system", "transport-udp", "kc-endpoint", "residents", "residents-identify"}
    seen_numbers: set[str] = set()
    for d in ctx.districts:
        if not _DISTRICT_RE.match(d.district):
            raise ValueError(f"bad district name {d.district!r}")
        if not _NUMBER_RE.match(d.number):
            raise ValueError(f"bad district number {d.number!r}")
        if d.number in seen_numbers:
            raise ValueError(f"duplicate district number {d.number!r}")
        seen_numbers.add(d.number)
    seen_agents: set[str] = set()
    for a in ctx.agents:
        if not _ID_RE.match(a.id) or a.id in reserved or a.id.startswith("kc-node-"):
            raise ValueError(f"bad agent id {a.id!r}")
        if a.id in seen_agents:
            raise ValueError(f"duplicate agent id {a.id!r}")
        seen_agents.add(a.id)
        if not _DISTRICT_RE.match(a.district):
            raise ValueError(f"bad agent district {a.district!r}")
        if not _HEX32_RE.match(a.ha1):
            raise ValueError(f"agent {a.id}: ha1 must be 32 lowercase hex digits")
    for peer in ctx.peers:
        if not ctx.node or not re.match(r"^[a-z][a-z0-9-]{0,30}$", peer.name) or peer.name == ctx.node:
            raise ValueError(f"bad peer node {peer.name!r} (of node {ctx.node!r})")
        ipaddress.ip_address(peer.host)
        if not 0 < int(peer.port) < 65536:
            raise ValueError(f"bad port {peer.port}")
    if not ctx.fallback_command:
        raise ValueError("fallback_command is empty")
    for arg in ctx.fallback_command:
        if "\n" in arg or "\r" in arg or "\0" in arg:
            raise ValueError("fallback_command arguments must not contain newlines/NUL")


def _run_dir(ctx: AsteriskContext) -> Path:
    """astrundir: <root>/run, or a short per-root dir in /tmp if the socket path is too long."""
    run = Path(ctx.root) / "run"
    if len(str(run / "asterisk.ctl")) <= _SOCKET_MAX:
        return run
    digest = hashlib.sha1(str(Path(ctx.root).resolve()).encode()).hexdigest()[:12]
    short = Path(tempfile.gettempdir()) / f"kc-ast-{digest}"
    if len(str(short / "asterisk.ctl")) > _SOCKET_MAX:
        raise AsteriskError(f"control socket path too long even in {short}; use a shorter root")
    return short


def _ids(ctx: AsteriskContext) -> tuple[int, int] | None:
    if not ctx.run_user:
        return None
    ids = _runtime(ctx).user_ids(ctx.run_user)
    if ids is None:
        raise AsteriskError(f"user {ctx.run_user!r} not found for {_runtime(ctx).describe()}")
    return ids


def _write(path: Path, text: str, mode: int, ids: tuple[int, int] | None) -> None:
    """Atomic write (a reload never sees a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == text:
        os.chmod(path, mode)
        if ids:
            os.chown(path, *ids)
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        if ids:
            os.chown(tmp, *ids)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _check_traversable(path: Path, run_user: str) -> None:
    """Every ancestor of root must be searchable by run_user, or Asterisk can't reach it."""
    pw = pwd.getpwnam(run_user)
    groups = {g.gr_gid for g in grp.getgrall() if run_user in g.gr_mem} | {pw.pw_gid}
    for parent in list(Path(path).resolve().parents):
        st = parent.stat()
        if st.st_uid == pw.pw_uid:
            ok = st.st_mode & 0o100
        elif st.st_gid in groups:
            ok = st.st_mode & 0o010
        else:
            ok = st.st_mode & 0o001
        if not ok:
            raise AsteriskError(
                f"{parent} is not searchable by user {run_user!r}; Asterisk could not reach {path}"
            )


def _synth_wav(path: Path, notes: list[tuple[float, float]], volume: float = 0.25) -> None:
    """Pure-Python fallback synthesiser: (frequency Hz or 0 for rest, seconds) -> 8 kHz wav."""
    rate = 8000
    frames = bytearray()
    for freq, secs in notes:
        n = int(rate * secs)
        for i in range(n):
            env = min(1.0, i / 80) * math.exp(-3.0 * i / max(n, 1))
            v = 0.0 if freq <= 0 else math.sin(2 * math.pi * freq * i / rate) * env
            frames += struct.pack("<h", int(v * volume * 32767))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))


def _sox_tune(path: Path, notes: list[tuple[str, float]], gain_db: float = -10) -> bool:
    sox = shutil.which("sox")
    if not sox:
        return False
    with tempfile.TemporaryDirectory() as td:
        parts = []
        for i, (note, secs) in enumerate(notes):
            part = Path(td) / f"{i:03d}.wav"
            if note == "rest":
                effect = ["trim", "0", str(secs)]
                cmd = [sox, "-n", "-r", "8000", "-c", "1", "-b", "16", str(part), *effect]
            else:
                cmd = [sox, "-n", "-r", "8000", "-c", "1", "-b", "16", str(part),
                       "synth", str(secs), "pluck", note, "fade", "0", str(secs), str(secs * 0.4)]
            if subprocess.run(cmd, capture_output=True).returncode != 0:
                return False
            parts.append(str(part))
        tmp = Path(td) / "out.wav"
        cmd = [sox, *parts, "-r", "8000", "-c", "1", "-b", "16", str(tmp), "gain", "-n", str(gain_db)]
        if subprocess.run(cmd, capture_output=True).returncode != 0:
            return False
        shutil.copyfile(tmp, path)
    return True


_MOH_TUNE = [("C4", 0.35), ("E4", 0.35), ("G4", 0.35), ("C5", 0.7), ("G4", 0.35), ("E4", 0.35),
             ("F4", 0.35), ("A4", 0.35), ("C5", 0.7), ("A4", 0.35), ("F4", 0.35),
             ("G4", 0.35), ("B4", 0.35), ("D5", 0.7), ("B4", 0.35), ("G4", 0.35), ("C5", 1.0), ("rest", 0.6)]
_NOTE_HZ = {"C4": 261.6, "E4": 329.6, "F4": 349.2, "G4": 392.0, "A4": 440.0, "B4": 493.9,
            "C5": 523.3, "D5": 587.3, "rest": 0.0}
_ERROR_TONE = [("A5", 0.15), ("rest", 0.08), ("E5", 0.15), ("rest", 0.08), ("A4", 0.3)]
_ERROR_HZ = {"A5": 880.0, "E5": 659.3, "A4": 440.0, "rest": 0.0}


def _ensure_sound(path: Path, tune: list[tuple[str, float]], hz: dict[str, float]) -> None:
    if path.exists() and path.stat().st_size > 44:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if not _sox_tune(path, tune):
        _synth_wav(path, [(hz[n], s) for n, s in tune])


def _jinja_env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(TEMPLATE_DIR), str(DIALPLAN_DIR)]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render_config(ctx: AsteriskContext) -> Path:
    """Write ctx.root/etc/*.conf, the directory tree, the fallback AGI wrapper and the
    music-on-hold file. Idempotent. Returns the path of asterisk.conf."""
    _validate(ctx)
    root = Path(ctx.root).resolve()
    runtime = _runtime(ctx)
    try:
        mod_dir = runtime.module_dir()
    except RuntimeMissing as exc:
        raise AsteriskError(str(exc)) from None
    ids = _ids(ctx)
    if ctx.run_user:
        root.mkdir(parents=True, exist_ok=True)
        if runtime.sysroot is None:   # in a private root, the mount point's parents are its own
            _check_traversable(root, ctx.run_user)
    run_dir = _run_dir(ctx)
    for sub in ("etc", "lib", "keys", "data", "agi-bin", "spool", "log", "cache", "moh", "sounds"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o755)

    # astdatadir: our own, with the system's sounds/documentation linked in.
    sysdata = runtime.data_dir()
    if sysdata:
        for name in ("sounds", "documentation", "static-http", "phoneprov", "firmware", "images"):
            src, dst = sysdata / name, root / "data" / name
            if not runtime.host_path(src).exists():
                continue
            if dst.is_symlink() and os.readlink(dst) != str(src):
                dst.unlink()   # another Asterisk's layout
            if not dst.exists() and not dst.is_symlink():
                try:
                    dst.symlink_to(src)
                except FileExistsError:   # another process rendering the same tree
                    pass

    _ensure_sound(ctx.moh_dir / "kc-tune.wav", _MOH_TUNE, _NOTE_HZ)
    _ensure_sound(ctx.sounds_dir / "kc-error.wav", _ERROR_TONE, _ERROR_HZ)

    wrapper = "#!/bin/sh\n# Generated by pbx/asterisk.py: process-AGI fallback run by Asterisk.\nexec " + \
        " ".join(shlex.quote(a) for a in ctx.fallback_command) + "\n"
    _write(root / "agi-bin" / "kc-fallback", wrapper, 0o755, ids)

    try:
        ip = ipaddress.ip_address(ctx.ami_host)
        default_permit = "127.0.0.1/255.255.255.255" if ip.is_loopback else "0.0.0.0/0.0.0.0"
    except ValueError:
        default_permit = "127.0.0.1/255.255.255.255"
    variables = dict(
        ctx=ctx,
        root=str(root),
        etc_dir=str(root / "etc"),
        run_dir=str(run_dir),
        mod_dir=mod_dir,
        sbin_dir=runtime.sbin_dir(),
        moh_dir=str(root / "moh"),
        error_sound=str(root / "sounds" / "kc-error"),
        agi=f"agi://{ctx.agi_host}:{ctx.agi_port}" + (f"/{ctx.agi_secret}" if ctx.agi_secret else ""),
        fallback_agi=str(root / "agi-bin" / "kc-fallback"),
        qualify_frequency=int(ctx.qualify_frequency),
        ami_write_system=bool(ctx.ami_write_system),
        ami_permit=ctx.ami_permit or default_permit,
        ami_events=ctx.ami_events,
        # a call from another node is taken only from that node's SIP address
        from_peer=" | ".join(f'"${{CHANNEL(pjsip,remote_addr)}}" = "{p.host}:{p.port}"'
                             for p in ctx.peers),
    )
    if ctx.tls_port:
        _write(root / "keys" / "sip-tls.crt", ctx.tls_cert_pem, 0o644, ids)
        _write(root / "keys" / "sip-tls.key", ctx.tls_key_pem, 0o600, ids)
        variables.update(tls_cert=str(root / "keys" / "sip-tls.crt"),
                         tls_key=str(root / "keys" / "sip-tls.key"))
    env = _jinja_env()
    for name, secret in _CONFIG_FILES:
        text = env.get_template(f"{name}.j2").render(**variables)
        _write(root / "etc" / name, text, 0o600 if secret else 0o644, ids)
    empty = env.get_template("empty.conf.j2").render()
    for name in _EMPTY_FILES:
        _write(root / "etc" / name, empty, 0o644, ids)

    if ids:
        for path in [root, run_dir, *root.rglob("*")]:
            try:
                if not path.is_symlink():
                    os.chown(path, *ids)
            except FileNotFoundError:
                pass
    return root / "etc" / "asterisk.conf"

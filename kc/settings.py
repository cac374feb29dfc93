"""Settings from the environment, with the demo contract's defaults.

Everything the service writes lives under one `var/` directory so a test run or a second
instance only needs a different `KC_VAR` and ports.
"""
from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The install script's default too (asterisk-docker/install-asterisk.sh; a test keeps them equal).
DEFAULT_ASTERISK_SYSROOT = Path("/var/cache/kommuncentral/asterisk-22")
ASTERISK_CHOICES = ("22", "16")

_PORTS = {
    "sip_port": ("KC_SIP_PORT", 5060),
    "ami_port": ("KC_AMI_PORT", 5038),
    "agi_port": ("KC_AGI_PORT", 4573),
    "web_port": ("KC_WEB_PORT", 8080),
    "rtp_start": ("KC_RTP_START", 10000),
    "rtp_end": ("KC_RTP_END", 10999),
}


def _port(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise ConfigError(f"{name}={value} is outside 1..65535")
    return value


@dataclass(frozen=True)
class Settings:
    var_dir: Path
    bind_host: str = "127.0.0.1"       # web, FastAGI and AMI listen here
    sip_host: str = "127.0.0.1"
    sip_port: int = 5060
    ami_port: int = 5038
    agi_port: int = 4573
    web_port: int = 8080
    rtp_start: int = 10000
    rtp_end: int = 10999
    trunk_match: str = "127.0.0.1"
    ring_timeout: float = 15.0          # seconds an agent's phone rings before ring-no-answer
    secure_cookies: bool = False        # set KC_SECURE_COOKIES=1 behind HTTPS
    python: str = field(default_factory=lambda: sys.executable)
    # Which Asterisk runs the PBX: "22" (default: the system's own when the release ships 20+,
    # else Debian unstable's in a private root) or "16" (the system's, from Debian 11's
    # security suite). KC_ASTERISK; see kc/asterisk_runtime.py.
    asterisk: str = "22"
    # KC_ASTERISK_SYSROOT: where asterisk-docker/install-asterisk.sh made the private root
    # (debootstrap of Debian unstable); shared by every checkout on the machine.
    asterisk_sysroot: Path = DEFAULT_ASTERISK_SYSROOT
    # KC_ASTERISK_BIN / KC_ASTERISK_MODDIR: a system Asterisk somewhere else (wins over both).
    asterisk_bin: str | None = None
    asterisk_moddir: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, var_dir: Path | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        var = Path(var_dir or env.get("KC_VAR") or PROJECT_ROOT / "var").resolve()
        ports = {key: _port(env, name, default) for key, (name, default) in _PORTS.items()}
        if ports["rtp_start"] > ports["rtp_end"]:
            raise ConfigError("KC_RTP_START must not exceed KC_RTP_END")
        asterisk = env.get("KC_ASTERISK") or "22"
        if asterisk not in ASTERISK_CHOICES:
            raise ConfigError(f"KC_ASTERISK={asterisk!r}: choose one of {', '.join(ASTERISK_CHOICES)}")
        return cls(
            var_dir=var,
            bind_host=env.get("KC_BIND", "127.0.0.1"),
            sip_host=env.get("KC_SIP_HOST", "127.0.0.1"),
            trunk_match=env.get("KC_TRUNK_MATCH", "127.0.0.1"),
            ring_timeout=float(env.get("KC_RING_TIMEOUT", "15")),
            secure_cookies=env.get("KC_SECURE_COOKIES", "") in ("1", "yes", "true"),
            asterisk=asterisk,
            asterisk_sysroot=Path(env.get("KC_ASTERISK_SYSROOT") or DEFAULT_ASTERISK_SYSROOT),
            asterisk_bin=env.get("KC_ASTERISK_BIN") or None,
            asterisk_moddir=env.get("KC_ASTERISK_MODDIR") or None,
            **ports,
        )

    # Paths under var/
    @property
    def db_path(self) -> Path:
        return self.var_dir / "kc.db"

    @property
    def asterisk_root(self) -> Path:
        return self.var_dir / "asterisk"

    @property
    def secrets_dir(self) -> Path:
        return self.var_dir / "secrets"

    @property
    def sounds_dir(self) -> Path:
        return self.var_dir / "sounds"

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "log"

    @property
    def queue_log(self) -> Path:
        return self.log_dir / "queue_log"

    @property
    def fallback_spool(self) -> Path:
        """Written by the process-AGI fallback, which runs as Asterisk's user: inside its tree."""
        return self.asterisk_root / "spool" / "kc-fallback"

    @property
    def web_url(self) -> str:
        return f"http://{self.bind_host}:{self.web_port}"

    def secret(self, name: str) -> str:
        """Read a generated secret, creating it (mode 0600) on first use."""
        self.secrets_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.secrets_dir, 0o700)
        path = self.secrets_dir / name
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            pass
        value = secrets.token_urlsafe(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(value + "\n")
        return value

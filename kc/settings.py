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
from typing import Any

from .errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Setting:
    """One setting: its environment variable, the `Settings` field it fills, its default, type
    (and range) and a help line."""
    name: str
    field: str
    default: Any
    type: type
    help: str
    low: int | None = None
    high: int | None = None

    def read(self, env: dict[str, str]) -> Any:
        raw = env.get(self.name, "")
        if raw == "":
            return self.default
        if self.type is str:
            return raw
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{self.name}={raw!r} is not a number") from None
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise ConfigError(f"{self.name}={value} is outside {self.low}..{self.high}")
        return self.type(value)


def _host_port(name: str, value: str) -> str:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"{name}={value!r}: give host:port")
    return value


PORT_SETTINGS = (
    Setting("KC_SIP_PORT", "sip_port", 5060, int, "SIP (UDP) port of Asterisk", 1, 65535),
    Setting("KC_AMI_PORT", "ami_port", 5038, int, "Asterisk Manager Interface port", 1, 65535),
    Setting("KC_AGI_PORT", "agi_port", 4573, int, "FastAGI port of the service", 1, 65535),
    Setting("KC_WEB_PORT", "web_port", 8080, int, "port of the web site and API", 1, 65535),
    Setting("KC_RTP_START", "rtp_start", 10000, int, "first RTP (media) port", 1, 65535),
    Setting("KC_RTP_END", "rtp_end", 10999, int, "last RTP (media) port", 1, 65535),
)

# Case work: the e-mail channel, the agent desktop, the public contact form and retention.
CASEWORK_SETTINGS = (
    Setting("KC_SMTP_HOST", "smtp_host", "127.0.0.1", str, "address the e-mail intake (SMTP) listens on"),
    Setting("KC_SMTP_PORT", "smtp_port", 2525, int, "port of the e-mail intake", 1, 65535),
    Setting("KC_SMTP_RELAY", "smtp_relay", "127.0.0.1:2526", str, "mail relay (host:port) replies are handed to"),
    Setting("KC_SMTP_MAX_BYTES", "smtp_max_bytes", 1024 * 1024, int,
            "largest e-mail accepted, in bytes (larger: 552)", 1024, 10 ** 9),
    Setting("KC_RETENTION_DAYS", "retention_days", 90, int,
            "days before notes and messages are removed and numbers pseudonymised", 1, 3650),
    Setting("KC_HISTORY_DAYS", "history_days", 30, int,
            "days of a caller's earlier contacts shown on the agent desktop", 1, 3650),
    Setting("KC_FORM_LIMIT", "form_limit", 5, int,
            "contact-form posts allowed per client address per KC_FORM_WINDOW", 1, 10000),
    Setting("KC_FORM_WINDOW", "form_window", 600.0, float,
            "seconds of the contact form's rate window", 1, 86400),
)


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
    smtp_host: str = "127.0.0.1"        # the CASEWORK_SETTINGS above
    smtp_port: int = 2525
    smtp_relay: str = "127.0.0.1:2526"
    smtp_max_bytes: int = 1024 * 1024
    retention_days: int = 90
    history_days: int = 30
    form_limit: int = 5
    form_window: float = 600.0
    python: str = field(default_factory=lambda: sys.executable)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, var_dir: Path | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        var = Path(var_dir or env.get("KC_VAR") or PROJECT_ROOT / "var").resolve()
        ports = {s.field: s.read(env) for s in PORT_SETTINGS}
        if ports["rtp_start"] > ports["rtp_end"]:
            raise ConfigError("KC_RTP_START must not exceed KC_RTP_END")
        casework = {s.field: s.read(env) for s in CASEWORK_SETTINGS}
        _host_port("KC_SMTP_RELAY", casework["smtp_relay"])
        return cls(
            var_dir=var,
            bind_host=env.get("KC_BIND", "127.0.0.1"),
            sip_host=env.get("KC_SIP_HOST", "127.0.0.1"),
            trunk_match=env.get("KC_TRUNK_MATCH", "127.0.0.1"),
            ring_timeout=float(env.get("KC_RING_TIMEOUT", "15")),
            secure_cookies=env.get("KC_SECURE_COOKIES", "") in ("1", "yes", "true"),
            **ports, **casework,
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
    def smtp_relay_address(self) -> tuple[str, int]:
        host, _, port = self.smtp_relay.rpartition(":")
        return host, int(port)

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

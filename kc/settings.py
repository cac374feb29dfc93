"""The one settings source: every `KC_*` environment variable the product reads, in one table.

Each `Setting` has its name, default, type and a help line. `Settings.from_env` parses and
checks them all at once (a bad value is a `ConfigError` naming the variable) and returns the
typed `Settings` the composition root hands down; no other module reads the environment.
`kc settings` lists the table with the current values, and the README's settings table is
`markdown_table()` (a test keeps the two equal).

Everything the service writes lives under one `var/` directory so a test run or a second
instance only needs a different `KC_VAR` and ports.
"""
from __future__ import annotations

import math
import os
import re
import ipaddress
import secrets
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The install script's default too (asterisk-docker/install-asterisk.sh; a test keeps them equal).
DEFAULT_ASTERISK_SYSROOT = Path("/var/cache/kommuncentral/asterisk-22")
ASTERISK_CHOICES = ("22", "16")

# Types a setting can have (the names are shown by `kc settings` and in the README).
TEXT, PATH, PORT, INTEGER, SECONDS, YES_NO, HOST_PORT = (
    "text", "path", "port", "integer", "seconds", "yes/no", "host:port")
_YES = ("1", "yes", "true", "on")
_NO = ("0", "no", "false", "off")
_HOSTPORT = re.compile(r"^([A-Za-z0-9.-]{1,253}):([0-9]{1,5})$")


@dataclass(frozen=True)
class Setting:
    name: str                 # the environment variable
    default: Any              # typed; None: unset (the help line says what happens then)
    type: str                 # one of the types above
    help: str
    attr: str                 # the attribute of `Settings` that holds the parsed value
    low: float | None = None  # bounds of a number, inclusive
    high: float | None = None
    secret: bool = False      # masked by `kc settings`

    @property
    def bounds(self) -> str:
        """`1..3650`, `1024..`, or empty when any value of the type will do."""
        if self.low is None and self.high is None:
            return ""
        low = "" if self.low is None else _number_text(self.low)
        high = "" if self.high is None else _number_text(self.high)
        return f"{low}..{high}"

    @property
    def type_label(self) -> str:
        return f"{self.type} {self.bounds}" if self.bounds and self.type != PORT else self.type

    def parse(self, raw: str | None) -> Any:
        """The typed value of `raw` (None or empty: the default); ConfigError if it is bad."""
        if raw is None or raw.strip() == "":
            return self.default
        value = _PARSERS[self.type](raw)
        if value is None:
            raise ConfigError(f"{self.name}={raw!r} is not a {_EXPECTED[self.type]}")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise ConfigError(f"{self.name}={raw!r} is outside {self.bounds}")
        return value

    def show(self, value: Any) -> str:
        """How `kc settings` and the README print a value of this setting."""
        if value is None:
            return "unset"
        if self.secret:
            return "********"
        if self.type == YES_NO:
            return "yes" if value else "no"
        if isinstance(value, float):
            return _number_text(value)
        return str(value)


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _int(raw: str) -> int | None:
    try:
        return int(raw.strip())
    except ValueError:
        return None


def _float(raw: str) -> float | None:
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _yes_no(raw: str) -> bool | None:
    word = raw.strip().lower()
    return True if word in _YES else False if word in _NO else None


def _host_port(raw: str) -> str | None:
    match = _HOSTPORT.match(raw.strip())
    return raw.strip() if match and 1 <= int(match.group(2)) <= 65535 else None


_PARSERS = {TEXT: str.strip, PATH: lambda raw: Path(raw), PORT: _int, INTEGER: _int,
            SECONDS: _float, YES_NO: _yes_no, HOST_PORT: _host_port}
_EXPECTED = {PORT: "port number", INTEGER: "whole number", SECONDS: "number of seconds",
             YES_NO: "yes/no (1, yes, true, on / 0, no, false, off)", HOST_PORT: "host:port",
             TEXT: "text", PATH: "path"}



def _port(name: str, default: int, help: str, attr: str) -> Setting:
    return Setting(name, default, PORT, help, attr, 1, 65535)


SETTINGS: tuple[Setting, ...] = (
    # Where the service keeps its files and where it listens
    Setting("KC_VAR", None, PATH, "Runtime directory: database, Asterisk tree, secrets, sounds, "
            "logs (unset: `var/` in the project)", "var_dir"),
    Setting("KC_BIND", "127.0.0.1", TEXT, "Address the web site, AMI and FastAGI listen on",
            "bind_host"),
    Setting("KC_SIP_HOST", "127.0.0.1", TEXT, "Address Asterisk takes SIP on (`0.0.0.0`: calls "
            "from other machines)", "sip_host"),
    _port("KC_SIP_PORT", 5060, "SIP (UDP) port", "sip_port"),
    _port("KC_AMI_PORT", 5038, "Asterisk Manager Interface port", "ami_port"),
    _port("KC_AGI_PORT", 4573, "FastAGI port (the press-a-digit menus)", "agi_port"),
    Setting("KC_AGI_ALLOW", "127.0.0.1,::1", TEXT, "Addresses FastAGI sessions are accepted from "
            "(Asterisk's, comma-separated); every session must also carry the generated "
            "`var/secrets/agi.secret`", "agi_allow"),
    _port("KC_WEB_PORT", 8080, "Web site and JSON API port", "web_port"),
    _port("KC_RTP_START", 10000, "First RTP (media) port", "rtp_start"),
    _port("KC_RTP_END", 10999, "Last RTP (media) port", "rtp_end"),
    Setting("KC_TRUNK_MATCH", "127.0.0.1", TEXT, "Address whose calls to the district numbers are "
            "the residents' trunk (no authentication)", "trunk_match"),
    Setting("KC_SECURE_COOKIES", False, YES_NO, "Mark the session cookies `Secure` even over "
            "plain HTTP (they are whenever the request came by HTTPS)", "secure_cookies"),
    Setting("KC_TRUSTED_PROXIES", "", TEXT, "Addresses (or networks) of reverse proxies whose "
            "`X-Forwarded-For/-Proto/-Host` the site believes (comma-separated; empty: none)",
            "trusted_proxies"),
    Setting("KC_AGENT_TLS", False, YES_NO, "Agents' phones over SIP TLS (port `KC_SIP_TLS_PORT`) "
            "with SRTP media; the residents' trunk stays UDP", "agent_tls"),
    _port("KC_SIP_TLS_PORT", 5061, "SIP TLS port of the agents' phones (with `KC_AGENT_TLS`)",
          "sip_tls_port"),
    Setting("KC_TLS_CERT", None, PATH, "Certificate (PEM) of the SIP TLS transport (unset: a "
            "self-signed one made in `var/tls/`)", "tls_cert"),
    Setting("KC_TLS_KEY", None, PATH, "Private key (PEM) of `KC_TLS_CERT`", "tls_key"),
    # The PBX
    Setting("KC_ASTERISK", "22", TEXT, "Which Asterisk runs the PBX: `22` (the system's own on a "
            "release that ships 20+, else Debian unstable's in a private root) or `16` (the "
            "system's, from Debian 11's security suite)", "asterisk"),
    Setting("KC_ASTERISK_SYSROOT", DEFAULT_ASTERISK_SYSROOT, PATH, "Where the install script made "
            "the private root of Asterisk 22 (shared by every checkout on the machine)",
            "asterisk_sysroot"),
    Setting("KC_ASTERISK_BIN", None, PATH, "The `asterisk` binary (unset: found on `PATH`, "
            "`/usr/sbin`, `/usr/local/sbin`)", "asterisk_bin"),
    Setting("KC_ASTERISK_MODDIR", None, PATH, "Asterisk's module directory, holding "
            "`chan_pjsip.so` (unset: the usual system places)", "asterisk_moddir"),
    # The menus
    Setting("KC_MENU_TIMEOUT", 4.0, SECONDS, "The longest a menu waits for a digit after its "
            "prompt (a node's own shorter wait is kept)", "menu_timeout", 1, 60),
    Setting("KC_MENU_SILENT_TRIES", 2, INTEGER, "Prompts in a row a silent caller hears before "
            "the node's default action (the switchboard), whatever tries the node allows",
            "menu_silent_tries", 1, 10),
    # The call distributor (ACD)
    Setting("KC_RING_TIMEOUT", 15.0, SECONDS, "How long an agent's phone rings before "
            "ring-no-answer", "ring_timeout", 1, 600),
    Setting("KC_WRAP_UP_SECONDS", 10.0, SECONDS, "Wrap-up after a call when the queue sets none",
            "wrap_up_seconds", 0, 3600),
    Setting("KC_ANNOUNCE_SECONDS", 45, INTEGER, "How often waiting callers hear their place and "
            "the estimated wait", "announce_seconds", 5, 3600),
    Setting("KC_OVERFLOW_SECONDS", 30.0, SECONDS, "Overflow wake-up when no queue configuration "
            "says otherwise (the routing core decides)", "overflow_seconds", 0, 86400),
    Setting("KC_CALLBACK_TRUNK", "127.0.0.1:5070", HOST_PORT, "Where call-backs and transfers to "
            "numbers are sent (the trunk towards the public network)", "callback_trunk"),
    Setting("KC_CALLBACK_RING_SECONDS", 30, INTEGER, "How long the resident's phone rings on a "
            "call-back", "callback_ring_seconds", 1, 600),
    Setting("KC_CALLBACK_RETRIES", 2, INTEGER, "How many more times a call-back the resident "
            "did not answer is made before it counts as failed", "callback_retries", 0, 10),
    Setting("KC_CALLBACK_RETRY_SECONDS", 300.0, SECONDS, "How long a call-back the resident "
            "did not answer waits before the next try", "callback_retry_seconds", 1, 86400),
    # Reports
    Setting("KC_RUNDGANG_DAYS", 14, INTEGER, "Rundgång: a resident contacting again about the "
            "same category within this many days (whatever the earlier outcome) is counted, and "
            "a matter resolved at first contact that comes back within them is not resolved",
            "rundgang_days", 1, 365),
    Setting("KC_WRAP_UP_NEEDS_CATEGORY", False, YES_NO, "Wrap-up after a call does not end "
            "until the agent has registered the contact's case (its category)",
            "wrap_up_needs_category"),
    # E-mail, the public form and retention
    Setting("KC_SMTP_HOST", "127.0.0.1", TEXT, "Address the SMTP intake listens on", "smtp_host"),
    _port("KC_SMTP_PORT", 2525, "SMTP intake port", "smtp_port"),
    Setting("KC_SMTP_RELAY", "127.0.0.1:2526", HOST_PORT, "Relay that replies are sent through",
            "smtp_relay"),
    Setting("KC_SMTP_MAX_BYTES", 1024 * 1024, INTEGER, "Largest e-mail accepted, in bytes "
            "(larger: 552)", "smtp_max_bytes", 1024, 10 ** 9),
    Setting("KC_RETENTION_DAYS", 90, INTEGER, "Days before notes are removed and numbers "
            "pseudonymised (`kc purge` and the daily purge)", "retention_days", 1, 3650),
    Setting("KC_HISTORY_DAYS", 30, INTEGER, "Days of a resident's earlier contacts shown on the "
            "agent's desktop", "history_days", 1, 3650),
    Setting("KC_FORM_LIMIT", 5, INTEGER, "Posts of the public form `/kontakt` per client address "
            "per `KC_FORM_WINDOW`", "form_limit", 1, 10000),
    Setting("KC_FORM_WINDOW", 600.0, SECONDS, "The window of `KC_FORM_LIMIT`", "form_window",
            1, 86400),
    # Operations: metrics, the call log, backups
    Setting("KC_NODE", None, TEXT, "This node's name in the metrics' `node` label and the call "
            "log (unset: the machine's host name)", "node_name"),
    Setting("KC_METRICS_ALLOW", "127.0.0.1,::1", TEXT, "Addresses that may read `/metrics` "
            "without a token (comma-separated; empty: none)", "metrics_allow"),
    Setting("KC_METRICS_TOKEN", None, TEXT, "Bearer token that opens `/metrics` from any address "
            "(unset: only `KC_METRICS_ALLOW`)", "metrics_token", secret=True),
    Setting("KC_BACKUP_DAILY", False, YES_NO, "Take a backup every day into `KC_BACKUP_DIR`",
            "backup_daily"),
    Setting("KC_BACKUP_DIR", None, PATH, "Where the daily backups go (unset: `var/backups/`)",
            "backup_dir"),
    Setting("KC_BACKUP_KEEP", 7, INTEGER, "How many daily backups are kept (older ones are "
            "removed)", "backup_keep", 1, 3650),
    # The organisation and the demo
    Setting("KC_CONFIG", None, PATH, "The organisation file `kc init --demo` (and so `make run`) "
            "creates the centre from (unset: `config/demo.yaml`; e.g. `config/stockholm.yaml`)",
            "config_file"),
    Setting("KC_DEMO_ALWAYS_OPEN", False, YES_NO, "`kc init --demo` makes every district always "
            "open (tests do not depend on the hour)", "demo_always_open"),
    # Language
    Setting("KC_LANG", "sv", TEXT, "Language of the `kc` command's messages: `sv` (Swedish) or "
            "`en` (English); the site's is each user's own choice", "language"),
)


@dataclass(frozen=True)
class Settings:
    """The parsed settings; one attribute per `Setting` (see `SETTINGS` for the meanings)."""
    var_dir: Path
    bind_host: str
    sip_host: str
    sip_port: int
    ami_port: int
    agi_port: int
    agi_allow: str
    web_port: int
    rtp_start: int
    rtp_end: int
    trunk_match: str
    secure_cookies: bool
    trusted_proxies: str
    agent_tls: bool
    sip_tls_port: int
    tls_cert: Path | None
    tls_key: Path | None
    asterisk: str
    asterisk_sysroot: Path
    asterisk_bin: Path | None
    asterisk_moddir: Path | None
    menu_timeout: float
    menu_silent_tries: int
    ring_timeout: float
    wrap_up_seconds: float
    announce_seconds: int
    overflow_seconds: float
    callback_trunk: str
    callback_ring_seconds: int
    callback_retries: int
    callback_retry_seconds: float
    rundgang_days: int
    wrap_up_needs_category: bool
    smtp_host: str
    smtp_port: int
    smtp_relay: str
    smtp_max_bytes: int
    retention_days: int
    history_days: int
    form_limit: int
    form_window: float
    node_name: str | None
    metrics_allow: str
    metrics_token: str | None
    backup_daily: bool
    backup_dir: Path | None
    backup_keep: int
    config_file: Path | None
    demo_always_open: bool
    language: str
    python: str = field(default_factory=lambda: sys.executable)   # not a setting: ourselves

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, var_dir: Path | None = None) -> "Settings":
        """Parse every setting from `env` (default: this process's environment), once."""
        env = os.environ if env is None else env
        values = {s.attr: s.parse(env.get(s.name)) for s in SETTINGS}
        values["var_dir"] = Path(var_dir or values["var_dir"] or PROJECT_ROOT / "var").resolve()
        for address in values["agi_allow"].split(","):
            try:
                ipaddress.ip_address(address.strip())
            except ValueError:
                raise ConfigError(f"KC_AGI_ALLOW: {address.strip()!r} is not an IP address "
                                  "(expected addresses separated by commas)") from None
        for name, key in (("KC_METRICS_ALLOW", "metrics_allow"),
                          ("KC_TRUSTED_PROXIES", "trusted_proxies")):
            for address in filter(None, (a.strip() for a in values[key].split(","))):
                try:
                    ipaddress.ip_network(address, strict=False)
                except ValueError:
                    raise ConfigError(f"{name}: {address!r} is not an IP address or network "
                                      "(expected addresses separated by commas)") from None
        if (values["tls_cert"] is None) != (values["tls_key"] is None):
            raise ConfigError("KC_TLS_CERT and KC_TLS_KEY go together: set both or neither")
        if values["rtp_start"] > values["rtp_end"]:
            raise ConfigError("KC_RTP_START must not exceed KC_RTP_END")
        if values["language"] not in ("sv", "en"):
            raise ConfigError(f"KC_LANG={values['language']!r}: choose sv or en")
        if values["asterisk"] not in ASTERISK_CHOICES:
            raise ConfigError(f"KC_ASTERISK={values['asterisk']!r}: choose one of "
                              f"{', '.join(ASTERISK_CHOICES)}")
        return cls(**values)

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
    def tls_pair(self) -> tuple[Path, Path]:
        """The SIP TLS certificate and key: the operator's, or the demo's in `var/tls/`."""
        if self.tls_cert is not None and self.tls_key is not None:
            return self.tls_cert, self.tls_key
        return self.var_dir / "tls" / "sip.crt", self.var_dir / "tls" / "sip.key"

    @property
    def call_log(self) -> Path:
        """The structured call log: one JSON line per call step (`kc logs`)."""
        return self.log_dir / "calls.jsonl"

    @property
    def node(self) -> str:
        return self.node_name or socket.gethostname()

    @property
    def backups(self) -> Path:
        return self.backup_dir or self.var_dir / "backups"

    @property
    def web_url(self) -> str:
        return f"http://{self.bind_host}:{self.web_port}"

    @property
    def smtp_relay_address(self) -> tuple[str, int]:
        host, _, port = self.smtp_relay.rpartition(":")
        return host, int(port)

    def secret(self, name: str) -> str:
        """Read a generated secret, creating it (mode 0600) on first use."""
        self.secrets_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.secrets_dir, 0o700)
        path = self.secrets_dir / name
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            pass
        # Written whole under a private name, then linked into place: the link is atomic and
        # fails if another process (`kc asterisk` and `kc serve` start together) made it first,
        # so nobody ever reads a secret half written.
        tmp = self.secrets_dir / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:   # another process won the race: theirs it is
            pass
        finally:
            tmp.unlink()
        return path.read_text().strip()


# ---------------------------------------------------------------------------- listing


def describe(settings: Settings, env: Mapping[str, str] | None = None,
             table: tuple[Setting, ...] = SETTINGS) -> str:
    """`kc settings`: every setting with its current value (secrets masked), default, type
    and help line; `(set)` marks those given in `env` (default: this process's environment)."""
    env = os.environ if env is None else env
    lines = []
    for s in table:
        value = getattr(settings, s.attr)
        mark = "   (set)" if env.get(s.name) else ""
        lines.append(f"{s.name} = {s.show(value)}{mark}")
        lines.append(f"    {s.help}. Default {s.show(s.default)}; {s.type_label}.")
    lines.append("Generated secrets (AMI password, FastAGI secret, session and pseudonym keys) live in "
                 f"{settings.secrets_dir} and are not settings.")
    return "\n".join(lines) + "\n"


def markdown_table(table: tuple[Setting, ...] = SETTINGS) -> str:
    """The README's settings table."""
    rows = ["| setting | default | type | what it does |", "|---|---|---|---|"]
    for s in table:
        default = "unset" if s.default is None else f"`{s.show(s.default)}`"
        rows.append(f"| `{s.name}` | {default} | {s.type_label} | {s.help} |")
    return "\n".join(rows) + "\n"

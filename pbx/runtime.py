"""Which Asterisk runs the PBX, and how a command of it is started.

Two kinds, chosen by `select_runtime` from the settings (`KC_ASTERISK`, `KC_ASTERISK_SYSROOT`):

- the system's own Asterisk (``/usr/sbin/asterisk``): Asterisk 16 from Debian 11's security
  suite (`KC_ASTERISK=16`), or the release's own Asterisk 20+ where it ships one;
- Asterisk 22 from Debian unstable in a private root made by debootstrap
  (asterisk-docker/install-asterisk.sh). Every command runs in a private mount namespace
  (``unshare --mount``) that bind-mounts the project's runtime directories into the root at
  the same paths and then ``chroot``s: Asterisk sees its own C library, modules and sounds,
  and our var/ tree (configuration, prompts, recordings, spool, logs, sockets) where the
  service sees it. The mounts live only as long as the process; nothing on the host changes.
  Asterisk still drops to the root's own ``asterisk`` user (`user_ids` reads the root's
  passwd, so files are chowned to the uid Asterisk will have inside).

Everything here is about *running* Asterisk; kc/asterisk.py renders its configuration.
"""
from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["AsteriskRuntime", "RuntimeMissing", "select_runtime", "runtime_for", "parse_version",
           "system_runtime"]

SYSTEM_BINARY = "/usr/sbin/asterisk"
# Where Debian puts the modules, for the root (multiarch) and older/other layouts.
MODULE_DIRS = (
    "/usr/lib/x86_64-linux-gnu/asterisk/modules",
    "/usr/lib/aarch64-linux-gnu/asterisk/modules",
    "/usr/lib/asterisk/modules",
    "/usr/lib64/asterisk/modules",
    "/usr/local/lib/asterisk/modules",
)
DATA_DIRS = ("/usr/share/asterisk", "/var/lib/asterisk", "/usr/local/share/asterisk")
_VERSION_RE = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")

# The wrapper run by `unshare --mount`: a private /tmp (so mount points made there for
# temporary trees leave nothing behind in the root), the host paths given before "--" bound
# into the root at the same place (creating the mount points), /dev and /proc; then chroot.
_ENTER = r'''set -e
root=$1; shift
mount -t tmpfs -o mode=1777,size=64m kc-tmp "$root/tmp"
while [ "$1" != "--" ]; do
  mkdir -p "$root$1"
  mount --bind "$1" "$root$1"
  shift
done
shift
for d in dev proc; do mount --rbind "/$d" "$root/$d"; done
exec chroot "$root" "$@"
'''


class RuntimeMissing(RuntimeError):
    """The chosen Asterisk is not installed (run `make system`)."""


def parse_version(text: str) -> str | None:
    """'22.10.1' from `asterisk -V` ('Asterisk 22.10.1+dfsg+~cs6...-1'), an AMI
    AsteriskVersion or a Debian package version ('1:16.28.0~dfsg-0+deb11u10'); else None."""
    text = (text or "").strip()
    if text.startswith("Asterisk "):
        text = text[len("Asterisk "):]
    text = re.sub(r"^\d+:", "", text)   # a Debian epoch
    m = _VERSION_RE.match(text)
    if not m:
        return None
    return ".".join(g for g in m.groups() if g is not None)


def major(version: str | None) -> int | None:
    try:
        return int((version or "").split(".")[0])
    except ValueError:
        return None


@dataclass(frozen=True)
class AsteriskRuntime:
    """An installed Asterisk: `sysroot` None for the system's own, else the private root."""

    binary: str = SYSTEM_BINARY     # as Asterisk itself sees it (inside the root)
    sysroot: Path | None = None
    module_dir_override: str | None = None

    @property
    def kind(self) -> str:
        return "system" if self.sysroot is None else "root"

    def host_path(self, path: str | Path) -> Path:
        """Where a path of Asterisk's file system is on the host."""
        if self.sysroot is None:
            return Path(path)
        return Path(str(self.sysroot) + str(path))

    def command(self, args: list[str], binds: tuple[Path, ...] = ()) -> list[str]:
        """argv that runs `asterisk <args>`; `binds` are host directories Asterisk must see
        (at the same paths). Nested ones are mounted once, with their outermost parent."""
        if self.sysroot is None:
            return [self.binary, *args]
        outer: list[str] = []
        for path in sorted({str(Path(b).resolve()) for b in binds}):
            if not any(path == o or path.startswith(o.rstrip("/") + "/") for o in outer):
                outer.append(path)
        if os.geteuid() == 0:
            prefix = ["unshare", "--mount", "--propagation", "private"]
        else:   # an unprivileged user gets root in a user namespace of its own
            prefix = ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"]
        return [*prefix, "/bin/sh", "-c", _ENTER, "kc-asterisk-root", str(self.sysroot), *outer, "--",
                self.binary, *args]

    def module_dir(self) -> str:
        candidates = [self.module_dir_override] if self.module_dir_override else []
        candidates += list(MODULE_DIRS)
        for c in candidates:
            if c and self.host_path(c).joinpath("chan_pjsip.so").is_file():
                return c
        where = f" in {self.sysroot}" if self.sysroot else ""
        raise RuntimeMissing(f"Asterisk module directory with chan_pjsip.so not found{where} ({candidates})")

    def sbin_dir(self) -> str:
        if self.sysroot is None:
            return str(Path(self.binary).resolve().parent)
        return str(Path(self.binary).parent)

    def data_dir(self) -> Path | None:
        """Asterisk's shipped data (sounds, documentation), as Asterisk sees it."""
        for c in DATA_DIRS:
            if self.host_path(c).joinpath("sounds").is_dir():
                return Path(c)
        return None

    def _passwd(self, name: str) -> list[list[str]]:
        text = self.host_path(f"/etc/{name}").read_text(errors="replace")
        return [line.split(":") for line in text.splitlines() if line]

    def user_ids(self, user: str) -> tuple[int, int] | None:
        """(uid, gid) of `user` as Asterisk will have them (the root's own passwd); None if
        there is no such user."""
        if self.sysroot is None:
            import pwd
            try:
                pw = pwd.getpwnam(user)
            except KeyError:
                return None
            return pw.pw_uid, pw.pw_gid
        try:
            rows = self._passwd("passwd")
        except OSError:
            return None
        for row in rows:
            if len(row) > 3 and row[0] == user:
                return int(row[2]), int(row[3])
        return None

    def group_name(self, gid: int) -> str | None:
        if self.sysroot is None:
            import grp
            try:
                return grp.getgrgid(gid).gr_name
            except KeyError:
                return None
        try:
            rows = self._passwd("group")
        except OSError:
            return None
        return next((row[0] for row in rows if len(row) > 2 and row[2] == str(gid)), None)

    def installed_version(self) -> str | None:
        """`asterisk -V` of this installation (no mounts needed for that)."""
        if self.sysroot is None:
            argv = [self.binary, "-V"]
        elif os.geteuid() == 0:
            argv = ["chroot", str(self.sysroot), self.binary, "-V"]
        else:
            argv = ["unshare", "--user", "--map-root-user", "chroot", str(self.sysroot), self.binary, "-V"]
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.TimeoutExpired):
            return None
        return parse_version(out)

    def describe(self) -> str:
        return SYSTEM_BINARY if self.sysroot is None else f"{self.binary} in {self.sysroot}"


def system_runtime(binary: str | None = None, module_dir: str | None = None) -> AsteriskRuntime:
    found = binary or shutil.which("asterisk") or next(
        (p for p in (SYSTEM_BINARY, "/usr/local/sbin/asterisk") if os.access(p, os.X_OK)), None)
    if not found:
        raise RuntimeMissing("asterisk binary not found (run `make system`, or set KC_ASTERISK_BIN)")
    return AsteriskRuntime(binary=found, module_dir_override=module_dir)


def _system_major() -> int | None:
    """Major version of the system's Asterisk package, from dpkg (no process started)."""
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "asterisk"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 or not out.stdout.strip() or not os.access(SYSTEM_BINARY, os.X_OK):
        return None
    return major(parse_version(out.stdout))


def runtime_for(settings: Any) -> AsteriskRuntime:
    """The runtime kc/settings.py's Settings choose."""
    def text(path: Any) -> str | None:
        return str(path) if path else None
    return select_runtime(settings.asterisk, Path(settings.asterisk_sysroot),
                          text(settings.asterisk_bin), text(settings.asterisk_moddir))


@functools.lru_cache(maxsize=8)
def select_runtime(choice: str, sysroot: Path, binary: str | None = None,
                   module_dir: str | None = None) -> AsteriskRuntime:
    """The Asterisk to run for `KC_ASTERISK=choice`.

    "16": the system's Asterisk (Debian 11's 16.28 as installed by install-asterisk.sh).
    "22": the system's when it is 20 or newer (a release that ships it, or the container
    image), else the private root at `sysroot`. `binary`/`module_dir` (KC_ASTERISK_BIN,
    KC_ASTERISK_MODDIR) point at a system Asterisk elsewhere and win over both."""
    if binary:
        return system_runtime(binary, module_dir)
    sys_major = _system_major()
    if choice == "16":
        if sys_major != 16:
            raise RuntimeMissing(
                "Asterisk 16 is not installed" + (f" (the system has Asterisk {sys_major})" if sys_major else "")
                + ": `KC_ASTERISK=16 make system` installs it from Debian 11's security suite (Debian 12 only)")
        return system_runtime(None, module_dir)
    if sys_major is not None and sys_major >= 20:
        return system_runtime(None, module_dir)
    root = Path(sysroot)
    if (root / "usr/sbin/asterisk").exists():
        return AsteriskRuntime(binary=SYSTEM_BINARY, sysroot=root.resolve(), module_dir_override=module_dir)
    raise RuntimeMissing(
        f"Asterisk 22 is not installed: no system Asterisk 20+ and no private root at {root} "
        "(run `make system`, or KC_ASTERISK=16 for the system's Asterisk 16)")

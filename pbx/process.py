"""The Asterisk process: started, asked (`asterisk -rx`) and stopped through the runtime that
runs it (pbx/runtime.py), from the configuration `pbx.asterisk.render_config` wrote."""
from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
from pathlib import Path

from .asterisk import AsteriskContext, AsteriskError, _binds, _ids, _runtime, render_config


def reload_succeeded(cli_output: str) -> bool:
    """Did `module reload X` work? Asterisk 16 and 22 both exit 0 and say so only in words:
    "Module 'X' reloaded successfully." (or, while another reload runs, that it is queued);
    a wrong name gives "No such module 'X'", a failed one "... failed to reload" or an error."""
    text = cli_output.lower()
    if "no such module" in text or "not found" in text or "error" in text or "fail" in text:
        return False
    return "reloaded successfully" in text or "queued" in text


# --------------------------------------------------------------------------- process


class AsteriskProcess:
    """One Asterisk instance running from ctx.root (``asterisk -C ... -f``)."""

    def __init__(self, ctx: AsteriskContext):
        self.ctx = ctx
        self._proc: asyncio.subprocess.Process | None = None
        self._stdout_log = None

    @property
    def config_path(self) -> Path:
        return Path(self.ctx.root).resolve() / "etc" / "asterisk.conf"

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def _base_cmd(self) -> list[str]:
        return _runtime(self.ctx).command(["-C", str(self.config_path)], _binds(self.ctx))

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for name in ("messages", "stdout.log"):
            p = Path(self.ctx.root) / "log" / name
            try:
                text = p.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            out.append(f"--- {p} ---\n" + "\n".join(text))
        return "\n".join(out)

    async def start(self, timeout: float = 30) -> None:
        if self.running:
            return
        if not self.config_path.exists():
            render_config(self.ctx)
        cmd = self._base_cmd() + ["-f", "-n", "-q"]
        ids = _ids(self.ctx)
        if ids:
            group = _runtime(self.ctx).group_name(ids[1]) or self.ctx.run_user
            cmd += ["-U", self.ctx.run_user, "-G", group]
        log_dir = Path(self.ctx.root) / "log"
        log_dir.mkdir(parents=True, exist_ok=True)
        messages = log_dir / "messages"
        log_offset = messages.stat().st_size if messages.exists() else 0
        self._stdout_log = open(log_dir / "stdout.log", "ab")
        self._proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._stdout_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if not self.running:
                raise AsteriskError(f"asterisk exited with {self.returncode} during start\n{self.log_tail()}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                await self.stop()
                raise AsteriskError(f"asterisk not fully booted after {timeout}s\n{self.log_tail()}")
            try:
                rc, out = await self._rx("core waitfullybooted", timeout=min(remaining, 10))
            except asyncio.TimeoutError:
                continue
            if rc == 0 and "fully booted" in out.lower():
                problems = self._boot_problems(messages, log_offset)
                if problems:
                    await self.stop()
                    raise AsteriskError("asterisk booted with fatal errors:\n" + "\n".join(problems))
                return
            await asyncio.sleep(0.2)

    _FATAL_PATTERNS = (
        re.compile(r"Transport '[^']*' could not be started.*"),
        re.compile(r"Unable to bind .*"),
        re.compile(r"Failed to resolve dependencies for .*"),
        re.compile(r"\S+ declined to load.*"),
        re.compile(r"Unable to load config file '(?:pjsip|extensions|manager)\.conf'.*"),
    )

    def _boot_problems(self, messages: Path, offset: int) -> list[str]:
        """SIP transport / AMI bind failures and modules that did not load: Asterisk still
        reports "fully booted" in these cases, but the service could not work."""
        try:
            with open(messages, "rb") as f:
                f.seek(offset)
                text = f.read().decode(errors="replace")
        except OSError:
            return []
        found = []
        for line in text.splitlines():
            if "ERROR" in line or "WARNING" in line:
                if any(p.search(line) for p in self._FATAL_PATTERNS):
                    found.append(line)
        return found

    async def _rx(self, command: str, timeout: float = 10) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            *self._base_cmd(), "-rx", command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        text = out.decode(errors="replace")
        rc = proc.returncode or 0
        if "Unable to connect to remote asterisk" in text:
            rc = rc or 1
        return rc, text

    async def cli(self, command: str, timeout: float = 10) -> str:
        """Run a CLI command (``asterisk -rx``); raise AsteriskError on failure."""
        if not self.running:
            raise AsteriskError("asterisk is not running")
        rc, out = await self._rx(command, timeout)
        if rc != 0:
            raise AsteriskError(f"{command!r} failed ({rc}): {out.strip()}")
        return out

    async def reload_pjsip(self) -> None:
        out = await self.cli("module reload res_pjsip.so")
        if not reload_succeeded(out):
            raise AsteriskError(f"pjsip reload failed: {out.strip()}")

    async def stop(self, timeout: float = 10) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.returncode is None:
                try:
                    await self._rx("core stop now", timeout=min(timeout, 5))
                except (asyncio.TimeoutError, OSError):
                    pass
                for sig, wait in ((None, timeout), (signal.SIGTERM, 3), (signal.SIGKILL, 3)):
                    if sig is not None and proc.returncode is None:
                        try:
                            os.kill(proc.pid, sig)
                        except ProcessLookupError:
                            pass
                    try:
                        await asyncio.wait_for(proc.wait(), wait)
                        break
                    except asyncio.TimeoutError:
                        continue
        finally:
            if self._stdout_log is not None:
                self._stdout_log.close()
                self._stdout_log = None

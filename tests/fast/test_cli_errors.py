"""The `kc` command's errors are sentences, in the chosen language, with the exit code kept:
no Python traceback for a file that is not there, a menu version that does not exist or a
port another program holds (named with the setting that moves it)."""
from __future__ import annotations

import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def kc(var: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kommuncentral.cli", *args], cwd=PROJECT_ROOT,
                          env={"KC_VAR": str(var), "PATH": "/usr/bin:/bin", **env},
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def centre(tmp_path_factory):
    var = tmp_path_factory.mktemp("centre")
    assert kc(var, "init", "--demo").returncode == 0
    return var


def _said(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip()


def test_a_missing_file_is_named_without_a_traceback(centre):
    result = kc(centre, "menu", "import", "bromma", "/nonexistent.yaml")
    assert result.returncode == 1
    assert _said(result) == "kc: /nonexistent.yaml: filen finns inte"


def test_a_version_that_does_not_exist_says_so_in_the_chosen_language(centre):
    result = kc(centre, "menu", "rollback", "bromma", "--to", "7")
    assert result.returncode == 2
    assert _said(result) == "kc: det finns ingen version 7 av menyn för 'bromma'"
    result = kc(centre, "menu", "rollback", "bromma", "--to", "7", KC_LANG="en")
    assert _said(result) == "kc: there is no version 7 of the menu of 'bromma'"


def _free_port() -> int:
    """A port free now, below the ephemeral range: the system hands ports of that range to
    every other program's `bind(0)` and outgoing connections (a full suite makes thousands),
    so one picked from it can be taken before `kc serve` opens it."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    while True:
        port = random.randrange(20000, low) if low > 21000 else 0
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]


def test_a_busy_web_port_is_named_with_its_setting(centre):
    for attempt in range(3):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            ports = {name: str(_free_port()) for name in
                     ("KC_AGI_PORT", "KC_AMI_PORT", "KC_SIP_PORT", "KC_SMTP_PORT")}
            result = kc(centre, "serve", KC_WEB_PORT=str(port), **ports)
        said = _said(result).splitlines()[-1]
        if "KC_AGI_PORT" not in said:     # else another program took the test's free AGI port
            break                         # before the service opened it: again, new ports
    assert result.returncode == 1
    assert said.startswith(f"kc: 127.0.0.1:{port} kan inte öppnas: ett annat program använder den")
    assert "KC_WEB_PORT" in said

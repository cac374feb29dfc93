"""The server install's files (ops/): systemd units that systemd itself accepts, with restart
policies and the `kc` user; log rotation of the files the service appends to; the paths they
name are the ones the settings use."""
from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

from kc.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
OPS = ROOT / "ops"
UNITS = sorted((OPS / "systemd").glob("*.service"))
VAR = Path("/var/lib/kommuncentral")


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str            # keys are case-sensitive in systemd
    parser.read_string(path.read_text())
    return parser


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_accepts_every_unit(tmp_path):
    """`systemd-analyze verify` on copies pointing at this checkout (and, where Kamailio is not
    installed, at a program that is): any warning fails."""
    for path in UNITS:
        text = path.read_text().replace("/opt/kommuncentral", str(ROOT))
        if not Path("/usr/sbin/kamailio").exists():
            text = text.replace("/usr/sbin/kamailio", "/usr/bin/env")
        (tmp_path / path.name).write_text(text)
    out = subprocess.run(["systemd-analyze", "verify", "--man=no",
                          *[str(tmp_path / p.name) for p in UNITS]],
                         capture_output=True, text=True, cwd=tmp_path)
    assert (out.returncode, out.stderr.strip()) == (0, ""), out.stderr


def test_units_restart_and_run_as_they_should():
    assert {p.name for p in UNITS} == {"kommuncentral.service", "kommuncentral-asterisk.service",
                                       "kommuncentral-kamailio.service"}
    for path in UNITS:
        u = unit(path)
        assert u["Service"]["Restart"] in ("always", "on-failure"), path.name
        assert int(u["Unit"]["StartLimitBurst"]) >= 3, path.name
        assert u["Install"]["WantedBy"] == "multi-user.target"
    service = unit(OPS / "systemd" / "kommuncentral.service")
    assert service["Service"]["User"] == "kc" and service["Service"]["ExecStart"].endswith("kc serve")
    assert service["Service"]["Environment"] == f"KC_VAR={VAR}"
    assert "kommuncentral-asterisk.service" in service["Unit"]["After"]
    pbx = unit(OPS / "systemd" / "kommuncentral-asterisk.service")
    assert pbx["Service"]["ExecStart"].endswith("kc asterisk")
    assert "u kc " in (OPS / "systemd" / "kommuncentral.sysusers").read_text()
    assert f"d {VAR} 2770 kc kc" in (OPS / "systemd" / "kommuncentral.tmpfiles").read_text()


def test_logrotate_rotates_what_the_service_appends_to():
    text = (OPS / "logrotate" / "kommuncentral").read_text()
    settings = Settings.from_env({}, var_dir=VAR)
    for path in (settings.queue_log, settings.call_log):
        assert f"\n{path}\n" in text, path
    body = text[text.index("{"):text.index("}")]
    for word in ("copytruncate", "compress", "su kc kc", "maxage 90"):
        assert word in body
    assert "create" not in body          # ignored with copytruncate


def test_the_install_script_installs_nginx_for_the_proxy_test():
    script = (ROOT / "asterisk-docker" / "install-asterisk.sh").read_text()
    assert "nginx-light" in script

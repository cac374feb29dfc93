"""Which Asterisk runs and how (pbx/runtime.py), and what differs between 16 and 22
in what the adapters read (version strings, CLI answers)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pbx import runtime as ar
from pbx.process import reload_succeeded
from kc.settings import DEFAULT_ASTERISK_SYSROOT, Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text, version", [
    ("Asterisk 22.10.1+dfsg+~cs6.17.60671434-1\n", "22.10.1"),        # asterisk -V, 22
    ("Asterisk 16.28.0~dfsg-0+deb11u10", "16.28.0"),                    # asterisk -V, 16
    ("22.10.1+dfsg+~cs6.17.60671434-1", "22.10.1"),                     # AMI CoreSettings
    ("1:16.28.0~dfsg-0+deb11u10", "16.28.0"),                           # dpkg, with an epoch
    ("20.5", "20.5"),
    ("GIT-master-1a2b3c", None), ("", None),
])
def test_versions_of_both_asterisks_are_read(text, version):
    assert ar.parse_version(text) == version


def test_cli_reload_answers_of_16_and_22_are_told_apart():
    # Both exit 0 whatever happened; the words say it (same words on 16 and 22).
    assert reload_succeeded("Module 'res_pjsip.so' reloaded successfully.\n")
    assert not reload_succeeded("No such module 'res_pjsipp.so'\n")
    assert not reload_succeeded("The module 'res_pjsip.so' experienced an error during reload.")
    assert not reload_succeeded("")


def _fake_root(tmp_path: Path, uid: int = 4242, gid: int = 4343) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/sbin/asterisk").write_text("")
    (root / "etc/passwd").write_text(f"root:x:0:0::/root:/bin/sh\nasterisk:x:{uid}:{gid}:A:/var/lib/asterisk:/usr/sbin/nologin\n")
    (root / "etc/group").write_text(f"root:x:0:\nasterisk:x:{gid}:\n")
    return root


def test_users_are_looked_up_in_the_roots_own_passwd(tmp_path):
    rt = ar.AsteriskRuntime(sysroot=_fake_root(tmp_path))
    assert rt.user_ids("asterisk") == (4242, 4343)
    assert rt.group_name(4343) == "asterisk"
    assert rt.user_ids("nobody-here") is None
    assert rt.host_path("/usr/sbin/asterisk") == tmp_path / "root/usr/sbin/asterisk"


@pytest.fixture
def system_major(monkeypatch):
    ar.select_runtime.cache_clear()
    state = {"major": None}
    monkeypatch.setattr(ar, "_system_major", lambda: state["major"])
    yield state
    ar.select_runtime.cache_clear()


def test_22_is_the_systems_where_it_ships_20_or_newer_else_the_private_root(tmp_path, system_major):
    root = _fake_root(tmp_path)
    system_major["major"] = 22
    assert ar.select_runtime("22", root).sysroot is None
    ar.select_runtime.cache_clear()
    system_major["major"] = 16            # Debian 12 with 16 installed: 22 from the root
    assert ar.select_runtime("22", root).sysroot == root.resolve()
    ar.select_runtime.cache_clear()
    with pytest.raises(ar.RuntimeMissing, match="make system"):
        ar.select_runtime("22", tmp_path / "nowhere")


def test_16_is_only_ever_the_systems_16(tmp_path, system_major):
    root = _fake_root(tmp_path)
    system_major["major"] = 16
    assert ar.select_runtime("16", root).sysroot is None
    ar.select_runtime.cache_clear()
    system_major["major"] = 22
    with pytest.raises(ar.RuntimeMissing, match="Asterisk 16 is not installed"):
        ar.select_runtime("16", root)


def test_settings_choose_22_by_default_and_refuse_others():
    s = Settings.from_env({})
    assert (s.asterisk, s.asterisk_sysroot) == ("22", DEFAULT_ASTERISK_SYSROOT)
    assert Settings.from_env({"KC_ASTERISK": "16"}).asterisk == "16"
    with pytest.raises(Exception, match="KC_ASTERISK"):
        Settings.from_env({"KC_ASTERISK": "18"})


def test_install_script_and_settings_agree_on_where_the_root_is():
    text = (ROOT / "asterisk-docker/install-asterisk.sh").read_text()
    assert f"default_sysroot={DEFAULT_ASTERISK_SYSROOT}\n" in text


def test_nested_binds_are_mounted_once():
    rt = ar.AsteriskRuntime(sysroot=Path("/srv/r"))
    argv = rt.command(["-C", "/v/a/etc/asterisk.conf"], (Path("/v/a"), Path("/v"), Path("/t/run")))
    sep = argv.index("--")
    assert argv[sep - 3:sep] == ["/srv/r", "/t/run", "/v"]
    assert argv[sep + 1:] == ["/usr/sbin/asterisk", "-C", "/v/a/etc/asterisk.conf"]
    assert ar.AsteriskRuntime().command(["-V"]) == ["/usr/sbin/asterisk", "-V"]


REAL_ROOT = Settings.from_env().asterisk_sysroot


@pytest.mark.skipif(os.geteuid() != 0 or not (REAL_ROOT / "usr/sbin/asterisk").exists(),
                    reason="needs root and the Asterisk 22 root (make system)")
def test_a_command_in_the_root_sees_bound_directories_at_their_own_paths(tmp_path):
    shared = tmp_path / "var"
    shared.mkdir()
    (shared / "prompt.txt").write_text("hej\n")
    rt = ar.AsteriskRuntime(binary="/bin/sh", sysroot=REAL_ROOT)
    script = f"cat /etc/debian_version; cat {shared}/prompt.txt; echo ut > {shared}/out.txt"
    out = subprocess.run(rt.command(["-c", script], (shared,)), capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    own = (REAL_ROOT / "etc/debian_version").read_text()
    assert out.stdout == own + "hej\n"                      # the root's files, our directory
    assert (shared / "out.txt").read_text() == "ut\n"       # written through to the host
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(REAL_ROOT) not in mounts                     # the mounts died with the process
    assert ar.AsteriskRuntime(sysroot=REAL_ROOT).installed_version().startswith("22.")

"""The one settings source (kc/settings.py): its table, parsing, errors, `kc settings`, the
README's copy of the table, and that nothing else reads the environment."""
import dataclasses
import re
import tomllib
from datetime import datetime, timezone
from pathlib import Path

import pytest

from acd.options import AcdOptions
from kc.errors import ConfigError
from kc.settings import PROJECT_ROOT, SETTINGS, Setting, Settings, describe, markdown_table
from kc.store import Store
from kommuncentral import cli
from demo_template import load_demo
from pbx.runtime import system_runtime
from schedules.schedule_store import all_bodies

BY_NAME = {s.name: s for s in SETTINGS}


def test_the_table_names_each_attribute_of_settings_once():
    names = [s.name for s in SETTINGS]
    attrs = [s.attr for s in SETTINGS]
    assert len(set(names)) == len(names) and len(set(attrs)) == len(attrs)
    assert all(re.fullmatch(r"KC_[A-Z0-9_]+", n) for n in names)
    assert set(attrs) == {f.name for f in dataclasses.fields(Settings)} - {"python"}
    assert all(s.help and not s.help.endswith(".") for s in SETTINGS)


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.default is not None], ids=lambda s: s.name)
def test_each_default_reads_back_through_its_own_type(setting):
    assert setting.parse(setting.show(setting.default)) == setting.default


def test_unset_and_empty_give_the_defaults(tmp_path):
    empty = Settings.from_env({"KC_VAR": str(tmp_path), "KC_WEB_PORT": "", "KC_BIND": "  "})
    for s in SETTINGS[1:]:
        assert getattr(empty, s.attr) == s.default, s.name
    assert empty.var_dir == tmp_path.resolve()
    assert Settings.from_env({}).var_dir == PROJECT_ROOT / "var"


def test_values_are_parsed_into_their_types(tmp_path):
    s = Settings.from_env({
        "KC_VAR": str(tmp_path / "x" / ".." / "y"), "KC_SIP_PORT": "15060", "KC_BIND": " 0.0.0.0 ",
        "KC_RING_TIMEOUT": "2.5", "KC_ANNOUNCE_SECONDS": "600", "KC_SECURE_COOKIES": "Yes",
        "KC_DEMO_ALWAYS_OPEN": "0", "KC_CALLBACK_TRUNK": "sbc.example:5080",
        "KC_SMTP_RELAY": "relay.example:25", "KC_ASTERISK_BIN": "/opt/ast/sbin/asterisk"})
    assert s.var_dir == tmp_path / "y"
    assert (s.sip_port, s.bind_host, s.ring_timeout, s.announce_seconds) == (15060, "0.0.0.0", 2.5, 600)
    assert s.secure_cookies is True and s.demo_always_open is False
    assert s.callback_trunk == "sbc.example:5080"
    assert s.smtp_relay_address == ("relay.example", 25)
    assert s.asterisk_bin == Path("/opt/ast/sbin/asterisk") and s.asterisk_moddir is None


@pytest.mark.parametrize("env, message", [
    ({"KC_WEB_PORT": "http"}, "KC_WEB_PORT='http' is not a port number"),
    ({"KC_SIP_PORT": "70000"}, "KC_SIP_PORT='70000' is outside 1..65535"),
    ({"KC_ANNOUNCE_SECONDS": "3"}, "KC_ANNOUNCE_SECONDS='3' is outside 5..3600"),
    ({"KC_ANNOUNCE_SECONDS": "4.5"}, "KC_ANNOUNCE_SECONDS='4.5' is not a whole number"),
    ({"KC_RING_TIMEOUT": "nan"}, "KC_RING_TIMEOUT='nan' is not a number of seconds"),
    ({"KC_SECURE_COOKIES": "maybe"}, "KC_SECURE_COOKIES='maybe' is not a yes/no"),
    ({"KC_CALLBACK_TRUNK": "evil;x:5070"}, "KC_CALLBACK_TRUNK='evil;x:5070' is not a host:port"),
    ({"KC_SMTP_RELAY": "relay:99999"}, "KC_SMTP_RELAY='relay:99999' is not a host:port"),
    ({"KC_SMTP_MAX_BYTES": "100"}, "KC_SMTP_MAX_BYTES='100' is outside 1024..1000000000"),
    ({"KC_RTP_START": "20000", "KC_RTP_END": "10000"}, "KC_RTP_START must not exceed KC_RTP_END"),
])
def test_a_bad_value_is_an_error_naming_the_variable(env, message):
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env)
    assert str(err.value).startswith(message)


def test_the_acd_takes_its_options_from_the_table():
    env = {"KC_WRAP_UP_SECONDS": "0", "KC_ANNOUNCE_SECONDS": "6", "KC_OVERFLOW_SECONDS": "12.5",
           "KC_CALLBACK_TRUNK": "127.0.0.1:6000", "KC_CALLBACK_RING_SECONDS": "20"}
    options = AcdOptions.from_settings(Settings.from_env(env))
    assert options == AcdOptions(wrap_up_seconds=0.0, announce_seconds=6, overflow_seconds=12.5,
                                 callback_trunk="127.0.0.1:6000", callback_ring_seconds=20)
    assert AcdOptions.from_settings(Settings.from_env({"KC_WRAP_UP_NEEDS_CATEGORY": "yes"})) \
        == AcdOptions(wrap_up_needs_category=True)
    assert AcdOptions.from_settings(Settings.from_env({})) == AcdOptions()


def test_kc_settings_lists_every_setting(monkeypatch, capsys, tmp_path):
    for s in SETTINGS:
        monkeypatch.delenv(s.name, raising=False)
    monkeypatch.setenv("KC_VAR", str(tmp_path))
    monkeypatch.setenv("KC_SIP_PORT", "15060")
    assert cli.main(["settings"]) == 0
    out = capsys.readouterr().out
    for s in SETTINGS:
        assert f"\n{s.name} = " in "\n" + out, s.name
        assert f"    {s.help}. Default {s.show(s.default)}; {s.type_label}." in out
    assert "KC_SIP_PORT = 15060   (set)\n" in out
    assert "KC_WEB_PORT = 8080\n" in out
    assert f"KC_VAR = {tmp_path.resolve()}   (set)\n" in out


def test_kc_settings_masks_secrets_and_stops_on_a_bad_value(monkeypatch, capsys):
    secret = Setting("KC_TRUNK_SECRET", None, "text", "A password", "trunk_match", secret=True)
    text = describe(Settings.from_env({"KC_TRUNK_MATCH": "hunter2"}), {}, (secret,))
    assert "KC_TRUNK_SECRET = ********" in text and "hunter2" not in text
    monkeypatch.setenv("KC_AGI_PORT", "-1")
    assert cli.main(["settings"]) == 2
    assert "kc: KC_AGI_PORT='-1' is outside 1..65535" in capsys.readouterr().err


def test_the_readme_table_is_the_code_table(capsys):
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- settings table:[^\n]*-->\n(.*?)<!-- end of the settings table -->",
                      readme, re.S)
    assert match, "README.md lost its settings table markers"
    assert match.group(1) == markdown_table()
    assert cli.main(["settings", "--markdown"]) == 0
    assert capsys.readouterr().out == markdown_table()


def _product_modules() -> list[Path]:
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = pyproject["tool"]["importlinter"]["root_packages"]
    assert "kc" in packages and "kommuncentral" in packages
    return sorted(p for name in packages for p in (PROJECT_ROOT / name).rglob("*.py"))


def test_no_module_but_the_settings_reads_the_environment():
    readers = set()
    for path in _product_modules():
        text = path.read_text(encoding="utf-8")
        if re.search(r"\bos\.environ\b|\bgetenv\b|\bfrom os import\b[^\n]*\benviron\b", text):
            readers.add(path.relative_to(PROJECT_ROOT).as_posix())
    assert readers == {"kc/settings.py"}


def test_the_pbx_takes_its_binary_and_modules_from_the_settings(tmp_path):
    assert system_runtime("/opt/ast/sbin/asterisk").binary == "/opt/ast/sbin/asterisk"
    (tmp_path / "chan_pjsip.so").write_bytes(b"")
    assert system_runtime("/opt/ast/sbin/asterisk", str(tmp_path)).module_dir() == str(tmp_path)


@pytest.mark.parametrize("always", [False, True])
def test_the_demo_is_always_open_only_when_asked(tmp_path, always):
    store = Store(tmp_path / "kc.db")
    try:
        store.run_sync(load_demo, lambda: datetime(2026, 11, 27, 12, tzinfo=timezone.utc),
                       always_open=always)
        bodies = store.run_sync(all_bodies)
    finally:
        store.close()
    assert set(bodies) == {"bromma", "hasselby-vallingby"}
    assert all(bool(b.get("always_open")) is always for b in bodies.values())


def test_a_secret_made_by_racing_processes_is_whole_and_the_same(tmp_path):
    """`kc asterisk` and `kc serve` start together and both ask for the same secret: each gets
    the one whole value (never an empty, half-written file). Twelve processes start at once,
    in each of five fresh directories (the
    unsafe way of writing it fails in the first few)."""
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    for run in range(5):
        var = tmp_path / str(run)
        barrier, out = ctx.Barrier(12), ctx.Queue()
        procs = [ctx.Process(target=_race_for_secret, args=(str(var), barrier, out))
                 for _ in range(12)]
        for p in procs:
            p.start()
        values = [out.get(timeout=30) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        assert len(set(values)) == 1 and len(values[0]) >= 32, values
        assert [p.name for p in (var / "secrets").iterdir()] == ["agi.secret"]


def _race_for_secret(var: str, barrier, out) -> None:
    settings = Settings.from_env({"KC_VAR": var})
    barrier.wait()
    out.put(settings.secret("agi.secret"))

"""Wait announcements on a real Asterisk with SIPp: shortly before a waiting caller's
announcement is due, `kc-wait` asks the service for its files (`announce,<contact>,ahead`; the
music pauses for that round trip), so Asterisk plays them the moment the wait ends, with nothing left to
ask. When nothing was set (here: the service stopped), the dialplan asks again when due
(`announce,<contact>`); the caller waits on with music, and once the service is back the next
turn is announced. What was played, and how, is read from Asterisk's own log."""
from __future__ import annotations

import re

import pytest

from agi import phrases
from agi.prompts import PromptCache
from demo_facts import DISTRICTS
from kc_instance import now_iso, running_instance
from sipp_driver import call

pytestmark = [pytest.mark.telephony, pytest.mark.smoke16]

BROMMA = DISTRICTS["bromma"]["numbers"][0]
EVERY = 8          # KC_ANNOUNCE_SECONDS: asked 2 s ahead, due after 8 s of waiting


@pytest.fixture(scope="module")
def kc():
    with running_instance({"KC_ANNOUNCE_SECONDS": str(EVERY), "KC_RING_TIMEOUT": "5"}) as inst:
        cache = PromptCache((inst.var / "sounds").resolve())
        wanted = [cache.path_for(t, "sv") for t in phrases.all_parts("sv")]
        inst.wait_for(lambda: all(p.with_name(p.name + ".wav").is_file() for p in wanted), 300,
                      "the Swedish announcement parts")
        yield inst


def log_text(kc) -> str:
    return (kc.var / "asterisk" / "log" / "messages").read_text(errors="replace")


def channel_of(kc, contact_id: int) -> str:
    m = re.search(r'UserEvent\("([^"]+)", "KcWaiting,ContactID: %d"\)' % contact_id, log_text(kc))
    assert m, f"contact {contact_id} never reached kc-wait"
    return m.group(1)


def waiting_contact(kc, since: str, caller: str) -> dict:
    """The caller's contact once the dialplan holds them in `kc-wait`."""
    contact = kc.wait_for(lambda: next((c for c in kc.contacts(since) if c["caller"] == caller
                                        and c["skill"]), None), 30, f"{caller} queued")
    kc.wait_for(lambda: "KcWaiting,ContactID: %d\"" % contact["id"] in log_text(kc), 30,
                f"{caller} waiting")
    return contact


def announced(kc, contact_id: int) -> list[int]:
    return [r[0] for r in kc.sql("select json_extract(data, '$.position') from contact_events "
                                 "where contact_id = ? and kind = 'announced' order by id",
                                 contact_id)]


def agi_lines(lines: list[str], contact_id: int, ahead: bool) -> list[int]:
    tail = f",{contact_id},ahead" if ahead else f",{contact_id}"
    return [n for n, ln in enumerate(lines)
            if re.search(r'AGI\("[^"]+", "[^"]*/announce%s"\)' % re.escape(tail), ln)]


def played_ahead(lines: list[str]) -> list[int]:
    return [n for n, ln in enumerate(lines) if re.search(r"\] BackGround\(", ln, re.IGNORECASE)]


def test_the_files_set_ahead_are_played_the_moment_the_wait_ends(kc, tmp_path):
    since = now_iso()
    # 2: school; nobody is logged in, so the caller waits through two announcements
    run = call(tmp_path, kc.sip_port, BROMMA, digits=[(3.0, "2")], caller_number="0709200001",
               hangup_after=2 * EVERY + 12)
    contact = waiting_contact(kc, since, "0709200001")
    run.wait(60)
    chan = channel_of(kc, contact["id"])
    lines = [ln for ln in log_text(kc).splitlines() if chan in ln]
    first = PromptCache((kc.var / "sounds").resolve()).path_for(
        phrases.announcement("sv", 1, 0)[0][0], "sv")            # "Du är nummer"
    ahead, played = agi_lines(lines, contact["id"], True), played_ahead(lines)
    assert len(ahead) >= 2 and len(played) >= 2, "\n".join(lines[-40:])
    assert ahead[0] < played[0] < ahead[1] < played[1]
    assert str(first) in lines[played[0]] and f"Playing '{first}" in lines[played[0] + 1]
    assert agi_lines(lines, contact["id"], False) == []      # never asked again when due
    assert announced(kc, contact["id"])[:2] == [1, 1]


def test_with_the_service_stopped_the_caller_waits_on_and_is_announced_once_it_is_back(kc, tmp_path):
    since = now_iso()
    run = call(tmp_path, kc.sip_port, BROMMA, digits=[(3.0, "2")], caller_number="0709200002",
               hangup_after=60)
    contact = waiting_contact(kc, since, "0709200002")
    chan = channel_of(kc, contact["id"])
    kc.stop_service()
    try:
        kc.wait_for(lambda: agi_lines([ln for ln in log_text(kc).splitlines() if chan in ln],
                                      contact["id"], False), 3 * EVERY,
                    "the announcement asked for when due (nothing was set ahead)")
    finally:
        kc.start_service()
    restarted = len(log_text(kc).splitlines())
    kc.wait_for(lambda: played_ahead([ln for ln in log_text(kc).splitlines()[restarted:]
                                      if chan in ln]), 3 * EVERY, "an announcement once back")
    result = run.wait(90)
    assert result.hangup == "us", result.log                # the caller waited on to the end

"""Cases, knowledge base, retention, FCR, e-mail parsing and task choice: real SQLite, no PBX."""
from __future__ import annotations

from email.message import EmailMessage

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from acd.routing import AgentSnapshot, WaitingCall
from acd.tasks import Task, task_assignments
from admin_web.case_pages import RateLimiter
from cases import access, categories, fcr, knowledge, messages, records, retention
from cases.email import parse_message
from kc.clock import iso
from cases import mail_directory
from demo_template import demo_store, load_demo
from kc.domain import AgentState
from kc.errors import InvalidInput
from kc.store import Store

NOW = datetime(2025, 3, 3, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path: Path):
    with demo_store(tmp_path, lambda: NOW) as s:
        yield s


def top(store, skill):
    return store.run_sync(categories.category_for_skill, skill)["id"]


def test_swedish_full_text_search(store):
    q = lambda text: [r["question"] for r in store.run_sync(knowledge.kb_search, text)]
    assert "Hur ansöker jag om hemtjänst?" in q("hemtjänsten")       # stemmed + prefix
    assert q("äldreboenden") == ["Hur ansöker jag om plats på äldreboende?"]
    assert q("hemtjanst") == []                                      # å/ä/ö are letters of their own
    assert q('"; drop table kb_articles; --') == [] and q("*") == []  # no FTS syntax from users
    assert knowledge.swedish_stem("skolorna") == "skol" and knowledge.swedish_stem("barnen") == "barn"
    store.run_sync(knowledge.save_kb, "Var hittar jag färdtjänst?", "Ansök hos biståndshandläggaren.",
                   top(store, "elderly-care"), "admin", iso(NOW))
    assert q("färdtjänsten") == ["Var hittar jag färdtjänst?"]       # index follows edits


def test_case_rules_and_fcr(store):
    def contact(channel="phone", district="bromma", skill="elderly-care", caller="0701"):
        return store.run_sync(messages.create_written_contact, channel="web", district=district,
                              caller=caller, caller_name=None, skill=skill, at=iso(NOW),
                              subject="s", body="b") if channel == "web" else store.run_sync(
            lambda db: db["contacts"].insert({"channel": channel, "district": district, "caller": caller,
                                              "skill": skill, "started_at": iso(NOW)}).last_pk)
    depts = store.run_sync(categories.list_departments)
    save = lambda cid, outcome, **kw: store.run_sync(
        records.save_case, contact_id=cid, category_id=kw.get("cat", top(store, "elderly-care")),
        subcategory_id=None, note=kw.get("note", ""), outcome=outcome,
        forwarded_to=kw.get("dept"), forward_reason=kw.get("reason"), eservice=kw.get("es"),
        agent="bromma-101", created_by="bromma-101", at=iso(NOW))
    save(contact(), "resolved_first_contact")
    save(contact(), "resolved_first_contact")
    save(contact(channel="web"), "forwarded", dept=depts[0]["id"], reason="behöver handläggare")
    with pytest.raises(InvalidInput, match="reason"):
        save(contact(), "forwarded", dept=depts[0]["id"])
    with pytest.raises(InvalidInput, match="e-service"):
        save(contact(), "referred_eservice")
    cid = contact(district="hasselby-vallingby", skill="social-services")
    case_id = save(cid, "visit_booked", cat=top(store, "social-services"))
    assert store.run_sync(records.get_case, case_id)["confidential"] is True
    with pytest.raises(InvalidInput, match="already"):
        save(cid, "visit_booked", cat=top(store, "social-services"))
    report = store.run_sync(fcr.fcr)
    assert report["total"]["cases"] == 4 and report["total"]["resolved"] == 2
    by = {r["key"]: r for r in report["by_channel"]}
    assert by["phone"]["rate"] == pytest.approx(2 / 3) and by["web"]["rate"] == 0
    assert report["forwarded"] == [{"department": depts[0]["name"], "cases": 1}]
    # confidentiality rule
    assert access.may_read({"role": "agent"}, "hasselby-vallingby", ("hasselby-vallingby",))
    assert not access.may_read({"role": "agent"}, "hasselby-vallingby", ("bromma",))
    assert access.may_read({"role": "supervisor", "districts": '["bromma"]'}, "bromma", ())
    assert not access.may_read({"role": "supervisor"}, "bromma", ())   # supervises none
    assert not access.may_read({"role": "admin"}, "bromma", ())


def test_purge_removes_notes_and_pseudonymises(store):
    old = iso(NOW - timedelta(days=100))
    cid = store.run_sync(messages.create_written_contact, channel="email", district="bromma",
                         caller="anna@example.se", caller_name="Anna", skill="school", at=old,
                         subject="Skolval", body="Mitt barn...", queue_task=True,
                         attachments=[("intyg.pdf", "application/pdf", b"%PDF-1.4 old")])
    store.run_sync(lambda db: db["contacts"].update(cid, {"agent": "bromma-103"}))
    store.run_sync(lambda db: db["cases"].insert({"contact_id": cid, "outcome": "resolved_first_contact",
                                                  "note": "personnummer 19800101-1234", "created_at": old,
                                                  "caller": "anna@example.se", "channel": "email"}))
    fresh = store.run_sync(messages.create_written_contact, channel="web", district="bromma",
                           caller="anna@example.se", caller_name=None, skill="school",
                           at=iso(NOW), subject="x", body="ny fråga",
                           attachments=[("foto.jpg", "image/jpeg", b"\xff\xd8 new")])
    counts = store.run_sync(retention.purge, retention.cutoff_for(NOW, 90), "k")
    assert counts["notes"] == 1 and counts["contacts"] == 1 and counts["attachments"] == 1
    assert store.run_sync(messages.contact_messages, cid)[0]["attachments"] == []
    row = store.run_sync(records.contact_row, cid)
    assert row["caller"] == retention.pseudonym("k", "anna@example.se") and row["caller_name"] is None
    case = store.run_sync(records.case_for_contact, cid)
    assert case["note"] is None and case["note_purged"] and case["caller"].startswith("pseud:")
    assert store.run_sync(messages.contact_messages, cid)[0]["body"] is None
    assert store.run_sync(records.contact_row, fresh)["caller"] == "anna@example.se"   # recent kept
    export = store.run_sync(retention.export_person, "Anna@example.se")
    assert [c["id"] for c in export["contacts"]] == [fresh]
    kept = export["contacts"][0]["messages"][0]["attachments"]
    assert [(a["filename"], a["size"]) for a in kept] == [("foto.jpg", 6)]
    assert store.run_sync(messages.attachment, kept[0]["id"])["data"] == b"\xff\xd8 new"
    assert store.run_sync(retention.purge, retention.cutoff_for(NOW, 90), "k")["contacts"] == 0  # idempotent


def test_parse_and_categorise_mail(store):
    ok = parse_message(b"From: Eva <eva@example.se>\r\nSubject: =?utf-8?q?Hemtj=C3=A4nst?=\r\n"
                       b"Message-ID: <1@x>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                       b"Min mamma beh\xc3\xb6ver hemtj\xc3\xa4nst.\r\n")
    assert ok.sender == "eva@example.se" and ok.subject == "Hemtjänst" and "hemtjänst" in ok.body
    _, mailboxes, categorise = store.run_sync(mail_directory.load)
    assert mailboxes.district_of("Bromma@kontakt.example") == "bromma"
    assert mailboxes.district_of("someone@kontakt.example") is None
    assert mailboxes.reply_from("bromma@kontakt.example", "hasselby-vallingby") == "bromma@kontakt.example"
    assert mailboxes.reply_from(None, "hasselby-vallingby") == "hasselby-vallingby@kontakt.example"
    assert categorise(ok.subject + ok.body) == "elderly-care"
    assert categorise("Ansökan om ekonomiskt bistånd") == "social-services"
    assert categorise("Hej!") == "switchboard"
    html = parse_message(b"From: a@b.se\r\nContent-Type: text/html\r\n\r\n<p>Hej<script>x()</script> <b>skolval</b></p>")
    assert html.body == "Hej skolval"
    for bad in (b"just some bytes without headers", b"Subject: x\r\n\r\nno sender",
                b"From: not-an-address\r\n\r\nbody",
                b"From: a@b.se\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--zz--\r\n"):
        with pytest.raises(InvalidInput):
            parse_message(bad)


def test_attachments_are_kept_with_safe_names():
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Eva <eva@example.se>", "bromma@kontakt.example", "Intyg"
    msg.set_content("Här är intyget.")
    msg.add_attachment(b"%PDF-1.4 \x00\xff", maintype="application", subtype="pdf",
                       filename="../../etc/intyg 2026.pdf")
    msg.add_attachment(b"\xff\xd8\xff", maintype="image", subtype="jpeg", filename='a"b<c>.jpg')
    got = parse_message(msg.as_bytes())
    assert got.body == "Här är intyget."
    assert [(a.filename, a.content_type, a.data) for a in got.attachments] == [
        ("intyg 2026.pdf", "application/pdf", b"%PDF-1.4 \x00\xff"),
        ("abc.jpg", "image/jpeg", b"\xff\xd8\xff")]
    # only a file, no text and no subject: kept, not refused
    only = parse_message(b"From: a@b.se\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n"
                         b"Content-Type: application/octet-stream\r\n\r\nAAAA\r\n--zz--\r\n")
    assert only.body == "" and [(a.filename, a.data) for a in only.attachments] == [("bilaga-1", b"AAAA")]


def snap(agent_id, skills, state=AgentState.READY, district="bromma", cleared=(), registered=True):
    return AgentSnapshot(agent_id, district, skills, cleared, state, registered, 0.0, ("sv",))


def test_tasks_go_to_skilled_ready_agents_and_calls_come_first():
    t1 = Task(1, "elderly-care", "bromma", False, "2025-03-03T09:00:00.000Z")
    t2 = Task(2, "social-services", "bromma", True, "2025-03-03T08:00:00.000Z")
    a = snap("a", {"elderly-care": 3})
    b = snap("b", {"social-services": 4})                       # not cleared
    c = snap("c", {"social-services": 4}, cleared=("bromma",))
    got = task_assignments([t1, t2], [a, b, c], [])
    assert [(t.contact_id, ag.id) for t, ag in got] == [(2, "c"), (1, "a")]
    call = WaitingCall(9, "elderly-care", "bromma", "sv", 0, False, 0.0)
    assert task_assignments([t1], [a], [call]) == []             # a call waits for a: no task
    assert task_assignments([t1], [snap("a", {"elderly-care": 3}, AgentState.ON_CALL)], []) == []
    assert task_assignments([t1], [a], [], available=lambda _: False) == []   # desktop closed


def test_written_contacts_follow_the_queues_overflow_and_clearance_rules():
    """The routing core decides for e-mail as for calls: another district's agent only once
    the queue's overflow step is reached; a confidential matter only to the cleared; no
    phone needed."""
    from acd.routing import RoutingPolicy
    from kc.clock import parse_iso
    from kc.queue_config import OverflowStep, QueueConfig
    policy = RoutingPolicy.from_configs([QueueConfig("elderly-care", "bromma",
                                                     overflow=(OverflowStep(60, ("hv",)),))])
    task = Task(1, "elderly-care", "bromma", False, "2025-03-03T09:00:00.000Z")
    at = parse_iso(task.created_at).timestamp()
    hv = snap("h", {"elderly-care": 4}, district="hv", registered=False)
    assert task_assignments([task], [hv], [], policy=policy, now=at + 30) == []
    got = task_assignments([task], [hv], [], policy=policy, now=at + 61)
    assert [(t.contact_id, ag.id) for t, ag in got] == [(1, "h")]
    own = snap("b", {"elderly-care": 1}, registered=False)
    got = task_assignments([task], [hv, own], [], policy=policy, now=at + 61)
    assert [ag.id for _, ag in got] == ["b"]                   # own district first
    secret = Task(2, "social-services", "bromma", True, task.created_at)
    cleared_elsewhere = snap("c", {"social-services": 4}, district="hv", cleared=("hv",))
    assert task_assignments([secret], [cleared_elsewhere], [], now=at + 999) == []


def test_rate_limiter():
    lim = RateLimiter(3, 60)
    assert [lim.allow("1.2.3.4", t) for t in (0, 1, 2, 3)] == [True, True, True, False]
    assert lim.allow("5.6.7.8", 3) and lim.allow("1.2.3.4", 61)


def test_supervisors_read_confidential_matters_only_of_the_districts_they_supervise(store, tmp_path):
    from kc import migrations, web_store
    demo = store.run_sync(web_store.get_user, "supervisor")
    assert web_store.user_districts(demo) == ("bromma", "hasselby-vallingby")
    store.run_sync(web_store.create_user, "sup.b", "supervisor", "x", None, ["bromma"])
    sup = store.run_sync(web_store.get_user, "sup.b")
    assert access.may_read(sup, "bromma", ()) and not access.may_read(sup, "hasselby-vallingby", ())
    assert not access.may_read(sup, None, ())
    agent = {"role": "agent", "districts": '["bromma"]'}        # agents go by clearance only
    assert not access.may_read(agent, "bromma", ()) and access.may_read(agent, "bromma", ("bromma",))
    assert not access.may_read({"role": "admin", "districts": '["bromma"]'}, "bromma", ("bromma",))
    # an existing database: its supervisors keep every district, others get none
    old = Store(tmp_path / "old.db")
    try:
        def before_0010(db):
            db.execute("delete from schema_migrations where name = '0010_user_districts'")
            db.execute("alter table users drop column districts")
            db.execute("insert into districts (id, name, number) values ('x', 'X', '1')")
            db.execute("insert into users (username, role, password_hash) values "
                       "('s', 'supervisor', 'h'), ('m', 'manager', 'h')")
        old.run_sync(before_0010)
        assert old.run_sync(migrations.migrate) == ["0010_user_districts"]
        assert web_store.user_districts(old.run_sync(web_store.get_user, "s")) == ("x",)
        assert web_store.user_districts(old.run_sync(web_store.get_user, "m")) == ()
    finally:
        old.close()


def test_queue_log_numbers_are_pseudonymised_after_retention(tmp_path):
    from acd.queue_log import QueueLog, pseudonymise
    from cases.retention import PSEUDONYM_PREFIX, pseudonym

    log = QueueLog(tmp_path / "queue_log")
    log.write(1000, "1.1", "school@bromma", "NONE", "ENTERQUEUE", "", "0701234567", 1)
    log.write(1001, "1.1", "school@bromma", "bromma-103", "CONNECT", 1, "kc-1", 0)
    log.write(5000, "2.2", "school@bromma", "NONE", "ENTERQUEUE", "", "0707654321", 1)
    changed = pseudonymise(log.path, 2000, lambda n: pseudonym("k", n), PSEUDONYM_PREFIX)
    lines = log.path.read_text().splitlines()
    assert changed == 1
    assert lines[0] == f"1000|1.1|school@bromma|NONE|ENTERQUEUE||{pseudonym('k', '0701234567')}|1"
    assert lines[1] == "1001|1.1|school@bromma|bromma-103|CONNECT|1|kc-1|0"
    assert lines[2].endswith("|0707654321|1")               # not old enough yet
    assert pseudonymise(log.path, 2000, lambda n: pseudonym("k", n), PSEUDONYM_PREFIX) == 0


async def test_retention_run_covers_store_and_queue_log_and_is_audited(tmp_path):
    """The daily run (and `kc purge`): the store and queue_log with the same pseudonyms, one
    audit entry with the counts."""
    from acd.queue_log import QueueLog
    from kommuncentral.service import run_purge
    from kc.settings import Settings
    from kc.web_store import list_audit

    settings = Settings.from_env({}, var_dir=tmp_path)
    store = Store(settings.db_path)
    try:
        await store.run(load_demo, lambda: NOW)
        old = iso(NOW - timedelta(days=100))
        cid = await store.run(messages.create_written_contact, channel="web", district="bromma",
                              caller="0701234567", caller_name="Eva", skill="school", at=old,
                              subject="Skolval", body="Hej")
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        QueueLog(settings.queue_log).write((NOW - timedelta(days=100)).timestamp(), "1.1",
                                           "school@bromma", "NONE", "ENTERQUEUE", "", "0701234567", 1)
        counts = await run_purge(settings, store, lambda: NOW, 90)
        assert counts["contacts"] == 1 and counts["queue_log"] == 1
        caller = (await store.run(records.contact_row, cid))["caller"]
        assert caller.startswith(retention.PSEUDONYM_PREFIX)
        assert f"|{caller}|" in settings.queue_log.read_text()      # the same pseudonym
        entries = [e for e in await store.run(list_audit) if e["action"] == "retention.purge"]
        assert len(entries) == 1 and entries[0]["target"] == "90 days"
    finally:
        store.close()


def test_casework_settings_are_read_and_checked(tmp_path):
    from kc.errors import ConfigError
    from kc.settings import Settings

    s = Settings.from_env({"KC_SMTP_RELAY": "relay.example:25", "KC_FORM_WINDOW": "60",
                           "KC_RETENTION_DAYS": "30"}, var_dir=tmp_path)
    assert s.smtp_relay_address == ("relay.example", 25) and s.form_window == 60.0
    assert s.retention_days == 30 and s.smtp_port == 2525 and s.history_days == 30
    for bad in ({"KC_SMTP_RELAY": "relay.example"}, {"KC_SMTP_PORT": "70000"},
                {"KC_HISTORY_DAYS": "many"}, {"KC_SMTP_MAX_BYTES": "10"}):
        with pytest.raises(ConfigError):
            Settings.from_env(bad, var_dir=tmp_path)


def test_purge_works_in_bounded_windows_and_resumes(store):
    """Each step touches at most one window of rowids, so the writer is held briefly; the steps
    together do what one purge does, and a second run finds nothing left."""
    old = iso(NOW - timedelta(days=100))
    ids = [store.run_sync(lambda db, i=i: db.conn.execute(
        "insert into contacts (channel, district, caller, caller_name, started_at) "
        "values ('phone', 'bromma', ?, 'X', ?)", [f"0701{i:06d}", old]).lastrowid) for i in range(60)]
    job = retention.Purge(retention.cutoff_for(NOW, 90), "k", batch=10)
    done, steps = False, 0
    while not done:
        before = store.run_sync(lambda db: db.conn.execute(
            "select count(*) from contacts where caller like 'pseud:%'").fetchone()[0])
        done = store.run_sync(job.step)
        after = store.run_sync(lambda db: db.conn.execute(
            "select count(*) from contacts where caller like 'pseud:%'").fetchone()[0])
        assert after - before <= retention.MAX_BATCH
        steps += 1
    assert steps > len(retention.PERSONAL_DATA) and job.result()["contacts"] == len(ids)
    rows = store.run_sync(lambda db: db.conn.execute(
        f"select caller, caller_name from contacts where id in ({','.join(map(str, ids))})").fetchall())
    assert {r[0] for r in rows} == {retention.pseudonym("k", f"0701{i:06d}") for i in range(60)}
    assert {r[1] for r in rows} == {None}
    assert store.run_sync(retention.purge, retention.cutoff_for(NOW, 90), "k")["contacts"] == 0

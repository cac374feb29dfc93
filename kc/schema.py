"""The database's shape: every schema step, in the order they were written.

`kc.migrations` applies them by name, once each. The steps live here, in the foundation, so the
store never imports the features that use the tables: a feature's store module holds its
queries, this module its tables. Append new steps at the end of `STEPS`; never edit one that
has shipped.
"""
from __future__ import annotations

import json
from typing import Callable

import sqlite_utils

from .queue_config import DEFAULT_SERVICE_LEVEL_SECONDS, TABLE as QUEUES_TABLE
from .surveys import create_tables

# A caller calling again within this many hours counts as a repeat caller (reports).
REPEAT_WINDOW_HOURS = 24


def initial(db: sqlite_utils.Database) -> None:
    db["districts"].create({"id": str, "name": str, "number": str}, pk="id")
    db["districts"].create_index(["number"], unique=True)
    db["skills"].create({"id": str, "name": str, "confidential": int}, pk="id")
    db["agents"].create(
        {"id": str, "name": str, "district": str, "languages": str, "cleared_for": str, "sip_ha1": str},
        pk="id",
        foreign_keys=[("district", "districts", "id")],
    )
    db["agent_skills"].create(
        {"agent": str, "skill": str, "proficiency": int},
        pk=("agent", "skill"),
        foreign_keys=[("agent", "agents", "id"), ("skill", "skills", "id")],
    )
    # Login state survives restarts of the service.
    db["agent_status"].create(
        {"agent": str, "state": str, "reason": str, "since": str},
        pk="agent",
        foreign_keys=[("agent", "agents", "id")],
    )
    db["menu_versions"].create(
        {"id": int, "district": str, "version": int, "body": str, "created_at": str,
         "created_by": str, "published": int},
        pk="id",
        foreign_keys=[("district", "districts", "id")],
    )
    db["menu_versions"].create_index(["district", "version"], unique=True)
    db["users"].create(
        {"username": str, "role": str, "password_hash": str, "agent": str,
         "failed_logins": int, "locked_until": str},
        pk="username",
        not_null={"role", "password_hash"},
        defaults={"failed_logins": 0},
    )
    db["api_tokens"].create(
        {"token_hash": str, "username": str, "created_at": str},
        pk="token_hash",
        foreign_keys=[("username", "users", "username")],
    )
    db["contacts"].create(
        {
            "id": int, "channel": str, "district": str, "dialed": str, "caller": str,
            "caller_name": str, "started_at": str, "ended_at": str, "menu_path": str,
            "language": str, "skill": str, "outcome": str, "agent": str, "agent_district": str,
            "overflowed": int, "wait_seconds": float, "talk_seconds": float,
            "confidential": int, "uniqueid": str, "channel_name": str,
            "enqueued_at": str, "answered_at": str,
        },
        pk="id",
        defaults={"overflowed": 0, "confidential": 0, "menu_path": "[]"},
    )
    db["contacts"].create_index(["started_at"])
    db["contacts"].create_index(["uniqueid"])
    db["contact_events"].create(
        {"id": int, "contact_id": int, "at": str, "kind": str, "data": str},
        pk="id",
        foreign_keys=[("contact_id", "contacts", "id")],
    )
    db["contact_events"].create_index(["contact_id"])


def access(db: sqlite_utils.Database) -> None:
    db["web_sessions"].create(
        {"id_hash": str, "username": str, "csrf": str, "created_at": str, "expires_at": str},
        pk="id_hash", foreign_keys=[("username", "users", "username")],
    )
    db["audit_log"].create(
        {"id": int, "at": str, "username": str, "action": str, "target": str,
         "before": str, "after": str},
        pk="id",
    )
    db["audit_log"].create_index(["at"])
    db["api_tokens"].add_column("label", str)


def queues(db: sqlite_utils.Database) -> None:
    """Migration step ``0002_acd_queues``."""
    db[QUEUES_TABLE].create(
        {"skill": str, "district": str, "service_level_seconds": float,
         "wrap_up_seconds": float, "overflow": str, "priority": int},
        pk=("skill", "district"),
        not_null={"service_level_seconds", "wrap_up_seconds", "overflow", "priority"},
        defaults={"service_level_seconds": DEFAULT_SERVICE_LEVEL_SECONDS,
                  "wrap_up_seconds": 0.0, "overflow": "[]", "priority": 0},
        foreign_keys=[("skill", "skills", "id"), ("district", "districts", "id")],
    )


def schedules_after_hours(db: sqlite_utils.Database) -> None:
    """Migration 0004_schedules_after_hours."""
    db["schedules"].create(
        {"district": str, "body": str, "updated_at": str, "updated_by": str},
        pk="district", foreign_keys=[("district", "districts", "id")],
    )
    db["after_hours_requests"].create(
        {"id": int, "contact_id": int, "district": str, "kind": str, "target": str,
         "recording": str, "callback_number": str, "language": str, "created_at": str,
         "due_at": str, "handled_at": str, "handled_by": str},
        pk="id", foreign_keys=[("contact_id", "contacts", "id")],
    )
    db["after_hours_requests"].create_index(["due_at"])
    db["after_hours_requests"].create_index(["contact_id"])


def menus_drafts_announcements(db: sqlite_utils.Database) -> None:
    db["menu_drafts"].create(
        {"district": str, "body": str, "base_version": int, "revision": int,
         "updated_at": str, "updated_by": str},
        pk="district", foreign_keys=[("district", "districts", "id")],
    )
    db["menu_announcements"].create(
        {"district": str, "texts": str, "audio": str, "ends_at": str,
         "updated_at": str, "updated_by": str},
        pk="district", foreign_keys=[("district", "districts", "id")],
    )
    db["menu_versions"].add_column("note", str)
    # The priority a menu option gave the call (the ACD may add it to the queue's own).
    db["contacts"].add_column("menu_priority", int)


def cases_channels_kb(db: sqlite_utils.Database) -> None:
    db["departments"].create({"id": int, "name": str, "active": int}, pk="id",
                             not_null={"name"}, defaults={"active": 1})
    db["departments"].create_index(["name"], unique=True)
    db["case_categories"].create(
        {"id": int, "parent_id": int, "name": str, "skill": str, "confidential": int,
         "active": int},
        pk="id", not_null={"name"}, defaults={"confidential": 0, "active": 1},
        foreign_keys=[("parent_id", "case_categories", "id")])
    db["case_categories"].create_index(["parent_id", "name"], unique=True)
    db["cases"].create(
        {"id": int, "contact_id": int, "channel": str, "district": str, "category_id": int,
         "subcategory_id": int, "note": str, "outcome": str, "forwarded_to": int,
         "forward_reason": str, "eservice": str, "agent": str, "created_by": str,
         "created_at": str, "confidential": int, "caller": str, "note_purged": int},
        pk="id", not_null={"contact_id", "outcome", "created_at"},
        defaults={"confidential": 0, "note_purged": 0},
        foreign_keys=[("contact_id", "contacts", "id"), ("category_id", "case_categories", "id"),
                      ("subcategory_id", "case_categories", "id"),
                      ("forwarded_to", "departments", "id")])
    db["cases"].create_index(["contact_id"], unique=True)   # one matter registered per contact
    db["cases"].create_index(["created_at"])
    db["contact_messages"].create(
        {"id": int, "contact_id": int, "direction": str, "at": str, "from_addr": str,
         "to_addr": str, "subject": str, "body": str, "message_id": str},
        pk="id", foreign_keys=[("contact_id", "contacts", "id")])
    db["contact_messages"].create_index(["contact_id"])
    db["contact_tasks"].create(
        {"contact_id": int, "skill": str, "district": str, "confidential": int, "state": str,
         "created_at": str, "assigned_to": str, "assigned_at": str, "done_at": str},
        pk="contact_id", foreign_keys=[("contact_id", "contacts", "id")])
    db["contact_tasks"].create_index(["state"])
    db["kb_articles"].create(
        {"id": int, "category_id": int, "question": str, "answer": str, "updated_at": str,
         "updated_by": str},
        pk="id", not_null={"question", "answer"},
        foreign_keys=[("category_id", "case_categories", "id")])
    # Swedish-aware full text: unicode61 keeps å, ä, ö distinct (remove_diacritics 0); queries
    # are stemmed (`swedish_stem`) and searched as prefixes.
    db.execute("create virtual table kb_fts using fts5(question, answer, content='kb_articles', "
               "content_rowid='id', tokenize='unicode61 remove_diacritics 0')")
    db.execute("create trigger kb_ai after insert on kb_articles begin "
               "insert into kb_fts(rowid, question, answer) values (new.id, new.question, new.answer); end")
    db.execute("create trigger kb_ad after delete on kb_articles begin "
               "insert into kb_fts(kb_fts, rowid, question, answer) "
               "values ('delete', old.id, old.question, old.answer); end")
    db.execute("create trigger kb_au after update on kb_articles begin "
               "insert into kb_fts(kb_fts, rowid, question, answer) "
               "values ('delete', old.id, old.question, old.answer); "
               "insert into kb_fts(rowid, question, answer) values (new.id, new.question, new.answer); end")


def report_cache(db: sqlite_utils.Database) -> None:
    """Indexes for the reports, the hourly cache tables and the triggers that keep it honest."""
    db.execute("create index if not exists idx_contacts_caller_started on contacts(caller, started_at)")
    db.execute("create index if not exists idx_contacts_agent_district on contacts(agent_district, started_at)")
    db.execute("create index if not exists idx_contact_events_kind on contact_events(kind, contact_id)")
    db.execute("""create table if not exists report_buckets (
        hour text not null, district text, skill text, target real,
        contacts integer, offered integer, answered integer, abandoned integer,
        abandoned_short integer, menu_abandoned integer, answered_in_target integer,
        wait_answered real, talk_sum real, talk_count integer, longest_wait real,
        overflowed_out integer, after_hours integer, callbacks integer, repeat_callers integer)""")
    db.execute("create index if not exists idx_report_buckets_hour on report_buckets(hour)")
    db.execute("""create table if not exists report_overflow_in (
        hour text not null, district text, skill text, overflowed_in integer)""")
    db.execute("create index if not exists idx_report_overflow_in_hour on report_overflow_in(hour)")
    db.execute("create table if not exists report_dirty (hour text primary key) without rowid")
    db.execute("create table if not exists report_meta (key text primary key, value text)")
    follow = f"""
        insert or ignore into report_dirty (hour)
        select substr(n.started_at, 1, 13) from contacts n
        where {{row}}.caller is not null and {{row}}.caller != '' and n.caller = {{row}}.caller
          and n.started_at > {{row}}.started_at
          and n.started_at <= strftime('%Y-%m-%dT%H:%M:%fZ', {{row}}.started_at, '+{REPEAT_WINDOW_HOURS} hours');"""
    mark = "insert or ignore into report_dirty (hour) values (substr(coalesce({row}.started_at, ''), 1, 13));"
    db.execute(f"""create trigger if not exists report_contacts_insert after insert on contacts begin
        {mark.format(row='new')} {follow.format(row='new')} end""")
    db.execute(f"""create trigger if not exists report_contacts_update after update on contacts begin
        {mark.format(row='old')} {mark.format(row='new')}
        {follow.format(row='old')} {follow.format(row='new')} end""")
    db.execute(f"""create trigger if not exists report_contacts_delete after delete on contacts begin
        {mark.format(row='old')} {follow.format(row='old')} end""")
    event_mark = ("insert or ignore into report_dirty (hour) select substr(coalesce(started_at, ''), 1, 13) "
                  "from contacts where id = {row}.contact_id;")
    cond = "(({row}.kind >= 'callback' and {row}.kind < 'callbacl') or {row}.kind = 'after_hours')"
    db.execute(f"""create trigger if not exists report_events_insert after insert on contact_events
        when {cond.format(row='new')} begin {event_mark.format(row='new')} end""")
    db.execute(f"""create trigger if not exists report_events_update after update on contact_events
        when {cond.format(row='old')} or {cond.format(row='new')}
        begin {event_mark.format(row='old')} {event_mark.format(row='new')} end""")
    db.execute(f"""create trigger if not exists report_events_delete after delete on contact_events
        when {cond.format(row='old')} begin {event_mark.format(row='old')} end""")
    db.execute("insert or ignore into report_dirty (hour) "
               "select distinct substr(started_at, 1, 13) from contacts where started_at is not null")


def callback_number(db: sqlite_utils.Database) -> None:
    """Migration ``0008_acd_callback``: the number a waiting caller asked to be called back on."""
    if "callback_number" not in db["contacts"].columns_dict:
        db["contacts"].add_column("callback_number", str)


def agent_moves(db: sqlite_utils.Database) -> None:
    """Migration step: supervisors' moves of an agent to another district for the day."""
    db.execute("create table agent_moves (agent text primary key, district text not null, "
               "until text not null, by text, at text)")


def user_districts(db: sqlite_utils.Database) -> None:
    """Migration 0010_user_districts: the districts a supervisor supervises (JSON list).

    Before this step every supervisor counted as supervising every district; existing
    supervisors keep that (all districts known now), new ones start with none."""
    db["users"].add_column("districts", str)
    every = json.dumps([r["id"] for r in db["districts"].rows_where(order_by="id")])
    db.execute("update users set districts = ? where role = 'supervisor'", [every])


def menu_shares(db: sqlite_utils.Database) -> None:
    db["menu_shares"].create(
        {"district": str, "menu_of": str, "updated_at": str, "updated_by": str},
        pk="district", foreign_keys=[("district", "districts", "id"), ("menu_of", "districts", "id")],
    )
    db["menu_shares"].create_index(["menu_of"])


def message_attachments(db: sqlite_utils.Database) -> None:
    """Migration ``0012_message_attachments``: files sent with an e-mail, kept with it."""
    db.execute("""create table if not exists message_attachments (
        id integer primary key, contact_id integer not null references contacts(id),
        message integer references contact_messages(id), filename text not null,
        content_type text not null, size integer not null, data blob not null)""")
    db.execute("create index if not exists idx_message_attachments_contact "
               "on message_attachments(contact_id)")


# What a call decides on, held in memory by the service (`agi.call_catalogue`): any write to
# these tables, by any process (the service, `kc menu import`, a test), moves the stamp.
CALL_DATA_TABLES = ("districts", "schedules", "menu_versions", "menu_shares", "menu_announcements")


def call_data_stamp(db: sqlite_utils.Database) -> None:
    """Migration ``0013_call_data_stamp``: one counter, moved by triggers in the writing
    transaction itself, so the service notices a change made outside it on its next call."""
    db.execute("create table if not exists call_data_stamp ("
               "id integer primary key check (id = 1), changes integer not null)")
    db.execute("insert or ignore into call_data_stamp (id, changes) values (1, 0)")
    for table in CALL_DATA_TABLES:
        _stamp_triggers(db, table)


def organisation(db: sqlite_utils.Database) -> None:
    """Migration ``0017_organisation``: the whole organisation as data. A district has any
    number of numbers and e-mail addresses, a region, the district whose switchboard answers
    for it, and is retired rather than deleted (its history stays); skills are retired too.
    The centre's own facts (mail domain, the switchboard's skill, the written channels'
    fallback skill), the categorisation keywords and the agents' transfer codes are rows."""
    for column in ("region", "switchboard", "retired_at"):
        db["districts"].add_column(column, str)
    db["skills"].add_column("retired_at", str)
    db.execute("create table district_numbers (number text primary key, "
               "district text not null references districts(id))")
    db.execute("create index idx_district_numbers_district on district_numbers(district)")
    db.execute("insert into district_numbers (number, district) "
               "select number, id from districts where number is not null and number != ''")
    db.execute("create table district_addresses (address text primary key, "
               "district text not null references districts(id))")
    db.execute("create index idx_district_addresses_district on district_addresses(district)")
    db.execute("create table org_settings (key text primary key, value text not null)")
    db.execute("create table category_keywords (skill text not null references skills(id), "
               "word text not null, primary key (skill, word))")
    db.execute("create table transfer_codes (code text primary key, target text not null)")
    for table in ORGANISATION_TABLES:
        _stamp_triggers(db, table)


# The organisation's own tables: a write moves the call data stamp too, so the service (menus,
# transfer codes, the e-mail intake, the ACD and the PBX) picks the change up without a restart.
ORGANISATION_TABLES = ("district_numbers", "district_addresses", "org_settings",
                       "category_keywords", "transfer_codes", "skills", "agents", "agent_skills",
                       "queues")


def _stamp_triggers(db: sqlite_utils.Database, table: str) -> None:
    for action in ("insert", "update", "delete"):
        db.execute(f"create trigger if not exists call_data_{table}_{action} "
                   f"after {action} on {table} begin "
                   f"update call_data_stamp set changes = changes + 1 where id = 1; end")


def record_journal(db: sqlite_utils.Database) -> None:
    """Migration ``0014_record_journal``: the last record write applied from the journal of
    delayed writes (`kc.record_journal`), moved in the same transaction as the write."""
    db.execute("create table if not exists record_journal ("
               "id integer primary key check (id = 1), applied_seq integer not null)")
    db.execute("insert or ignore into record_journal (id, applied_seq) values (1, 0)")


def contact_figures(db: sqlite_utils.Database) -> None:
    """Migration ``0015_contact_figures``: per contact the place it entered its queue at
    (queue_log's original position) and the agent's wrap-up after it; the hourly report cache
    gains the handle-time and uncategorised sums, and a case written, changed or removed marks
    its contact's hour (a contact without a case is uncategorised). Every cached hour is
    recomputed."""
    cols = db["contacts"].columns_dict
    if "queue_position" not in cols:
        db["contacts"].add_column("queue_position", int)
    if "wrap_up_seconds" not in cols:
        db["contacts"].add_column("wrap_up_seconds", float)
    have = {c.name for c in db["report_buckets"].columns}
    for name, kind in (("wrap_sum", "real"), ("handle_sum", "real"), ("handle_count", "integer"),
                       ("uncategorised", "integer")):
        if name not in have:
            db.execute(f"alter table report_buckets add column {name} {kind}")
    mark = ("insert or ignore into report_dirty (hour) select substr(coalesce(started_at, ''), 1, 13) "
            "from contacts where id = {row}.contact_id;")
    db.execute(f"create trigger if not exists report_cases_insert after insert on cases begin "
               f"{mark.format(row='new')} end")
    db.execute(f"create trigger if not exists report_cases_update after update on cases begin "
               f"{mark.format(row='old')} {mark.format(row='new')} end")
    db.execute(f"create trigger if not exists report_cases_delete after delete on cases begin "
               f"{mark.format(row='old')} end")
    db.execute("create index if not exists idx_contact_events_contact_kind "
               "on contact_events(contact_id, kind)")
    db.execute("insert or ignore into report_dirty (hour) select distinct hour from report_buckets")


_HOUR_SUMS = ("contacts", "offered", "answered", "abandoned", "abandoned_short", "menu_abandoned",
              "answered_in_target", "wait_answered", "talk_sum", "talk_count", "overflowed_out",
              "after_hours", "callbacks", "repeat_callers", "wrap_sum", "handle_sum",
              "handle_count", "uncategorised")


def report_hours(db: sqlite_utils.Database) -> None:
    """Migration ``0016_report_hours``: the hourly report cache summed over districts and
    skills, one row an hour (a year: ~8,800 rows instead of ~60,000), for the reports over
    everything; kept by the same refresh as `report_buckets`, filled here from it."""
    cols = ", ".join(f"{c} real" for c in _HOUR_SUMS)
    db.execute(f"create table if not exists report_hours (hour text primary key, {cols}, "
               "longest_wait real, overflowed_in real) without rowid")
    sums = ", ".join(f"total({c})" for c in _HOUR_SUMS)
    db.execute(f"insert or replace into report_hours select b.hour, {sums}, max(longest_wait), "
               "(select total(o.overflowed_in) from report_overflow_in o where o.hour = b.hour) "
               "from report_buckets b group by b.hour")


def switchboard_callbacks(db: sqlite_utils.Database) -> None:
    """Migration ``0024_switchboard_callbacks``: an after-hours call-back request points at the
    call-back contact the ACD dials at opening (its outcome is that contact's); the staff
    directory the switchboard transfers to; every transfer with its kind and outcome; a
    queue's service-level target for its written contacts."""
    if "callback_contact" not in db["after_hours_requests"].columns_dict:
        db["after_hours_requests"].add_column("callback_contact", int)
    db.execute("create table if not exists staff_directory (id integer primary key, "
               "name text not null, unit text not null default '', district text, "
               "number text not null, available integer not null default 1, "
               "folded text not null default '', updated_at text not null)")
    db.execute("create index if not exists idx_staff_directory_name on staff_directory(name)")
    db.execute("create table if not exists transfers (id integer primary key, "
               "contact_id integer not null references contacts(id), agent text, "
               "kind text not null, target text not null, target_name text, "
               "started_at text not null, ended_at text, outcome text)")
    db.execute("create index if not exists idx_transfers_contact on transfers(contact_id)")
    # written contacts (e-mail, the web form) wait in the same queues, with their own target
    if "written_service_level_seconds" not in db["queues"].columns_dict:
        db["queues"].add_column("written_service_level_seconds", float)


def pbx_nodes(db: sqlite_utils.Database) -> None:
    """Migration ``0020_pbx_nodes``: the cluster's Asterisk nodes as data (name, SIP and AMI
    addresses, the districts each one homes, in order; none: the one Asterisk of the settings),
    and on each contact the node the caller was on and the node of the agent who answered."""
    db.execute("create table pbx_nodes (id text primary key, position integer not null, "
               "sip_host text not null, sip_port integer not null, ami_host text not null, "
               "ami_port integer not null, districts text not null)")
    db["contacts"].add_column("node", str)
    db["contacts"].add_column("agent_node", str)


def survey(db: sqlite_utils.Database) -> None:
    """Migration ``0023_survey``: the survey after a call per queue, who was asked and the
    scores they gave (`kc.surveys`)."""
    create_tables(db)


def queue_escalation(db: sqlite_utils.Database) -> None:
    """Migration ``0023_queue_escalation``: a queue's priority steps by waiting time
    (`[[after_seconds, raise_by], ...]`) and the wait that alerts its supervisors."""
    db.execute("alter table queues add column escalation text not null default '[]'")
    db.execute("alter table queues add column alert_seconds real not null default 0")


def user_language(db: sqlite_utils.Database) -> None:
    """Migration ``0021_user_language``: the language each user chose for the site (`sv`,
    `en`; null: the default, Swedish)."""
    if "language" not in db["users"].columns_dict:
        db["users"].add_column("language", str)


# (name, step) in the order they were written.
STEPS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("0001_initial", initial),
    ("0002_web_access", access),
    ("0003_acd_queues", queues),
    ("0004_schedules_after_hours", schedules_after_hours),
    ("0005_menus_drafts_announcements", menus_drafts_announcements),
    ("0006_cases_channels_kb", cases_channels_kb),
    ("0007_reports_indexes_cache", report_cache),
    ("0008_acd_callback", callback_number),
    ("0009_agent_moves", agent_moves),
    ("0010_user_districts", user_districts),
    ("0011_shared_menus", menu_shares),
    ("0012_message_attachments", message_attachments),
    ("0013_call_data_stamp", call_data_stamp),
    ("0014_record_journal", record_journal),
    ("0015_contact_figures", contact_figures),
    ("0016_report_hours", report_hours),
    ("0017_organisation", organisation),
    ("0020_pbx_nodes", pbx_nodes),
    ("0024_switchboard_callbacks", switchboard_callbacks),
    ("0023_survey", survey),
    ("0023_queue_escalation", queue_escalation),
    ("0021_user_language", user_language),
]

"""The schema of case work (migration steps): cases, categories, departments, messages of
written channels, the e-mail task queue, the knowledge base and message attachments.

The functions over these tables live in the `cases` package.
"""
from __future__ import annotations

import sqlite_utils


def create_tables(db: sqlite_utils.Database) -> None:
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


def create_attachments_table(db: sqlite_utils.Database) -> None:
    """Migration ``0012_message_attachments``: files sent with an e-mail, kept with it."""
    db.execute("""create table if not exists message_attachments (
        id integer primary key, contact_id integer not null references contacts(id),
        message integer references contact_messages(id), filename text not null,
        content_type text not null, size integer not null, data blob not null)""")
    db.execute("create index if not exists idx_message_attachments_contact "
               "on message_attachments(contact_id)")

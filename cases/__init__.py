"""Case work: every matter registered, and the written channels that bring matters in.

- `records`     cases (one per contact) and the readers around them
- `categories`  the category tree and the departments matters are forwarded to
- `knowledge`   the knowledge base and its Swedish stemmer
- `messages`    contacts of written channels (e-mail, web form, fax, letter), attachments,
                keyword categorisation
- `email`       the e-mail channel: parsing, mailboxes, replies through the relay
- `smtp_intake` the SMTP server (aiosmtpd) that registers incoming mail
- `tasks`       the queue of written contacts waiting for an agent
- `access`      who may see what of a confidential matter
- `retention`   removal and pseudonymisation after the retention time; a person's export
- `fcr`         first-contact resolution

Store functions take a `sqlite_utils.Database` and run through `Store.run`; the tables are
created by migration steps in `kc/schema.py`.
"""

"""18.0.1.x → 18.0.2.0.0: own mailboxes move from ``ir.mail_server`` to ``smtp_invoicing.mailbox``.

Before the module's models are loaded: each own mailbox gets its row in the new table,
delegating to the very ``ir.mail_server`` it was (templates, mails and the encryption of
its secrets keep pointing at that id), and the tables that pointed at mailboxes through
``ir.mail_server`` get the mailbox's id instead. The mailbox's settings and history are
copied over by ``post-migrate.py``, once the ORM has created the new columns.
"""

import logging

from odoo.tools import sql

_logger = logging.getLogger(__name__)

# (table, column pointing at ir_mail_server until 1.x) → the new column pointing at the mailbox
REPOINTED = (
    ("smtp_invoicing_bounce", "mail_server_id", "mailbox_id"),
    ("smtp_invoicing_sent_copy", "mail_server_id", "mailbox_id"),
    ("smtp_invoicing_template_mailbox", "mail_server_id", "mailbox_id"),
)


def migrate(cr, version):
    if not version or not sql.column_exists(cr, "ir_mail_server", "smtp_invoicing_mailbox"):
        return
    cr.execute(
        """CREATE TABLE IF NOT EXISTS smtp_invoicing_mailbox (
               id SERIAL PRIMARY KEY,
               mail_server_id INTEGER NOT NULL,
               create_uid INTEGER, create_date TIMESTAMP, write_uid INTEGER, write_date TIMESTAMP
           )"""
    )
    cr.execute(
        """INSERT INTO smtp_invoicing_mailbox (mail_server_id, create_uid, create_date, write_uid, write_date)
           SELECT id, create_uid, create_date, write_uid, write_date FROM ir_mail_server
            WHERE smtp_invoicing_mailbox ORDER BY id"""
    )
    _logger.info("smtp_invoicing: %s own mailbox(es) moved to their own model", cr.rowcount)
    for table, old, new in REPOINTED:
        if not sql.column_exists(cr, table, old):
            continue
        cr.execute(f'ALTER TABLE "{table}" ADD COLUMN IF NOT EXISTS "{new}" INTEGER')
        cr.execute(
            f"""UPDATE "{table}" t SET "{new}" = m.id
                  FROM smtp_invoicing_mailbox m WHERE m.mail_server_id = t."{old}" """
        )
        # rows of core servers cannot exist (constraints of 1.x); the old column goes
        cr.execute(f'DELETE FROM "{table}" WHERE "{new}" IS NULL')
        cr.execute(f'ALTER TABLE "{table}" DROP COLUMN "{old}" CASCADE')
    # which mailbox a waiting mail may leave from: now the mailbox's id
    if sql.column_exists(cr, "mail_mail", "smtp_invoicing_mailbox_id"):
        for constraint in _foreign_keys(cr, "mail_mail", "smtp_invoicing_mailbox_id"):
            cr.execute(f'ALTER TABLE mail_mail DROP CONSTRAINT "{constraint}"')
        cr.execute(
            """UPDATE mail_mail mm SET smtp_invoicing_mailbox_id = m.id
                 FROM smtp_invoicing_mailbox m WHERE m.mail_server_id = mm.smtp_invoicing_mailbox_id"""
        )
    if sql.table_exists(cr, "smtp_invoicing_test_email"):
        cr.execute("DELETE FROM smtp_invoicing_test_email")  # transient dialogs
    # the demo mailboxes' XML ids name the new records, or loading the demo data would fail
    cr.execute(
        """UPDATE ir_model_data d SET model = 'smtp_invoicing.mailbox', res_id = m.id
             FROM smtp_invoicing_mailbox m
            WHERE d.module = 'smtp_invoicing' AND d.model = 'ir.mail_server' AND d.res_id = m.mail_server_id"""
    )


def _foreign_keys(cr, table, column):
    cr.execute(
        """SELECT c.conname FROM pg_constraint c
             JOIN pg_class t ON t.oid = c.conrelid
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(c.conkey)
            WHERE c.contype = 'f' AND t.relname = %s AND a.attname = %s""",
        [table, column],
    )
    return [row[0] for row in cr.fetchall()]

"""18.0.1.x → 18.0.2.0.0: the mailboxes' settings, statuses, secrets and history move to their model.

``pre-migrate.py`` gave each own mailbox its ``smtp_invoicing_mailbox`` row; the ORM has
since created its columns. Every column the product had added to ``ir_mail_server`` is
copied to the mailbox (same names), then dropped from core's table: core servers keep
nothing of the product. Secrets are copied as they are: they are bound to the server's
id, which the mailbox keeps (``_smtp_invoicing_secret_context``). The chatter, followers
and activities of each mailbox follow it, and the scheduled actions run on the new model.
"""

import logging

from odoo.tools import SQL, sql

_logger = logging.getLogger(__name__)

MAGIC = {"id", "create_uid", "create_date", "write_uid", "write_date"}


def migrate(cr, version):
    if not version or not sql.column_exists(cr, "ir_mail_server", "smtp_invoicing_mailbox"):
        return
    columns = sorted((_columns(cr, "smtp_invoicing_mailbox") & _columns(cr, "ir_mail_server")) - MAGIC)
    if columns:
        cr.execute(
            SQL(
                "UPDATE smtp_invoicing_mailbox m SET %s FROM ir_mail_server s WHERE s.id = m.mail_server_id",
                SQL(", ").join(SQL("%s = s.%s", SQL.identifier(c), SQL.identifier(c)) for c in columns),
            )
        )
    for model_column, id_column, table in (
        ("model", "res_id", "mail_message"),
        ("res_model", "res_id", "mail_followers"),
        ("res_model", "res_id", "mail_activity"),
    ):
        cr.execute(
            SQL(
                """UPDATE %(table)s t SET %(model)s = 'smtp_invoicing.mailbox', %(id)s = m.id
                     FROM smtp_invoicing_mailbox m
                    WHERE t.%(model)s = 'ir.mail_server' AND t.%(id)s = m.mail_server_id""",
                table=SQL.identifier(table),
                model=SQL.identifier(model_column),
                id=SQL.identifier(id_column),
            )
        )
    cr.execute(
        """UPDATE mail_activity SET res_model_id = (SELECT id FROM ir_model WHERE model = 'smtp_invoicing.mailbox')
            WHERE res_model = 'smtp_invoicing.mailbox'"""
    )
    # the scheduled actions (noupdate data) call the mailbox model now
    cr.execute(
        """UPDATE ir_act_server a SET model_id = m.id, model_name = m.model
             FROM ir_model m, ir_model_data d
            WHERE m.model = 'smtp_invoicing.mailbox' AND d.module = 'smtp_invoicing' AND d.model = 'ir.cron'
              AND d.name IN ('ir_cron_verify_mail_servers', 'ir_cron_poll_mailboxes')
              AND a.id = (SELECT ir_actions_server_id FROM ir_cron WHERE id = d.res_id)"""
    )
    for column in [*columns, "smtp_invoicing_mailbox"]:
        cr.execute(SQL("ALTER TABLE ir_mail_server DROP COLUMN %s CASCADE", SQL.identifier(column)))
    _logger.info("smtp_invoicing: %s column(s) moved from ir_mail_server to smtp_invoicing_mailbox", len(columns))


def _columns(cr, table):
    cr.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s", [table])
    return {row[0] for row in cr.fetchall()}

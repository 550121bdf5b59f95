"""18.0.1.1.0 → 18.0.1.2.0: the module keeps to own mailboxes, and passwords survive a renamed database.

- Core outgoing servers get their clear ``smtp_pass`` back (1.1.0 encrypted every
  server's password) and lose the company 1.1.0's field default gave them.
- Own mailboxes' passwords are re-encrypted bound to ``database.uuid`` instead of the
  database name, so a database restored under another name keeps them.
- Own mailboxes get ``from_filter`` = their sender, and a next check time.
"""

import logging

from odoo import SUPERUSER_ID, api, fields, tools

from odoo.addons.smtp_invoicing.lib import crypto, keys

_logger = logging.getLogger(__name__)


def migrate(cr, version):
    if not version:
        return
    env = api.Environment(cr, SUPERUSER_ID, {})
    box = keys.secret_box(tools.config.get(crypto.CONFIG_OPTION), tools.config["data_dir"])
    uuid = env["ir.config_parameter"].get_param("database.uuid")
    cr.execute(
        "SELECT id, smtp_invoicing_mailbox, smtp_invoicing_password_enc FROM ir_mail_server "
        "WHERE smtp_invoicing_password_enc IS NOT NULL"
    )
    restored = moved = lost = 0
    for server_id, mailbox, token in cr.fetchall():
        plaintext = None
        for context in (f"{cr.dbname}:ir.mail_server:{server_id}", f"{uuid}:ir.mail_server:{server_id}"):
            try:
                plaintext = box.decrypt(token, context)
                break
            except crypto.SecretError:
                continue
        if plaintext is None:
            lost += 1
            _logger.warning("smtp_invoicing: password of mail server %s cannot be decrypted, left as is", server_id)
            continue
        if mailbox:
            cr.execute(
                "UPDATE ir_mail_server SET smtp_invoicing_password_enc = %s, smtp_pass = NULL WHERE id = %s",
                (box.encrypt(plaintext, f"{uuid}:ir.mail_server:{server_id}"), server_id),
            )
            moved += 1
        else:
            cr.execute(
                "UPDATE ir_mail_server SET smtp_pass = %s, smtp_invoicing_password_enc = NULL WHERE id = %s",
                (plaintext, server_id),
            )
            restored += 1
    cr.execute(
        "UPDATE ir_mail_server SET smtp_invoicing_company_id = NULL "
        "WHERE NOT COALESCE(smtp_invoicing_mailbox, false) AND smtp_invoicing_company_id IS NOT NULL"
    )
    cr.execute(
        "UPDATE ir_mail_server SET from_filter = lower(sender_email) "
        "WHERE smtp_invoicing_mailbox AND sender_email IS NOT NULL"
    )
    cr.execute(
        """UPDATE ir_mail_server
              SET smtp_invoicing_next_check_at = CASE
                      WHEN verification_state = 'verified' AND smtp_invoicing_verified_at IS NOT NULL
                      THEN smtp_invoicing_verified_at + interval '24 hours'
                      ELSE %s END
            WHERE smtp_invoicing_mailbox AND verification_state IN ('pending', 'verified')""",
        [fields.Datetime.now()],
    )
    _logger.info(
        "smtp_invoicing: migrated from %s: %s core password(s) restored, %s mailbox password(s) re-bound, %s lost",
        version,
        restored,
        moved,
        lost,
    )

import logging

from odoo import _, api, fields, models, tools
from odoo.exceptions import UserError

from ..lib import crypto, keys

_logger = logging.getLogger(__name__)


class MissingSecret(UserError):
    """The mailbox has no usable secret (none saved, or this server cannot decrypt it):
    its owner types the password or signs in again on the connect page."""


def secret_box():
    """The SecretBox of this Odoo server's keys (see lib/keys.py for their sources)."""
    return keys.secret_box(tools.config.get(crypto.CONFIG_OPTION), tools.config["data_dir"])


class SmtpInvoicingMailbox(models.Model):
    """The secret of own mailboxes, encrypted at rest with a key kept outside the database.

    ``smtp_pass`` of a mailbox is its own non-stored field: what is typed is encrypted into
    ``smtp_invoicing_password_enc`` by its inverse, and the ``smtp_pass`` column of the
    mailbox's server stays empty. The encryption is bound to the database's
    ``database.uuid`` and the server's id: it survives a database restored or renamed
    (``createdb -T``, pg_restore), and is lost on purpose in a copy made by Odoo's database
    manager, which gives the copy a new uuid (a copy cannot send from the real mailbox).
    """

    _inherit = "smtp_invoicing.mailbox"

    smtp_pass = fields.Char(
        string="Password",
        compute="_compute_smtp_pass",
        inverse="_inverse_smtp_pass",
        help="Saved encrypted; never shown again. Leave empty to keep the saved one.",
    )
    smtp_invoicing_password_enc = fields.Char(groups="base.group_system", copy=False)
    smtp_invoicing_password_set = fields.Boolean(
        string="Password Saved", compute="_compute_smtp_invoicing_password_set"
    )

    def _compute_smtp_pass(self):
        # the plaintext is never read back: the form shows an empty field
        self.smtp_pass = False

    def _inverse_smtp_pass(self):
        """A typed password is encrypted; an empty one never erases the saved one (the form
        sends it blank since the plaintext is never shown)."""
        for mailbox in self:
            if mailbox.smtp_pass:
                mailbox._smtp_invoicing_store_password(mailbox.smtp_pass)

    @api.depends("smtp_invoicing_password_enc")
    def _compute_smtp_invoicing_password_set(self):
        for server in self.sudo():
            server.smtp_invoicing_password_set = bool(server.smtp_invoicing_password_enc)

    def _smtp_invoicing_secret_context(self):
        """What a secret is bound to: the database and the server's id (kept from before the
        mailbox had a model of its own, so that secrets saved then still decrypt)."""
        self.ensure_one()
        uuid = self.env["ir.config_parameter"].sudo().get_param("database.uuid")
        return f"{uuid}:ir.mail_server:{self.mail_server_id.id}"

    def _smtp_invoicing_store_password(self, plaintext):
        self.ensure_one()
        token = secret_box().encrypt(plaintext, self._smtp_invoicing_secret_context())
        self.env.cr.execute(
            "UPDATE smtp_invoicing_mailbox SET smtp_invoicing_password_enc = %s WHERE id = %s", (token, self.id)
        )
        self.env.cr.execute("UPDATE ir_mail_server SET smtp_pass = NULL WHERE id = %s", (self.mail_server_id.id,))
        self.mail_server_id.invalidate_recordset(["smtp_pass"])
        self.invalidate_recordset(["smtp_invoicing_password_enc", "smtp_invoicing_password_set"])

    def _smtp_invoicing_password(self):
        """Return the plaintext password; UserError when it cannot be decrypted."""
        self.ensure_one()
        token = self.sudo().smtp_invoicing_password_enc
        if not token:
            return False
        try:
            return secret_box().decrypt(token, self._smtp_invoicing_secret_context())
        except (crypto.SecretError, ValueError) as error:
            _logger.warning("Password of mailbox %s cannot be decrypted: %s", self.id, error)
            raise MissingSecret(self._smtp_invoicing_secret_message()) from None

    def _smtp_invoicing_secret_message(self):
        return _(
            "The password of “%(name)s” must be entered again: this Odoo server cannot decrypt it "
            "(its encryption key is missing or was changed, or this database is a copy).",
            name=self.name,
        )

    def _smtp_invoicing_adopt_password(self):
        """Encrypt the clear password of a core server that became this mailbox's."""
        self.ensure_one()
        self.env.cr.execute(
            "SELECT smtp_pass FROM ir_mail_server WHERE id = %s AND smtp_pass IS NOT NULL AND smtp_pass != ''",
            [self.mail_server_id.id],
        )
        row = self.env.cr.fetchone()
        if row:
            self._smtp_invoicing_store_password(row[0])

    def _smtp_invoicing_release_passwords(self):
        """Give core its clear password back (uninstall).

        A password that cannot be decrypted is left encrypted and logged by id: the
        administrator types it again. Returns the number of passwords restored.
        """
        restored = 0
        for server in self.sudo().with_context(active_test=False):
            try:
                plaintext = server._smtp_invoicing_password()
            except UserError:
                _logger.warning("Mailbox %s: password not restored, it cannot be decrypted", server.id)
                continue
            if not plaintext:
                continue
            self.env.cr.execute(
                "UPDATE ir_mail_server SET smtp_pass = %s WHERE id = %s", (plaintext, server.mail_server_id.id)
            )
            self.env.cr.execute(
                "UPDATE smtp_invoicing_mailbox SET smtp_invoicing_password_enc = NULL WHERE id = %s", (server.id,)
            )
            restored += 1
        self.invalidate_recordset(["smtp_invoicing_password_enc", "smtp_invoicing_password_set"])
        self.mail_server_id.invalidate_recordset(["smtp_pass"])
        return restored

    @api.model
    def _smtp_invoicing_reencrypt_passwords(self):
        """Re-encrypt every saved password with the first key: key rotation.

        Called by the server action "Re-encrypt SMTP passwords" (or ``odoo-bin shell``)
        once the new key is first in the key list; the old key can be removed afterwards.
        A password no key decrypts is left untouched and logged by id.
        """
        self.env.cr.execute(
            "SELECT id, smtp_invoicing_password_enc FROM smtp_invoicing_mailbox"
            " WHERE smtp_invoicing_password_enc IS NOT NULL"
        )
        box = secret_box()
        rotated = 0
        for server_id, token in self.env.cr.fetchall():
            try:
                new_token = box.rotate(token)
            except crypto.SecretError:
                _logger.warning("Mailbox %s: password not re-encrypted, no key decrypts it", server_id)
                continue
            self.env.cr.execute(
                "UPDATE smtp_invoicing_mailbox SET smtp_invoicing_password_enc = %s WHERE id = %s",
                (new_token, server_id),
            )
            rotated += 1
        self.invalidate_model(["smtp_invoicing_password_enc"])
        _logger.info("smtp_invoicing: re-encrypted %s password(s) with key %s", rotated, box.fingerprint)
        return rotated

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


class IrMailServer(models.Model):
    """The secret of own mailboxes, encrypted at rest with a key kept outside the database.

    Core servers keep their clear ``smtp_pass`` column exactly as core stores it. An own
    mailbox's password goes to ``smtp_invoicing_password_enc`` instead, bound to the
    database's ``database.uuid`` and the row: it survives a database restored or renamed
    (``createdb -T``, pg_restore), and is lost on purpose in a copy made by Odoo's database
    manager, which gives the copy a new uuid (a copy cannot send from the real mailbox).
    """

    _inherit = "ir.mail_server"

    smtp_invoicing_password_enc = fields.Char(groups="base.group_system", copy=False)
    smtp_invoicing_password_set = fields.Boolean(
        string="Password Saved", compute="_compute_smtp_invoicing_password_set"
    )

    @api.depends("smtp_invoicing_password_enc")
    def _compute_smtp_invoicing_password_set(self):
        for server in self.sudo():
            server.smtp_invoicing_password_set = bool(server.smtp_invoicing_password_enc)

    @api.model_create_multi
    def create(self, vals_list):
        """An own mailbox's password never reaches core's clear column."""
        secrets = [vals.pop("smtp_pass", None) if vals.get("smtp_invoicing_mailbox") else None for vals in vals_list]
        servers = super().create(vals_list)
        for server, secret in zip(servers, secrets, strict=True):
            if secret:
                server._smtp_invoicing_store_password(secret)
        return servers

    def write(self, vals):
        """Own mailboxes: a new password is encrypted, an empty one never erases the saved one
        (forms send it blank since the plaintext is never shown). A server that becomes, or
        stops being, an own mailbox has its password moved between the two columns."""
        becomes = "smtp_invoicing_mailbox" in vals
        if "smtp_pass" not in vals and not becomes:
            return super().write(vals)
        will_be = self.filtered(lambda s: vals.get("smtp_invoicing_mailbox", s.smtp_invoicing_mailbox))
        converted = will_be.filtered(lambda s: not s.smtp_invoicing_mailbox)
        released = (self - will_be).filtered("smtp_invoicing_mailbox")
        if released:
            released._smtp_invoicing_release_passwords()
        if converted:
            converted._smtp_invoicing_adopt_passwords()
        others = self - will_be
        result = super(IrMailServer, others).write(vals) if others else True
        if will_be:
            mailbox_vals = dict(vals)
            secret = mailbox_vals.pop("smtp_pass", None)
            if secret:
                # the key tells the verification reset in write() that the password changed
                mailbox_vals["smtp_pass"] = False
            result &= super(IrMailServer, will_be).write(mailbox_vals)
            if secret:
                for server in will_be:
                    server._smtp_invoicing_store_password(secret)
        return result

    def _smtp_invoicing_secret_context(self):
        self.ensure_one()
        uuid = self.env["ir.config_parameter"].sudo().get_param("database.uuid")
        return f"{uuid}:ir.mail_server:{self.id}"

    def _smtp_invoicing_store_password(self, plaintext):
        self.ensure_one()
        token = secret_box().encrypt(plaintext, self._smtp_invoicing_secret_context())
        self.env.cr.execute(
            "UPDATE ir_mail_server SET smtp_invoicing_password_enc = %s, smtp_pass = NULL WHERE id = %s",
            (token, self.id),
        )
        self.invalidate_recordset(["smtp_pass", "smtp_invoicing_password_enc", "smtp_invoicing_password_set"])

    def _smtp_invoicing_password(self):
        """Return the plaintext password; UserError when it cannot be decrypted."""
        self.ensure_one()
        token = self.sudo().smtp_invoicing_password_enc
        if not token:
            return False
        try:
            return secret_box().decrypt(token, self._smtp_invoicing_secret_context())
        except (crypto.SecretError, ValueError) as error:
            _logger.warning("Password of mail server %s cannot be decrypted: %s", self.id, error)
            raise MissingSecret(self._smtp_invoicing_secret_message()) from None

    def _smtp_invoicing_secret_message(self):
        return _(
            "The password of “%(name)s” must be entered again: this Odoo server cannot decrypt it "
            "(its encryption key is missing or was changed, or this database is a copy).",
            name=self.name,
        )

    def _smtp_invoicing_adopt_passwords(self):
        """Encrypt the clear password of core servers that become own mailboxes."""
        self.env.cr.execute(
            "SELECT id, smtp_pass FROM ir_mail_server WHERE id IN %s AND smtp_pass IS NOT NULL AND smtp_pass != ''",
            [tuple(self.ids)],
        )
        for server_id, plaintext in self.env.cr.fetchall():
            self.browse(server_id)._smtp_invoicing_store_password(plaintext)

    def _smtp_invoicing_release_passwords(self):
        """Give core its clear password back (uninstall, or a mailbox turned into a core server).

        A password that cannot be decrypted is left encrypted and logged by id: the
        administrator types it again. Returns the number of passwords restored.
        """
        restored = 0
        for server in self.sudo().with_context(active_test=False):
            try:
                plaintext = server._smtp_invoicing_password()
            except UserError:
                _logger.warning("Mail server %s: password not restored, it cannot be decrypted", server.id)
                continue
            if not plaintext:
                continue
            self.env.cr.execute(
                "UPDATE ir_mail_server SET smtp_pass = %s, smtp_invoicing_password_enc = NULL WHERE id = %s",
                (plaintext, server.id),
            )
            restored += 1
        self.invalidate_recordset(["smtp_pass", "smtp_invoicing_password_enc", "smtp_invoicing_password_set"])
        return restored

    @api.model
    def _smtp_invoicing_reencrypt_passwords(self):
        """Re-encrypt every saved password with the first key: key rotation.

        Called by the server action "Re-encrypt SMTP passwords" (or ``odoo-bin shell``)
        once the new key is first in the key list; the old key can be removed afterwards.
        A password no key decrypts is left untouched and logged by id.
        """
        self.env.cr.execute(
            "SELECT id, smtp_invoicing_password_enc FROM ir_mail_server WHERE smtp_invoicing_password_enc IS NOT NULL"
        )
        box = secret_box()
        rotated = 0
        for server_id, token in self.env.cr.fetchall():
            try:
                new_token = box.rotate(token)
            except crypto.SecretError:
                _logger.warning("Mail server %s: password not re-encrypted, no key decrypts it", server_id)
                continue
            self.env.cr.execute(
                "UPDATE ir_mail_server SET smtp_invoicing_password_enc = %s WHERE id = %s", (new_token, server_id)
            )
            rotated += 1
        self.invalidate_model(["smtp_invoicing_password_enc"])
        _logger.info("smtp_invoicing: re-encrypted %s password(s) with key %s", rotated, box.fingerprint)
        return rotated

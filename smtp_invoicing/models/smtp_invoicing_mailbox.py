import logging

from odoo import _, api, fields, models, tools
from odoo.exceptions import ValidationError
from odoo.tools import email_normalize
from odoo.tools.sql import escape_psql

from ..lib import presets, validation

_logger = logging.getLogger(__name__)

ENABLED_PARAM = "smtp_invoicing.enabled"
# Sign-in kinds with a provider's account (smtp_invoicing_mailbox_oauth.py) rather than a password.
OAUTH_KINDS = ("microsoft", "google")

# Changing one of these invalidates a previous verification.
CONNECTION_FIELDS = frozenset(
    {
        "smtp_host",
        "smtp_port",
        "smtp_encryption",
        "smtp_user",
        "smtp_pass",
        "sender_email",
        "smtp_invoicing_ca_cert",
        "smtp_invoicing_company_id",
        # incoming mail (smtp_invoicing_mailbox_bounces.py): verified too when it is used
        "smtp_invoicing_imap_host",
        "smtp_invoicing_imap_port",
        "smtp_invoicing_track_bounces",
        "smtp_invoicing_sent_copy",
    }
)
# What the Sent folder told (smtp_invoicing_mailbox_sent_copy.py, smtp_invoicing_mailbox_sender_check.py)
# holds for one server and account: changing one of these asks again.
SERVER_FILES_SENT_FIELDS = frozenset({"smtp_host", "smtp_user", "smtp_invoicing_preset", "smtp_invoicing_imap_host"})
SENDER_CHECK_FIELDS = SERVER_FILES_SENT_FIELDS | {"sender_email"}


class SmtpInvoicingMailbox(models.Model):
    """An own mailbox: the company's address that invoices and reminders leave from.

    It delegates its connection settings (host, port, protocol, user name) to an
    ``ir.mail_server`` through ``_inherits``, the way ``res.users`` delegates to
    ``res.partner``: templates choose that server in core's ``mail_server_id``, and core
    sends through it (``ir_mail_server.py`` hands such servers to their mailbox). Everything
    of the product lives on this model, in files by concern beside this one: ``_password``
    (secret at rest), ``_verification`` (status lifecycle), ``_delivery`` (sending),
    ``_oauth``, ``_bounces``, ``_sent_copy``, ``_deliverability``, ``_send_window``.
    """

    _name = "smtp_invoicing.mailbox"
    _description = "Own Mailbox"
    _inherits = {"ir.mail_server": "mail_server_id"}
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "sequence, id"

    mail_server_id = fields.Many2one(
        "ir.mail_server",
        string="Outgoing Mail Server",
        required=True,
        readonly=True,
        ondelete="cascade",
        index=True,
        auto_join=True,
        help="The server core sends through; email templates choose it.",
    )
    sender_name = fields.Char(help="Name shown to customers, e.g. 'ACME Billing'.")
    sender_email = fields.Char(help="Address the mails are sent from; it must belong to the mailbox.")
    smtp_invoicing_preset = fields.Selection(presets.SELECTION, string="Provider", default="custom")
    smtp_invoicing_company_id = fields.Many2one(
        "res.company",
        string="Company",
        index=True,
        default=lambda self: self.env.company,
        help="Only this company's users and records use this mailbox. Leave empty to share it.",
    )
    smtp_invoicing_ca_cert = fields.Text(
        string="Extra CA Certificate",
        groups="base.group_system",
        help="PEM certificate of the authority that signed a self-hosted server's certificate. "
        "Public providers (Gmail, Microsoft 365, OVH) need nothing here.",
    )

    # ------------------------------------------------------------------
    # Onchange and constraints
    # ------------------------------------------------------------------

    @api.onchange("smtp_invoicing_preset")
    def _onchange_smtp_invoicing_preset(self):
        for server in self:
            server.update(presets.preset_values(server.smtp_invoicing_preset))

    @api.onchange("smtp_encryption")
    def _onchange_encryption(self):
        """The submission ports: 465 for SSL/TLS, 587 for STARTTLS (core suggests 25)."""
        for mailbox in self:
            if mailbox.smtp_encryption == "ssl":
                mailbox.smtp_port = 465
            elif mailbox.smtp_encryption == "starttls":
                mailbox.smtp_port = 587
        return {}

    @api.constrains(
        "sender_name",
        "sender_email",
        "smtp_host",
        "smtp_port",
        "smtp_encryption",
        "smtp_authentication",
    )
    def _check_smtp_invoicing_settings(self):
        for server in self:
            if validation.has_control_chars(server.sender_name) or validation.has_control_chars(server.name):
                raise ValidationError(_("The sender name of “%(name)s” must fit on one line.", name=server.name))
            if (
                not server.sender_email
                or validation.has_control_chars(server.sender_email)
                or len(tools.email_split(server.sender_email)) != 1
                or not email_normalize(server.sender_email)
            ):
                raise ValidationError(
                    _(
                        "“%(email)s” is not a valid sender email for “%(name)s”: "
                        "enter one address such as billing@example.com.",
                        email=server.sender_email or "",
                        name=server.name,
                    )
                )
            if not validation.is_valid_host(server.smtp_host):
                raise ValidationError(
                    _(
                        "“%(host)s” is not a valid server name for “%(name)s”: "
                        "enter a host name such as smtp.gmail.com "
                        "or an IP address, without spaces, “http://” or port.",
                        host=server.smtp_host or "",
                        name=server.name,
                    )
                )
            if not validation.is_valid_port(server.smtp_port):
                raise ValidationError(
                    _(
                        "The port of “%(name)s” must be between 1 and 65535 (usually 587 for TLS or 465 for SSL).",
                        name=server.name,
                    )
                )
            if server.smtp_encryption not in ("starttls", "ssl"):
                raise ValidationError(
                    _(
                        "“%(name)s” must use an encrypted protocol: TLS (STARTTLS) or SSL. "
                        "Passwords are never sent unencrypted.",
                        name=server.name,
                    )
                )
            if server.smtp_authentication != "login":
                raise ValidationError(
                    _("“%(name)s” must authenticate with a user name and password.", name=server.name)
                )

    @api.constrains("smtp_user", "smtp_invoicing_company_id")
    def _check_smtp_invoicing_user(self):
        for server in self.sudo():
            if not server._smtp_invoicing_licensed_user():
                raise ValidationError(server._smtp_invoicing_license_message())

    def _smtp_invoicing_licensed_user(self):
        """Return the active internal user whose login or email is this mailbox's user name."""
        self.ensure_one()
        user_name = email_normalize(self.sudo().smtp_user or "")
        if not user_name or validation.has_control_chars(self.sudo().smtp_user):
            return self.env["res.users"]
        company = self.smtp_invoicing_company_id
        domain = [
            ("share", "=", False),
            "|",
            ("login", "=ilike", escape_psql(user_name)),
            ("email_normalized", "=", user_name),
        ]
        if company:
            domain.append(("company_ids", "in", company.ids))
        # sudo: the rule is about the database's licences, not what the admin can see.
        return self.env["res.users"].sudo().search(domain, limit=1)

    def _smtp_invoicing_license_message(self):
        return _(
            "The user name “%(user)s” of “%(name)s” must be the login or email of an active internal user "
            "of %(company)s: only mailboxes of licensed users can send invoices.",
            user=self.sudo().smtp_user or "",
            name=self.name,
            company=self.smtp_invoicing_company_id.name or _("this database"),
        )

    # ------------------------------------------------------------------
    # CRUD
    # ------------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        """The server's ``from_filter`` is the mailbox's sender (``_smtp_invoicing_sync_from_filter``);
        an OAuth mailbox has no password; a mailbox created without secret awaits its owner, who
        gets a to-do (``_smtp_invoicing_ask_owner``)."""
        for vals in vals_list:
            if vals.get("smtp_invoicing_auth_kind") in OAUTH_KINDS:
                vals.pop("smtp_pass", None)
        mailboxes = super().create(vals_list)
        self.env.registry.clear_cache()  # _smtp_invoicing_mailbox_ids_by_server
        mailboxes._smtp_invoicing_sync_from_filter()
        mailboxes.filtered("smtp_invoicing_awaiting_connection")._smtp_invoicing_ask_owner()
        return mailboxes

    def write(self, vals):
        """The one ``write`` of a mailbox.

        - An empty password keeps the saved one (``_inverse_smtp_pass``): it changes nothing.
        - A changed connection setting invalidates a previous verification.
        - Another sign-in kind forgets the previous secret: the owner connects the mailbox again.
        - A Sent copy switched off drops the copies still waiting.
        - Another server, account or provider asks its Sent folder again whether the server files
          its own copies; another sender too whether the From that leaves is the sender.
        """
        if "smtp_pass" in vals and (not vals["smtp_pass"] or vals.get("smtp_invoicing_auth_kind") in OAUTH_KINDS):
            vals = {key: value for key, value in vals.items() if key != "smtp_pass"}
        kind_changed = self.browse()
        if "smtp_invoicing_auth_kind" in vals:
            kind_changed = self.filtered(lambda s: s.smtp_invoicing_auth_kind != vals["smtp_invoicing_auth_kind"])
        to_reset = self.browse()
        if CONNECTION_FIELDS.intersection(vals) and "verification_state" not in vals:
            to_reset = self.filtered(lambda s: s.verification_state != "draft")
        changed = {
            name: self.sudo().filtered(lambda s, name=name: (s[name] or False) != (vals[name] or False))
            for name in SENDER_CHECK_FIELDS.intersection(vals)
        }
        ask_files_sent = self.browse().union(*(changed[name] for name in SERVER_FILES_SENT_FIELDS & set(changed)))
        ask_sender = self.browse().union(*changed.values())
        result = super().write(vals)
        if ask_files_sent:
            super(SmtpInvoicingMailbox, ask_files_sent).write({"smtp_invoicing_server_files_sent": "unknown"})
        if ask_sender:
            super(SmtpInvoicingMailbox, ask_sender).write(
                {
                    "smtp_invoicing_sender_check": "unknown",
                    "smtp_invoicing_sender_check_message_id": False,
                    "smtp_invoicing_sender_check_since": False,
                }
            )
        if {"sender_email", "from_filter"}.intersection(vals):
            self._smtp_invoicing_sync_from_filter()
        if to_reset:
            to_reset._smtp_invoicing_reset_verification()
        if kind_changed:
            kind_changed._smtp_invoicing_forget_secret()
            kind_changed._smtp_invoicing_reset_verification()
            kind_changed._smtp_invoicing_ask_owner()
        if "smtp_invoicing_sent_copy" in vals and not vals["smtp_invoicing_sent_copy"]:
            self.env["smtp_invoicing.sent.copy"].sudo().search([("mailbox_id", "in", self.ids)]).unlink()
        return result

    def unlink(self):
        """A mailbox goes with its server: no password-less leftover among core's servers."""
        servers = self.mail_server_id
        result = super().unlink()
        self.env.registry.clear_cache()  # _smtp_invoicing_mailbox_ids_by_server
        servers.unlink()
        return result

    def _smtp_invoicing_sync_from_filter(self):
        """A mailbox's ``from_filter`` is its sender, as core's Gmail and Outlook servers
        do: even outside this module (uninstalled), it never becomes a catch-all."""
        for server in self:
            sender = email_normalize(server.sender_email or "") or server.sender_email or False
            if server.from_filter != sender:
                server.write({"from_filter": sender})

    def _creation_message(self):
        """mail.thread's first chatter line: a mailbox to its users, not the model's name."""
        self.ensure_one()
        return _("Mailbox created")

    def copy_data(self, default=None):
        """A copy starts unverified and without password (secrets are never duplicated), on a
        server of its own."""
        vals_list = super().copy_data(default=default)
        for mailbox, vals in zip(self, vals_list, strict=False):
            vals.pop("smtp_pass", None)
            if "mail_server_id" not in (default or {}):
                vals.pop("mail_server_id", None)
                server_vals = mailbox.mail_server_id.copy_data()[0]
                server_vals.pop("smtp_pass", None)
                vals.update({key: value for key, value in server_vals.items() if key not in vals})
        return vals_list

    # ------------------------------------------------------------------
    # Routing
    # ------------------------------------------------------------------

    def _smtp_invoicing_is_enabled(self):
        return tools.str2bool(self.env["ir.config_parameter"].sudo().get_param(ENABLED_PARAM, "False"))

    @api.model
    @tools.ormcache("mailbox_id")
    def _smtp_invoicing_server_of(self, mailbox_id):
        """The id of the server a mailbox delegates to (set at creation, never changed)."""
        return self.sudo().browse(mailbox_id).mail_server_id.id

    @api.model
    @tools.ormcache()
    def _smtp_invoicing_mailbox_ids_by_server(self):
        """{server id: mailbox id} of every mailbox, archived ones included. Asked for every batch the
        queue sends and every mail created; a mailbox keeps its server for life, so the map changes
        only when a mailbox is created or deleted (which clear it)."""
        self.env.cr.execute("SELECT mail_server_id, id FROM smtp_invoicing_mailbox")
        return dict(self.env.cr.fetchall())

    @api.model
    def _smtp_invoicing_of_servers(self, servers):
        """The mailboxes behind ``servers`` (``ir.mail_server``), archived ones included."""
        if not servers:
            return self.browse()
        mailbox_ids = self._smtp_invoicing_mailbox_ids_by_server()
        return (
            self.sudo()
            .with_context(active_test=False)
            .browse([mailbox_ids[server_id] for server_id in servers.ids if server_id in mailbox_ids])
        )

    def _smtp_invoicing_accepts(self, company):
        """True when this mailbox may carry a mail of ``company``'s records."""
        self.ensure_one()
        if not self._smtp_invoicing_is_enabled():
            return False
        return not self.smtp_invoicing_company_id or not company or company == self.smtp_invoicing_company_id

import logging

from odoo import _, api, fields, models, tools
from odoo.exceptions import ValidationError
from odoo.tools import email_normalize
from odoo.tools.sql import escape_psql

from ..lib import presets, validation

_logger = logging.getLogger(__name__)

ENABLED_PARAM = "smtp_invoicing.enabled"

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
        # incoming mail (ir_mail_server_bounces.py): verified too when it is used
        "smtp_invoicing_imap_host",
        "smtp_invoicing_imap_port",
        "smtp_invoicing_track_bounces",
        "smtp_invoicing_sent_copy",
    }
)


class IrMailServer(models.Model):
    """Own mailboxes: fields, rules and routing. Other concerns live beside this file:
    ``_password`` (secret at rest), ``_verification`` (status lifecycle), ``_delivery``
    (sending through a mailbox), ``_deliverability`` (SPF/DMARC hint).

    Everything here applies to own mailboxes (``smtp_invoicing_mailbox``) only; core
    outgoing servers keep their behaviour, installed or not, switched on or off.
    """

    _name = "ir.mail_server"
    _inherit = ["ir.mail_server", "mail.thread", "mail.activity.mixin"]

    smtp_invoicing_mailbox = fields.Boolean(
        string="Own Mailbox",
        help="A company mailbox used to send invoices and reminders, verified before use. "
        "It only carries the mails of the email templates that chose it.",
    )
    sender_name = fields.Char(help="Name shown to customers, e.g. 'ACME Billing'.")
    sender_email = fields.Char(help="Address the mails are sent from; it must belong to the mailbox.")
    smtp_invoicing_preset = fields.Selection(presets.SELECTION, string="Provider", default="custom")
    # No default: core servers never get a company. Own mailboxes get the current
    # company at creation (see create()).
    smtp_invoicing_company_id = fields.Many2one(
        "res.company",
        string="Company",
        index=True,
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
        """Keep core's port suggestion, but 587 for STARTTLS mailboxes (submission port)."""
        result = super()._onchange_encryption()
        if self.smtp_invoicing_mailbox and self.smtp_encryption == "starttls":
            self.smtp_port = 587
        return result

    @api.constrains(
        "smtp_invoicing_mailbox",
        "sender_name",
        "sender_email",
        "smtp_host",
        "smtp_port",
        "smtp_encryption",
        "smtp_authentication",
    )
    def _check_smtp_invoicing_settings(self):
        for server in self.filtered("smtp_invoicing_mailbox"):
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

    @api.constrains("smtp_invoicing_mailbox", "smtp_user", "smtp_invoicing_company_id")
    def _check_smtp_invoicing_user(self):
        for server in self.sudo().filtered("smtp_invoicing_mailbox"):
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
        """Own mailboxes belong to the current company unless told otherwise."""
        for vals in vals_list:
            if vals.get("smtp_invoicing_mailbox"):
                vals.setdefault("smtp_invoicing_company_id", self.env.company.id)
        servers = super().create(vals_list)
        servers.filtered("smtp_invoicing_mailbox")._smtp_invoicing_sync_from_filter()
        return servers

    def write(self, vals):
        """A changed connection setting invalidates a previous verification."""
        to_reset = self.browse()
        if CONNECTION_FIELDS.intersection(vals) and "verification_state" not in vals:
            to_reset = self.filtered(lambda s: s.smtp_invoicing_mailbox and s.verification_state != "draft")
        result = super().write(vals)
        if {"sender_email", "smtp_invoicing_mailbox", "from_filter"}.intersection(vals):
            self.filtered("smtp_invoicing_mailbox")._smtp_invoicing_sync_from_filter()
        if to_reset:
            to_reset._smtp_invoicing_reset_verification()
        return result

    def _smtp_invoicing_sync_from_filter(self):
        """A mailbox's ``from_filter`` is its sender, as core's Gmail and Outlook servers
        do: even outside this module (uninstalled), it never becomes a catch-all."""
        for server in self:
            sender = email_normalize(server.sender_email or "") or server.sender_email or False
            if server.from_filter != sender:
                server.write({"from_filter": sender})

    def _creation_message(self):
        """mail.thread's first chatter line: an own mailbox is a mailbox to its users, not core's
        "Mail Server" (the model's name, which core servers keep)."""
        self.ensure_one()
        if self.smtp_invoicing_mailbox:
            return _("Mailbox created")
        return super()._creation_message()

    def copy_data(self, default=None):
        """A copy starts unverified and without password: secrets are never duplicated."""
        vals_list = super().copy_data(default=default)
        for server, vals in zip(self, vals_list, strict=False):
            if server.smtp_invoicing_mailbox:
                vals.pop("smtp_pass", None)
        return vals_list

    def get_formview_id(self, access_uid=None):
        """Own mailboxes open in the product's form, not core's technical one: links of mail's
        activities and notifications (``/mail/view``), of many2one fields and of URLs."""
        if len(self) == 1 and self.sudo().smtp_invoicing_mailbox:
            return self.env.ref("smtp_invoicing.ir_mail_server_view_form_smtp_invoicing").id
        return super().get_formview_id(access_uid=access_uid)

    # ------------------------------------------------------------------
    # Routing
    # ------------------------------------------------------------------

    def _smtp_invoicing_is_enabled(self):
        return tools.str2bool(self.env["ir.config_parameter"].sudo().get_param(ENABLED_PARAM, "False"))

    def _find_mail_server(self, email_from, mail_servers=None):
        """Own mailboxes only carry mails whose template chose them: never a fallback.

        The one routing override: core's choice among the other servers is unchanged.
        """
        if mail_servers is None:
            mail_servers = self.sudo().search([], order="sequence")
        mail_servers = mail_servers.filtered(lambda server: not server.smtp_invoicing_mailbox)
        return super()._find_mail_server(email_from, mail_servers=mail_servers)

    def _smtp_invoicing_accepts(self, company):
        """True when this mailbox may carry a mail of ``company``'s records."""
        self.ensure_one()
        if not self._smtp_invoicing_is_enabled():
            return False
        return not self.smtp_invoicing_company_id or not company or company == self.smtp_invoicing_company_id

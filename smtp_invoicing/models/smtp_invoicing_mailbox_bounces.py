from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..lib import imap, validation

# IMAP failures that may heal by themselves: a verified mailbox keeps sending meanwhile.
IMAP_TEMPORARY_REASONS = frozenset({"dns_unavailable", "refused", "timeout", "network"})


class SmtpInvoicingMailbox(models.Model):
    """Incoming mail of own mailboxes: the settings, and their verification.

    Odoo reads the mailbox's INBOX over IMAP for the delivery reports about the mails it
    sent (``smtp_invoicing_track_bounces``) and files a copy of each sent mail in the
    Sent folder (``smtp_invoicing_sent_copy``), with the same login and the same verified
    TLS as for sending. The reading itself is in ``smtp_invoicing_mailbox_bounces_poll.py``, the
    Sent copy in ``smtp_invoicing_mailbox_sent_copy.py``.
    """

    _inherit = "smtp_invoicing.mailbox"

    smtp_invoicing_imap_host = fields.Char(
        string="IMAP Host",
        help="Incoming mail server of the mailbox (IMAP over SSL), e.g. imap.gmail.com. The presets fill it.",
    )
    smtp_invoicing_imap_port = fields.Integer(string="IMAP Port", default=993)
    smtp_invoicing_track_bounces = fields.Boolean(
        string="Track Bounces",
        help="Read the delivery reports (bounces) that come back to this mailbox: an invoice sent to a wrong "
        "address is marked Returned. Odoo reads the headers of new messages only, downloads the reports "
        "alone, and never marks anything as read.",
    )
    smtp_invoicing_sent_copy = fields.Boolean(
        string="Copy in Sent Folder",
        help="File a copy of every mail sent from this mailbox in its Sent folder. Gmail does it by itself; "
        "Microsoft 365, Outlook.com and OVH do not.",
    )
    smtp_invoicing_bounce_folder = fields.Char(
        string="File Processed Reports In",
        help="Optional folder (e.g. “Odoo/Bounces”) where the delivery reports Odoo recorded are moved. "
        "Empty: Odoo moves and deletes nothing.",
    )
    # UIDVALIDITY and UIDs are unsigned 32-bit numbers (RFC 3501): larger than Odoo's int4 Integer.
    smtp_invoicing_imap_uidvalidity = fields.Char(string="UIDVALIDITY", readonly=True, copy=False)
    smtp_invoicing_imap_last_uid = fields.Char(string="Last UID Read", readonly=True, copy=False)
    smtp_invoicing_imap_polled_at = fields.Datetime(string="Last Read", readonly=True, copy=False)
    smtp_invoicing_imap_error = fields.Text(
        string="Incoming Mail Problem",
        readonly=True,
        copy=False,
        help="Why Odoo could not read this mailbox at its last attempt; empty once it can.",
    )
    smtp_invoicing_poll_lease_until = fields.Datetime(readonly=True, copy=False)
    smtp_invoicing_bounce_ids = fields.One2many(
        "smtp_invoicing.bounce", "mailbox_id", string="Delivery Reports", readonly=True
    )

    @api.constrains(
        "smtp_invoicing_track_bounces",
        "smtp_invoicing_sent_copy",
        "smtp_invoicing_imap_host",
        "smtp_invoicing_imap_port",
        "smtp_invoicing_bounce_folder",
    )
    def _check_smtp_invoicing_incoming(self):
        for server in self:
            if not server._smtp_invoicing_uses_imap():
                continue
            if not validation.is_valid_host(server.smtp_invoicing_imap_host):
                raise ValidationError(
                    _(
                        "“%(host)s” is not a valid incoming mail server for “%(name)s”: enter a host name such as "
                        "imap.gmail.com, without spaces, “imap://” or port.",
                        host=server.smtp_invoicing_imap_host or "",
                        name=server.name,
                    )
                )
            if not validation.is_valid_port(server.smtp_invoicing_imap_port):
                raise ValidationError(
                    _("The IMAP port of “%(name)s” must be between 1 and 65535 (usually 993).", name=server.name)
                )
            if validation.has_control_chars(server.smtp_invoicing_bounce_folder):
                raise ValidationError(
                    _("The folder for processed reports of “%(name)s” must fit on one line.", name=server.name)
                )

    def _smtp_invoicing_uses_imap(self):
        self.ensure_one()
        return bool(self.smtp_invoicing_track_bounces or self.smtp_invoicing_sent_copy)

    # ------------------------------------------------------------------
    # Verification: the incoming side too, when it is used
    # ------------------------------------------------------------------

    def _smtp_invoicing_imap_request(self):
        """Keyword arguments of ``imap.open_session``/``imap.verify`` for this mailbox (UserError: no secret)."""
        self.ensure_one()
        server = self.sudo()
        timeout, _deadline = server._smtp_invoicing_timeouts()
        return {
            "host": server.smtp_invoicing_imap_host,
            "port": server.smtp_invoicing_imap_port,
            **server._smtp_invoicing_credentials(),
            "ca_pem": server.smtp_invoicing_ca_cert or None,
            "timeout": timeout,
        }

    def _smtp_invoicing_verify_request(self):
        """Mailboxes that track bounces or copy to Sent also log in to IMAP and select the INBOX."""
        request = super()._smtp_invoicing_verify_request()
        if self._smtp_invoicing_uses_imap():
            request["imap"] = self._smtp_invoicing_imap_request()
        return request

    @api.model
    def _smtp_invoicing_network_check(self, request):
        """SMTP first (its failures are the most common), then IMAP: still no ORM in this thread."""
        request = dict(request)
        incoming = request.pop("imap", None)
        result = super()._smtp_invoicing_network_check(request)
        if incoming:
            imap.verify(**incoming)
        return result

    def _smtp_invoicing_record_verification(self, error=None, notes=None):
        """An IMAP failure fails the verification like an SMTP one, with its own words.

        A mailbox switched to bounce tracking that cannot read its inbox is not what the
        administrator asked for: it is Failed until fixed (or tracking switched off), or
        kept verified with a warning when a re-check could not reach the IMAP server.
        """
        if not isinstance(error, imap.ImapCheckError):
            return super()._smtp_invoicing_record_verification(error, notes=notes)
        self.ensure_one()
        server = self.sudo()
        message = server._smtp_invoicing_reason_message(error)
        if error.reason in IMAP_TEMPORARY_REASONS:
            server._smtp_invoicing_mark_unreachable(message, notes=notes)
        else:
            server._smtp_invoicing_mark_failed(message, notes=notes)
        server.smtp_invoicing_lease_until = False
        return fields.Datetime.now()

    def _smtp_invoicing_reason_message(self, error):
        """IMAP failures (``imap.ImapCheckError``): the reasons shared with SMTP, and IMAP's own advice."""
        if not isinstance(error, imap.ImapCheckError):
            return super()._smtp_invoicing_reason_message(error)
        params = {
            "host": self.smtp_invoicing_imap_host,
            "port": self.smtp_invoicing_imap_port,
            "user": self.sudo().smtp_user,
            "detail": error.detail,
        }
        messages = {
            **self._smtp_invoicing_shared_reason_messages(params),
            "dns": _(
                "The incoming mail server “%(host)s” does not exist. Check its spelling (Gmail: imap.gmail.com, "
                "Microsoft 365: outlook.office365.com), or switch off bounce tracking and the Sent copy.",
                **params,
            ),
            "refused": _(
                "The incoming mail server %(host)s refused the connection on port %(port)s. IMAP over SSL "
                "usually uses port 993.",
                **params,
            ),
            "timeout": _(
                "The incoming mail server %(host)s did not answer in time on port %(port)s. Check the IMAP host "
                "and port (usually 993).",
                **params,
            ),
            "wrong_protocol": _(
                "The incoming mail server does not speak IMAP over SSL on port %(port)s. Use port 993.", **params
            ),
            "auth_failed": _(
                "The incoming mail server refused the user name or password of %(user)s. Odoo reads the "
                "mailbox with the same login as for sending; for Gmail, use an App Password.",
                **params,
            ),
            "imap_disabled": _(
                "Gmail refused to let Odoo read the mailbox: IMAP is disabled for this account. In Gmail, open "
                "Settings › See all settings › Forwarding and POP/IMAP, choose “Enable IMAP”, save, then verify "
                "again.",
                **params,
            ),
        }
        return messages.get(error.reason) or messages["protocol_error"]

    # ------------------------------------------------------------------
    # Form buttons
    # ------------------------------------------------------------------

    def action_smtp_invoicing_read_now(self):
        """Read the delivery reports and file the waiting Sent copies of these mailboxes now (form button)."""
        mailboxes = self
        if not mailboxes or not any(server._smtp_invoicing_uses_imap() for server in mailboxes):
            raise UserError(_("Switch on bounce tracking or the Sent copy first."))
        self.env["smtp_invoicing.sent.copy"].sudo().search([("mailbox_id", "in", mailboxes.ids)]).write(
            {"next_attempt_at": fields.Datetime.now()}
        )
        self.env.ref("smtp_invoicing.ir_cron_poll_mailboxes")._trigger()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "info",
                "message": _("The mailbox is read in the background in a few seconds."),
            },
        }

import base64
import logging

from odoo import _, fields, models

from ..lib import smtp

_logger = logging.getLogger(__name__)


class SmtpInvoicingMailbox(models.Model):
    """The Sent folder copy of the mails an own mailbox sends: queued at once, filed later.

    The sending path only keeps the bytes (one INSERT); the IMAP work is done by the
    scheduled action that reads the mailbox, in batches, one session per mailbox.
    """

    _inherit = "smtp_invoicing.mailbox"

    smtp_invoicing_sent_copy_count = fields.Integer(
        string="Copies Waiting", compute="_compute_smtp_invoicing_sent_copy_status"
    )
    smtp_invoicing_sent_copy_error = fields.Text(
        string="Sent Copy Problem", compute="_compute_smtp_invoicing_sent_copy_status"
    )
    smtp_invoicing_server_files_sent = fields.Selection(
        [("unknown", "Not known yet"), ("yes", "Yes: Odoo adds none"), ("no", "No: Odoo adds it")],
        string="Server Files Its Own Copy",
        default="unknown",
        required=True,
        readonly=True,
        copy=False,
        help="Whether the outgoing server of a custom mailbox already puts every mail it sends in the Sent "
        "folder. Before filing its first copy, Odoo looks for the mail in the Sent folder: found, the server "
        "files them and Odoo adds none (no mail twice); not found, Odoo files them.",
    )

    def _compute_smtp_invoicing_sent_copy_status(self):
        copies = self.env["smtp_invoicing.sent.copy"].sudo().search([("mailbox_id", "in", self.ids)])
        for server in self:
            mine = copies.filtered(lambda copy, server=server: copy.mailbox_id == server)
            failed = mine.filtered("last_error")
            server.smtp_invoicing_sent_copy_count = len(mine)
            server.smtp_invoicing_sent_copy_error = failed[-1:].last_error or False

    def _smtp_invoicing_files_sent_itself(self):
        """True: the server files every mail it sends in the Sent folder itself (the provider documents
        it, or a custom server's own copy was found there); False: it does not; None: not known yet."""
        self.ensure_one()
        documented = self._smtp_invoicing_profile().files_sent_copy
        if documented is not None:
            return documented
        return {"yes": True, "no": False}.get(self.smtp_invoicing_server_files_sent)

    def _smtp_invoicing_asks_server_files_sent(self):
        """Whether the next session must look for a sent mail in the Sent folder before filing a copy."""
        self.ensure_one()
        return self._smtp_invoicing_files_sent_itself() is None

    def _smtp_invoicing_files_sent_copy(self):
        """Whether Odoo files a copy of what this mailbox sends in its Sent folder: the box is ticked,
        the mailbox is read over IMAP, and its server does not file its own copy (Gmail, Microsoft
        365, Outlook.com, a custom server found to do it), which would show it twice."""
        self.ensure_one()
        return bool(
            self.smtp_invoicing_sent_copy
            and self.smtp_invoicing_imap_host
            and not self._smtp_invoicing_files_sent_itself()
        )

    def _smtp_invoicing_connect(self):
        """A session tells once whether its mails get a Sent copy: no query per mail."""
        connection = super()._smtp_invoicing_connect()
        connection.smtp_invoicing_files_sent_copy = self._smtp_invoicing_files_sent_copy()
        return connection

    def _smtp_invoicing_record_server_files_sent(self, files):
        """Remember the answer of the Sent folder (in the poll's recording transaction): the server
        files its own copies (``files``), so the queued ones are dropped and none is queued again;
        or it does not, and Odoo files them. Asked once."""
        self.ensure_one()
        self.smtp_invoicing_server_files_sent = "yes" if files else "no"
        if files:
            copies = self.env["smtp_invoicing.sent.copy"].sudo().search([("mailbox_id", "=", self.id)])
            copies.unlink()
            mailbox = self.with_context(lang=self._smtp_invoicing_reader_lang())
            mailbox._message_log(
                body=mailbox.env._(
                    "The outgoing server already files the mails it sends in the Sent folder: Odoo adds no copy "
                    "of its own (%(count)s waiting copy(ies) dropped).",
                    count=len(copies),
                )
            )

    def _smtp_invoicing_send_email(self, send, message, smtp_session=None):
        """Queue the Sent copy of a mail the mailbox's server accepted: the bytes smtplib submitted,
        flattened again from ``message`` once ``send`` returned.

        Its MIME boundaries are drawn before sending (smtplib draws the outer one on a copy it
        throws away), so the copy is byte for byte the mail the server accepted. Filing the copy is
        not part of sending: a failure to queue it is logged and the mail stays sent.
        """
        if smtp_session is not None:
            files_copy = getattr(smtp_session, "smtp_invoicing_files_sent_copy", False)
        else:  # send_email() opens its own session: asked of the mailbox
            files_copy = self._smtp_invoicing_files_sent_copy()
        if files_copy:
            smtp.fix_boundaries(message)
        message_id = super()._smtp_invoicing_send_email(send, message, smtp_session=smtp_session)
        if files_copy:
            try:
                with self.env.cr.savepoint():
                    # sudo: the queue belongs to the mailbox, whoever sends
                    self.env["smtp_invoicing.sent.copy"].sudo().create(
                        {
                            "mailbox_id": self.id,
                            "message_id": message_id,
                            "raw": base64.b64encode(smtp.submitted_bytes(message)),
                        }
                    )
            except Exception:  # the mail was accepted: never fail it for its copy
                _logger.warning(
                    "Mailbox %s: the Sent copy of %s could not be queued", self.id, message_id, exc_info=True
                )
        return message_id

    def action_smtp_invoicing_discard_sent_copies(self):
        """Forget the Sent copies still waiting for these mailboxes (form button)."""
        copies = self.env["smtp_invoicing.sent.copy"].sudo().search([("mailbox_id", "in", self.ids)])
        count = len(copies)
        copies.unlink()
        for server in self:
            server._message_log(body=_("%(count)s Sent folder copy(ies) discarded.", count=count))
        return True

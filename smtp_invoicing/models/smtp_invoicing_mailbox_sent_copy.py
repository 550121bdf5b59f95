import base64
import contextvars
import logging

from odoo import _, fields, models

_logger = logging.getLogger(__name__)

# (mailbox id, bytes) of the mail an own mailbox's server has just accepted, set by the
# connection's wrapped ``sendmail`` and read by ``send_email`` right after, in the same
# thread: the exact bytes smtplib flattened, whichever path opened the connection.
SENT = contextvars.ContextVar("smtp_invoicing_sent", default=None)


def _remember_sent_bytes(connection, server_id):
    """Wrap ``connection.sendmail`` so that the bytes of each accepted mail are kept in SENT.

    ``smtplib.SMTP.send_message`` flattens the message once and hands the bytes to
    ``sendmail``; a refused mail raises before anything is kept. The connection carries
    ``smtp_invoicing_sent_copy_of`` (the mailbox id) to show that it is wrapped.
    """
    sendmail = connection.sendmail

    def sendmail_and_remember(from_addr, to_addrs, msg, mail_options=(), rcpt_options=()):
        result = sendmail(from_addr, to_addrs, msg, mail_options, rcpt_options)
        SENT.set((server_id, msg if isinstance(msg, bytes) else msg.encode("utf-8")))
        return result

    connection.sendmail = sendmail_and_remember
    connection.smtp_invoicing_sent_copy_of = server_id
    return connection


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

    def _smtp_invoicing_connect(self):
        """Mailboxes with a Sent copy keep the bytes of what their server accepts (see SENT)."""
        connection = super()._smtp_invoicing_connect()
        # a server that files its own copy (Gmail, Microsoft 365, Outlook.com, a custom server found
        # to do it) would show it twice
        if (
            self.smtp_invoicing_sent_copy
            and self.smtp_invoicing_imap_host
            and not self._smtp_invoicing_files_sent_itself()
        ):
            _remember_sent_bytes(connection, self.id)
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

    def _smtp_invoicing_send_email(self, send, smtp_session=None, message_id=None):
        """Queue the Sent copy of a mail the mailbox's server accepted.

        Filing the copy is not part of sending: a failure to queue it is logged and the
        mail stays sent.
        """
        SENT.set(None)
        message_id = super()._smtp_invoicing_send_email(send, smtp_session=smtp_session, message_id=message_id)
        sent = SENT.get()
        if sent:
            SENT.set(None)
            mailbox_id, raw = sent
            try:
                with self.env.cr.savepoint():
                    # sudo: the queue belongs to the mailbox, whoever sends
                    self.env["smtp_invoicing.sent.copy"].sudo().create(
                        {"mailbox_id": mailbox_id, "message_id": message_id, "raw": base64.b64encode(raw)}
                    )
            except Exception:  # the mail was accepted: never fail it for its copy
                _logger.warning(
                    "Mailbox %s: the Sent copy of %s could not be queued", mailbox_id, message_id, exc_info=True
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

import logging
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import email_normalize

from ..lib import providers
from .leases import locking_select

_logger = logging.getLogger(__name__)

# A mail whose copy is not in the Sent folder after this long is given up: the next mail is read back.
SENDER_CHECK_PATIENCE = timedelta(hours=6)
RESET_CHECK = {
    "smtp_invoicing_sender_check": "unknown",
    "smtp_invoicing_sender_check_message_id": False,
    "smtp_invoicing_sender_check_since": False,
}


class SmtpInvoicingMailbox(models.Model):
    """The From that really left, read back from the provider's Sent folder.

    Gmail replaces a From that is not one of the account's verified "Send mail as" addresses by
    the account and still accepts the mail: nothing in the SMTP exchange tells. When the
    mailbox has IMAP and its server files what it sends, the first mail it sends (the test
    email, or the first invoice) is remembered by its Message-ID; the next session of the
    scheduled action that reads the mailbox looks it up in the Sent folder (headers only, the
    From) and compares it with the sender. Rewritten: the mailbox is Failed, with the address
    that went out and how to fix it. The same: remembered, never read again.
    Without IMAP, the sender notice on the form (``smtp_invoicing_sender_notice``) is the signal.
    """

    _inherit = "smtp_invoicing.mailbox"

    smtp_invoicing_sender_check = fields.Selection(
        [
            ("unknown", "Not checked yet"),
            ("pending", "Read back at the next reading"),
            ("same", "Sent as the sender"),
            ("rewritten", "Rewritten by the provider"),
        ],
        string="Sender Read Back",
        default="unknown",
        required=True,
        readonly=True,
        copy=False,
        help="Whether the From of a sent mail, read back from the Sent folder the provider filed it in, is "
        "the sender email: some providers (Gmail) replace a sender the account may not use.",
    )
    smtp_invoicing_sender_check_message_id = fields.Char(string="Mail to Read Back", readonly=True, copy=False)
    smtp_invoicing_sender_check_since = fields.Datetime(string="Sent At", readonly=True, copy=False)

    # ------------------------------------------------------------------
    # Sending: remember the first mail to read back
    # ------------------------------------------------------------------

    def _smtp_invoicing_reads_back_sender(self):
        """Whether the From of this mailbox's mails is read back: IMAP is set, the provider may replace
        the sender (Gmail; a custom server, nobody knows) and files what it sends in the Sent folder
        (documented, found, or not known yet). Where Odoo files the copy itself, the copy is what Odoo
        sent and proves nothing; Microsoft 365 and Outlook.com refuse a sender they do not own
        (SendAsDenied, which fails the mailbox at once) rather than replace it."""
        self.ensure_one()
        if not self.smtp_invoicing_imap_host:
            return False
        profile = self._smtp_invoicing_profile()
        return (
            profile.rewrites_from or profile == providers.CUSTOM
        ) and self._smtp_invoicing_files_sent_itself() is not False

    def _smtp_invoicing_connect(self):
        """A session of a mailbox whose sender is to be read back (not checked yet, or rewritten before
        and fixed since) remembers its first accepted mail; decided once per session, not per mail."""
        connection = super()._smtp_invoicing_connect()
        connection.smtp_invoicing_check_sender = (
            self.smtp_invoicing_sender_check in ("unknown", "rewritten") and self._smtp_invoicing_reads_back_sender()
        )
        return connection

    def _smtp_invoicing_send_email(self, send, message, smtp_session=None):
        """After the first mail the server accepted in a session that reads the sender back, remember its
        Message-ID for the next reading of the mailbox."""
        message_id = super()._smtp_invoicing_send_email(send, message, smtp_session=smtp_session)
        if message_id and getattr(smtp_session, "smtp_invoicing_check_sender", False):
            smtp_session.smtp_invoicing_check_sender = False
            self._smtp_invoicing_remember_sender_check(message_id)
        return message_id

    def _smtp_invoicing_remember_sender_check(self, message_id):
        """Save ``message_id`` as the mail to read back, in a short transaction of its own.

        Never in the sending transaction, which other workers' budget sessions would wait for on
        the mailbox's row; and never waiting either: a row locked elsewhere is left for the next
        mail. A failure is logged; the mail stays sent.
        """
        self.ensure_one()
        try:
            with self.env.registry.cursor() as cr:
                if locking_select(
                    cr,
                    """SELECT id FROM smtp_invoicing_mailbox
                        WHERE id = %s AND smtp_invoicing_sender_check IN ('unknown', 'rewritten')
                          FOR NO KEY UPDATE SKIP LOCKED""",
                    [self.id],
                ):
                    cr.execute(
                        """UPDATE smtp_invoicing_mailbox
                              SET smtp_invoicing_sender_check = 'pending',
                                  smtp_invoicing_sender_check_message_id = %s,
                                  smtp_invoicing_sender_check_since = %s
                            WHERE id = %s""",
                        [message_id, fields.Datetime.now(), self.id],
                    )
        except Exception:  # the mail was accepted: never fail it for its check
            _logger.warning("Mailbox %s: the mail to read back could not be remembered", self.id, exc_info=True)
        self.invalidate_recordset(list(RESET_CHECK))

    # ------------------------------------------------------------------
    # Reading the mailbox (smtp_invoicing_mailbox_bounces_poll.py)
    # ------------------------------------------------------------------

    def _smtp_invoicing_sender_check_due(self):
        """The Message-ID to read back in the session being prepared, or None. A check waiting past
        SENDER_CHECK_PATIENCE is given up (its copy was deleted, or IMAP keeps failing): the next mail
        is read back instead."""
        self.ensure_one()
        if self.smtp_invoicing_sender_check != "pending":
            return None
        since = self.smtp_invoicing_sender_check_since
        if not self.smtp_invoicing_sender_check_message_id or (
            since and since < fields.Datetime.now() - SENDER_CHECK_PATIENCE
        ):
            self.write(RESET_CHECK)
            return None
        return self.smtp_invoicing_sender_check_message_id

    @api.model
    def _smtp_invoicing_from_address(self, header):
        """The address of a From header value ("Name <address>", encoded words and all), or False."""
        address = email_normalize(header or "", strict=False)
        return address or False

    def _smtp_invoicing_record_sender_check(self, message_id, found):
        """Record what the Sent folder said about ``message_id`` (``found``: {message id: From, or None}),
        in the poll's recording transaction. Not looked up (the folder could not be read): it stays due."""
        self.ensure_one()
        if self.smtp_invoicing_sender_check != "pending" or self.smtp_invoicing_sender_check_message_id != message_id:
            return  # the settings changed meanwhile: that mail proves nothing any more
        if message_id not in found:
            return
        went_out = self._smtp_invoicing_from_address(found[message_id])
        if not went_out:
            # no copy: where the server is not known to file it, it does not (nothing to read back);
            # where it does, the copy may have been deleted: the next mail is read back
            if self._smtp_invoicing_files_sent_itself() is not True or (
                self.smtp_invoicing_sender_check_since
                and self.smtp_invoicing_sender_check_since < fields.Datetime.now() - SENDER_CHECK_PATIENCE
            ):
                self.write(RESET_CHECK)
            return
        sender = email_normalize(self.sender_email or "")
        if went_out == sender:
            self.write({**RESET_CHECK, "smtp_invoicing_sender_check": "same"})
            return
        self.write({**RESET_CHECK, "smtp_invoicing_sender_check": "rewritten"})
        _logger.info("Mailbox %s: the provider replaced the sender of the mail read back", self.id)
        mailbox = self.with_context(lang=self._smtp_invoicing_reader_lang())
        mailbox._smtp_invoicing_mark_failed(mailbox._smtp_invoicing_rewritten_message(went_out))

    def _smtp_invoicing_rewritten_message(self, went_out):
        """Why a mailbox whose sender the provider replaced is Failed, and how to fix it."""
        self.ensure_one()
        profile = self._smtp_invoicing_profile()
        params = {"name": self.name, "sender": email_normalize(self.sender_email or ""), "went_out": went_out}
        message = self.env._(
            "The provider did not send the mails of “%(name)s” as %(sender)s: the mail read back from its Sent "
            "folder went out as %(went_out)s, the address your customers see and answer.",
            **params,
        )
        if profile.rewrites_from:
            fix = self.env._(
                "In Gmail, open Settings › Accounts › Send mail as, add %(sender)s and confirm it (or use "
                "%(went_out)s as sender email), then verify the mailbox again.",
                **params,
            )
        else:
            fix = self.env._(
                "Allow the account to send as %(sender)s at the provider (or use %(went_out)s as sender email), "
                "then verify the mailbox again.",
                **params,
            )
        return f"{message} {fix}"

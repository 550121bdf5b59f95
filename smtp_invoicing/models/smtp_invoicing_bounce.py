import email
import email.policy
import logging

from markupsafe import escape

from odoo import _, api, fields, models
from odoo.tools import email_normalize

from ..lib import bounces

_logger = logging.getLogger(__name__)


class SmtpInvoicingBounce(models.Model):
    """One delivery report about a mail Odoo sent from an own mailbox, recorded once.

    Written by the scheduled action that reads the mailbox (``_cron_poll_mailboxes``);
    the row per (mailbox, report, address) makes a report read twice (a mailbox whose
    UIDVALIDITY changed is rescanned) count once.
    """

    _name = "smtp_invoicing.bounce"
    _description = "Delivery report of an own mailbox"
    _order = "id desc"

    mailbox_id = fields.Many2one("smtp_invoicing.mailbox", required=True, ondelete="cascade", index=True, readonly=True)
    report_key = fields.Char(required=True, readonly=True, help="Message-ID of the report, or a digest of it.")
    mail_message_id = fields.Many2one("mail.message", string="Message", ondelete="set null", readonly=True)
    move_id = fields.Many2one(
        "account.move", string="Document", ondelete="set null", index="btree_not_null", readonly=True
    )
    partner_id = fields.Many2one("res.partner", string="Recipient", ondelete="set null", readonly=True)
    email = fields.Char(readonly=True)
    status = fields.Char(help="RFC 3463 status code, e.g. 5.1.1", readonly=True)
    kind = fields.Selection([("bounce", "Returned"), ("delayed", "Delayed")], required=True, readonly=True)
    reason = fields.Selection(
        [
            ("address_does_not_exist", "Address does not exist"),
            ("mailbox_disabled", "Mailbox disabled"),
            ("mailbox_full", "Mailbox full"),
            ("message_too_large", "Message too large"),
            ("domain_not_found", "Domain not found"),
            ("rejected_as_spam", "Refused as spam or by policy"),
            ("delayed", "Delayed"),
            ("other", "Other"),
        ],
        readonly=True,
    )
    diagnostic = fields.Text(readonly=True)

    _sql_constraints = [
        (
            "report_address_unique",
            "UNIQUE(mailbox_id, report_key, email)",
            "A delivery report is recorded once per address.",
        ),
    ]

    # ------------------------------------------------------------------
    # Recording a report
    # ------------------------------------------------------------------

    @api.model
    def _smtp_invoicing_record_report(self, server, raw):
        """Record the report ``raw`` found in the INBOX of ``server``; return True when it was Odoo's.

        A report whose original Message-ID is no message sent from this mailbox is
        ignored (the mailbox's own mail, or forged). A hard failure (5.x.x) is recorded
        the way core records a bounce that reaches its bounce alias
        (``mail.thread._routing_handle_bounce``): the recipient's notification becomes
        *bounce* with the reason, the partner's ``message_bounce`` grows (so core's
        warnings and blacklist logic apply), and the document is marked returned. A delay
        (4.x.x) only warns on the document.
        """
        report = bounces.parse_report(raw)
        if report is None or not report.original_message_id:
            _logger.info(
                "Mail server %s: a delivery report without a failed recipient or Message-ID was ignored", server.id
            )
            return False
        message = (
            self.env["mail.message"]
            .sudo()
            .search(
                [("message_id", "=", report.original_message_id), ("mail_server_id", "=", server.mail_server_id.id)],
                order="id desc",
                limit=1,
            )
        )
        if not message:
            _logger.info("Mail server %s: a delivery report about a mail Odoo did not send was ignored", server.id)
            return False
        key = bounces.report_key(raw)
        if self.sudo().search_count([("mailbox_id", "=", server.id), ("report_key", "=", key)], limit=1):
            return True
        email_message = email.message_from_bytes(raw, policy=email.policy.default)
        for recipient in report.recipients:
            self._smtp_invoicing_record_recipient(server, key, message, recipient, email_message)
        return True

    @api.model
    def _smtp_invoicing_record_recipient(self, server, key, message, recipient, email_message):
        address = email_normalize(recipient.address) or recipient.address
        partners = self.env["res.partner"].sudo()
        if email_normalize(recipient.address):
            partners = partners.search([("email_normalized", "=", address)])
        notified = message.notification_ids.res_partner_id
        if not partners and len(notified) == 1:
            # as core: the only recipient of the message is the one who bounced
            partners = notified
            address = notified.email_normalized or address
        move = self._smtp_invoicing_document(message)
        words = self._smtp_invoicing_reason_words(recipient.reason)
        detail = recipient.diagnostic or recipient.status
        if recipient.permanent:
            self.env["mail.thread"].sudo()._routing_handle_bounce(
                email_message,
                {
                    "bounced_email": address,
                    "bounced_partner": partners,
                    "bounced_msg_ids": [message.message_id],
                    "bounced_message": message,
                    # core stores html2plaintext(body) as the notification's failure reason
                    "body": escape(_("%(reason)s (%(detail)s)", reason=words, detail=detail)),
                    "email_from": email_message.get("From", ""),
                    "to": server.sender_email,
                    "message_id": key,
                },
            )
        addressed = partners & message.partner_ids
        if move and (addressed or not message.partner_ids):
            if recipient.permanent:
                move._smtp_invoicing_record_returned(message, address, words, detail, server)
            else:
                move._smtp_invoicing_record_delayed(message, address, detail)
        self.sudo().create(
            {
                "mailbox_id": server.id,
                "report_key": key,
                "mail_message_id": message.id,
                "move_id": move.id,
                "partner_id": partners[:1].id,
                "email": address,
                "status": recipient.status,
                "kind": "bounce" if recipient.permanent else "delayed",
                "reason": recipient.reason,
                "diagnostic": recipient.diagnostic,
            }
        )

    @api.model
    def _smtp_invoicing_document(self, message):
        """The invoice or credit note whose own email ``message`` is, else an empty recordset."""
        if message.model != "account.move" or not message.res_id:
            return self.env["account.move"]
        if not message.smtp_invoicing_document_template_id:
            mails = (
                self.env["mail.mail"]
                .sudo()
                .search([("mail_message_id", "=", message.id), ("smtp_invoicing_template_id", "!=", False)], limit=1)
            )
            if not mails:
                return self.env["account.move"]
        return self.env["account.move"].sudo().browse(message.res_id).exists()

    @api.model
    def _smtp_invoicing_reason_words(self, reason):
        """What the customer's server said, in words an accountant understands (lib/bounces REASON_KEYS)."""
        words = {
            "address_does_not_exist": _("the customer's server says this address does not exist."),
            "mailbox_disabled": _("the customer's server says this mailbox is disabled."),
            "mailbox_full": _("the customer's mailbox is full."),
            "message_too_large": _("the email was too large for the customer's server."),
            "domain_not_found": _("the domain of this address does not exist or receives no email."),
            "rejected_as_spam": _("the customer's server refused the email as spam or by its policy."),
            "delayed": _("the customer's server did not accept the email yet; delivery is still being tried."),
            "other": _("the customer's server refused the email."),
        }
        return words.get(reason) or words["other"]

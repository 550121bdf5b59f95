import json

from odoo import api, fields, models

from .smtp_invoicing_mailbox_budget import SESSION_LEASE


class SmtpInvoicingDeliveryBatch(models.Model):
    """The invoice mails one SMTP session of the mail queue sends, until their delivery is recorded.

    The queue's own transaction writes the row when the session starts
    (``_smtp_invoicing_open``) and deletes it when the session ends, in the statement that
    marks Delivered the invoices whose mail the server accepted
    (``account.move._smtp_invoicing_record_deliveries``): the delivery bookkeeping costs two
    statements per session, none per mail. A worker killed mid-session leaves its row behind
    (core committed each mail it sent, the session's end never ran): once ``lease_until`` is
    past, the end of the next session, of any mailbox, records those mails.
    """

    _name = "smtp_invoicing.delivery.batch"
    _description = "Invoice mails of a mail queue session"
    _log_access = False

    documents = fields.Json(
        required=True,
        help="The session's invoice mails: mail, invoice, template and whether the template sends the invoice "
        "itself (is_move_sent follows it).",
    )
    # the end of every session looks for the rows of dead ones by their lease
    lease_until = fields.Datetime(
        required=True,
        index=True,
        help="Past this time, the session is taken for dead and its mails are recorded by another.",
    )

    @api.model
    def _smtp_invoicing_open(self, mails):
        """Keep the invoice mails of a starting session (``mails``, in the queue's transaction): return
        the row's id (None when none of them carries an invoice) and the documents. One statement."""
        Move = self.env["account.move"]
        documents = [
            {
                "mail": mail.id,
                "move": mail.res_id,
                "template": mail.smtp_invoicing_template_id.id,
                "sending": Move._smtp_invoicing_is_sending(mail.smtp_invoicing_template_id),
            }
            for mail in mails
            if mail.smtp_invoicing_template_id and mail.model == "account.move" and mail.res_id
        ]
        if not documents:
            return None, documents
        self.env.cr.execute(
            "INSERT INTO smtp_invoicing_delivery_batch (documents, lease_until) VALUES (%s, %s) RETURNING id",
            [json.dumps(documents), fields.Datetime.now() + SESSION_LEASE],
        )
        return self.env.cr.fetchone()[0], documents

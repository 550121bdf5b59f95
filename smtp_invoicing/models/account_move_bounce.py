from odoo import _, fields, models


class AccountMove(models.Model):
    """Documents whose email came back: *Returned*, with the address and the reason in plain words."""

    _inherit = "account.move"

    smtp_invoicing_delivery_state = fields.Selection(
        selection_add=[("returned", "Returned")], ondelete={"returned": "set null"}
    )

    def _smtp_invoicing_latest_document_message(self, message):
        """True when ``message`` is the newest own email of this document with its template.

        A report about an older copy (the document was sent again since, e.g. to a
        corrected address) does not mark the document: the newer copy decides.
        """
        self.ensure_one()
        template = message.smtp_invoicing_document_template_id
        if not template:
            return True
        return (
            not self.env["mail.message"]
            .sudo()
            .search_count(
                [
                    ("model", "=", self._name),
                    ("res_id", "=", self.id),
                    ("smtp_invoicing_document_template_id", "=", template.id),
                    ("id", ">", message.id),
                ],
                limit=1,
            )
        )

    def _smtp_invoicing_record_returned(self, message, address, reason, detail, server):
        """The customer's server refused the email ``message`` of this document for ``address`` (5.x.x).

        The document becomes *Returned* with a banner, and its responsible (else a
        Settings administrator of the mailbox's company) gets an activity to correct the
        address and send again. ``is_move_sent``: a returned invoice email means the
        invoice was not sent, unless an earlier invoice email of this document reached
        its server and no report came back for it (then it stays sent). A returned
        payment reminder leaves ``is_move_sent`` alone.
        """
        self.ensure_one()
        move = self.sudo()
        if not move._smtp_invoicing_latest_document_message(message):
            return
        failure = _(
            "The email sent to %(email)s came back: %(reason)s Correct the customer's email address, "
            "then send it again. (%(detail)s)",
            email=address,
            reason=reason,
            detail=detail,
        )
        values = {"smtp_invoicing_delivery_state": "returned", "smtp_invoicing_mail_failure": failure}
        reminder = self.env.ref("smtp_invoicing.email_template_payment_reminder", raise_if_not_found=False)
        template = message.smtp_invoicing_document_template_id
        if template != reminder and not move._smtp_invoicing_delivered_before(message, reminder):
            values.update(is_move_sent=False, smtp_invoicing_delivered_at=False, smtp_invoicing_sent_pending=False)
        move.write(values)
        move._message_log(body=failure)
        user = move._smtp_invoicing_returned_user(server)
        if not user:
            return
        summary = _("Email returned: correct the address and send again")
        pending = move.activity_ids.filtered(lambda activity: activity.user_id == user and activity.summary == summary)
        if not pending:
            move.activity_schedule("mail.mail_activity_data_todo", summary=summary, note=failure, user_id=user.id)

    def _smtp_invoicing_delivered_before(self, message, reminder):
        """An earlier own invoice email of this document was accepted and no report came back for it."""
        self.ensure_one()
        domain = [
            ("mail_message_id.model", "=", self._name),
            ("mail_message_id.res_id", "=", self.id),
            ("mail_message_id", "<", message.id),
            ("mail_message_id.smtp_invoicing_document_template_id", "!=", False),
            ("notification_status", "=", "sent"),
        ]
        if reminder:
            domain.append(("mail_message_id.smtp_invoicing_document_template_id", "!=", reminder.id))
        return bool(self.env["mail.notification"].sudo().search_count(domain, limit=1))

    def _smtp_invoicing_returned_user(self, server):
        self.ensure_one()
        if self.invoice_user_id.active and not self.invoice_user_id.share:
            return self.invoice_user_id
        company = server.smtp_invoicing_company_id or self.company_id
        admins = (
            self.env.ref("base.group_system")
            .sudo()
            .users.filtered(lambda user: user.active and not user.share and company in user.company_ids)
        )
        return admins.sorted("id")[:1]

    def _smtp_invoicing_record_delayed(self, message, address, detail):
        """The customer's server has not accepted the email yet (4.x.x): a warning, the state stays."""
        self.ensure_one()
        move = self.sudo()
        if move.smtp_invoicing_delivery_state != "sent" or not move._smtp_invoicing_latest_document_message(message):
            return
        move.smtp_invoicing_mail_failure = _(
            "The email to %(email)s is delayed: the customer's server has not accepted it yet and the mailbox's "
            "server keeps trying. Nothing to do for now; if it comes back, this document will show it. "
            "(%(detail)s)",
            email=address,
            detail=detail,
        )

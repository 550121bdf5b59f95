import logging
from datetime import datetime, time, timedelta

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.osv import expression

_logger = logging.getLogger(__name__)

REMINDER_BATCH_SIZE = 50


class AccountMove(models.Model):
    _inherit = "account.move"

    smtp_invoicing_reminder_count = fields.Integer(string="Reminders Sent", copy=False, readonly=True)
    smtp_invoicing_last_reminder_date = fields.Datetime(string="Last Reminder", copy=False, readonly=True)
    # When the scheduled action last tried, sent or not: a failing invoice
    # waits a whole interval instead of being retried in a loop.
    smtp_invoicing_reminder_attempt_date = fields.Datetime(copy=False, readonly=True)
    smtp_invoicing_days_overdue = fields.Integer(string="Days Overdue", compute="_compute_smtp_invoicing_days_overdue")

    @api.depends("invoice_date_due")
    def _compute_smtp_invoicing_days_overdue(self):
        for move in self:
            due = move.invoice_date_due
            today = fields.Date.context_today(move)
            move.smtp_invoicing_days_overdue = (today - due).days if due and due < today else 0

    # ------------------------------------------------------------------
    # Payment reminders
    # ------------------------------------------------------------------

    def _smtp_invoicing_reminder_refusal(self):
        """Return why this invoice cannot get a payment reminder, or False."""
        self.ensure_one()
        if self.move_type != "out_invoice":
            return _("it is not a customer invoice")
        if self.state != "posted":
            return _("it is not posted")
        if self.payment_state not in ("not_paid", "partial"):
            return _("it is paid")
        if not self.invoice_date_due or self.invoice_date_due >= fields.Date.context_today(self):
            return _("it is not due yet")
        return False

    def _smtp_invoicing_check_remindable(self):
        refused = [(move, move._smtp_invoicing_reminder_refusal()) for move in self]
        refused = [(move, reason) for move, reason in refused if reason]
        if refused:
            raise UserError(
                _(
                    "Payment reminders only go to posted, unpaid, overdue customer invoices. Not sent:\n%(lines)s",
                    lines="\n".join(
                        self.env._("%(name)s: %(reason)s", name=move.display_name, reason=reason)
                        for move, reason in refused
                    ),
                )
            )

    def _smtp_invoicing_reminder_template(self):
        return self.env.ref("smtp_invoicing.email_template_payment_reminder")

    def action_smtp_invoicing_send_reminder(self):
        """Open the composer with the payment reminder of the selected invoices (form button, list action).

        A mailbox that cannot send now does not stop the composer from opening: it says
        where the reminders leave from, why they cannot and who must act, and its Send is
        disabled (``mail.compose.message.smtp_invoicing_alerts``).
        """
        if not self:
            raise UserError(_("Select the invoices to remind."))
        self._smtp_invoicing_check_remindable()
        template = self._smtp_invoicing_reminder_template()
        return {
            "type": "ir.actions.act_window",
            "name": _("Send payment reminder"),
            "res_model": "mail.compose.message",
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "new",
            "context": {
                "default_model": "account.move",
                "default_res_ids": self.ids,
                "default_template_id": template.id,
                "default_composition_mode": "comment",
                "default_email_layout_xmlid": "mail.mail_notification_layout_with_responsible_signature",
                "default_subtype_xmlid": "mail.mt_comment",
                "force_email": True,
            },
        }

    def _smtp_invoicing_mark_reminded(self):
        now = fields.Datetime.now()
        for move in self.sudo():
            move.write(
                {
                    "smtp_invoicing_reminder_count": move.smtp_invoicing_reminder_count + 1,
                    "smtp_invoicing_last_reminder_date": now,
                    "smtp_invoicing_reminder_attempt_date": now,
                }
            )

    @api.model
    def _smtp_invoicing_auto_reminder_domain(self):
        companies = self.env["res.company"].sudo().search([("smtp_invoicing_auto_reminder", "=", True)])
        today = fields.Date.context_today(self)
        company_domains = []
        for company in companies:
            due_before = today - timedelta(days=max(company.smtp_invoicing_reminder_delay, 1) - 1)
            # a reminder on day D is repeated on day D + interval, whatever the hour
            tried_before = datetime.combine(
                today - timedelta(days=max(company.smtp_invoicing_reminder_interval, 1) - 1), time.min
            )
            company_domains.append(
                [
                    ("company_id", "=", company.id),
                    ("invoice_date_due", "<", due_before),
                    "|",
                    ("smtp_invoicing_reminder_attempt_date", "=", False),
                    ("smtp_invoicing_reminder_attempt_date", "<", tried_before),
                ]
            )
        if not company_domains:
            return expression.FALSE_DOMAIN
        return expression.AND(
            [
                [
                    ("move_type", "=", "out_invoice"),
                    ("state", "=", "posted"),
                    ("payment_state", "in", ("not_paid", "partial")),
                    ("partner_id.smtp_invoicing_no_reminder", "=", False),
                    ("commercial_partner_id.smtp_invoicing_no_reminder", "=", False),
                ],
                expression.OR(company_domains),
            ]
        )

    @api.model
    def _cron_send_payment_reminders(self):
        """Scheduled action: send the payment reminder to invoices overdue for long enough.

        Only for companies that switched automatic reminders on; at most once
        per interval per invoice; never to partners who must not be reminded.
        Bounded batches; an invoice that fails is logged, noted in its chatter
        and skipped until the next interval.
        """
        domain = self._smtp_invoicing_auto_reminder_domain()
        moves = self.search(domain, order="invoice_date_due, id", limit=REMINDER_BATCH_SIZE)
        template = self._smtp_invoicing_reminder_template()
        for move in moves:
            move.smtp_invoicing_reminder_attempt_date = fields.Datetime.now()
            try:
                with self.env.cr.savepoint():
                    move.with_context(lang=move.partner_id.lang).message_post_with_source(
                        template,
                        message_type="comment",
                        subtype_xmlid="mail.mt_comment",
                        email_layout_xmlid="mail.mail_notification_layout_with_responsible_signature",
                    )
            except Exception as error:  # one invoice must not stop the others
                _logger.warning("Automatic payment reminder of invoice %s failed", move.id, exc_info=True)
                move._message_log(
                    body=_(
                        "The automatic payment reminder could not be sent: %(reason)s",
                        reason=error.args[0] if isinstance(error, UserError) else _("unexpected error"),
                    )
                )
        self.env["ir.cron"]._notify_progress(done=len(moves), remaining=self.search_count(domain))
        return True

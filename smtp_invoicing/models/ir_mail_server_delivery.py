import contextvars
import logging
import smtplib

from odoo import _, fields, models
from odoo.exceptions import UserError

from odoo.addons.base.models.ir_mail_server import MailDeliveryException

_logger = logging.getLogger(__name__)

# Set by send_email() when an own mailbox's server refused one mail for a
# temporary reason; read by mail.mail right after, in the same thread, to put
# that mail back in the queue instead of leaving it in exception.
TEMPORARY_REFUSAL = contextvars.ContextVar("smtp_invoicing_temporary_refusal", default=False)

# Failures a later attempt may cure: the mailbox stays verified and the mail
# queue retries its mails. Any other failure means the setting itself is wrong.
TEMPORARY_REASONS = {"temporary", "network", "timeout", "refused"}


class IrMailServer(models.Model):
    """Delivery side of own mailboxes: refuse unverified ones, record failures, resend."""

    _name = "ir.mail_server"
    _inherit = ["ir.mail_server", "mail.activity.mixin"]

    smtp_invoicing_failed_mail_count = fields.Integer(
        string="Failed Mails", compute="_compute_smtp_invoicing_failed_mail_count"
    )

    def _compute_smtp_invoicing_failed_mail_count(self):
        groups = (
            self.env["mail.mail"]
            .sudo()
            ._read_group(
                [("mail_server_id", "in", self.ids), ("state", "=", "exception")], ["mail_server_id"], ["__count"]
            )
        )
        counts = {server.id: count for server, count in groups}
        for server in self:
            server.smtp_invoicing_failed_mail_count = counts.get(server.id, 0)

    def send_email(
        self,
        message,
        mail_server_id=None,
        smtp_server=None,
        smtp_port=None,
        smtp_user=None,
        smtp_password=None,
        smtp_encryption=None,
        smtp_ssl_certificate=None,
        smtp_ssl_private_key=None,
        smtp_debug=False,
        smtp_session=None,
    ):
        """Own mailboxes: a mail refused by the server fails with a reason an accountant understands.

        Called by ``mail.mail._send()`` for each mail; core's message is the
        raw SMTP exception. A 4xx refusal is flagged for a retry by the queue.
        """
        kwargs = {
            "mail_server_id": mail_server_id,
            "smtp_server": smtp_server,
            "smtp_port": smtp_port,
            "smtp_user": smtp_user,
            "smtp_password": smtp_password,
            "smtp_encryption": smtp_encryption,
            "smtp_ssl_certificate": smtp_ssl_certificate,
            "smtp_ssl_private_key": smtp_ssl_private_key,
            "smtp_debug": smtp_debug,
            "smtp_session": smtp_session,
        }
        TEMPORARY_REFUSAL.set(False)
        mailbox = self.sudo().browse(mail_server_id).exists() if mail_server_id else self.browse()
        if not mailbox.smtp_invoicing_mailbox:
            return super().send_email(message, **kwargs)
        try:
            return super().send_email(message, **kwargs)
        except MailDeliveryException as error:
            refusal = mailbox._smtp_invoicing_refusal(error.__context__)
            if not refusal:
                raise
            temporary, reason = refusal
            TEMPORARY_REFUSAL.set(temporary)
            raise MailDeliveryException(reason) from None

    def _smtp_invoicing_refusal(self, cause):
        """Return (temporary, human reason) for an SMTP refusal of one mail, or None."""
        self.ensure_one()
        if isinstance(cause, smtplib.SMTPRecipientsRefused):
            replies = list(cause.recipients.values()) or [(550, b"")]
            code, text = replies[0]
            temporary = all(400 <= reply[0] < 500 for reply in replies)
        elif isinstance(cause, smtplib.SMTPResponseException):
            code, text = cause.smtp_code, cause.smtp_error
            temporary = 400 <= code < 500
        else:
            return None
        detail = f"{code} {text.decode('utf-8', 'replace') if isinstance(text, bytes) else text}"
        if temporary:
            return True, _(
                "The server of “%(name)s” refused this mail for now; Odoo sends it again in a few minutes. "
                "(%(detail)s)",
                name=self.name,
                detail=detail,
            )
        if isinstance(cause, smtplib.SMTPRecipientsRefused):
            return False, _(
                "The server of “%(name)s” refused the recipient address: check the customer's email. (%(detail)s)",
                name=self.name,
                detail=detail,
            )
        if isinstance(cause, smtplib.SMTPSenderRefused):
            return False, _(
                "The server of “%(name)s” refused to send as %(email)s: the sender email must belong to the "
                "mailbox. (%(detail)s)",
                name=self.name,
                email=self.sender_email,
                detail=detail,
            )
        return False, _(
            "The server of “%(name)s” refused this mail. (%(detail)s)",
            name=self.name,
            detail=detail,
        )

    def _smtp_invoicing_state_label(self):
        self.ensure_one()
        return dict(self._fields["verification_state"]._description_selection(self.env))[self.verification_state]

    def _smtp_invoicing_check_ready(self):
        """Raise a UserError naming every own mailbox of self that cannot send now.

        Called before anything is sent (Send & Print, reminders, composer), so
        that a mail never silently leaves through another server or fails later.
        """
        not_ready = self.sudo().filtered(
            lambda server: server.smtp_invoicing_mailbox and server.verification_state != "verified"
        )
        if not not_ready:
            return
        lines = [
            self.env._(
                "“%(name)s” is %(state)s: %(reason)s",
                name=server.name,
                state=server._smtp_invoicing_state_label(),
                reason=server.verification_message or _("it was never verified."),
            )
            for server in not_ready
        ]
        raise UserError(
            _(
                "Nothing was sent: the mailbox chosen for these mails cannot send right now.\n%(lines)s\n"
                "A Settings administrator must correct it in Invoicing › Configuration › Own Mailboxes and "
                "click “Verify settings”.",
                lines="\n".join(lines),
            )
        )

    def _smtp_invoicing_connect_failed(self, error):
        """Record a failed delivery connection (called by the mail queue through ``connect()``).

        A temporary failure leaves the mailbox verified, so its mails are
        retried; any other marks it failed and asks administrators to fix it.
        """
        self.ensure_one()
        if error.reason in TEMPORARY_REASONS:
            _logger.info("Mail server %s: temporary delivery failure (%s)", self.id, error.reason)
            return
        message = self._smtp_invoicing_reason_message(error)
        self._smtp_invoicing_set_state("failed", message)
        self._smtp_invoicing_notify_admins(message)

    def _smtp_invoicing_notify_admins(self, message):
        self.ensure_one()
        admins = (
            self.env.ref("base.group_system")
            .sudo()
            .users.filtered(
                lambda user: (
                    user.active
                    and not user.share
                    and (not self.smtp_invoicing_company_id or self.smtp_invoicing_company_id in user.company_ids)
                )
            )
        )
        pending = self.activity_ids.filtered(
            lambda activity: activity.activity_type_id == self._smtp_invoicing_activity_type()
        )
        for admin in admins - pending.user_id:
            self.activity_schedule(
                activity_type_id=self._smtp_invoicing_activity_type().id,
                summary=_("Mailbox can no longer send: fix and verify it"),
                note=_(
                    "%(message)s Failed mails wait in the queue: once the mailbox is verified again, click "
                    "“Resend failed mails”.",
                    message=message,
                ),
                user_id=admin.id,
            )

    def _smtp_invoicing_activity_type(self):
        return self.env.ref("mail.mail_activity_data_todo")

    def action_smtp_invoicing_resend_failed(self):
        """Put back in the queue every failed mail of these verified mailboxes (form button)."""
        self.check_access("write")
        self._smtp_invoicing_check_ready()
        mails = (
            self.env["mail.mail"]
            .sudo()
            .search(
                [
                    ("mail_server_id", "in", self.ids),
                    ("state", "=", "exception"),
                ]
            )
        )
        mails.write({"smtp_invoicing_retry_count": 0})
        mails.mark_outgoing()
        self.activity_ids.filtered(
            lambda activity: activity.activity_type_id == self._smtp_invoicing_activity_type()
        ).action_feedback(feedback=_("Mailbox verified again; failed mails resent."))
        for server in self:
            server._message_log(body=_("%(count)s failed mail(s) put back in the queue.", count=len(mails)))
        self.env.ref("mail.ir_cron_mail_scheduler_action")._trigger()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "message": _("%(count)s failed mail(s) will be sent again in a few moments.", count=len(mails)),
                "next": {"type": "ir.actions.act_window_close"},
            },
        }

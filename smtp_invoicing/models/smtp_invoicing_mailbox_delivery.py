import dataclasses
import datetime
import logging
import smtplib
import ssl

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import email_normalize, formataddr

from odoo.addons.base.models.ir_mail_server import MailDeliveryException

from ..lib import providers, smtp, validation

_logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why an own mailbox's server did not take a mail, and what the queue does with it.

    ``until``: the provider asked to slow down; the mailbox is paused until then and the mail
    waits for that time, no attempt counted.
    """

    temporary: bool
    reason: str
    until: datetime.datetime | None = None
    why: str | None = None


class MailRefused(MailDeliveryException):
    """An own mailbox's server did not take the mail ``message_id``: ``refusal`` says why and whether
    the queue tries again.

    Raised out of ``send_email()``; core's ``mail.mail._send()`` writes its text as the mail's
    failure reason and calls ``_postprocess_sent_message()`` while handling it, where the queue
    reads the refusal off the exception (``mail.mail._smtp_invoicing_refusal_in_hand``).
    """

    def __init__(self, refusal, message_id):
        super().__init__(refusal.reason)
        self.refusal, self.message_id = refusal, message_id


class SessionRefused(UserError):
    """The provider refused the mailbox's connection for now ("too many connections", "try later"):
    the mailbox pauses until ``refusal.until`` and the mails of the session wait for that time.

    Raised out of ``ir.mail_server.connect()``; core's ``mail.mail.send()`` fails the batch with its
    text and calls ``_postprocess_sent_message()`` while handling it.
    """

    def __init__(self, refusal, mailbox_id):
        super().__init__(refusal.reason)
        self.refusal, self.mailbox_id = refusal, mailbox_id


class SendingPaused(BaseException):
    """The provider asked the mailbox to slow down (``refusal.until``): the session stops here.

    Raised out of ``send_email()`` through core's ``_send()`` loop, which would otherwise log the
    refused mail as an error and go on submitting the rest of the batch to a server that refuses
    it; caught by ``mail.mail.send()``, which lets the mails wait (``_smtp_invoicing_paused``).
    A ``BaseException``: core's ``except Exception`` around each mail must not swallow it.
    """

    def __init__(self, mailbox, refusal, message_id):
        super().__init__(refusal.reason)
        self.mailbox, self.refusal, self.message_id = mailbox, refusal, message_id


# The connection broke while a mail was on its way: nothing was accepted (no 250
# after DATA), so the mail is sent again later (RFC 5321 §4.1.1.4 and §6.1).
_BROKEN_CONNECTION = (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError, ssl.SSLError)


class SmtpInvoicingMailbox(models.Model):
    """Sending through own mailboxes: verified TLS, the mailbox's identity, truthful outcomes."""

    _inherit = "smtp_invoicing.mailbox"

    smtp_invoicing_failed_mail_count = fields.Integer(
        string="Failed Mails", compute="_compute_smtp_invoicing_failed_mail_count"
    )

    def _compute_smtp_invoicing_failed_mail_count(self):
        groups = (
            self.env["mail.mail"]
            .sudo()
            ._read_group(
                [("mail_server_id", "in", self.mail_server_id.ids), ("state", "=", "exception")],
                ["mail_server_id"],
                ["__count"],
            )
        )
        counts = {server.id: count for server, count in groups}
        for mailbox in self:
            mailbox.smtp_invoicing_failed_mail_count = counts.get(mailbox.mail_server_id.id, 0)

    def _smtp_invoicing_connect(self):
        """Open an authenticated, verified session sending as the mailbox's identity.

        A failure a person must fix (password, certificate, lost key) marks the mailbox
        Failed at once, so that its mails wait instead of failing one after the other.
        """
        self.ensure_one()
        self._smtp_invoicing_check_ready()
        timeout, deadline = self._smtp_invoicing_timeouts()
        try:
            # an OAuth mailbox's credentials may refresh its token: SmtpCheckError when refused
            credentials = self._smtp_invoicing_credentials()
            connection = smtp.open_session(
                self.smtp_host,
                self.smtp_port,
                self.smtp_encryption,
                credentials["user"],
                credentials["password"],
                access_token=credentials.get("access_token"),
                ca_pem=self.smtp_invoicing_ca_cert or None,
                timeout=timeout,
                deadline=deadline,
            )
        except UserError as error:
            self._smtp_invoicing_mark_failed(error.args[0], error)
            raise
        except smtp.SmtpCheckError as error:
            slow_down = providers.classify_reply(error.smtp_code, error.detail) if error.smtp_code else None
            if slow_down and slow_down.seconds:
                # too many logins or connections, try later: the mailbox pauses, nothing failed
                until, message, why = self._smtp_invoicing_pause(slow_down, f"{error.smtp_code} {error.detail}")
                raise SessionRefused(Refusal(True, message, until=until, why=why), self.id) from None
            message = self._smtp_invoicing_reason_message(error)
            if smtp.is_temporary(error.reason):
                _logger.info("Mail server %s: temporary delivery failure (%s)", self.id, error.reason)
            else:
                self._smtp_invoicing_note_failure(error)
                self._smtp_invoicing_mark_failed(message, error)
            raise UserError(message) from None
        # read by ir.mail_server's send_email() and _prepare_email_message(): no query per mail
        connection.smtp_invoicing_mailbox_id = self.id
        # Core's _prepare_email_message() puts smtp_from in the From header and
        # its address in MAIL FROM: the mailbox's identity, never spoofed.
        connection.from_filter = email_normalize(self.sender_email)
        connection.smtp_from = self._smtp_invoicing_sender()
        return connection

    def _smtp_invoicing_sender(self):
        """``Sender Name <sender email>`` of this mailbox: its From, and the Reply-To where no alias exists."""
        self.ensure_one()
        # one_line(): a name written behind the constraint's back must not add headers
        return formataddr((validation.one_line(self.sender_name), email_normalize(self.sender_email)))

    @api.model
    def _smtp_invoicing_one_line_headers(self, message):
        """Flatten every header of ``message`` to one line; called for a mailbox's session by
        ``ir.mail_server._prepare_email_message()``.

        Python's email package decodes RFC 2047 words when a header is set and may
        write the decoded CR/LF back verbatim: a Subject "=?utf-8?q?=0D=0ABcc:...?="
        would add a header. Values are flattened to one line before sending.
        """
        for name in set(message.keys()):
            values = [str(value) for value in message.get_all(name)]
            if any(validation.one_line(value) != value for value in values):
                del message[name]
                for value in values:
                    message[name] = validation.one_line(value)

    def _smtp_invoicing_send_email(self, send, message, smtp_session=None):
        """Send one mail ``message`` through this mailbox's server with ``send`` (core's ``send_email``): a mail
        the server did not take fails with a reason an accountant understands.

        Called by ``ir.mail_server.send_email()``. Core's message is the raw SMTP exception,
        and a connection dropped during DATA escapes as ``SMTPServerDisconnected``, which
        leaves core's placeholder reason on the mail; here both become a ``MailRefused``
        with a readable reason, which tells the queue whether to retry.
        """
        self.ensure_one()
        message_id = message["Message-Id"]
        try:
            return send()
        except MailDeliveryException as error:
            # a refusal is written in the mailbox readers' language (looked up on failure only)
            mailbox = self.with_context(lang=self._smtp_invoicing_reader_lang())
            refusal = mailbox._smtp_invoicing_refusal(error.__context__)
            if refusal is None:
                raise
            if refusal.until and smtp_session is not None:
                # the rest of the batch is not submitted to a server that asked to slow down
                raise SendingPaused(self, refusal, message_id) from None
            raise MailRefused(refusal, message_id) from None
        except _BROKEN_CONNECTION:
            mailbox = self.with_context(lang=self._smtp_invoicing_reader_lang())
            refusal = Refusal(
                temporary=True,
                reason=mailbox.env._(
                    "The connection to the server of “%(name)s” broke before it accepted this mail; "
                    "Odoo sends it again in a few minutes.",
                    name=mailbox.name,
                ),
            )
            raise MailRefused(refusal, message_id) from None

    def _smtp_invoicing_refusal(self, cause):
        """Return the Refusal of an SMTP reply that refused one mail, or None."""
        self.ensure_one()
        if isinstance(cause, smtplib.SMTPRecipientsRefused):
            replies = list(cause.recipients.values()) or [(550, b"")]
            code, text = replies[0]
            temporary = all(400 <= reply[0] < 500 for reply in replies)
        elif isinstance(cause, smtplib.SMTPResponseException):
            code, text = cause.smtp_code, cause.smtp_error
            temporary = 400 <= code < 500
        elif isinstance(cause, _BROKEN_CONNECTION):
            return Refusal(
                temporary=True,
                reason=_(
                    "The connection to the server of “%(name)s” broke before it accepted this mail; "
                    "Odoo sends it again in a few minutes.",
                    name=self.name,
                ),
            )
        else:
            return None
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        detail = f"{code} {text}"
        slow_down = providers.classify_reply(code, text)
        if slow_down and slow_down.seconds:
            # "slow down" is a pause of the mailbox, never a failure of the mail (5.4.5 included)
            until, message, why = self._smtp_invoicing_pause(slow_down, detail)
            return Refusal(True, message, until=until, why=why)
        if temporary:
            return Refusal(
                True,
                _(
                    "The server of “%(name)s” refused this mail for now; Odoo sends it again in a few minutes. "
                    "(%(detail)s)",
                    name=self.name,
                    detail=detail,
                ),
            )
        if isinstance(cause, smtplib.SMTPRecipientsRefused):
            return Refusal(
                False,
                _(
                    "The server of “%(name)s” refused the recipient address: check the customer's email. (%(detail)s)",
                    name=self.name,
                    detail=detail,
                ),
            )
        reason = smtp.mail_reason(code, text)
        if isinstance(cause, smtplib.SMTPSenderRefused) or reason == "send_as_denied":
            # the mailbox itself may not send as its sender: every mail would fail the same way
            message = self._smtp_invoicing_reason_message(smtp.SmtpCheckError(reason, code, text))
            self._smtp_invoicing_mark_failed(message)
            return Refusal(False, message)
        return Refusal(
            False,
            _(
                "The server of “%(name)s” refused this mail. (%(detail)s)",
                name=self.name,
                detail=detail,
            ),
        )

    def _smtp_invoicing_state_label(self):
        self.ensure_one()
        return dict(self._fields["verification_state"]._description_selection(self.env))[self.verification_state]

    def _smtp_invoicing_not_ready_message(self):
        """Why the own mailboxes of self cannot send now, or False when they all can."""
        not_ready = self.sudo().filtered(lambda server: server.verification_state != "verified")
        if not not_ready:
            return False
        lines = [
            self.env._(
                "“%(name)s” is %(state)s: %(reason)s",
                name=server.name,
                state=server._smtp_invoicing_state_label(),
                reason=server.verification_message or _("it was never verified."),
            )
            for server in not_ready
        ]
        return _(
            "Nothing was sent: the mailbox chosen for these mails cannot send right now.\n%(lines)s\n"
            "A Settings administrator must correct it in Invoicing › Configuration › Own Mailboxes and "
            "click “Verify settings”.",
            lines="\n".join(lines),
        )

    def _smtp_invoicing_check_ready(self):
        """Raise a UserError naming every own mailbox of self that cannot send now.

        Called before anything is sent (composer, reminders) and when connecting, so
        that a mail never silently leaves through another server or fails later.
        """
        message = self._smtp_invoicing_not_ready_message()
        if message:
            raise UserError(message)

    def _smtp_invoicing_ask_to_fix(self, message, owner=False):
        """Give the one person who can fix the failure ``message`` a to-do, once.

        ``owner``: the owner fixes it on the connect page (password or sign-in refused or
        missing); otherwise a Settings administrator of the mailbox's company does
        (``_smtp_invoicing_fixing_admin``). A to-do of someone else for an earlier failure
        of this mailbox is removed: one failure, one to-do. The summary says whether the
        mailbox could ever send: "cannot send yet" before its first verification, "can no
        longer send" after.
        """
        self.ensure_one()
        server = self.sudo()
        fixer = server.smtp_invoicing_owner_id if owner else server._smtp_invoicing_fixing_admin()
        todos = server.activity_ids.filtered(
            lambda activity: activity.activity_type_id == server._smtp_invoicing_activity_type()
        )
        superseded = todos.filtered(lambda activity: activity.user_id != fixer)
        superseded.unlink()
        if not fixer or todos - superseded:
            return
        was_verified = bool(server.smtp_invoicing_verified_at)
        if owner:
            summary = (
                _("Mailbox can no longer send: connect it again")
                if was_verified
                else _("Mailbox cannot send yet: connect it")
            )
            server._smtp_invoicing_ask_owner(message, summary=summary)
            return
        server.activity_schedule(
            activity_type_id=server._smtp_invoicing_activity_type().id,
            summary=_("Mailbox can no longer send: fix and verify it")
            if was_verified
            else _("Mailbox cannot send yet: fix and verify it"),
            note=_(
                "%(message)s Its mails wait in the queue and leave by themselves once the mailbox is verified.",
                message=message,
            ),
            user_id=fixer.id,
        )

    def _smtp_invoicing_fixing_admin(self):
        """The Settings administrator of the mailbox's company who is asked to fix it: who
        requested its last verification, else who created it, else the first one."""
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
        for candidate in (self.smtp_invoicing_requested_by_id, self.create_uid):
            if candidate in admins:
                return candidate
        return admins.sorted("id")[:1]

    def _smtp_invoicing_activity_type(self):
        return self.env.ref("mail.mail_activity_data_todo")

    def _smtp_invoicing_release_held_mails(self):
        """The mailbox is verified again: its waiting mails leave now, and its fix-it activities are done."""
        self.activity_ids.filtered(
            lambda activity: activity.activity_type_id == self._smtp_invoicing_activity_type()
        ).action_feedback(feedback=_("Mailbox verified again."))
        # mails held for the mailbox (never retried: a retry keeps its own backoff) leave now
        now = fields.Datetime.now()
        waiting = (
            self.env["mail.mail"]
            .sudo()
            .search(
                [
                    ("mail_server_id", "in", self.mail_server_id.ids),
                    ("state", "=", "outgoing"),
                    ("smtp_invoicing_retry_count", "=", 0),
                ]
            )
        )
        waiting.filtered(lambda mail: mail.scheduled_date and mail.scheduled_date > now).write({"scheduled_date": now})
        if waiting or self.env["mail.mail"].sudo().search_count(
            [("mail_server_id", "in", self.mail_server_id.ids), ("state", "=", "outgoing")], limit=1
        ):
            self.env.ref("mail.ir_cron_mail_scheduler_action")._trigger()

    def action_smtp_invoicing_resend_failed(self):
        """Put back in the queue every failed mail of these verified mailboxes (form button)."""
        self.check_access("write")
        self._smtp_invoicing_check_ready()
        mails = (
            self.env["mail.mail"]
            .sudo()
            .search(
                [
                    ("mail_server_id", "in", self.mail_server_id.ids),
                    ("state", "=", "exception"),
                ]
            )
        )
        mails.write({"smtp_invoicing_retry_count": 0})
        mails.mark_outgoing()
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

    def action_smtp_invoicing_send_test_email(self):
        """Open the test email dialog of this mailbox (form button)."""
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": _("Send a test email"),
            "res_model": "smtp_invoicing.test.email",
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "new",
            "context": {"default_mailbox_id": self.id},
        }

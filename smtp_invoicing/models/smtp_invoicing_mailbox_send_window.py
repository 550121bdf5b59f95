from odoo import _, api, models
from odoo.tools import email_normalize

from ..lib import validation
from .smtp_invoicing_mailbox_oauth import OAUTH_KINDS

# A blocked mailbox's alert names at most this many of the records that would leave from it.
NAMED_RECORDS = 10


class SmtpInvoicingMailbox(models.Model):
    """What the send windows (*Send*, the payment reminder composer) say about own mailboxes:
    where the mail leaves from and, before any click, why a mailbox cannot send and who must act."""

    _inherit = "smtp_invoicing.mailbox"

    def _smtp_invoicing_sender_display(self):
        """The From the customer reads: ``ACME Billing <billing@acme.com>``."""
        self.ensure_one()
        email = email_normalize(self.sender_email) or self.sender_email or ""
        name = validation.one_line(self.sender_name or "").strip()
        return f"{name} <{email}>" if name else email

    def _smtp_invoicing_way_out(self):
        """Who must act, and where, so that this mailbox can send again."""
        self.ensure_one()
        if self.verification_state == "pending":
            return _("Its verification is under way: open this window again in a moment.")
        if self.smtp_invoicing_auth_kind in OAUTH_KINDS and (
            self.smtp_invoicing_awaiting_connection or self.smtp_invoicing_sign_in_again
        ):
            return self._smtp_invoicing_sign_in_message()
        if self.smtp_invoicing_awaiting_connection:
            return _(
                "%(owner)s must type the password of “%(name)s” on the mailbox's connect page.",
                owner=self.smtp_invoicing_owner_id.name or self.sudo().smtp_user or _("The mailbox owner"),
                name=self.name,
            )
        return _(
            "A Settings administrator must correct it in Invoicing › Configuration › Own Mailboxes and "
            "click “Verify settings”."
        )

    def _smtp_invoicing_blocked_message(self, records=None, total=1):
        """Why this mailbox cannot send now, before anyone clicked, and the way out.

        ``records``: those of a batch window whose mail would leave from it, named when the
        window holds ``total`` > 1 records.
        """
        self.ensure_one()
        lines = [
            _(
                "Sending is disabled: “%(name)s” (%(sender)s) cannot send right now.",
                name=self.name,
                sender=self._smtp_invoicing_sender_display(),
            ),
            _(
                "It is %(state)s: %(reason)s",
                state=self._smtp_invoicing_state_label(),
                reason=self.verification_message or _("it was never verified."),
            ),
            self._smtp_invoicing_way_out(),
        ]
        if records and total > 1:
            names = ", ".join(records[:NAMED_RECORDS].mapped("display_name"))
            if len(records) > NAMED_RECORDS:
                names = _("%(names)s and %(count)s more", names=names, count=len(records) - NAMED_RECORDS)
            lines.append(_("It would send: %(names)s.", names=names))
            if len(records) < total:
                lines.append(_("Remove them from the selection to send the others now."))
        return "\n".join(lines)

    @api.model
    def _smtp_invoicing_send_window_alerts(self, records_per_server, total=1, count_message=None):
        """Alerts of a send window (``account.move.send`` wizards' format): one info line
        "From: …" per own mailbox, and a danger alert per mailbox that cannot send now.

        ``records_per_server``: {own mailbox: records whose mail leaves from it}; the other
        records of the window (``total`` in all) leave as core decides and add nothing.
        ``count_message(count)``: how many records leave from one mailbox, shown when
        the window holds several records. The windows disable their send buttons on a
        danger alert of key ``smtp_invoicing_mailbox_not_ready…``; the server still refuses
        (``_smtp_invoicing_check_ready``).
        """
        alerts = {}
        for server, records in sorted(records_per_server.items(), key=lambda item: (item[0].name or "", item[0].id)):
            sender = server._smtp_invoicing_sender_display()
            if total > 1 and count_message:
                message = _("From: %(sender)s (%(count)s)", sender=sender, count=count_message(len(records)))
            else:
                message = _("From: %(sender)s", sender=sender)
            alerts[f"smtp_invoicing_from_{server.id}"] = {"level": "info", "message": message}
            plan = server._smtp_invoicing_leave_plan(len(records))
            if plan:
                alerts[f"smtp_invoicing_later_{server.id}"] = {"level": "warning", "message": plan}
            warning = server._smtp_invoicing_sender_warning()
            if warning:
                alerts[f"smtp_invoicing_sender_{server.id}"] = {"level": "warning", "message": warning}
            if not server._smtp_invoicing_not_ready_message():
                continue
            alerts[f"smtp_invoicing_mailbox_not_ready_{server.id}"] = {
                "level": "danger",
                "message": server._smtp_invoicing_blocked_message(records, total),
            }
        return alerts

    @api.model
    def _smtp_invoicing_send_blocked(self, alerts):
        """Whether these window alerts disable sending: a mailbox of the window cannot send now."""
        return any(key.startswith("smtp_invoicing_mailbox_not_ready") for key in alerts or {})

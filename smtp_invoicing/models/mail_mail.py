from odoo import models


class MailMail(models.Model):
    _inherit = "mail.mail"

    def _split_by_mail_configuration(self):
        """Keep own mailboxes to the mails they were chosen for.

        Core sends a mail through whatever server its template forced. A mail
        of another company's record, or sent while the feature is switched
        off, goes back to Odoo's default routing instead of leaving from a
        mailbox that was not chosen for it.
        """
        # sudo: routing is decided for the queue, whatever user triggers it
        mails = self.sudo()
        mailboxes = mails.mail_server_id.filtered("smtp_invoicing_mailbox")
        if mailboxes:
            refused = mails.filtered(
                lambda mail: (
                    mail.mail_server_id in mailboxes
                    and not mail.mail_server_id._smtp_invoicing_accepts(mail.record_company_id)
                )
            )
            if refused:
                refused.write({"mail_server_id": False})
        return super()._split_by_mail_configuration()

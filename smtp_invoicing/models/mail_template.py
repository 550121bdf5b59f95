from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from .mail_mail import chosen_mailboxes


class MailTemplate(models.Model):
    _inherit = "mail.template"

    smtp_invoicing_mailbox_ids = fields.One2many(
        "smtp_invoicing.template.mailbox",
        "template_id",
        string="Mailbox per company",
        groups="base.group_system",
        help="Each company's records leave from that company's mailbox. A company without a line uses "
        "“Send from mailbox” when it belongs to that company (or to none), else Odoo's default server.",
    )

    @api.constrains("mail_server_id")
    def _check_smtp_invoicing_mail_server(self):
        for template in self:
            server = self.env["smtp_invoicing.mailbox"]._smtp_invoicing_of_servers(template.sudo().mail_server_id)
            if server and server.verification_state != "verified":
                raise ValidationError(
                    _(
                        "The template “%(template)s” can only use a verified mailbox, and “%(server)s” is %(state)s. "
                        "Verify it first in Invoicing › Configuration › Own Mailboxes.",
                        template=template.name,
                        server=server.name,
                        state=dict(server._fields["verification_state"]._description_selection(self.env))[
                            server.verification_state
                        ],
                    )
                )

    def _smtp_invoicing_company_mail_servers(self, companies):
        """Return {company id: own mailbox (sudo, maybe empty)} this template chose for ``companies``.

        One query for the whole batch. A company's own line wins; else the template's
        server when it is an own mailbox that may carry that company's mail; else none,
        which leaves the mail to Odoo's routing. Switched off: none at all.
        """
        self.ensure_one()
        # sudo: routing is decided for any sender; invoicing users never read mailboxes
        template = self.sudo()
        mailboxes = template.env["smtp_invoicing.mailbox"]
        servers = dict.fromkeys([*companies.ids, False], mailboxes)
        if not mailboxes._smtp_invoicing_is_enabled():
            return servers
        default = mailboxes._smtp_invoicing_of_servers(template.mail_server_id)
        chosen = {}
        if template.smtp_invoicing_mailbox_ids:
            choices = template.smtp_invoicing_mailbox_ids.filtered(lambda choice: choice.company_id in companies)
            chosen = {choice.company_id.id: choice.mailbox_id for choice in choices}
        for company_id in servers:
            server = chosen.get(company_id)
            if server is None:
                company = template.env["res.company"].browse(company_id)
                server = default if default and default._smtp_invoicing_accepts(company) else mailboxes
            servers[company_id] = server
        return servers

    def _smtp_invoicing_record_mail_servers(self, res_ids):
        """Return {res_id: own mailbox (sudo, maybe empty)} for records of this template's model."""
        self.ensure_one()
        records = self.env[self.model].browse(res_ids)
        if "company_id" not in records._fields:
            servers = self._smtp_invoicing_company_mail_servers(self.env["res.company"])
            return dict.fromkeys(res_ids, servers[False])
        # sudo: only the company of each record is read, to route its mail
        records = records.sudo().exists()
        servers = self._smtp_invoicing_company_mail_servers(records.company_id)
        result = dict.fromkeys(res_ids, servers[False])
        result.update({record.id: servers[record.company_id.id] for record in records})
        return result

    def _smtp_invoicing_choices(self, res_ids):
        """Return the ``chosen_mailboxes`` mapping of this template for ``res_ids``.

        Empty when the template involves no own mailbox (its mails are left to core) or
        the feature is off; else every record gets its mailbox, or False when none may
        carry it (Odoo's default routing then).
        """
        self.ensure_one()
        template = self.sudo()
        if not template.model or not (
            template.mail_server_id.smtp_invoicing_mailbox_ids or template.smtp_invoicing_mailbox_ids
        ):
            return {}
        if not self.env["smtp_invoicing.mailbox"]._smtp_invoicing_is_enabled():
            return {}
        servers = self._smtp_invoicing_record_mail_servers(res_ids)
        return {(template.model, res_id): (server.id, template.id) for res_id, server in servers.items()}

    def send_mail_batch(
        self, res_ids, force_send=False, raise_exception=False, email_values=None, email_layout_xmlid=False
    ):
        """Mails sent by the template itself leave from the mailbox it chose for each record."""
        with chosen_mailboxes(self._smtp_invoicing_choices(res_ids) if len(self) == 1 else {}):
            return super().send_mail_batch(
                res_ids,
                force_send=force_send,
                raise_exception=raise_exception,
                email_values=email_values,
                email_layout_xmlid=email_layout_xmlid,
            )

    def _generate_template_attachments(self, res_ids, render_fields, render_results=None):
        """The payment reminder's invoice PDF is named as core names the invoice's (``INV_2026_00005.pdf``).

        Called by ``_generate_template`` when a mail is rendered. The reminder attaches the
        invoice report, whose ``print_report_name`` keeps the slashes of the invoice number
        (``INV/2026/00005.pdf``); the name comes from account's
        ``_get_invoice_report_filename``, as for Send & Print.
        """
        render_results = super()._generate_template_attachments(res_ids, render_fields, render_results=render_results)
        reminder = self.env.ref("smtp_invoicing.email_template_payment_reminder", raise_if_not_found=False)
        if self != reminder or "report_template_ids" not in render_fields:
            return render_results
        reports = self.sudo().report_template_ids
        for move in self.env["account.move"].browse(res_ids):
            # core appends one (name, content) per report, in the order of report_template_ids
            attachments = render_results.get(move.id, {}).get("attachments") or []
            for index, report in enumerate(reports[: len(attachments)]):
                if report.is_invoice_report and move.name and move.name != "/":
                    name, content = attachments[index]
                    extension = name.rsplit(".", 1)[-1]
                    attachments[index] = (move._get_invoice_report_filename(extension=extension), content)
        return render_results

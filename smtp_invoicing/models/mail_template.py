from odoo import _, api, fields, models
from odoo.exceptions import ValidationError


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
            server = template.sudo().mail_server_id
            if server.smtp_invoicing_mailbox and server.verification_state != "verified":
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
        """Return {company id: ir.mail_server (sudo, maybe empty)} for this template.

        One query for the whole batch. A company's own choice wins; else the
        template's server when it may carry that company's mail; else none,
        which lets Odoo's default routing pick a server.
        """
        self.ensure_one()
        # sudo: routing is decided for any sender; invoicing users never read mailboxes
        template = self.sudo()
        default = template.mail_server_id
        servers = {company.id: default for company in companies}
        servers[False] = default
        if not self.env["ir.mail_server"]._smtp_invoicing_is_enabled():
            return servers
        choices = (
            self.env["smtp_invoicing.template.mailbox"]
            .sudo()
            .search(
                [
                    ("template_id", "=", template.id),
                    ("company_id", "in", companies.ids),
                ]
            )
        )
        chosen = {choice.company_id.id: choice.mail_server_id for choice in choices}
        for company in companies:
            server = chosen.get(company.id)
            if server is None:
                accepted = not default.smtp_invoicing_mailbox or default._smtp_invoicing_accepts(company)
                server = default if accepted else default.browse()
            servers[company.id] = server
        return servers

    def _smtp_invoicing_record_mail_servers(self, res_ids):
        """Return {res_id: ir.mail_server (sudo, maybe empty)} for records of this template's model."""
        self.ensure_one()
        records = self.env[self.model].browse(res_ids)
        if "company_id" not in records._fields:
            default = self.sudo().mail_server_id
            return dict.fromkeys(res_ids, default)
        # sudo: only the company of each record is read, to route its mail
        records = records.sudo().exists()
        servers = self._smtp_invoicing_company_mail_servers(records.company_id)
        result = dict.fromkeys(res_ids, servers[False])
        result.update({record.id: servers[record.company_id.id] for record in records})
        return result

    def _generate_template(self, res_ids, render_fields, find_or_create_partners=False):
        """Put each record's company mailbox in the generated values (composer, send_mail)."""
        results = super()._generate_template(res_ids, render_fields, find_or_create_partners=find_or_create_partners)
        if "mail_server_id" in render_fields and self.model and results:
            servers = self._smtp_invoicing_record_mail_servers(list(results))
            for res_id, values in results.items():
                values["mail_server_id"] = servers[res_id].id
        return results

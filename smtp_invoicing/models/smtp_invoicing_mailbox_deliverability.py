import logging

from odoo import _, api, fields, models

from ..lib import deliverability

_logger = logging.getLogger(__name__)


class SmtpInvoicingMailbox(models.Model):
    """Deliverability hint of own mailboxes: do SPF and DMARC of the sender's domain allow them?"""

    _inherit = "smtp_invoicing.mailbox"

    smtp_invoicing_deliverability = fields.Selection(
        [("good", "Good"), ("warning", "To check"), ("bad", "At risk"), ("unknown", "Not checked")],
        string="Deliverability",
        compute="_compute_smtp_invoicing_deliverability",
        help="Whether the SPF and DMARC records of the sender email's domain allow this mailbox to send for it.",
    )
    smtp_invoicing_deliverability_message = fields.Text(
        string="Deliverability Details", compute="_compute_smtp_invoicing_deliverability"
    )

    @api.depends("sender_email", "smtp_host")
    def _compute_smtp_invoicing_deliverability(self):
        """Not stored: read from DNS (bounded timeout, cached by the lib) when the form shows it.

        Nameservers: ``smtp_invoicing.dns_nameservers`` ("ip[:port], ..."), else the system's.
        """
        params = self.env["ir.config_parameter"].sudo()
        try:
            nameservers = deliverability.parse_nameservers(params.get_param("smtp_invoicing.dns_nameservers"))
            timeout = float(params.get_param("smtp_invoicing.dns_timeout", 3))
        except ValueError:
            _logger.warning("Invalid smtp_invoicing.dns_nameservers or dns_timeout: using the system resolver")
            nameservers, timeout = None, 3.0
        for server in self:
            if not server.sender_email:
                server.smtp_invoicing_deliverability = False
                server.smtp_invoicing_deliverability_message = False
                continue
            report = deliverability.check(server.sender_email, server.smtp_host, nameservers, timeout)
            server.smtp_invoicing_deliverability = report.level
            server.smtp_invoicing_deliverability_message = server._smtp_invoicing_deliverability_text(report)

    def _smtp_invoicing_deliverability_text(self, report):
        domain = report.domain
        if report.reason == "reserved":
            return _("%(domain)s is a reserved example domain: it has no public DNS records to check.", domain=domain)
        if report.reason == "dns_error":
            return _(
                "The DNS records of %(domain)s could not be read in time. This does not prevent sending; "
                "the hint is refreshed in a few minutes.",
                domain=domain,
            )
        if report.reason == "public":
            return _(
                "%(domain)s is a public mailbox service: its SPF and DMARC records are its own, there is nothing "
                "to configure. A domain of your company is better for invoices: customers recognise it and "
                "its records are yours to set.",
                domain=domain,
            )
        if report.reason:
            return _("Not checked.")
        mechanism = deliverability.spf_mechanism(self.smtp_host)
        suggestion = f"v=spf1 {mechanism} ~all" if mechanism else "v=spf1 a mx ~all"
        if report.spf == deliverability.SPF_PASS:
            spf = _("SPF: %(domain)s allows this mailbox's server to send for it.", domain=domain)
        elif report.spf == deliverability.SPF_NOT_LISTED and not mechanism:
            spf = _(
                "SPF: the record of %(domain)s does not list %(host)s. That server is on this machine or your "
                "network: the domain's record must name the server that finally sends your mail to the Internet; "
                "ask whoever manages it.",
                domain=domain,
                host=self.smtp_host,
            )
        elif report.spf == deliverability.SPF_NOT_LISTED:
            spf = _(
                "SPF: the record of %(domain)s does not list %(host)s, so some recipients may file your invoices "
                "as spam. Ask whoever manages the domain to add “%(mechanism)s” to it.",
                domain=domain,
                host=self.smtp_host,
                mechanism=mechanism,
            )
        elif report.spf == deliverability.SPF_INVALID:
            spf = _(
                "SPF: %(domain)s publishes several SPF records, which recipients treat as an error. "
                "Merge them into one.",
                domain=domain,
            )
        else:
            spf = _(
                "SPF: %(domain)s publishes no SPF record, so recipients cannot tell that this mailbox may send "
                "for it and invoices may land in spam. Add a TXT record such as “%(record)s” to the domain.",
                domain=domain,
                record=suggestion,
            )
        if report.dmarc == deliverability.DMARC_PRESENT:
            dmarc = _("DMARC: policy “%(policy)s”.", policy=report.dmarc_policy or "none")
        elif report.dmarc == deliverability.DMARC_INVALID:
            dmarc = _("DMARC: %(domain)s publishes several DMARC records; keep only one.", domain=domain)
        else:
            dmarc = _(
                "DMARC: %(domain)s publishes no DMARC record; Gmail and Yahoo expect one. Add a TXT record "
                "“_dmarc.%(domain)s” with “v=DMARC1; p=none”.",
                domain=domain,
            )
        return f"{spf}\n{dmarc}"

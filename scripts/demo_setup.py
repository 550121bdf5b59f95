"""Finish the demo database (run inside `odoo-bin shell` by scripts/run.sh).

The module's demo data (smtp_invoicing/demo/) creates the invoices and reminders
mailboxes on the local sink. This script points them at the sink's actual port,
verifies them against the running sink and, once verified, assigns them to the
email templates, and points the deliverability hint at the sink's DNS server.
Idempotent. Reads SMTP_SINK_PORT and SMTP_SINK_DNS_PORT from the environment.
"""

import os

from odoo.tools import convert_file

port = int(os.environ.get("SMTP_SINK_PORT", "2525"))
env["ir.config_parameter"].sudo().set_param("smtp_invoicing.enabled", "True")
# the sink's DNS server publishes the demo domain's SPF and DMARC records
dns_port = int(os.environ.get("SMTP_SINK_DNS_PORT", "2553"))
env["ir.config_parameter"].sudo().set_param("smtp_invoicing.dns_nameservers", f"127.0.0.1:{dns_port}")
if not env.ref("smtp_invoicing.demo_mailbox_invoices", raise_if_not_found=False):
    # a demo database created without the module's demo data (e.g. before it had any)
    convert_file(env, "smtp_invoicing", "demo/smtp_invoicing_demo.xml", {}, mode="init", noupdate=True, kind="demo")
# the mailbox that the shell setup of earlier versions created
legacy = env["smtp_invoicing.mailbox"].search([("name", "=", "Demo sink: invoices")])
(legacy - env.ref("smtp_invoicing.demo_mailbox_invoices")).active = False
mailboxes = {
    "invoices": env.ref("smtp_invoicing.demo_mailbox_invoices"),
    "reminders": env.ref("smtp_invoicing.demo_mailbox_reminders"),
}
servers = env["smtp_invoicing.mailbox"].union(*mailboxes.values())
for server in servers:
    if server.smtp_port != port:
        server.smtp_port = port
    if server.verification_state != "verified":
        server.action_verify()
# the scheduled action records each result in a transaction of its own: commit first
env.cr.commit()
env["smtp_invoicing.mailbox"]._cron_verify_mail_servers()
env.cr.commit()  # a new snapshot, to read the results the scheduled action committed
env.invalidate_all()
templates = {
    "account.email_template_edi_invoice": "invoices",
    "account.email_template_edi_credit_note": "invoices",
    "smtp_invoicing.email_template_payment_reminder": "reminders",
}
for xmlid, kind in templates.items():
    template = env.ref(xmlid, raise_if_not_found=False)
    if template and mailboxes[kind].verification_state == "verified":
        template.mail_server_id = mailboxes[kind].mail_server_id
env.cr.commit()
for server in servers:
    print(f"demo mailbox '{server.name}': {server.verification_state} ({server.verification_message})")

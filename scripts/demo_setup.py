"""Configure the demo database (run inside `odoo-bin shell`): an own mailbox on the local sink.

Idempotent. Reads SMTP_SINK_CA (path) and SMTP_SINK_PORT from the environment.
"""

import os

params = env["ir.config_parameter"].sudo()
params.set_param("smtp_invoicing.enabled", "True")
admin = env.ref("base.user_admin")
company = admin.company_id
mailbox = env["ir.mail_server"].search([("name", "=", "Demo sink: invoices")], limit=1)
values = {
    "name": "Demo sink: invoices",
    "smtp_invoicing_mailbox": True,
    "smtp_invoicing_preset": "custom",
    "sender_name": f"{company.name} Billing",
    "sender_email": admin.email,
    "smtp_user": admin.email,
    "smtp_host": "127.0.0.1",
    "smtp_port": int(os.environ.get("SMTP_SINK_PORT", "2525")),
    "smtp_encryption": "starttls",
    "smtp_authentication": "login",
    "smtp_invoicing_company_id": company.id,
}
if not mailbox:
    mailbox = env["ir.mail_server"].create(dict(values, smtp_pass="demo-password"))
    # the sink accepts any password; verify once so templates can use it right away
    mailbox.action_verify()
    env["ir.mail_server"]._cron_verify_mail_servers()
if mailbox.verification_state == "verified":
    env.ref("account.email_template_edi_invoice").mail_server_id = mailbox
env.cr.commit()
print(f"demo mailbox '{mailbox.name}': {mailbox.verification_state} ({mailbox.verification_message})")

"""Upgrade from 18.0.1.2.0 (mailboxes inside ir.mail_server) to 18.0.2.0.0 (smtp_invoicing.mailbox), with
real odoo-bin runs: the previous version, taken from git history, is installed and filled as a customer's
database is, then upgraded in place by this checkout, and used the next minute.
"""

import shutil
import tempfile

import pytest

import odoo_runs
from conftest import DB_NAME
from smtp_servers import Pki, SmtpServer

PASSWORD = "mailbox-migration-secret"
SCRATCH_DB = f"{DB_NAME}_migration"


@pytest.fixture
def scratch():
    data_dir = tempfile.mkdtemp(prefix="smtp_invoicing_migration_")
    odoo_runs.dropdb(SCRATCH_DB)
    try:
        yield data_dir
    finally:
        odoo_runs.dropdb(SCRATCH_DB)
        shutil.rmtree(data_dir, ignore_errors=True)


FILL = """
import base64, time
env["ir.config_parameter"].set_param("smtp_invoicing.enabled", "True")
env["ir.config_parameter"].set_param("smtp_invoicing.dns_nameservers", "127.0.0.1:9")
Users = env["res.users"].with_context(no_reset_password=True)
for login in ("billing@migration.test", "owner@migration.test", "waiting@migration.test"):
    Users.create({"name": login, "login": login, "email": login})
common = {"smtp_invoicing_mailbox": True, "smtp_host": HOST, "smtp_port": PORT, "smtp_encryption": "starttls",
          "smtp_invoicing_ca_cert": CA}
billing = env["ir.mail_server"].create({**common, "name": "Billing", "sender_name": "ACME Billing",
    "sender_email": "billing@migration.test", "smtp_user": "billing@migration.test", "smtp_pass": PASSWORD})
billing.action_verify()
env.cr.commit()
env["ir.mail_server"]._cron_verify_mail_servers()
env.cr.commit()
env.invalidate_all()
# an OAuth mailbox signed in by its owner, and a mailbox still waiting for its owner (a to-do)
oauth = env["ir.mail_server"].create({**common, "name": "Owner 365", "sender_name": "Owner",
    "sender_email": "owner@migration.test", "smtp_user": "owner@migration.test",
    "smtp_invoicing_auth_kind": "microsoft"})
oauth._smtp_invoicing_store_tokens("refresh-token-1", "access-token-1", int(time.time()) + 3600)
waiting_owner = env["ir.mail_server"].create({**common, "name": "Waiting", "sender_name": "Waiting",
    "sender_email": "waiting@migration.test", "smtp_user": "waiting@migration.test"})
invoice_template = env.ref("account.email_template_edi_invoice")
invoice_template.mail_server_id = billing
env.ref("smtp_invoicing.email_template_payment_reminder").mail_server_id = billing
env["smtp_invoicing.template.mailbox"].create({"template_id": invoice_template.id, "company_id": env.company.id,
                                                "mail_server_id": billing.id})
env["smtp_invoicing.bounce"].create({"mail_server_id": billing.id, "report_key": "<report@mx>",
    "email": "gone@client.test", "kind": "bounce", "reason": "address_does_not_exist", "status": "5.1.1"})
env["smtp_invoicing.sent.copy"].create({"mail_server_id": billing.id, "message_id": "<sent@migration.test>",
    "raw": base64.b64encode(b"Subject: filed later\\r\\n\\r\\nbody")})
# a mail of the invoice template waiting in the queue for the billing mailbox
customer = env["res.partner"].create({"name": "Customer", "email": "customer@client.test"})
mail = env["mail.mail"].create({"email_from": "billing@migration.test", "email_to": "customer@client.test",
    "subject": "Waiting invoice", "body_html": "<p>Invoice</p>", "mail_server_id": billing.id,
    "smtp_invoicing_mailbox_id": billing.id, "state": "outgoing", "auto_delete": False})
print("RESULT:" + json.dumps({
    "servers": {"billing": billing.id, "oauth": oauth.id, "waiting": waiting_owner.id},
    "billing_state": billing.verification_state, "billing_verified_at": str(billing.smtp_invoicing_verified_at),
    "billing_messages": billing.message_ids.mapped("body"),
    "waiting_todos": waiting_owner.activity_ids.mapped("summary"),
    "mail": mail.id,
}))
"""

CHECK = """
Mailbox = env["smtp_invoicing.mailbox"].with_context(active_test=False)
by_server = {mailbox.mail_server_id.id: mailbox for mailbox in Mailbox.search([])}
billing, oauth, waiting_owner = (by_server[SERVERS[key]] for key in ("billing", "oauth", "waiting"))
invoice_template = env.ref("account.email_template_edi_invoice")
env.cr.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'ir_mail_server'")
core_columns = sorted(row[0] for row in env.cr.fetchall())
env.cr.execute("SELECT smtp_pass FROM ir_mail_server WHERE id = %s", [billing.mail_server_id.id])
clear = env.cr.fetchone()[0]
result = {
    "mailboxes": sorted(by_server),
    "billing": [billing.name, billing.sender_name, billing.sender_email, billing.verification_state,
                str(billing.smtp_invoicing_verified_at), billing.smtp_invoicing_company_id.id == env.company.id],
    "billing_messages": billing.message_ids.mapped("body"),
    "password": billing._smtp_invoicing_password() == PASSWORD,
    "clear_column": clear,
    "oauth": [oauth.smtp_invoicing_auth_kind, oauth._smtp_invoicing_token("smtp_invoicing_oauth_refresh_enc"),
              oauth._smtp_invoicing_token("smtp_invoicing_oauth_access_enc")],
    "waiting_todos": waiting_owner.activity_ids.mapped("summary"),
    "templates": [invoice_template.mail_server_id.id,
                  env.ref("smtp_invoicing.email_template_payment_reminder").mail_server_id.id],
    "line": invoice_template.smtp_invoicing_mailbox_ids.mailbox_id.ids == billing.ids,
    "bounce": env["smtp_invoicing.bounce"].search([("email", "=", "gone@client.test")]).mailbox_id.ids == billing.ids,
    "sent_copy": env["smtp_invoicing.sent.copy"].search([]).mailbox_id.ids == billing.ids,
    "product_columns_on_core": [c for c in core_columns if c.startswith(("smtp_invoicing", "sender_", "verification"))],
    "crons": sorted(env.ref(xmlid).model_id.model for xmlid in (
        "smtp_invoicing.ir_cron_verify_mail_servers", "smtp_invoicing.ir_cron_poll_mailboxes")),
}
# the next minute: the waiting mail leaves, and the mailbox verifies again with its saved password
env["mail.mail"].browse(MAIL).send()
result["mail"] = env["mail.mail"].browse(MAIL).state
billing.action_verify()
env.cr.commit()
env.ref("smtp_invoicing.ir_cron_verify_mail_servers").method_direct_trigger()
env.cr.commit()  # a new snapshot, to read the result the scheduled action committed
env.invalidate_all()
result["reverified"] = billing.verification_state
print("RESULT:" + json.dumps(result))
"""


@pytest.mark.timeout(600)  # three odoo-bin runs and an install of the previous release
def test_a_database_at_18_0_1_2_0_upgrades_and_sends_the_next_minute(scratch):
    """A 18.0.1.2.0 database (a verified mailbox used by the invoice and reminder templates and a company line,
    an OAuth mailbox with tokens, one awaiting its owner with a to-do, a bounce, a queued Sent copy, a waiting
    mail) upgrades to 18.0.2.0.0: same server ids, secrets that decrypt, statuses, chatter and to-dos kept,
    nothing of the product left in core's table, and the waiting mail leaves from the mailbox."""
    pki = Pki()
    box = SmtpServer(mode="starttls", cert=pki.leaf(), users={"billing@migration.test": PASSWORD})
    previous = tempfile.mkdtemp(prefix="smtp_invoicing_previous_")
    with pki, box:
        try:
            odoo_runs.previous_release(previous)
            odoo_runs.from_template(odoo_runs.BASE_TEMPLATE, SCRATCH_DB, scratch)
            odoo_runs.odoo_bin(SCRATCH_DB, scratch, "--stop-after-init", "-i", "smtp_invoicing", addons_root=previous)
            values = f"HOST, PORT, CA, PASSWORD = {box.host!r}, {box.port}, {pki.ca_pem!r}, {PASSWORD!r}\n"
            before = odoo_runs.shell(SCRATCH_DB, scratch, values + FILL, addons_root=previous)
        finally:
            shutil.rmtree(previous, ignore_errors=True)
        assert before["billing_state"] == "verified"
        assert before["waiting_todos"], "the mailbox without secret asked its owner to connect it"

        odoo_runs.odoo_bin(SCRATCH_DB, scratch, "--stop-after-init", "-u", "smtp_invoicing")
        checks = (
            f"SERVERS, MAIL, PASSWORD = {before['servers']!r}, {before['mail']}, {PASSWORD!r}\n"
            "SERVERS = {key: int(value) for key, value in SERVERS.items()}\n"
        )
        after = odoo_runs.shell(SCRATCH_DB, scratch, checks + CHECK)

    servers = before["servers"]
    assert after["mailboxes"] == sorted(servers.values()), "each mailbox delegates to the server it was"
    assert after["billing"] == [
        "Billing",
        "ACME Billing",
        "billing@migration.test",
        "verified",
        before["billing_verified_at"],
        True,
    ]
    assert after["billing_messages"] == before["billing_messages"], "the chatter followed the mailbox"
    assert after["password"] and after["clear_column"] is None
    assert after["oauth"] == ["microsoft", "refresh-token-1", "access-token-1"]
    assert after["waiting_todos"] == before["waiting_todos"]
    assert after["templates"] == [servers["billing"], servers["billing"]]
    assert after["line"] and after["bounce"] and after["sent_copy"]
    assert after["product_columns_on_core"] == []
    assert after["crons"] == ["smtp_invoicing.mailbox", "smtp_invoicing.mailbox"]
    assert after["mail"] == "sent"
    assert after["reverified"] == "verified"
    assert [message.message["Subject"] for message in box.messages] == ["Waiting invoice"]
    assert box.messages[0].message["From"] == "ACME Billing <billing@migration.test>"

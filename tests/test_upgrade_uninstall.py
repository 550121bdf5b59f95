"""Install, upgrade and uninstall with real odoo-bin runs: servers, passwords and template links survive.

One scratch database, a copy of the cached template with base, mail and account (the one
scripts/test.sh builds, see ensure_template_db in scripts/bootstrap.sh), and an outgoing
server whose password is in clear (core's way) and which an email template uses. After
each step a mail is sent through that server to a loopback SMTP server, which checks the
password. Before the uninstall, the module is configured as the README recommends: a verified
own mailbox that the invoice and the payment reminder templates send from, and a per-company
line, with a mail waiting for that mailbox.
"""

import shutil
import tempfile

import pytest

import odoo_runs
from conftest import DB_NAME
from smtp_servers import Pki, SmtpServer

RELAY_PASSWORD = "relay-upgrade-secret"
MAILBOX_PASSWORD = "mailbox-upgrade-secret"
SCRATCH_DB = f"{DB_NAME}_upgrade"

SEND = """
server = env["ir.mail_server"].search([("name", "=", "Legacy relay")])
template = env.ref("account.mail_template_data_payment_receipt")
message = server.build_email("company@upgrade.test", ["customer@client.test"], SUBJECT, "body")
server.send_email(message, mail_server_id=server.id)
env.cr.execute("SELECT smtp_pass FROM ir_mail_server WHERE id = %s", [server.id])
clear = env.cr.fetchone()[0]
print("RESULT:" + json.dumps({"template_server": template.mail_server_id.id, "server": server.id,
                               "clear_column": bool(clear)}))
"""


def odoo_bin(data_dir, *args):
    return odoo_runs.odoo_bin(SCRATCH_DB, data_dir, *args)


def shell(data_dir, script):
    return odoo_runs.shell(SCRATCH_DB, data_dir, script)


def dropdb():
    odoo_runs.dropdb(SCRATCH_DB)


def from_base_template(data_dir):
    odoo_runs.from_template(odoo_runs.BASE_TEMPLATE, SCRATCH_DB, data_dir)


@pytest.fixture
def scratch():
    data_dir = tempfile.mkdtemp(prefix="smtp_invoicing_upgrade_")
    dropdb()
    try:
        yield data_dir
    finally:
        dropdb()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.mark.timeout(600)  # five odoo-bin runs (35 s on an idle machine), the template's install if missing
def test_servers_passwords_and_template_links_survive_install_upgrade_uninstall(scratch):
    """A core server keeps its clear password and template through install, upgrade and uninstall; the
    uninstall succeeds with templates on an own mailbox, gives them back to Odoo's routing, keeps the mail
    waiting for the mailbox as visibly failed, and archives the mailbox with its password back."""
    pki = Pki()
    relay = SmtpServer(mode="plain", users={"relay": RELAY_PASSWORD}, advertise_auth_without_tls=True)
    box = SmtpServer(mode="starttls", cert=pki.leaf(), users={"billing@upgrade.test": MAILBOX_PASSWORD})
    with pki, relay, box:
        from_base_template(scratch)
        created = shell(
            scratch,
            f"""
server = env["ir.mail_server"].create({{
    "name": "Legacy relay", "smtp_host": "{relay.host}", "smtp_port": {relay.port}, "smtp_encryption": "none",
    "smtp_user": "relay", "smtp_pass": "{RELAY_PASSWORD}",
}})
env.ref("account.mail_template_data_payment_receipt").mail_server_id = server
SUBJECT = "before install"
"""
            + SEND,
        )
        assert created["clear_column"] and created["template_server"] == created["server"]

        odoo_bin(scratch, "--stop-after-init", "-i", "smtp_invoicing")
        installed = shell(
            scratch,
            f"""
env["ir.config_parameter"].set_param("smtp_invoicing.enabled", "True")
env["res.users"].with_context(no_reset_password=True).create(
    {{"name": "Billing", "login": "billing@upgrade.test", "email": "billing@upgrade.test"}}
)
env["ir.config_parameter"].set_param("smtp_invoicing.dns_nameservers", "127.0.0.1:9")
mailbox = env["smtp_invoicing.mailbox"].create({{
    "name": "Billing mailbox", "sender_name": "Billing",
    "sender_email": "billing@upgrade.test", "smtp_user": "billing@upgrade.test", "smtp_pass": "{MAILBOX_PASSWORD}",
    "smtp_host": "{box.host}", "smtp_port": {box.port}, "smtp_encryption": "starttls", "sequence": 1,
    "smtp_invoicing_ca_cert": {pki.ca_pem!r},
}})
mailbox.action_verify()
env.cr.commit()
env["smtp_invoicing.mailbox"]._cron_verify_mail_servers()
env.cr.commit()
env.invalidate_all()
# the README's configuration: both templates on the mailbox, and a line for the company
env.ref("account.email_template_edi_invoice").mail_server_id = mailbox.mail_server_id
env.ref("smtp_invoicing.email_template_payment_reminder").mail_server_id = mailbox.mail_server_id
env["smtp_invoicing.template.mailbox"].create({{
    "template_id": env.ref("account.email_template_edi_invoice").id, "company_id": env.company.id,
    "mailbox_id": mailbox.id,
}})
# a mail waiting in the queue for the mailbox
customer = env["res.partner"].create({{"name": "Waiting customer", "email": "waiting@client.test"}})
customer.message_post(body="Waiting for the mailbox", partner_ids=customer.ids, message_type="comment",
                      subtype_xmlid="mail.mt_comment", mail_server_id=mailbox.mail_server_id.id, force_send=False)
waiting = env["mail.mail"].search([("res_id", "=", customer.id), ("model", "=", "res.partner")])
SUBJECT = "after install"
"""
            + SEND.replace(
                'print("RESULT:" + json.dumps({',
                'print("RESULT:" + json.dumps({"verified": mailbox.verification_state, "waiting": waiting.ids, '
                '"waiting_server": waiting.mail_server_id == mailbox.mail_server_id, ',
            ),
        )
        assert installed["clear_column"], "a core server's password is not the module's business"
        assert installed.pop("verified") == "verified"
        assert installed.pop("waiting_server") and len(installed["waiting"]) == 1
        waiting = installed.pop("waiting")

        odoo_bin(scratch, "--stop-after-init", "-u", "smtp_invoicing")
        # one odoo-bin run: a mail through the relay (SEND) after the upgrade, then the uninstall
        upgraded = shell(
            scratch,
            'SUBJECT = "after upgrade"'
            + SEND
            + """
sent = {"template_server": template.mail_server_id.id, "server": server.id, "clear_column": bool(clear)}
sent["core_list_before"] = env.ref("base.action_ir_mail_server_list").domain
sent["templates_before"] = [
    bool(env.ref("account.email_template_edi_invoice").mail_server_id.smtp_invoicing_mailbox_ids)
]
env.cr.commit()
env["ir.module.module"].search([("name", "=", "smtp_invoicing")]).button_immediate_uninstall()
env.invalidate_all()
# the module's reminder template goes with the module; core's invoice template stays
sent["templates_after"] = env.ref("account.email_template_edi_invoice").mail_server_id.ids
sent["state"] = env["ir.module.module"].search([("name", "=", "smtp_invoicing")]).state
print("RESULT:" + json.dumps(sent))
""",
        )
        assert upgraded.pop("state") == "uninstalled"
        assert upgraded.pop("core_list_before") == "[('smtp_invoicing_mailbox_ids', '=', False)]"
        assert upgraded.pop("templates_before") == [True]
        assert upgraded.pop("templates_after") == [], "the invoice template sends through Odoo's default routing"
        # one odoo-bin run: a mail through the relay (SEND), then a look at the former mailbox
        uninstalled = shell(
            scratch,
            'SUBJECT = "after uninstall"'
            + SEND
            + """
sent = {"template_server": template.mail_server_id.id, "server": server.id, "clear_column": bool(clear)}
former = env["ir.mail_server"].with_context(active_test=False).search([("name", "=", "Billing mailbox")])
env.cr.execute("SELECT smtp_pass FROM ir_mail_server WHERE id = %s", [former.id])
password = env.cr.fetchone()[0]
partner = env["res.partner"].create({"name": "Customer", "email": "customer@client.test"})
partner.message_post(body="A chatter notification", partner_ids=partner.ids, message_type="comment",
                     subtype_xmlid="mail.mt_comment")
env["mail.mail"].process_email_queue()
waiting = env["mail.mail"].browse(WAITING)
# core's list of servers: back as Odoo made it (it listed core servers only while installed)
sent["core_list_domain"] = env.ref("base.action_ir_mail_server_list").domain
print("RESULT:" + json.dumps({**sent, "former": {"active": former.active, "from_filter": former.from_filter,
                                                 "password_back": password == MAILBOX_PASSWORD},
                              "waiting": [waiting.state, waiting.mail_server_id.id, waiting.failure_reason,
                                          waiting.notification_ids.mapped("notification_status")]}))
""".replace("MAILBOX_PASSWORD", repr(MAILBOX_PASSWORD)).replace("WAITING", repr(waiting)),
        )
    assert uninstalled["clear_column"]
    assert uninstalled["core_list_domain"] is False
    assert uninstalled["former"] == {"active": False, "from_filter": "billing@upgrade.test", "password_back": True}
    for step in (installed, upgraded, uninstalled):
        assert step["template_server"] == step["server"] == created["server"]
    subjects = [m.message["Subject"] for m in relay.messages]
    assert subjects[:4] == ["before install", "after install", "after upgrade", "after uninstall"]
    # the notification after uninstall went through the core relay, never the former mailbox
    assert len(relay.messages) == 5 and relay.messages[4].rcpt_tos == ["customer@client.test"]
    # the waiting mail was neither lost nor sent by another server: failed, with the reason, in the chatter
    state, server_id, reason, notifications = uninstalled["waiting"]
    assert (state, server_id, notifications) == ("exception", False, ["exception"])
    assert "uninstalled" in reason
    assert box.connections == 1 and box.messages == [], "the mailbox was verified, and never sent anything"
    assert [attempt[1:] for attempt in relay.auth_attempts] == [("relay", RELAY_PASSWORD)] * 5

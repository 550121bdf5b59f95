"""Install, upgrade and uninstall with real odoo-bin runs: servers, passwords and template links survive.

One scratch database, a copy of the cached template with base, mail and account (the one
scripts/test.sh builds, see ensure_template_db in scripts/bootstrap.sh), and an outgoing
server whose password is in clear (core's way) and which an email template uses. After
each step a mail is sent through that server to a loopback SMTP server, which checks the
password.
"""

import shutil
import tempfile

import pytest

import odoo_runs
from conftest import DB_NAME
from smtp_servers import SmtpServer

RELAY_PASSWORD = "relay-upgrade-secret"
MAILBOX_PASSWORD = "mailbox-upgrade-secret"
SCRATCH_DB = f"{DB_NAME}_upgrade"

SEND = """
server = env["ir.mail_server"].search([("name", "=", "Legacy relay")])
template = env.ref("account.email_template_edi_invoice")
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
    """A core server keeps its clear password and template through install, upgrade and uninstall; after
    uninstall a former own mailbox is archived with its password back and never carries Odoo's mail."""
    relay = SmtpServer(mode="plain", users={"relay": RELAY_PASSWORD}, advertise_auth_without_tls=True)
    box = SmtpServer(mode="plain", users={"billing@upgrade.test": MAILBOX_PASSWORD}, advertise_auth_without_tls=True)
    with relay, box:
        from_base_template(scratch)
        created = shell(
            scratch,
            f"""
server = env["ir.mail_server"].create({{
    "name": "Legacy relay", "smtp_host": "{relay.host}", "smtp_port": {relay.port}, "smtp_encryption": "none",
    "smtp_user": "relay", "smtp_pass": "{RELAY_PASSWORD}",
}})
env.ref("account.email_template_edi_invoice").mail_server_id = server
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
env["ir.mail_server"].create({{
    "name": "Billing mailbox", "smtp_invoicing_mailbox": True, "sender_name": "Billing",
    "sender_email": "billing@upgrade.test", "smtp_user": "billing@upgrade.test", "smtp_pass": "{MAILBOX_PASSWORD}",
    "smtp_host": "{box.host}", "smtp_port": {box.port}, "smtp_encryption": "starttls", "sequence": 1,
}})
SUBJECT = "after install"
"""
            + SEND,
        )
        assert installed["clear_column"], "a core server's password is not the module's business"

        odoo_bin(scratch, "--stop-after-init", "-u", "smtp_invoicing")
        # one odoo-bin run: a mail through the relay (SEND) after the upgrade, then the uninstall
        upgraded = shell(
            scratch,
            'SUBJECT = "after upgrade"'
            + SEND
            + """
sent = {"template_server": template.mail_server_id.id, "server": server.id, "clear_column": bool(clear)}
env.cr.commit()
env["ir.module.module"].search([("name", "=", "smtp_invoicing")]).button_immediate_uninstall()
sent["state"] = env["ir.module.module"].search([("name", "=", "smtp_invoicing")]).state
print("RESULT:" + json.dumps(sent))
""",
        )
        assert upgraded.pop("state") == "uninstalled"
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
print("RESULT:" + json.dumps({**sent, "former": {"active": former.active, "from_filter": former.from_filter,
                                                 "password_back": password == MAILBOX_PASSWORD}}))
""".replace("MAILBOX_PASSWORD", repr(MAILBOX_PASSWORD)),
        )
    assert uninstalled["clear_column"]
    assert uninstalled["former"] == {"active": False, "from_filter": "billing@upgrade.test", "password_back": True}
    for step in (installed, upgraded, uninstalled):
        assert step["template_server"] == step["server"] == created["server"]
    subjects = [m.message["Subject"] for m in relay.messages]
    assert subjects[:4] == ["before install", "after install", "after upgrade", "after uninstall"]
    # the notification after uninstall went through the core relay, never the former mailbox
    assert len(relay.messages) == 5 and relay.messages[4].rcpt_tos == ["customer@client.test"]
    assert box.connections == 0
    assert [attempt[1:] for attempt in relay.auth_attempts] == [("relay", RELAY_PASSWORD)] * 5

"""Databases restored, renamed, duplicated and upgraded, with real odoo-bin runs on scratch databases.

The mailbox's password is bound to ``database.uuid``: a restore under another name keeps it,
Odoo's own *Duplicate* (a new uuid) cannot use it. Migration 18.0.1.2.0 gives core servers
back the clear password that 18.0.1.1.0 had encrypted, and the upgrade goes on to this version's
own model of mailboxes with the passwords it re-bound.
"""

import shutil
import subprocess
import tempfile

import pytest

from conftest import DB_NAME
from odoo_runs import (
    BASE_TEMPLATE,
    INSTALLED_TEMPLATE,
    PGUSER,
    dropdb,
    from_template,
    odoo_bin,
    odoo_db,
    previous_release,
    shell,
)
from smtp_servers import Pki, SmtpServer

LOGIN, PASSWORD = "billing@moves.test", "moves-mailbox-secret"
ORIGINAL, RESTORED, DUPLICATE = (f"{DB_NAME}_moves_{name}" for name in ("original", "restored", "duplicate"))
MIGRATED = f"{DB_NAME}_moves_migrated"

CREATE = """
env["ir.config_parameter"].set_param("smtp_invoicing.enabled", "True")
env["res.users"].with_context(no_reset_password=True).create({"name": "Billing", "login": LOGIN, "email": LOGIN})
box = env["smtp_invoicing.mailbox"].create({
    "name": "Billing mailbox", "sender_name": "Billing", "sender_email": LOGIN,
    "smtp_user": LOGIN, "smtp_pass": PASSWORD, "smtp_host": HOST, "smtp_port": PORT, "smtp_encryption": "starttls",
    "smtp_invoicing_ca_cert": CA,
})
print("RESULT:" + json.dumps({"id": box.id}))
"""

VERIFY = """
box = env["smtp_invoicing.mailbox"].search([("name", "=", "Billing mailbox")])
box.action_verify()
env.cr.commit()
env["smtp_invoicing.mailbox"]._cron_verify_mail_servers()
env.cr.commit()
env.invalidate_all()
print("RESULT:" + json.dumps({"state": box.verification_state, "message": box.verification_message}))
"""


@pytest.fixture(scope="module")
def moved():
    """The original database with a verified mailbox, plus a createdb -T copy and an Odoo duplicate of it."""
    data_dir = tempfile.mkdtemp(prefix="smtp_invoicing_moves_")
    pki = Pki()
    server = SmtpServer(mode="starttls", cert=pki.leaf(), users={LOGIN: PASSWORD}).start()
    try:
        for db in (ORIGINAL, RESTORED, DUPLICATE):
            dropdb(db)
        from_template(INSTALLED_TEMPLATE, ORIGINAL, data_dir)
        values = f"LOGIN, PASSWORD, HOST, PORT = {LOGIN!r}, {PASSWORD!r}, {server.host!r}, {server.port}\n"
        values += f"CA = {pki.ca_pem!r}\n"
        # one odoo-bin run: the mailbox committed, then verified as the scheduled action does
        original = shell(ORIGINAL, data_dir, values + CREATE + "env.cr.commit()\n" + VERIFY)
        subprocess.run(
            ["createdb", "-h", "127.0.0.1", "-U", PGUSER, "-T", ORIGINAL, RESTORED], check=True, capture_output=True
        )
        odoo_db("duplicate", ORIGINAL, DUPLICATE, data_dir=data_dir)
        yield {"data_dir": data_dir, "server": server, "original": original}
    finally:
        server.stop()
        pki.cleanup()
        for db in (ORIGINAL, RESTORED, DUPLICATE):
            dropdb(db)
        shutil.rmtree(data_dir, ignore_errors=True)


def test_database_restored_under_another_name_keeps_sending(moved):
    """A createdb -T copy under a new name keeps database.uuid: its mailbox still logs in and is Verified."""
    assert moved["original"]["state"] == "verified", moved["original"]
    attempts = len(moved["server"].auth_attempts)
    restored = shell(RESTORED, moved["data_dir"], VERIFY)
    assert restored["state"] == "verified", restored
    assert [attempt[1:] for attempt in moved["server"].auth_attempts[attempts:]] == [(LOGIN, PASSWORD)]


def test_odoo_duplicate_cannot_send_from_the_real_mailbox(moved):
    """Odoo's own duplicate gets a new database.uuid: the password cannot be decrypted and nothing logs in."""
    attempts = len(moved["server"].auth_attempts)
    duplicate = shell(DUPLICATE, moved["data_dir"], VERIFY)
    assert duplicate["state"] == "failed", duplicate
    assert "must be entered again" in duplicate["message"]
    assert len(moved["server"].auth_attempts) == attempts


# run by the previous release (18.0.1.2.0, mailboxes inside ir.mail_server), faking what 18.0.1.1.0 stored
LEGACY = """
from odoo.addons.smtp_invoicing.lib import crypto, keys
from odoo.tools import config
box = keys.secret_box(config.get(crypto.CONFIG_OPTION), config["data_dir"])
company = env.ref("base.main_company")
env["res.users"].with_context(no_reset_password=True).create({"name": "Billing", "login": LOGIN, "email": LOGIN})
core = env["ir.mail_server"].create({"name": "Core relay", "smtp_host": "127.0.0.1", "smtp_port": 25})
mailbox = env["ir.mail_server"].create({
    "name": "Billing mailbox", "smtp_invoicing_mailbox": True, "sender_name": "Billing", "sender_email": LOGIN,
    "smtp_user": LOGIN, "smtp_host": "127.0.0.1", "smtp_port": 587, "smtp_encryption": "starttls",
})
env.flush_all()
# what 18.0.1.1.0 stored: every password encrypted, bound to the database name; a company on every server
for server, secret in ((core, "core-legacy-secret"), (mailbox, PASSWORD)):
    token = box.encrypt(secret, f"{env.cr.dbname}:ir.mail_server:{server.id}")
    env.cr.execute(
        "UPDATE ir_mail_server SET smtp_invoicing_password_enc = %s, smtp_pass = NULL, "
        "smtp_invoicing_company_id = %s, from_filter = NULL WHERE id = %s",
        [token, company.id, server.id],
    )
env.cr.execute("UPDATE ir_module_module SET latest_version = '18.0.1.1.0' WHERE name = 'smtp_invoicing'")
print("RESULT:" + json.dumps({"core": core.id, "mailbox": mailbox.id}))
"""

AFTER_MIGRATION = """
env.cr.execute("SELECT id, smtp_pass, from_filter FROM ir_mail_server WHERE id IN %s", [(IDS["core"], IDS["mailbox"])])
rows = {row[0]: list(row[1:]) for row in env.cr.fetchall()}
env.cr.execute(
    "SELECT mail_server_id, smtp_invoicing_password_enc IS NOT NULL, smtp_invoicing_company_id IS NOT NULL "
    "FROM smtp_invoicing_mailbox WHERE mail_server_id IN %s", [(IDS["core"], IDS["mailbox"])]
)
mailbox_rows = {row[0]: list(row[1:]) for row in env.cr.fetchall()}
mailbox = env["smtp_invoicing.mailbox"].search([("mail_server_id", "=", IDS["mailbox"])])
print("RESULT:" + json.dumps({
    "core": rows[IDS["core"]], "core_mailbox": mailbox_rows.get(IDS["core"]),
    "mailbox": rows[IDS["mailbox"]] + mailbox_rows[IDS["mailbox"]],
    "mailbox_password": mailbox._smtp_invoicing_password(),
}))
"""


@pytest.mark.timeout(600)  # an install of the previous release and three odoo-bin runs
def test_migration_gives_core_servers_their_password_back():
    """Upgrading from 18.0.1.1.0: core servers get their clear password back and no mailbox (no company, no
    encrypted copy); mailboxes' passwords are re-bound to database.uuid and their from_filter is their sender."""
    data_dir = tempfile.mkdtemp(prefix="smtp_invoicing_migration_")
    previous = tempfile.mkdtemp(prefix="smtp_invoicing_previous_")
    dropdb(MIGRATED)
    try:
        previous_release(previous)
        from_template(BASE_TEMPLATE, MIGRATED, data_dir)
        odoo_bin(MIGRATED, data_dir, "--stop-after-init", "-i", "smtp_invoicing", addons_root=previous)
        ids = shell(MIGRATED, data_dir, f"LOGIN, PASSWORD = {LOGIN!r}, {PASSWORD!r}\n" + LEGACY, addons_root=previous)
        odoo_bin(MIGRATED, data_dir, "--stop-after-init", "-u", "smtp_invoicing")
        after = shell(MIGRATED, data_dir, f"IDS = {ids!r}\n" + AFTER_MIGRATION)
    finally:
        dropdb(MIGRATED)
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(previous, ignore_errors=True)
    assert after["core"] == ["core-legacy-secret", None]
    assert after["core_mailbox"] is None
    # the server behind the mailbox keeps no clear password; the mailbox has it encrypted, and its company
    assert after["mailbox"] == [None, LOGIN, True, True]
    assert after["mailbox_password"] == PASSWORD

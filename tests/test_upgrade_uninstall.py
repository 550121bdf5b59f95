"""Install, upgrade and uninstall with real odoo-bin runs: servers, passwords and template links survive.

One scratch database, a copy of the cached template with base, mail and account (the one
scripts/test.sh builds, see ensure_template_db in scripts/bootstrap.sh), and an outgoing
server whose password is in clear (core's way) and which an email template uses. After
each step a mail is sent through that server to a loopback SMTP server, which checks the
password.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

import odoo

from conftest import DB_NAME, ODOO_SRC, ROOT
from smtp_servers import SmtpServer

RELAY_PASSWORD = "relay-upgrade-secret"
SCRATCH_DB = f"{DB_NAME}_upgrade"
BASE_TEMPLATE = f"{DB_NAME}_template_base"  # as named by scripts/test.sh

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


def odoo_bin(data_dir, *args, stdin=None):
    command = [
        sys.executable,
        os.path.join(ODOO_SRC, "odoo-bin"),
        *args[:1],
        "--addons-path",
        f"{ODOO_SRC}/odoo/addons,{ROOT}",
        "--db_host",
        "127.0.0.1",
        "--db_user",
        os.environ.get("PGUSER", "root"),
        "--data-dir",
        data_dir,
        "-d",
        SCRATCH_DB,
        "--without-demo",
        "all",
        "--log-level",
        "warn",
        "--max-cron-threads",
        "0",
        "--http-port",
        "0",
        *args[1:],
    ]
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def from_base_template(data_dir):
    """Create SCRATCH_DB as a copy of BASE_TEMPLATE, which is built first if missing or outdated."""
    template_data_dir = odoo.tools.config["data_dir"]  # where scripts/test.sh keeps the templates
    done = subprocess.run(
        [
            "bash",
            "-c",
            'source "$1" && ensure_template_db "$2" "$3" "$BASE_MODULES" && copy_template_db "$2" "$4" "$3" "$5"',
            "_",
            os.path.join(ROOT, "scripts", "bootstrap.sh"),
            BASE_TEMPLATE,
            template_data_dir,
            SCRATCH_DB,
            data_dir,
        ],
        env={**os.environ, "ODOO_SRC": ODOO_SRC, "SMTP_INVOICING_VENV": sys.prefix},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def shell(data_dir, script):
    output = odoo_bin(data_dir, "shell", "--no-http", stdin="import json\n" + script + "\nenv.cr.commit()\n")
    results = [line for line in output.splitlines() if line.startswith("RESULT:")]
    assert results, output[-3000:]
    return json.loads(results[-1][len("RESULT:") :])


def dropdb():
    subprocess.run(
        ["dropdb", "-h", "127.0.0.1", "-U", os.environ.get("PGUSER", "root"), "--if-exists", SCRATCH_DB],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def scratch():
    data_dir = tempfile.mkdtemp(prefix="smtp_invoicing_upgrade_")
    dropdb()
    try:
        yield data_dir
    finally:
        dropdb()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.mark.timeout(600)  # seven odoo-bin runs (35 s on an idle machine), the template's install if missing
def test_servers_passwords_and_template_links_survive_install_upgrade_uninstall(scratch):
    """A clear-password server used by a template sends after install, upgrade and uninstall of the module."""
    with SmtpServer(mode="plain", users={"relay": RELAY_PASSWORD}, advertise_auth_without_tls=True) as relay:
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
        installed = shell(scratch, 'SUBJECT = "after install"' + SEND)
        assert not installed["clear_column"], "install must encrypt the clear password"

        odoo_bin(scratch, "--stop-after-init", "-u", "smtp_invoicing")
        upgraded = shell(scratch, 'SUBJECT = "after upgrade"' + SEND)

        uninstalled_step = shell(
            scratch,
            """
env["ir.module.module"].search([("name", "=", "smtp_invoicing")]).button_immediate_uninstall()
print("RESULT:" + json.dumps({"state": env["ir.module.module"].search([("name", "=", "smtp_invoicing")]).state}))
""",
        )
        assert uninstalled_step["state"] == "uninstalled"
        uninstalled = shell(scratch, 'SUBJECT = "after uninstall"' + SEND)
        assert uninstalled["clear_column"], "uninstall must give core its clear password back"

    for step in (installed, upgraded, uninstalled):
        assert step["template_server"] == step["server"] == created["server"]
    assert [m.message["Subject"] for m in relay.messages] == [
        "before install",
        "after install",
        "after upgrade",
        "after uninstall",
    ]
    assert [attempt[1:] for attempt in relay.auth_attempts] == [("relay", RELAY_PASSWORD)] * 4

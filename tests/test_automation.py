"""The README's XML-RPC automation snippet works against a running Odoo."""

import contextlib
import io
import os
import re
from unittest.mock import patch

import odoo
from odoo.tests import HttpCase

from odoo.addons.mail.tests.common import mail_new_test_user

from common import MAILBOX_LOGIN, PASSWORD
from smtp_servers import Pki, SmtpServer

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def snippet():
    with open(README, encoding="utf-8") as handle:
        text = handle.read()
    block = re.search(r"<!-- automation snippet: start -->\n```python\n(.*?)```", text, re.S)
    assert block, "README.md lost its automation snippet"
    return block.group(1)


class TestAutomationSnippet(HttpCase):
    def test_readme_snippet_creates_verifies_and_assigns_a_mailbox(self):
        """Run as published (pointed at this server and a loopback SMTP server): verified, and chosen for invoices."""
        pki = Pki()
        self.addCleanup(pki.cleanup)
        server = SmtpServer(mode="starttls", cert=pki.leaf(), users={MAILBOX_LOGIN: PASSWORD})
        server.__enter__()
        self.addCleanup(server.__exit__, None, None, None)
        company = self.env.ref("base.main_company")
        mail_new_test_user(
            self.env, login=MAILBOX_LOGIN, email=MAILBOX_LOGIN, company_id=company.id, groups="base.group_user"
        )
        self.env["ir.config_parameter"].sudo().set_param("smtp_invoicing.enabled", "True")
        code = snippet()
        ca_field = f'"smtp_authentication": "login", "smtp_invoicing_ca_cert": {pki.ca_pem!r},'
        replacements = {
            '"http://127.0.0.1:8069"': repr(f"http://127.0.0.1:{odoo.tools.config['http_port']}"),
            '"smtp_invoicing_demo"': repr(self.env.cr.dbname),
            '"smtp.gmail.com"': repr(server.host),
            '"smtp_port": 587': f'"smtp_port": {server.port}',
            # the loopback server's certificate comes from the test CA
            '"smtp_authentication": "login",': ca_field,
            '"billing@acme.com"': repr(MAILBOX_LOGIN),
            '"abcd efgh ijkl mnop"': repr(PASSWORD),
        }
        for old, new in replacements.items():
            self.assertIn(old, code)
            code = code.replace(old, new)

        def run_cron(_seconds):
            # no cron worker in tests: the scheduled action runs where the snippet waits
            self.env["smtp_invoicing.mailbox"]._cron_verify_mail_servers()

        output = io.StringIO()
        with patch("time.sleep", run_cron), contextlib.redirect_stdout(output):
            exec(compile(code, "README.md", "exec"), {})

        mailbox = self.env["smtp_invoicing.mailbox"].search([("name", "=", "Invoices")])
        self.assertEqual(mailbox.verification_state, "verified", output.getvalue())
        self.assertTrue(output.getvalue().startswith("verified"))
        self.assertEqual(self.env.ref("account.email_template_edi_invoice").mail_server_id, mailbox.mail_server_id)

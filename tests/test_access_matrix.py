"""Who may read or change own-mailbox settings, through the ORM and through JSON-RPC, for every role."""

import json

from odoo.api import call_kw
from odoo.exceptions import AccessError, UserError
from odoo.tests import HttpCase
from odoo.tools import mute_logger

from odoo.addons.mail.tests.common import mail_new_test_user

from common import MAILBOX_LOGIN, PASSWORD

ROLES = {
    "portal": "base.group_portal",
    "internal": "base.group_user",
    "invoicing": "base.group_user,account.group_account_invoice",
    "accountant": "base.group_user,account.group_account_manager",
    "admin": "base.group_user,base.group_system",
    "other_company_admin": "base.group_user,base.group_system",
}
DENIED = ("portal", "internal", "invoicing", "accountant")
EXPORT_REFUSAL = "You don't have the rights to export data."


class TestAccessMatrix(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.env.ref("base.main_company")
        cls.other_company = cls.env["res.company"].create({"name": "Other Company"})
        mail_new_test_user(
            cls.env,
            login=MAILBOX_LOGIN,
            email=MAILBOX_LOGIN,
            company_id=cls.company.id,
            groups="base.group_user,account.group_account_invoice",
        )
        cls.users = {}
        for role, groups in ROLES.items():
            company = cls.other_company if role == "other_company_admin" else cls.company
            cls.users[role] = mail_new_test_user(
                cls.env,
                login=f"{role}@access.test",
                email=f"{role}@access.test",
                groups=groups,
                company_id=company.id,
                company_ids=[(6, 0, company.ids)],
            )
        cls.users["public"] = cls.env.ref("base.public_user")
        cls.mailbox = cls.env["ir.mail_server"].create(
            {
                "name": "Invoices mailbox",
                "smtp_invoicing_mailbox": True,
                "sender_name": "ACME Billing",
                "sender_email": MAILBOX_LOGIN,
                "smtp_user": MAILBOX_LOGIN,
                "smtp_pass": PASSWORD,
                "smtp_host": "127.0.0.1",
                "smtp_port": 587,
                "smtp_encryption": "starttls",
                "smtp_authentication": "login",
                "smtp_invoicing_company_id": cls.company.id,
            }
        )
        cls.mailbox.write({"smtp_pass": PASSWORD + "-changed"})  # a change the chatter must not reveal

    def calls(self):
        """(label, model, method, args, kwargs) of every way to read or change a mailbox."""
        mailbox_id = self.mailbox.id
        return [
            (
                "search_read",
                "ir.mail_server",
                "search_read",
                [[]],
                {"fields": ["name", "smtp_user", "smtp_pass", "smtp_invoicing_password_enc"]},
            ),
            (
                "read",
                "ir.mail_server",
                "read",
                [[mailbox_id], ["smtp_pass", "smtp_user", "smtp_invoicing_ca_cert"]],
                {},
            ),
            (
                "web_read",
                "ir.mail_server",
                "web_read",
                [[mailbox_id]],
                {
                    "specification": {
                        "smtp_pass": {},
                        "smtp_invoicing_password_set": {},
                        "message_ids": {"fields": {"body": {}}},
                    }
                },
            ),
            ("read_group", "ir.mail_server", "read_group", [[], ["verification_state"], ["verification_state"]], {}),
            ("export_data", "ir.mail_server", "export_data", [[mailbox_id], ["smtp_pass", "smtp_user", "name"]], {}),
            (
                "onchange",
                "ir.mail_server",
                "onchange",
                [
                    [mailbox_id],
                    {"smtp_invoicing_preset": "gmail"},
                    ["smtp_invoicing_preset"],
                    {"smtp_pass": {}, "smtp_host": {}, "smtp_user": {}},
                ],
                {},
            ),
            ("messages", "mail.message", "search_read", [[("model", "=", "ir.mail_server")]], {"fields": ["body"]}),
            ("tracking", "mail.tracking.value", "search_read", [[]], {"fields": ["old_value_char", "new_value_char"]}),
            ("oracle_right", "ir.mail_server", "search_count", [[("smtp_pass", "=", PASSWORD + "-changed")]], {}),
            ("oracle_wrong", "ir.mail_server", "search_count", [[("smtp_pass", "=", "not-the-password")]], {}),
            ("write", "ir.mail_server", "write", [[mailbox_id], {"smtp_host": "evil.example"}], {}),
            ("create", "ir.mail_server", "create", [{"name": "Rogue", "smtp_host": "evil.example"}], {}),
            ("settings", "res.config.settings", "create", [{"smtp_invoicing_enabled": False}], {}),
            (
                "parameters",
                "ir.config_parameter",
                "search_read",
                [[("key", "like", "smtp_invoicing.")]],
                {"fields": ["key", "value"]},
            ),
        ]

    def assertNoSecret(self, text, label):
        for secret in (PASSWORD, PASSWORD + "-changed"):
            self.assertNotIn(secret, text, label)

    @mute_logger("odoo.osv.expression")  # "Non-stored field ir.mail_server.smtp_pass cannot be searched"
    def test_orm_access_matrix(self):
        """ORM: only a Settings administrator of the mailbox's company reads or changes it; nobody gets the password."""
        failures, self.oracle = [], {}
        for role, user in self.users.items():
            for label, model, method, args, kwargs in self.calls():
                env = self.env(user=user)
                try:
                    with self.env.cr.savepoint():
                        result = call_kw(env[model], method, args, kwargs)
                except AccessError as error:
                    outcome, text = "denied", str(error)
                except UserError as error:
                    # core refuses export_data to users without the export group this way
                    outcome = "denied" if label == "export_data" and EXPORT_REFUSAL in str(error) else "error"
                    text = f"{type(error).__name__}: {error}"
                except Exception as error:
                    outcome, text = "error", f"{type(error).__name__}: {error}"
                else:
                    outcome, text = "ok", repr(result)
                try:
                    self.assertNoSecret(text, f"{role} {label}")
                    self.check_outcome(role, label, outcome, text)
                except AssertionError as failure:
                    failures.append(str(failure))
        self.assertFalse(failures, "\n".join(failures))

    def check_outcome(self, role, label, outcome, text):
        if label.startswith("oracle"):
            # searching on the password must not tell a right guess from a wrong one
            self.oracle.setdefault(role, set()).add((outcome, text))
            if label == "oracle_wrong":
                self.assertEqual(len(self.oracle[role]), 1, f"{role}: the password can be searched for")
            return
        if role in DENIED or role == "public":
            if label in ("messages", "tracking"):
                self.assertNotIn("Invoices mailbox", text)
                return
            self.assertEqual(outcome, "denied", f"{role} may {label}: {text[:300]}")
        elif role == "other_company_admin":
            if label in ("read", "web_read", "export_data", "onchange", "write"):
                self.assertEqual(outcome, "denied", f"{role} may {label} another company's mailbox: {text[:300]}")
            if label == "search_read":
                self.assertNotIn("Invoices mailbox", text)
        elif role == "admin" and label not in ("tracking", "messages"):
            self.assertEqual(outcome, "ok", f"admin cannot {label}: {text[:300]}")

    def rpc(self, model, method, args, kwargs):
        response = self.url_open(
            "/web/dataset/call_kw",
            data=json.dumps(
                {
                    "jsonrpc": "2.0",
                    "method": "call",
                    "id": 1,
                    "params": {"model": model, "method": method, "args": args, "kwargs": kwargs},
                }
            ),
            headers={"Content-Type": "application/json"},
        )
        self.assertEqual(response.status_code, 200)
        return response.json(), response.text

    @mute_logger("odoo.osv.expression")
    def test_jsonrpc_access_matrix(self):
        """JSON-RPC: the same matrix through /web/dataset/call_kw; no response body ever holds the password."""
        failures, self.oracle = [], {}
        for role, user in self.users.items():
            if role == "public":
                self.authenticate(None, None)
            else:
                self.authenticate(user.login, user.login)
            for label, model, method, args, kwargs in self.calls():
                payload, text = self.rpc(model, method, args, kwargs)
                if "error" in payload:
                    # only a refusal counts as denied (an access error, core's export refusal, no session
                    # for the public user); any other error, a crash included, is an error
                    error = payload["error"].get("data", {})
                    denied = (
                        error.get("name") == "odoo.exceptions.AccessError"
                        or (label == "export_data" and EXPORT_REFUSAL in error.get("message", ""))
                        or (role == "public" and error.get("name") == "odoo.http.SessionExpiredException")
                    )
                    outcome, detail = "denied" if denied else "error", json.dumps(payload["error"])
                else:
                    outcome, detail = "ok", json.dumps(payload["result"])
                try:
                    self.assertNoSecret(text, f"{role} {label}")
                    self.check_outcome(role, label, outcome, detail)
                except AssertionError as failure:
                    failures.append(str(failure))
        self.assertFalse(failures, "\n".join(failures))

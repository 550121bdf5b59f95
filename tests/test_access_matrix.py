"""Who may read or change own-mailbox settings, through the ORM and through JSON-RPC, for every role:
the mailbox (``smtp_invoicing.mailbox``) and the outgoing server behind it (``ir.mail_server``)."""

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
        cls.mailbox = cls.env["smtp_invoicing.mailbox"].create(
            {
                "name": "Invoices mailbox",
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
        """(label, model, method, args, kwargs) of every way to read or change a mailbox or its server."""
        mailbox_id, server_id = self.mailbox.id, self.mailbox.mail_server_id.id
        return [
            (
                "search_read",
                "smtp_invoicing.mailbox",
                "search_read",
                [[]],
                {"fields": ["name", "smtp_user", "smtp_pass", "smtp_invoicing_password_enc"]},
            ),
            (
                "read",
                "smtp_invoicing.mailbox",
                "read",
                [[mailbox_id], ["smtp_pass", "smtp_user", "smtp_invoicing_ca_cert"]],
                {},
            ),
            (
                "web_read",
                "smtp_invoicing.mailbox",
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
            (
                "read_group",
                "smtp_invoicing.mailbox",
                "read_group",
                [[], ["verification_state"], ["verification_state"]],
                {},
            ),
            (
                "export_data",
                "smtp_invoicing.mailbox",
                "export_data",
                [[mailbox_id], ["smtp_pass", "smtp_user", "name"]],
                {},
            ),
            (
                "onchange",
                "smtp_invoicing.mailbox",
                "onchange",
                [
                    [mailbox_id],
                    {"smtp_invoicing_preset": "gmail"},
                    ["smtp_invoicing_preset"],
                    {"smtp_pass": {}, "smtp_host": {}, "smtp_user": {}},
                ],
                {},
            ),
            (
                "messages",
                "mail.message",
                "search_read",
                [[("model", "in", ("smtp_invoicing.mailbox", "ir.mail_server"))]],
                {"fields": ["body"]},
            ),
            ("tracking", "mail.tracking.value", "search_read", [[]], {"fields": ["old_value_char", "new_value_char"]}),
            (
                "oracle_right",
                "smtp_invoicing.mailbox",
                "search_count",
                [[("smtp_pass", "=", PASSWORD + "-changed")]],
                {},
            ),
            ("oracle_wrong", "smtp_invoicing.mailbox", "search_count", [[("smtp_pass", "=", "not-the-password")]], {}),
            ("write", "smtp_invoicing.mailbox", "write", [[mailbox_id], {"smtp_host": "evil.example"}], {}),
            (
                "create",
                "smtp_invoicing.mailbox",
                "create",
                [
                    {
                        "name": "Rogue",
                        "sender_email": MAILBOX_LOGIN,
                        "smtp_user": MAILBOX_LOGIN,
                        "smtp_host": "evil.example",
                        "smtp_port": 587,
                        "smtp_encryption": "starttls",
                        "smtp_authentication": "login",
                    }
                ],
                {},
            ),
            # the server behind the mailbox, through core's model
            (
                "server_search_read",
                "ir.mail_server",
                "search_read",
                [[]],
                {"fields": ["name", "smtp_user", "smtp_pass"]},
            ),
            ("server_read", "ir.mail_server", "read", [[server_id], ["smtp_pass", "smtp_user", "name"]], {}),
            ("server_export_data", "ir.mail_server", "export_data", [[server_id], ["smtp_pass", "name"]], {}),
            (
                "server_oracle_right",
                "ir.mail_server",
                "search_count",
                [[("id", "=", server_id), ("smtp_pass", "=", PASSWORD + "-changed")]],
                {},
            ),
            (
                "server_oracle_wrong",
                "ir.mail_server",
                "search_count",
                [[("id", "=", server_id), ("smtp_pass", "=", "not-the-password")]],
                {},
            ),
            ("server_write", "ir.mail_server", "write", [[server_id], {"smtp_host": "evil.example"}], {}),
            ("server_create", "ir.mail_server", "create", [{"name": "Rogue", "smtp_host": "evil.example"}], {}),
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

    @mute_logger("odoo.osv.expression")  # "Non-stored field smtp_invoicing.mailbox.smtp_pass cannot be searched"
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
                    outcome = "denied" if label.endswith("export_data") and EXPORT_REFUSAL in str(error) else "error"
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
        if "oracle" in label:
            # searching on the password must not tell a right guess from a wrong one
            model = label.removesuffix("_right").removesuffix("_wrong")
            self.oracle.setdefault((role, model), set()).add((outcome, text))
            if label.endswith("_wrong"):
                self.assertEqual(
                    len(self.oracle[role, model]), 1, f"{role}: the password can be searched for ({label})"
                )
            return
        if role in DENIED or role == "public":
            if label in ("messages", "tracking"):
                self.assertNotIn("Invoices mailbox", text)
                return
            self.assertEqual(outcome, "denied", f"{role} may {label}: {text[:300]}")
        elif role == "other_company_admin":
            if label in (
                "read",
                "web_read",
                "export_data",
                "onchange",
                "write",
                "server_read",
                "server_export_data",
                "server_write",
            ):
                self.assertEqual(outcome, "denied", f"{role} may {label} another company's mailbox: {text[:300]}")
            if label in ("search_read", "server_search_read", "read_group", "messages", "tracking"):
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
                        or (label.endswith("export_data") and EXPORT_REFUSAL in error.get("message", ""))
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

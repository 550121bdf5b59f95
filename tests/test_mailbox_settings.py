"""SMTP settings: presets, validation, the licensed user rule, secrets and access."""

import os
from unittest.mock import patch

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import Form
from odoo.tools import mute_logger

from odoo.addons.mail.tests.common import mail_new_test_user
from odoo.addons.smtp_invoicing.lib import crypto
from odoo.addons.smtp_invoicing.models.smtp_invoicing_mailbox_password import secret_box

from common import MAILBOX_LOGIN, PASSWORD, MailboxCase


class TestMailboxSettings(MailboxCase):
    def test_gmail_preset_fills_host_port_protocol(self):
        """Choosing the Gmail preset fills smtp.gmail.com, 587 and STARTTLS."""
        action = self.env.ref("smtp_invoicing.smtp_invoicing_mailbox_action")
        form = Form(
            self.env["smtp_invoicing.mailbox"].with_context(action.context and eval(action.context)),
            view="smtp_invoicing.smtp_invoicing_mailbox_view_form",
        )
        form.smtp_invoicing_preset = "gmail"
        self.assertEqual(
            (form.smtp_host, form.smtp_port, form.smtp_invoicing_protocol), ("smtp.gmail.com", 587, "starttls")
        )
        form.smtp_invoicing_preset = "ovh"
        self.assertEqual((form.smtp_host, form.smtp_port, form.smtp_invoicing_protocol), ("ssl0.ovh.net", 465, "ssl"))
        form.name = "Gmail"
        form.sender_name = "ACME Billing"
        form.sender_email = MAILBOX_LOGIN
        form.smtp_user = MAILBOX_LOGIN
        form.smtp_pass = PASSWORD
        mailbox = form.save()
        self.assertEqual(mailbox._name, "smtp_invoicing.mailbox")
        self.assertEqual((mailbox.mail_server_id.smtp_host, mailbox.mail_server_id.smtp_port), ("ssl0.ovh.net", 465))
        self.assertEqual(mailbox.verification_state, "draft")
        self.assertTrue(mailbox.smtp_invoicing_password_set)

    def test_bad_input_is_refused_with_clear_messages(self):
        """Invalid host, port, sender email, protocol or multi-line sender name are refused at save."""
        cases = [
            ({"smtp_host": "http://smtp.gmail.com"}, "not a valid server name"),
            ({"smtp_host": "smtp .gmail.com"}, "not a valid server name"),
            ({"smtp_port": 70000}, "between 1 and 65535"),
            ({"smtp_port": 0}, "between 1 and 65535"),
            ({"sender_email": "billing"}, "not a valid sender email"),
            ({"sender_email": "a@x.test, b@x.test"}, "not a valid sender email"),
            ({"sender_email": "billing@invoicing.test\r\nBcc: victim@x.test"}, "not a valid sender email"),
            ({"sender_name": "ACME\r\nBcc: victim@x.test"}, "must fit on one line"),
            ({"smtp_encryption": "none"}, "encrypted protocol"),
        ]
        for values, message in cases:
            with self.subTest(values=values), self.assertRaisesRegex(ValidationError, message):
                self.create_mailbox(**values)

    def test_user_name_must_be_an_active_internal_user(self):
        """The user name must match the login or email of an active internal user of the company."""
        portal = mail_new_test_user(
            self.env,
            login="portal@invoicing.test",
            email="portal@invoicing.test",
            groups="base.group_portal",
            company_id=self.company.id,
        )
        archived = mail_new_test_user(
            self.env, login="gone@invoicing.test", email="gone@invoicing.test", company_id=self.company.id
        )
        archived.active = False
        other_company = self.setup_other_company()["company"]
        foreign = mail_new_test_user(
            self.env,
            login="other@invoicing.test",
            email="other@invoicing.test",
            company_id=other_company.id,
            company_ids=[(6, 0, other_company.ids)],
        )
        for user_name in ("nobody@invoicing.test", portal.login, archived.login, foreign.login, ""):
            with self.subTest(user_name=user_name), self.assertRaisesRegex(ValidationError, "active internal user"):
                self.create_mailbox(smtp_user=user_name)
        mailbox = self.create_mailbox(smtp_user="  Billing@Invoicing.TEST ")
        self.assertEqual(mailbox._smtp_invoicing_licensed_user(), self.mailbox_user)

    def test_password_column_holds_no_plaintext(self):
        """The password is stored only encrypted, and no read returns it, even to an administrator."""
        mailbox = self.create_mailbox()
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT server.smtp_pass, mailbox.smtp_invoicing_password_enc"
            " FROM smtp_invoicing_mailbox mailbox JOIN ir_mail_server server ON server.id = mailbox.mail_server_id"
            " WHERE mailbox.id = %s",
            [mailbox.id],
        )
        clear_column, token = self.env.cr.fetchone()
        self.assertFalse(clear_column)
        self.assertTrue(token)
        self.assertNotIn(PASSWORD, token)
        mailbox.invalidate_recordset()
        self.assertFalse(mailbox.read(["smtp_pass"])[0]["smtp_pass"])
        self.assertFalse(mailbox.smtp_pass)
        self.assertFalse(mailbox.mail_server_id.smtp_pass)
        exported = mailbox.export_data(["smtp_pass", "smtp_invoicing_password_enc"])["datas"][0]
        self.assertNotIn(PASSWORD, str(exported))
        self.assertEqual(mailbox._smtp_invoicing_password(), PASSWORD)

    def test_ciphertext_is_bound_to_its_row(self):
        """A ciphertext copied into another setting's row does not decrypt there."""
        first = self.create_mailbox()
        second = self.create_mailbox(name="Reminders", smtp_pass="other-secret")
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE smtp_invoicing_mailbox SET smtp_invoicing_password_enc = "
            "(SELECT smtp_invoicing_password_enc FROM smtp_invoicing_mailbox WHERE id = %s) WHERE id = %s",
            [first.id, second.id],
        )
        second.invalidate_recordset()
        with (
            mute_logger("odoo.addons.smtp_invoicing.models.smtp_invoicing_mailbox_password"),
            self.assertRaisesRegex(UserError, "must be entered again"),
        ):
            second._smtp_invoicing_password()

    def test_ciphertext_is_bound_to_the_database_and_the_server(self):
        """The secret is bound to ``database.uuid`` and the id of the server behind the mailbox, as secrets
        saved before mailboxes had a model of their own: they still decrypt, and nothing else does."""
        mailbox = self.create_mailbox()
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT smtp_invoicing_password_enc FROM smtp_invoicing_mailbox WHERE id = %s", [mailbox.id]
        )
        token = self.env.cr.fetchone()[0]
        uuid = self.env["ir.config_parameter"].sudo().get_param("database.uuid")
        box = secret_box()
        self.assertEqual(box.decrypt(token, f"{uuid}:ir.mail_server:{mailbox.mail_server_id.id}"), PASSWORD)
        other_server = self.env["ir.mail_server"].create({"name": "Other", "smtp_host": "127.0.0.1"})
        for context in (
            f"{self.env.cr.dbname}:ir.mail_server:{mailbox.mail_server_id.id}",
            f"{uuid}:ir.mail_server:{other_server.id}",
            f"{uuid}:smtp_invoicing.mailbox:{mailbox.id}",
        ):
            with self.subTest(context=context), self.assertRaises(crypto.SecretError):
                box.decrypt(token, context)

    def test_copy_never_duplicates_the_password(self):
        """Duplicating a setting copies neither its password nor its verification."""
        mailbox = self.create_mailbox()
        copy = mailbox.copy()
        self.assertFalse(copy.smtp_invoicing_password_set)
        self.assertEqual(copy.verification_state, "draft")

    def test_empty_password_write_keeps_the_saved_one(self):
        """Saving the form with the blank password field never erases the saved password."""
        mailbox = self.create_mailbox()
        mailbox.write({"smtp_pass": False, "name": "Renamed"})
        self.assertEqual(mailbox._smtp_invoicing_password(), PASSWORD)
        mailbox.smtp_pass = "new-secret"
        self.assertEqual(mailbox._smtp_invoicing_password(), "new-secret")

    def test_key_from_environment_and_missing_key(self):
        """SMTP_INVOICING_KEY is used when set; without the key the password must be entered again."""
        from cryptography.fernet import Fernet

        key = Fernet.generate_key().decode()
        with patch.dict(os.environ, {"SMTP_INVOICING_KEY": key}):
            mailbox = self.create_mailbox()
            self.assertEqual(mailbox._smtp_invoicing_password(), PASSWORD)
        with (
            mute_logger("odoo.addons.smtp_invoicing.models.smtp_invoicing_mailbox_password"),
            self.assertRaisesRegex(UserError, "must be entered again"),
        ):
            mailbox._smtp_invoicing_password()
        rotated = f"{Fernet.generate_key().decode()},{key}"
        with patch.dict(os.environ, {"SMTP_INVOICING_KEY": rotated}):
            self.assertEqual(mailbox._smtp_invoicing_password(), PASSWORD)

    def test_conversion_encrypts_and_release_restores_the_password(self):
        """A core server turned into an own mailbox has its clear password encrypted; released, it gets it back."""
        legacy = self.env["ir.mail_server"].create(
            {
                "name": "Legacy",
                "smtp_host": "127.0.0.1",
                "smtp_port": 587,
                "smtp_encryption": "starttls",
                "smtp_authentication": "login",
                "smtp_user": MAILBOX_LOGIN,
                "smtp_pass": "legacy-secret",
            }
        )
        self.env.flush_all()
        self.env.cr.execute("SELECT smtp_pass FROM ir_mail_server WHERE id = %s", [legacy.id])
        self.assertEqual(self.env.cr.fetchone()[0], "legacy-secret")
        servers_before = self.env["ir.mail_server"].with_context(active_test=False).search_count([])
        legacy.action_smtp_invoicing_convert()
        # a mailbox on the existing server, not a new server
        mailbox = legacy.smtp_invoicing_mailbox_ids
        self.assertEqual(len(mailbox), 1)
        self.assertEqual(mailbox.mail_server_id, legacy)
        self.assertEqual(self.env["ir.mail_server"].with_context(active_test=False).search_count([]), servers_before)
        self.env.flush_all()
        self.env.cr.execute("SELECT smtp_pass, from_filter FROM ir_mail_server WHERE id = %s", [legacy.id])
        self.assertEqual(self.env.cr.fetchone(), (None, MAILBOX_LOGIN))
        self.assertTrue(mailbox.smtp_invoicing_password_set)
        self.assertEqual(mailbox._smtp_invoicing_password(), "legacy-secret")
        self.assertEqual(mailbox._smtp_invoicing_release_passwords(), 1)
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT server.smtp_pass, mailbox.smtp_invoicing_password_enc"
            " FROM smtp_invoicing_mailbox mailbox JOIN ir_mail_server server ON server.id = mailbox.mail_server_id"
            " WHERE mailbox.id = %s",
            [mailbox.id],
        )
        self.assertEqual(self.env.cr.fetchone(), ("legacy-secret", None))
        self.assertEqual(legacy.smtp_pass, "legacy-secret")


class TestMailboxAccess(MailboxCase):
    def test_invoicing_user_cannot_read_settings_or_secrets(self):
        """An invoicing user can neither read, search, write nor create SMTP settings: neither the
        mailbox nor the server behind it."""
        mailbox = self.create_mailbox()
        env = self.env(user=self.mailbox_user)
        for model, record_id, secret in (
            ("smtp_invoicing.mailbox", mailbox.id, "smtp_invoicing_password_enc"),
            ("ir.mail_server", mailbox.mail_server_id.id, "smtp_pass"),
        ):
            with self.subTest(model=model):
                with self.assertRaises(AccessError):
                    env[model].search([])
                with self.assertRaises(AccessError):
                    env[model].browse(record_id).read(["smtp_user", secret])
                with self.assertRaises(AccessError):
                    env[model].browse(record_id).write({"smtp_host": "evil.example"})
                with self.assertRaises(AccessError):
                    env[model].create({"name": "x", "smtp_host": "127.0.0.1"})

    def test_company_rule_hides_other_companies_mailboxes(self):
        """An administrator of company B does not see company A's mailboxes."""
        mailbox = self.create_mailbox()
        other_company = self.setup_other_company()["company"]
        admin_b = mail_new_test_user(
            self.env,
            login="admin-b@invoicing.test",
            groups="base.group_system",
            company_id=other_company.id,
            company_ids=[(6, 0, other_company.ids)],
        )
        self.assertNotIn(mailbox, self.env["smtp_invoicing.mailbox"].with_user(admin_b).search([]))
        with self.assertRaises(AccessError):
            mailbox.with_user(admin_b).read(["name"])
        # nor the server behind them, in core's list of outgoing servers
        self.assertNotIn(mailbox.mail_server_id, self.env["ir.mail_server"].with_user(admin_b).search([]))
        with self.assertRaises(AccessError):
            mailbox.mail_server_id.with_user(admin_b).read(["name"])
        admin_a = mail_new_test_user(
            self.env,
            login="admin-a@invoicing.test",
            groups="base.group_system",
            company_id=self.company.id,
            company_ids=[(6, 0, self.company.ids)],
        )
        self.assertIn(mailbox, self.env["smtp_invoicing.mailbox"].with_user(admin_a).search([]))
        self.assertIn(mailbox.mail_server_id, self.env["ir.mail_server"].with_user(admin_a).search([]))

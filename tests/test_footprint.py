"""The rest of Odoo behaves exactly as without the module: core servers, their visibility and their routing."""

from odoo.addons.mail.tests.common import mail_new_test_user

from common import MAILBOX_LOGIN, MailboxCase


class TestFootprint(MailboxCase):
    def test_core_servers_stay_visible_to_administrators_of_every_company(self):
        """A core server gets no company and stays visible to a Settings administrator of another company."""
        platform = self.env["ir.mail_server"].create({"name": "Platform relay", "smtp_host": "127.0.0.1"})
        mailbox = self.create_mailbox()
        self.assertFalse(platform.smtp_invoicing_company_id)
        self.assertEqual(mailbox.smtp_invoicing_company_id, self.company)
        other = self.setup_other_company()["company"]
        admin = mail_new_test_user(
            self.env,
            login="admin@other.test",
            groups="base.group_user,base.group_system",
            company_id=other.id,
            company_ids=[(6, 0, other.ids)],
        )
        visible = self.env["ir.mail_server"].with_user(admin).search([])
        self.assertIn(platform, visible)
        self.assertNotIn(mailbox, visible, "own mailboxes stay with their company")

    def test_core_routing_never_falls_back_on_an_own_mailbox(self):
        """Odoo's routing picks a core server, or none, for a mail without server, never an own mailbox."""
        mailbox = self.verify(self.create_mailbox())
        server, email_from = self.env["ir.mail_server"]._find_mail_server(MAILBOX_LOGIN)
        self.assertNotEqual(server, mailbox)
        self.assertFalse(server)
        self.assertEqual(email_from, MAILBOX_LOGIN)
        platform = self.env["ir.mail_server"].create({"name": "Platform relay", "smtp_host": "127.0.0.1"})
        server, _email_from = self.env["ir.mail_server"]._find_mail_server(MAILBOX_LOGIN)
        self.assertEqual(server, platform)

    def test_own_mailbox_from_filter_is_its_sender(self):
        """An own mailbox's from_filter follows its sender email, as core's Gmail and Outlook servers do."""
        mailbox = self.create_mailbox()
        self.assertEqual(mailbox.from_filter, MAILBOX_LOGIN)
        mailbox.sender_email = "Billing.Desk@Invoicing.test"
        self.assertEqual(mailbox.from_filter, "billing.desk@invoicing.test")

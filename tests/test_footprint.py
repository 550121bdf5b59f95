"""The rest of Odoo behaves exactly as without the module: core servers, their visibility and their routing."""

from odoo.tools.safe_eval import safe_eval

from odoo.addons.mail.tests.common import mail_new_test_user

from common import MAILBOX_LOGIN, MailboxCase


class TestFootprint(MailboxCase):
    def test_core_servers_get_no_product_column_and_no_chatter(self):
        """``ir.mail_server`` gets no column of the product, only the non-stored link to the mailbox behind a
        server, and no chatter: creating or changing a core server logs nothing anywhere."""
        Servers = self.env["ir.mail_server"]
        fields = self.env["ir.model.fields"].search([("model", "=", "ir.mail_server")])
        product = fields.filtered(lambda field: "smtp_invoicing" in field.modules.split(", "))
        self.assertEqual(product.mapped("name"), ["smtp_invoicing_mailbox_ids"])
        self.assertEqual((product.ttype, product.relation), ("one2many", "smtp_invoicing.mailbox"))
        self.assertIsNone(Servers._fields["smtp_invoicing_mailbox_ids"].column_type, "a one2many has no column")
        # every column of core's table is a field of Odoo's own modules, as without the product
        self.env.cr.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'ir_mail_server'")
        columns = {column for (column,) in self.env.cr.fetchall()}
        core_columns = {
            field.name for field in fields - product if Servers._fields[field.name].column_type and field.store
        }
        self.assertEqual(columns, core_columns)
        self.assertFalse([column for column in columns if column.startswith(("smtp_invoicing", "sender_", "verif"))])
        # no chatter, activity or follower on a core server
        for name in ("message_ids", "activity_ids", "message_follower_ids", "website_message_ids"):
            self.assertNotIn(name, self.env["ir.mail_server"]._fields, name)
        messages = self.env["mail.message"].search_count([])
        platform = self.env["ir.mail_server"].create({"name": "Platform relay", "smtp_host": "127.0.0.1"})
        platform.write({"smtp_port": 2525, "smtp_user": "relay"})
        platform.unlink()
        self.assertEqual(self.env["mail.message"].search_count([]), messages, "nothing logged on a core server")
        self.assertFalse(self.env["mail.message"].search_count([("model", "=", "ir.mail_server")]))

    def test_core_servers_stay_visible_to_administrators_of_every_company(self):
        """A core server gets no company and stays visible to a Settings administrator of another company."""
        platform = self.env["ir.mail_server"].create({"name": "Platform relay", "smtp_host": "127.0.0.1"})
        mailbox = self.create_mailbox()
        self.assertNotIn("smtp_invoicing_company_id", platform._fields)
        self.assertFalse(platform.smtp_invoicing_mailbox_ids)
        self.assertEqual(mailbox.mail_server_id.smtp_invoicing_mailbox_ids, mailbox)
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
        self.assertNotIn(mailbox.mail_server_id, visible, "own mailboxes stay with their company")
        self.assertNotIn(mailbox, self.env["smtp_invoicing.mailbox"].with_user(admin).search([]))
        mailbox.active = False
        archived = self.env["ir.mail_server"].with_user(admin).with_context(active_test=False).search([])
        self.assertIn(platform, archived)
        self.assertNotIn(mailbox.mail_server_id, archived, "archived, they stay with their company too")

    def test_core_list_shows_core_servers_only(self):
        """Core's list of outgoing servers shows core servers only, archived ones under its Archived filter;
        own mailboxes, archived or not, are listed under Own Mailboxes."""
        platform = self.env["ir.mail_server"].create({"name": "Platform relay", "smtp_host": "127.0.0.1"})
        retired = self.env["ir.mail_server"].create({"name": "Retired relay", "smtp_host": "127.0.0.1"})
        retired.active = False
        mailbox = self.create_mailbox()
        archived = self.create_mailbox(name="Archived mailbox")
        archived.active = False
        self.assertFalse(archived.mail_server_id.active, "a mailbox is archived with its server")
        action = self.env["ir.actions.act_window"]._for_xml_id("base.action_ir_mail_server_list")
        self.assertEqual(action["res_model"], "ir.mail_server")
        domain = safe_eval(action["domain"] or "[]")
        Servers = self.env["ir.mail_server"].with_context(safe_eval(action["context"] or "{}"))
        listed = Servers.search(domain)
        self.assertIn(platform, listed)
        self.assertNotIn(mailbox.mail_server_id, listed)
        # core's "Archived" filter of the search view: ('active', '=', False)
        listed_archived = Servers.search(domain + [("active", "=", False)])
        self.assertIn(retired, listed_archived)
        self.assertNotIn(archived.mail_server_id, listed_archived)
        self.assertFalse((listed | listed_archived) & (mailbox | archived).mail_server_id)
        own = self.env["ir.actions.act_window"]._for_xml_id("smtp_invoicing.smtp_invoicing_mailbox_action")
        self.assertEqual(own["res_model"], "smtp_invoicing.mailbox")
        self.assertIn(mailbox, self.env["smtp_invoicing.mailbox"].search(safe_eval(own["domain"] or "[]")))

    def test_core_routing_never_falls_back_on_an_own_mailbox(self):
        """Odoo's routing picks a core server, or none, for a mail without server, never an own mailbox."""
        mailbox = self.verify(self.create_mailbox())
        server, email_from = self.env["ir.mail_server"]._find_mail_server(MAILBOX_LOGIN)
        self.assertNotEqual(server, mailbox.mail_server_id)
        self.assertFalse(server)
        self.assertEqual(email_from, MAILBOX_LOGIN)
        platform = self.env["ir.mail_server"].create({"name": "Platform relay", "smtp_host": "127.0.0.1"})
        server, _email_from = self.env["ir.mail_server"]._find_mail_server(MAILBOX_LOGIN)
        self.assertEqual(server, platform)

    def test_own_mailbox_from_filter_is_its_sender(self):
        """An own mailbox's from_filter follows its sender email, as core's Gmail and Outlook servers do."""
        mailbox = self.create_mailbox()
        self.assertEqual(mailbox.from_filter, MAILBOX_LOGIN)
        self.assertEqual(mailbox.mail_server_id.from_filter, MAILBOX_LOGIN, "core's server itself")
        mailbox.sender_email = "Billing.Desk@Invoicing.test"
        self.assertEqual(mailbox.from_filter, "billing.desk@invoicing.test")
        self.assertEqual(mailbox.mail_server_id.from_filter, "billing.desk@invoicing.test")

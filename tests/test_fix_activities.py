"""Who is asked to fix a mailbox that cannot send, in which words, and where the to-do leads."""

from odoo.exceptions import UserError

from common import MAILBOX_LOGIN, PASSWORD, MailboxCase

MAILBOX_FORM = "smtp_invoicing.smtp_invoicing_mailbox_view_form"


class TestFixActivities(MailboxCase):
    def todos(self, mailbox):
        todo = self.env.ref("mail.mail_activity_data_todo")
        return mailbox.activity_ids.filtered(lambda activity: activity.activity_type_id == todo)

    def test_refused_password_is_the_owners_to_fix(self):
        """A refused password: one to-do, for the mailbox's owner, with its connect link; "cannot send yet" first."""
        server = self.start_server(users={MAILBOX_LOGIN: "changed"})
        mailbox = self.verify(self.create_mailbox(server))
        self.assertEqual(mailbox.verification_state, "failed")
        todo = self.todos(mailbox)
        self.assertEqual(todo.user_id, self.mailbox_user)
        self.assertEqual(todo.summary, "Mailbox cannot send yet: connect it")
        self.assertIn(f"/smtp_invoicing/mailbox/{mailbox.id}/connect", todo.note)

    def test_password_refused_after_verification_can_no_longer_send(self):
        """A verified mailbox whose password is then refused: the owner's to-do says it can no longer send."""
        server = self.start_server()
        mailbox = self.verify(self.create_mailbox(server))
        self.assertEqual(mailbox.verification_state, "verified")
        server.users[MAILBOX_LOGIN] = "changed"
        self.verify(mailbox)
        self.assertEqual(mailbox.verification_state, "failed")
        todo = self.todos(mailbox)
        self.assertEqual(todo.user_id, self.mailbox_user)
        self.assertEqual(todo.summary, "Mailbox can no longer send: connect it again")

    def test_server_fault_is_the_administrators_to_fix_one_todo_per_fault(self):
        """A refused sender: one to-do, for the administrator who verified; the owner's earlier to-do is removed."""
        server = self.start_server(users={MAILBOX_LOGIN: "changed"})
        mailbox = self.verify(self.create_mailbox(server))
        self.assertEqual(self.todos(mailbox).user_id, self.mailbox_user)
        server.users[MAILBOX_LOGIN] = PASSWORD
        server.mail_from_reply = (553, "5.7.1 Sender address rejected: not owned by user")
        self.verify(mailbox)
        self.assertIn("refused to send as", mailbox.verification_message)
        todo = self.todos(mailbox)
        self.assertEqual(todo.user_id, self.env.user)
        self.assertEqual(todo.summary, "Mailbox cannot send yet: fix and verify it")

        server.mail_from_reply = None
        self.verify(mailbox)
        self.assertEqual(mailbox.verification_state, "verified")
        self.assertFalse(self.todos(mailbox))
        server.mail_from_reply = (553, "5.7.1 Sender address rejected: not owned by user")
        self.verify(mailbox)
        self.assertEqual(self.todos(mailbox).summary, "Mailbox can no longer send: fix and verify it")
        self.assertEqual(self.todos(mailbox).user_id, self.env.user)

    def test_lost_password_is_the_owners_to_type_again(self):
        """A password this server cannot decrypt: the owner types it again on the connect page."""
        mailbox = self.create_mailbox()
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE smtp_invoicing_mailbox SET smtp_invoicing_password_enc = 'gAAAAAgarbage' WHERE id = %s",
            [mailbox.id],
        )
        mailbox.invalidate_recordset()
        self.verify(mailbox)
        self.assertIn("must be entered again", mailbox.verification_message)
        self.assertEqual(self.todos(mailbox).user_id, self.mailbox_user)

    def test_own_mailboxes_open_the_product_form(self):
        """Links to an own mailbox (activities, notifications) open the product's form; core servers keep core's."""
        mailbox = self.create_mailbox()
        core = self.env["ir.mail_server"].create({"name": "Relay", "smtp_host": "relay.invoicing.test"})
        form = self.env.ref(MAILBOX_FORM)
        core_form = self.env.ref("base.ir_mail_server_form")

        def opened(record, views):
            """The form view the web client shows for ``views`` of a link to ``record``."""
            [(view_id, view_type)] = views
            return record.get_views([(view_id, view_type)])["views"][view_type]["id"]

        action = mailbox.get_formview_action()
        self.assertEqual((action["res_model"], action["res_id"]), ("smtp_invoicing.mailbox", mailbox.id))
        self.assertEqual(opened(mailbox, action["views"]), form.id)
        self.assertEqual(opened(mailbox, [(mailbox.get_formview_id(), "form")]), form.id)
        for server in (core, mailbox.mail_server_id):
            self.assertEqual(opened(server, server.get_formview_action()["views"]), core_form.id)

    def test_activity_menu_lists_own_mailboxes_under_the_product(self):
        """The activity menu shows own mailboxes' to-dos in their model's own group, opening the product's list
        and form; core servers take no activity."""
        mailbox = self.create_mailbox()
        other = self.create_mailbox(name="Reminders mailbox")
        mailbox.activity_schedule("mail.mail_activity_data_todo", summary="Check", user_id=self.env.uid)
        self.assertEqual(mailbox.activity_ids.res_model, "smtp_invoicing.mailbox")
        self.assertFalse(other.activity_ids)
        self.assertNotIn("activity_ids", self.env["ir.mail_server"]._fields, "core servers get no activity")
        groups = {group["model"]: group for group in self.env["res.users"]._get_activity_groups()}
        own = groups["smtp_invoicing.mailbox"]
        self.assertEqual((own["name"], own["total_count"]), ("Own Mailbox", 1))
        self.assertIn("/smtp_invoicing/", own["icon"], "the product's icon")
        self.assertNotIn("ir.mail_server", groups)
        self.assertNotIn("mail.activity", groups, "the administrator reads the mailbox: not 'Other activities'")
        # the group opens the model's default views in list first (core's activity menu: the views of
        # ActivityMenu.availableViews, view_type "list"): the product's own list and form
        self.assertEqual(own["view_type"], "list")
        views = self.env["smtp_invoicing.mailbox"].get_views(
            [(False, "kanban"), (False, "list"), (False, "form"), (False, "activity")]
        )["views"]
        self.assertEqual(
            (views["list"]["id"], views["form"]["id"]),
            (self.env.ref("smtp_invoicing.smtp_invoicing_mailbox_view_list").id, self.env.ref(MAILBOX_FORM).id),
        )
        # with core's domain, the list shows the mailboxes with a to-do of this user only
        listed = self.env["smtp_invoicing.mailbox"].search([("activity_user_id", "=", self.env.uid)])
        self.assertEqual(listed, mailbox)

    def test_verify_a_mailbox_nobody_connected_is_refused(self):
        """A mailbox created without password cannot be verified: the refusal says who types it."""
        mailbox = self.create_mailbox(smtp_pass=False)
        with self.assertRaisesRegex(UserError, "let its owner type it"):
            mailbox.action_verify()
        self.assertEqual(self.todos(mailbox).user_id, self.mailbox_user, "the owner was asked to connect it")

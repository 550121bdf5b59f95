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
            "UPDATE ir_mail_server SET smtp_invoicing_password_enc = 'gAAAAAgarbage' WHERE id = %s", [mailbox.id]
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
        self.assertEqual(mailbox.get_formview_id(), form.id)
        self.assertEqual(mailbox.get_formview_action()["views"], [(form.id, "form")])
        self.assertNotEqual(core.get_formview_id(), form.id)

    def test_activity_menu_lists_own_mailboxes_under_the_product(self):
        """The activity menu shows own mailboxes' to-dos as "Own Mailboxes", opening the product's list and form."""
        mailbox = self.create_mailbox()
        core = self.env["ir.mail_server"].create({"name": "Relay", "smtp_host": "relay.invoicing.test"})
        for server in (mailbox, core):
            server.activity_schedule("mail.mail_activity_data_todo", summary="Check", user_id=self.env.uid)
        groups = {group["name"]: group for group in self.env["res.users"]._get_activity_groups()}
        own = groups["Own Mailboxes"]
        self.assertEqual((own["model"], own["total_count"]), ("ir.mail_server", 1))
        self.assertEqual(
            own["smtp_invoicing_views"],
            [
                [self.env.ref("smtp_invoicing.smtp_invoicing_mailbox_view_list").id, "list"],
                [self.env.ref(MAILBOX_FORM).id, "form"],
            ],
        )
        self.assertEqual(own["domain"], [("smtp_invoicing_mailbox", "=", True)])
        [servers] = [group for group in groups.values() if group["model"] == "ir.mail_server" and group is not own]
        self.assertEqual(servers["total_count"], 1)
        self.assertNotIn("smtp_invoicing_views", servers)

    def test_verify_a_mailbox_nobody_connected_is_refused(self):
        """A mailbox created without password cannot be verified: the refusal says who types it."""
        mailbox = self.create_mailbox(smtp_pass=False)
        with self.assertRaisesRegex(UserError, "let its owner type it"):
            mailbox.action_verify()
        self.assertEqual(self.todos(mailbox).user_id, self.mailbox_user, "the owner was asked to connect it")

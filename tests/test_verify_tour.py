"""In a real browser: Verify's result shows in the open form, a to-do leads to the mailbox form."""

import threading

from odoo import SUPERUSER_ID, api
from odoo.tests import HttpCase

from odoo.addons.bus.models.bus import channel_with_db, dispatch, hashable
from odoo.addons.bus.tests.common import WebsocketCase

from common import MAILBOX_LOGIN, PASSWORD, MailboxFixture


class TestVerifyShowsItsResult(MailboxFixture, WebsocketCase):
    """Odoo's websocket bus, which Odoo's own WebsocketCase switches on in test mode."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_mailbox_fixture(cls.env.ref("base.main_company"))
        cls.admin = cls.env.ref("base.user_admin")

    def check_when_requested(self, stop, errors):
        """Run the verification scheduled action, as a cron worker does, each time the tour
        says the form shows Pending (``smtp_invoicing.tour_check_now``); then wake the
        websockets of the admin's channel, which the NOTIFY of a real commit would wake
        (Odoo's test cursors drop it)."""
        channel = hashable(channel_with_db(self.registry.db_name, self.admin.partner_id))
        try:
            while not stop.wait(0.2):
                with self.registry.cursor() as cr:
                    env = api.Environment(cr, SUPERUSER_ID, {})
                    params = env["ir.config_parameter"]
                    requested = bool(params.get_param("smtp_invoicing.tour_check_now"))
                    if requested:
                        params.set_param("smtp_invoicing.tour_check_now", False)
                        cr.commit()
                        env["smtp_invoicing.mailbox"]._cron_verify_mail_servers()
                if requested:
                    for websocket in list(dispatch._channels_to_ws.get(channel, ())):
                        websocket.trigger_notification_dispatching()
        except Exception as error:  # reported by the test, in its own thread
            errors.append(error)

    def test_verify_shows_verified_or_failed_and_why_without_a_reload(self):
        """Verify: the open form turns Verified (or Failed, with the reason) by itself, and the requester is told."""
        good = self.create_mailbox(name="Good invoices")
        refused_server = self.start_server(users={MAILBOX_LOGIN: "changed"})
        refused = self.create_mailbox(refused_server, name="Refused invoices", smtp_pass=PASSWORD)
        stop, errors = threading.Event(), []
        checker = threading.Thread(target=self.check_when_requested, args=(stop, errors))
        checker.start()
        try:
            self.start_tour(
                "/odoo/action-smtp_invoicing.smtp_invoicing_mailbox_action",
                "smtp_invoicing_verify_result",
                login="admin",
            )
        finally:
            stop.set()
            checker.join()
        self.assertFalse(errors)
        self.env.invalidate_all()
        self.assertEqual(good.verification_state, "verified", good.verification_message)
        self.assertEqual(refused.verification_state, "failed")
        self.assertEqual((good | refused).smtp_invoicing_requested_by_id, self.admin)


class TestActivityMenuTour(MailboxFixture, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_mailbox_fixture(cls.env.ref("base.main_company"))

    def test_activity_menu_opens_the_product_form(self):
        """An own mailbox's to-do, from core's activity menu, is in the group of its model (smtp_invoicing.mailbox)
        and leads to the product's list and form, not core's."""
        admin = self.env.ref("base.user_admin")
        mailbox = self.create_mailbox()
        self.create_mailbox(name="Reminders mailbox")
        todo = mailbox.activity_schedule("mail.mail_activity_data_todo", summary="Check", user_id=admin.id)
        self.assertEqual(todo.res_model, "smtp_invoicing.mailbox")
        self.start_tour("/odoo", "smtp_invoicing_activity_menu", login="admin")

import logging

_logger = logging.getLogger(__name__)


def _uninstall_release_mailboxes(env):
    """Leave no trap behind: former own mailboxes get their clear password back and are archived.

    Their ``from_filter`` is their sender, so even reactivated they never become Odoo's
    fallback for all mail; core servers were never touched.
    """
    mailboxes = env["ir.mail_server"].with_context(active_test=False).search([("smtp_invoicing_mailbox", "=", True)])
    restored = mailboxes._smtp_invoicing_release_passwords()
    mailboxes.filtered("active").write({"active": False})
    _logger.info(
        "smtp_invoicing: %s own mailbox(es) archived, %s password(s) restored for core", len(mailboxes), restored
    )

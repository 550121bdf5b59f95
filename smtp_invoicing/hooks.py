import logging

_logger = logging.getLogger(__name__)


def _uninstall_release_mailboxes(env):
    """Leave no trap behind: templates back on Odoo's routing, waiting mails visible, mailboxes archived.

    Called by Odoo before the module's tables go. Core refuses to archive a server an email
    template uses, so the templates that chose an own mailbox (the configuration the README
    recommends) are first given back to Odoo's default routing, and logged. Former mailboxes
    get their clear password back and are archived; their ``from_filter`` is their sender,
    so even reactivated they never become Odoo's fallback for all mail; core servers were
    never touched.
    """
    mailboxes = env["smtp_invoicing.mailbox"].with_context(active_test=False).search([])
    _uninstall_release_templates(env, mailboxes)
    _uninstall_stop_waiting_mails(env, mailboxes)
    restored = mailboxes._smtp_invoicing_release_passwords()
    mailboxes.mail_server_id.filtered("active").write({"active": False})
    # core's list of servers shows them all again (it showed core's servers only)
    env.ref("base.action_ir_mail_server_list").domain = False
    _logger.info(
        "smtp_invoicing: %s own mailbox(es) archived, %s password(s) restored for core", len(mailboxes), restored
    )


def _uninstall_release_templates(env, mailboxes):
    """Templates that chose an own mailbox go back to Odoo's default routing (their per-company
    lines go with the module's tables)."""
    templates = (
        env["mail.template"]
        .with_context(active_test=False)
        .search([("mail_server_id", "in", mailboxes.mail_server_id.ids)])
    )
    lines = env["smtp_invoicing.template.mailbox"].search([])
    for template in templates | lines.template_id:
        _logger.info(
            "smtp_invoicing: template %s (%s) sends through Odoo's default routing again", template.id, template.name
        )
    templates.write({"mail_server_id": False})


def _uninstall_stop_waiting_mails(env, mailboxes):
    """Mails still waiting for a mailbox stay in Odoo, failed and visible, never sent by another server.

    Sent now through Odoo's default routing, an invoice would leave from an address the
    accountant did not choose (the default server, maybe rewriting From), with nobody told.
    So each one becomes failed with the reason (red envelope on its document, *Retry* in
    the technical mail list): whoever sends it again decides, and it then takes Odoo's
    routing, its mail server cleared.
    """
    mails = env["mail.mail"].search(
        [
            "|",
            ("mail_server_id", "in", mailboxes.mail_server_id.ids),
            ("smtp_invoicing_mailbox_id", "in", mailboxes.ids),
            ("state", "in", ("outgoing", "exception")),
        ]
    )
    if not mails:
        return
    reason = env._(
        "Not sent: the module SMTP Invoicing was uninstalled while this email waited for its own mailbox. "
        "Send it again to let Odoo's default outgoing server carry it."
    )
    # mails that already failed keep their own reason; all lose the archived server, or Retry
    # would be refused by core ("cannot be used because it is archived")
    waiting = mails.filtered(lambda mail: mail.state == "outgoing")
    (mails - waiting).write({"mail_server_id": False})
    waiting.write(
        {"state": "exception", "failure_reason": reason, "failure_type": "mail_smtp", "mail_server_id": False}
    )
    notifications = env["mail.notification"].search(
        [("mail_mail_id", "in", waiting.ids), ("notification_status", "in", ("ready", "exception"))]
    )
    notifications.write({"notification_status": "exception", "failure_type": "mail_smtp", "failure_reason": reason})
    _logger.warning(
        "smtp_invoicing: %s mail(s) waiting for an own mailbox marked failed, to be sent again by hand: %s",
        len(waiting),
        waiting.ids,
    )

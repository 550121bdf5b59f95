import logging

_logger = logging.getLogger(__name__)


def _post_init_encrypt_passwords(env):
    """Encrypt the passwords of the outgoing servers that existed before install."""
    count = env["ir.mail_server"]._smtp_invoicing_encrypt_plain_passwords()
    _logger.info("smtp_invoicing: encrypted the password of %s existing mail server(s)", count)


def _uninstall_restore_passwords(env):
    """Give core back its clear passwords, so no server stops working after uninstall."""
    count = env["ir.mail_server"]._smtp_invoicing_restore_plain_passwords()
    _logger.info("smtp_invoicing: restored the password of %s mail server(s)", count)

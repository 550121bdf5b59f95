import contextvars
import functools
import logging
import os
import threading
import time
from concurrent import futures
from datetime import timedelta

import psycopg2

from odoo import _, api, fields, models, modules, tools
from odoo.exceptions import UserError, ValidationError
from odoo.tools import email_normalize, formataddr
from odoo.tools.sql import escape_psql

from ..lib import crypto, deliverability, presets, smtp, validation

_logger = logging.getLogger(__name__)

# Plaintext passwords are only computed inside ``connect()``: a context key
# could be forged by any RPC caller, a context variable cannot.
_DECRYPTING = contextvars.ContextVar("smtp_invoicing_decrypting", default=False)

ENABLED_PARAM = "smtp_invoicing.enabled"
DEFAULT_TIMEOUT = 20
DEFAULT_DEADLINE = 45
DEFAULT_REVERIFY_HOURS = 24
DEFAULT_WORKERS = 16
DEFAULT_BUDGET = 120


def secret_box():
    """Return the SecretBox of this Odoo server's keys (environment, config file, key file).

    The box is cached per key source: the key file is read again only when it changes.
    """
    raw = os.environ.get(crypto.ENV_VARIABLE) or tools.config.get(crypto.CONFIG_OPTION)
    if raw:
        return _box_of_keys(raw)
    data_dir = tools.config["data_dir"]
    path = os.path.join(data_dir, crypto.KEY_FILE_NAME)
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        crypto.key_file_keys(data_dir)  # creates it
        stat = os.stat(path)
    return _box_of_key_file(path, stat.st_ino, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _box_of_keys(raw):
    return crypto.SecretBox(crypto.parse_keys(raw))


@functools.lru_cache(maxsize=4)
def _box_of_key_file(path, inode, mtime_ns, size):
    return crypto.SecretBox(crypto.key_file_keys(os.path.dirname(path)))


def _in_test_transaction():
    """True while tests run: everything happens in one transaction, never committed."""
    return bool(modules.module.current_test) or getattr(threading.current_thread(), "testing", False)


class _Claim:
    """A mailbox locked for verification, with the transaction that records its result.

    Outside tests each claim has a cursor of its own: its row lock (FOR UPDATE SKIP
    LOCKED) lasts exactly as long as the verification, so two cron workers never verify
    the same mailbox, and the result is committed the moment it arrives, whatever
    happens to the other mailboxes and to the cron's own transaction. Tests run in one
    transaction that is rolled back at the end and that no other connection can see:
    there the claim locks and records through the caller's environment, without commit.
    """

    def __init__(self, server, cr=None):
        self.server = server
        self._cr = cr

    @classmethod
    def take(cls, model, server_id):
        """Lock mailbox ``server_id`` if it still awaits a verification; None otherwise."""
        cr = None
        if not _in_test_transaction():
            cr = model.env.registry.cursor()
            model = model.with_env(model.env(cr=cr))
        try:
            server = model.browse(server_id)._smtp_invoicing_lock()
            # a worker that started earlier may have recorded it since this run listed it
            server = server.filtered_domain(model._smtp_invoicing_verification_domain())
        except psycopg2.errors.SerializationFailure:
            if cr is None:
                raise
            server = model.browse()  # recorded by another worker while being locked
        if not server:
            if cr is not None:
                cr.close()
            return None
        return cls(server, cr)

    def prepare(self):
        """Return the arguments of ``smtp.verify``, or record why there are none and return None."""
        try:
            return self.server._smtp_invoicing_verify_request()
        except Exception as error:
            self._finish(error)
        return None

    def record(self, future):
        """Record the outcome of the finished verification ``future``."""
        self._finish(future.exception())

    def _finish(self, error):
        try:
            self.server._smtp_invoicing_record_verification(error)
            if self._cr is not None:
                # the claim's own short transaction, not the cron's: a result is kept as it arrives
                self._cr.commit()  # pylint: disable=invalid-commit
        except Exception:
            if self._cr is None:
                raise
            _logger.exception("Mail server %s: the verification result could not be saved", self.server.id)
        finally:
            self.release()

    def release(self):
        """Close the claim's own cursor, if any (idempotent)."""
        if self._cr is not None and not self._cr.closed:
            self._cr.close()


class IrMailServer(models.Model):
    _name = "ir.mail_server"
    _inherit = ["ir.mail_server", "mail.thread"]

    smtp_invoicing_mailbox = fields.Boolean(
        string="Own Mailbox",
        help="A company mailbox used to send invoices and reminders, verified before use. "
        "It only carries the mails of the email templates that chose it.",
    )
    sender_name = fields.Char(help="Name shown to customers, e.g. 'ACME Billing'.")
    sender_email = fields.Char(help="Address the mails are sent from; it must belong to the mailbox.")
    verification_state = fields.Selection(
        [("draft", "Draft"), ("pending", "Pending"), ("verified", "Verified"), ("failed", "Failed")],
        string="Status",
        default="draft",
        # not required: core's neutralize.sql inserts a server with plain SQL
        readonly=True,
        copy=False,
        index=True,
    )
    verification_message = fields.Text(readonly=True, copy=False)
    smtp_invoicing_verified_at = fields.Datetime(string="Last Verification", readonly=True, copy=False)
    smtp_invoicing_preset = fields.Selection(presets.SELECTION, string="Provider", default="custom")
    smtp_invoicing_company_id = fields.Many2one(
        "res.company",
        string="Company",
        default=lambda self: self.env.company,
        index=True,
        help="Only this company's users and records use this mailbox. Leave empty to share it.",
    )
    smtp_invoicing_ca_cert = fields.Text(
        string="Extra CA Certificate",
        groups="base.group_system",
        help="PEM certificate of the authority that signed a self-hosted server's certificate. "
        "Public providers (Gmail, Microsoft 365, OVH) need nothing here.",
    )
    smtp_invoicing_password_enc = fields.Char(groups="base.group_system", copy=False)
    smtp_invoicing_password_set = fields.Boolean(
        string="Password Saved", compute="_compute_smtp_invoicing_password_set"
    )
    # Stored encrypted in smtp_invoicing_password_enc; the column of core's
    # field stays empty and is only filled back at uninstall.
    smtp_pass = fields.Char(
        compute="_compute_smtp_pass",
        inverse="_inverse_smtp_pass",
        store=False,
        groups="base.group_system",
    )

    # ------------------------------------------------------------------
    # Password
    # ------------------------------------------------------------------

    @api.depends("smtp_invoicing_password_enc")
    def _compute_smtp_pass(self):
        decrypting = _DECRYPTING.get()
        for server in self:
            server.smtp_pass = server._smtp_invoicing_password() if decrypting else False

    def _inverse_smtp_pass(self):
        for server in self:
            # An empty value never erases a saved password: forms send it
            # blank since the plaintext is never shown.
            if server.smtp_pass:
                token = secret_box().encrypt(server.smtp_pass, server._smtp_invoicing_secret_context())
                server.sudo().smtp_invoicing_password_enc = token
        self.invalidate_recordset(["smtp_pass"])

    @api.depends("smtp_invoicing_password_enc")
    def _compute_smtp_invoicing_password_set(self):
        for server in self.sudo():
            server.smtp_invoicing_password_set = bool(server.smtp_invoicing_password_enc)

    def _smtp_invoicing_secret_context(self):
        self.ensure_one()
        return f"{self.env.cr.dbname}:ir.mail_server:{self.id}"

    def _smtp_invoicing_password(self):
        """Return the plaintext password; UserError when it cannot be decrypted."""
        self.ensure_one()
        token = self.sudo().smtp_invoicing_password_enc
        if not token:
            return False
        try:
            return secret_box().decrypt(token, self._smtp_invoicing_secret_context())
        except (crypto.SecretError, ValueError) as error:
            _logger.warning("Password of mail server %s cannot be decrypted: %s", self.id, error)
            raise UserError(self._smtp_invoicing_secret_message()) from None

    def _smtp_invoicing_secret_message(self):
        return _(
            "The password of “%(name)s” must be entered again: this Odoo server cannot decrypt it "
            "(its encryption key is missing or was changed).",
            name=self.name,
        )

    def _smtp_invoicing_encrypt_plain_passwords(self):
        """Move every clear password of core's column into the encrypted field.

        Called at install and by the key rotation command; idempotent.
        """
        self.env.cr.execute("SELECT id, smtp_pass FROM ir_mail_server WHERE smtp_pass IS NOT NULL AND smtp_pass != ''")
        rows = self.env.cr.fetchall()
        box = secret_box()
        for server_id, plaintext in rows:
            server = self.browse(server_id)
            token = box.encrypt(plaintext, server._smtp_invoicing_secret_context())
            self.env.cr.execute(
                "UPDATE ir_mail_server SET smtp_invoicing_password_enc = %s, smtp_pass = NULL WHERE id = %s",
                (token, server_id),
            )
        self.invalidate_model(["smtp_pass", "smtp_invoicing_password_enc"])
        return len(rows)

    def _smtp_invoicing_restore_plain_passwords(self):
        """Put decryptable passwords back in core's column (uninstall)."""
        servers = self.with_context(active_test=False).sudo().search([("smtp_invoicing_password_enc", "!=", False)])
        restored = 0
        for server in servers:
            try:
                plaintext = server._smtp_invoicing_password()
            except UserError:
                _logger.warning("Mail server %s: password not restored, it cannot be decrypted", server.id)
                continue
            self.env.cr.execute("UPDATE ir_mail_server SET smtp_pass = %s WHERE id = %s", (plaintext, server.id))
            restored += 1
        return restored

    @api.model
    def _smtp_invoicing_reencrypt_passwords(self):
        """Re-encrypt every saved password with the first key: key rotation.

        Called by the server action "Re-encrypt SMTP passwords" (or ``odoo-bin shell``)
        once the new key is first in the key list; the old key can be removed afterwards.
        A password no key decrypts is left untouched and logged by id.
        """
        self.env.cr.execute(
            "SELECT id, smtp_invoicing_password_enc FROM ir_mail_server WHERE smtp_invoicing_password_enc IS NOT NULL"
        )
        box = secret_box()
        rotated = 0
        for server_id, token in self.env.cr.fetchall():
            try:
                new_token = box.rotate(token)
            except crypto.SecretError:
                _logger.warning("Mail server %s: password not re-encrypted, no key decrypts it", server_id)
                continue
            self.env.cr.execute(
                "UPDATE ir_mail_server SET smtp_invoicing_password_enc = %s WHERE id = %s", (new_token, server_id)
            )
            rotated += 1
        self.invalidate_model(["smtp_pass", "smtp_invoicing_password_enc"])
        _logger.info("smtp_invoicing: re-encrypted %s password(s) with key %s", rotated, box.fingerprint)
        return rotated

    # ------------------------------------------------------------------
    # Onchange and constraints
    # ------------------------------------------------------------------

    @api.onchange("smtp_invoicing_preset")
    def _onchange_smtp_invoicing_preset(self):
        for server in self:
            server.update(presets.preset_values(server.smtp_invoicing_preset))

    @api.onchange("smtp_encryption")
    def _onchange_encryption(self):
        """Keep core's port suggestion, but 587 for STARTTLS mailboxes (submission port)."""
        result = super()._onchange_encryption()
        if self.smtp_invoicing_mailbox and self.smtp_encryption == "starttls":
            self.smtp_port = 587
        return result

    @api.constrains(
        "smtp_invoicing_mailbox",
        "sender_name",
        "sender_email",
        "smtp_host",
        "smtp_port",
        "smtp_encryption",
        "smtp_authentication",
    )
    def _check_smtp_invoicing_settings(self):
        for server in self.filtered("smtp_invoicing_mailbox"):
            if validation.has_control_chars(server.sender_name) or validation.has_control_chars(server.name):
                raise ValidationError(_("The sender name of “%(name)s” must fit on one line.", name=server.name))
            if (
                not server.sender_email
                or validation.has_control_chars(server.sender_email)
                or len(tools.email_split(server.sender_email)) != 1
                or not email_normalize(server.sender_email)
            ):
                raise ValidationError(
                    _(
                        "“%(email)s” is not a valid sender email for “%(name)s”: "
                        "enter one address such as billing@example.com.",
                        email=server.sender_email or "",
                        name=server.name,
                    )
                )
            if not validation.is_valid_host(server.smtp_host):
                raise ValidationError(
                    _(
                        "“%(host)s” is not a valid server name for “%(name)s”: "
                        "enter a host name such as smtp.gmail.com "
                        "or an IP address, without spaces, “http://” or port.",
                        host=server.smtp_host or "",
                        name=server.name,
                    )
                )
            if not validation.is_valid_port(server.smtp_port):
                raise ValidationError(
                    _(
                        "The port of “%(name)s” must be between 1 and 65535 (usually 587 for TLS or 465 for SSL).",
                        name=server.name,
                    )
                )
            if server.smtp_encryption not in ("starttls", "ssl"):
                raise ValidationError(
                    _(
                        "“%(name)s” must use an encrypted protocol: TLS (STARTTLS) or SSL. "
                        "Passwords are never sent unencrypted.",
                        name=server.name,
                    )
                )
            if server.smtp_authentication != "login":
                raise ValidationError(
                    _("“%(name)s” must authenticate with a user name and password.", name=server.name)
                )

    @api.constrains("smtp_invoicing_mailbox", "smtp_user", "smtp_invoicing_company_id")
    def _check_smtp_invoicing_user(self):
        for server in self.sudo().filtered("smtp_invoicing_mailbox"):
            if not server._smtp_invoicing_licensed_user():
                raise ValidationError(server._smtp_invoicing_license_message())

    def _smtp_invoicing_licensed_user(self):
        """Return the active internal user whose login or email is this mailbox's user name."""
        self.ensure_one()
        user_name = email_normalize(self.sudo().smtp_user or "")
        if not user_name or validation.has_control_chars(self.sudo().smtp_user):
            return self.env["res.users"]
        company = self.smtp_invoicing_company_id
        domain = [
            ("share", "=", False),
            "|",
            ("login", "=ilike", escape_psql(user_name)),
            ("email_normalized", "=", user_name),
        ]
        if company:
            domain.append(("company_ids", "in", company.ids))
        # sudo: the rule is about the database's licences, not what the admin can see.
        return self.env["res.users"].sudo().search(domain, limit=1)

    def _smtp_invoicing_license_message(self):
        return _(
            "The user name “%(user)s” of “%(name)s” must be the login or email of an active internal user "
            "of %(company)s: only mailboxes of licensed users can send invoices.",
            user=self.sudo().smtp_user or "",
            name=self.name,
            company=self.smtp_invoicing_company_id.name or _("this database"),
        )

    # ------------------------------------------------------------------
    # CRUD
    # ------------------------------------------------------------------

    def write(self, vals):
        """A changed connection setting invalidates a previous verification."""
        connection_fields = {
            "smtp_host",
            "smtp_port",
            "smtp_encryption",
            "smtp_user",
            "smtp_pass",
            "sender_email",
            "smtp_invoicing_ca_cert",
            "smtp_invoicing_company_id",
        }
        if connection_fields.intersection(vals) and "verification_state" not in vals:
            to_reset = self.filtered(lambda s: s.smtp_invoicing_mailbox and s.verification_state != "draft")
            result = super().write(vals)
            if to_reset:
                to_reset.write({"verification_state": "draft", "verification_message": False})
                for server in to_reset:
                    server._message_log(body=_("Settings changed: the mailbox must be verified again."))
            return result
        return super().write(vals)

    def copy_data(self, default=None):
        """A copy starts unverified and without password: secrets are never duplicated."""
        vals_list = super().copy_data(default=default)
        for vals in vals_list:
            vals.pop("smtp_pass", None)
        return vals_list

    # ------------------------------------------------------------------
    # Verification
    # ------------------------------------------------------------------

    def action_verify(self):
        """Queue the verification of the selected mailboxes (button and list action)."""
        mailboxes = self.filtered("smtp_invoicing_mailbox")
        if not mailboxes:
            raise UserError(_("Only own-mailbox SMTP settings can be verified here."))
        mailboxes.write(
            {
                "verification_state": "pending",
                "verification_message": _("Verification requested; it runs in the background in a few seconds."),
            }
        )
        for server in mailboxes:
            server._message_log(body=_("Verification requested."))
        self.env.ref("smtp_invoicing.ir_cron_verify_mail_servers")._trigger()
        return True

    @api.model
    def _smtp_invoicing_verification_domain(self):
        hours = int(
            self.env["ir.config_parameter"].sudo().get_param("smtp_invoicing.reverify_hours", DEFAULT_REVERIFY_HOURS)
        )
        stale = fields.Datetime.now() - timedelta(hours=hours)
        return [
            ("smtp_invoicing_mailbox", "=", True),
            "|",
            ("verification_state", "=", "pending"),
            "&",
            ("verification_state", "=", "verified"),
            "|",
            ("smtp_invoicing_verified_at", "=", False),
            ("smtp_invoicing_verified_at", "<=", stale),
        ]

    @api.model
    def _cron_verify_mail_servers(self):
        """Scheduled action: verify pending mailboxes, then re-verify stale verified ones.

        Verifications run concurrently in a bounded thread pool that does network work
        only (``smtp.verify``): settings are read and results recorded in this thread,
        each result committed as it arrives (see :class:`_Claim`). Once the run's time
        budget is spent no new verification starts; the rest is left to the next run,
        triggered at once.
        """
        params = self.env["ir.config_parameter"].sudo()
        workers = max(1, int(params.get_param("smtp_invoicing.verify_workers", DEFAULT_WORKERS)))
        # each verification under way holds a database connection (its row lock)
        workers = min(workers, max(1, tools.config["db_maxconn"] // 4))
        budget = float(params.get_param("smtp_invoicing.verify_budget", DEFAULT_BUDGET))
        server_ids = self.search(self._smtp_invoicing_verification_domain(), order="verification_state, id").ids
        started = time.monotonic()
        position = done = 0
        running = {}
        with futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="smtp_invoicing_verify") as pool:
            try:
                while True:
                    while len(running) < workers and position < len(server_ids) and time.monotonic() - started < budget:
                        claim = _Claim.take(self, server_ids[position])
                        position += 1
                        if claim is None:
                            continue
                        request = claim.prepare()
                        if request is None:
                            done += 1
                        else:
                            running[pool.submit(smtp.verify, **request)] = claim
                    if not running:
                        break
                    finished, _pending = futures.wait(running, return_when=futures.FIRST_COMPLETED)
                    for future in finished:
                        running.pop(future).record(future)
                        done += 1
            finally:
                for claim in running.values():
                    claim.release()
        remaining = len(server_ids) - position
        if remaining:
            _logger.info("Mail server verification: time budget spent, %s left for the next run", remaining)
            self.env.ref("smtp_invoicing.ir_cron_verify_mail_servers")._trigger()
        self.env["ir.cron"]._notify_progress(done=done, remaining=remaining)
        return True

    def _smtp_invoicing_lock(self):
        """Return the servers of self not being verified by another worker."""
        if not self:
            return self
        self.env.cr.execute("SELECT id FROM ir_mail_server WHERE id IN %s FOR UPDATE SKIP LOCKED", [tuple(self.ids)])
        locked = {row[0] for row in self.env.cr.fetchall()}
        return self.filtered(lambda s: s.id in locked)

    def _smtp_invoicing_verify_request(self):
        """Return the keyword arguments of ``smtp.verify`` for this mailbox.

        Raises UserError when the mailbox cannot be verified (licence, password). Called
        by the scheduled action before the network work: verification threads never
        touch the ORM.
        """
        self.ensure_one()
        server = self.sudo()
        if not server._smtp_invoicing_licensed_user():
            raise UserError(server._smtp_invoicing_license_message())
        password = server._smtp_invoicing_password()
        if not password:
            raise UserError(_("Enter the password of the mailbox, then verify again."))
        timeout, deadline = server._smtp_invoicing_timeouts()
        return {
            "host": server.smtp_host,
            "port": server.smtp_port,
            "protocol": server.smtp_encryption,
            "user": server.smtp_user,
            "password": password,
            "sender_email": email_normalize(server.sender_email),
            "ca_pem": server.smtp_invoicing_ca_cert or None,
            "timeout": timeout,
            "deadline": deadline,
        }

    def _smtp_invoicing_record_verification(self, error=None):
        """Record the outcome of a verification that raised ``error`` (None: it succeeded)."""
        self.ensure_one()
        server = self.sudo()
        if error is None:
            server._smtp_invoicing_set_state(
                "verified",
                _("Verified: Odoo connected securely, logged in and may send as %(email)s.", email=server.sender_email),
            )
        elif isinstance(error, smtp.SmtpCheckError):
            server._smtp_invoicing_set_state("failed", server._smtp_invoicing_reason_message(error))
        elif isinstance(error, UserError):
            server._smtp_invoicing_set_state("failed", error.args[0])
        else:
            _logger.error("Unexpected error while verifying mail server %s", server.id, exc_info=error)
            server._smtp_invoicing_set_state(
                "failed",
                _(
                    "Unexpected error during the verification. Try again; "
                    "if it persists, contact your Odoo administrator."
                ),
            )

    def _smtp_invoicing_timeouts(self):
        params = self.env["ir.config_parameter"].sudo()
        timeout = float(params.get_param("smtp_invoicing.verify_timeout", DEFAULT_TIMEOUT))
        deadline = float(params.get_param("smtp_invoicing.verify_deadline", DEFAULT_DEADLINE))
        return timeout, max(deadline, timeout)

    def _smtp_invoicing_set_state(self, state, message):
        self.ensure_one()
        values = {"verification_state": state, "verification_message": message}
        if state == "verified":
            values["smtp_invoicing_verified_at"] = fields.Datetime.now()
        changed = self.verification_state != state or self.verification_message != message
        self.write(values)
        if changed:
            label = dict(self._fields["verification_state"]._description_selection(self.env))[state]
            self._message_log(body=_("Status: %(state)s. %(message)s", state=label, message=message))
        _logger.info("Mail server %s verification: %s", self.id, state)

    def _smtp_invoicing_reason_message(self, error):
        """Translate a verification failure into words an accountant understands."""
        host, port = self.smtp_host, self.smtp_port
        sender, login = self.sender_email, self.sudo().smtp_user
        reason = error.reason
        if reason == "dns":
            return _(
                "The server name “%(host)s” does not exist. Check its spelling (Gmail: smtp.gmail.com).", host=host
            )
        if reason == "refused":
            return _(
                "The server %(host)s refused the connection on port %(port)s. Check the port: usually 587 with TLS "
                "or 465 with SSL.",
                host=host,
                port=port,
            )
        if reason == "timeout":
            return _(
                "The server %(host)s did not answer in time on port %(port)s. Check the host and port; a firewall "
                "may block outgoing mail.",
                host=host,
                port=port,
            )
        if reason == "wrong_protocol":
            return _(
                "The server does not use the chosen protocol on port %(port)s. Use TLS (STARTTLS) with port 587, "
                "or SSL with port 465.",
                port=port,
            )
        if reason == "untrusted_certificate":
            return _(
                "The security certificate of %(host)s is not trusted (self-signed, expired or from an unknown "
                "authority), so Odoo did not send your password. For a self-hosted server, add its CA certificate "
                "in the Advanced tab.",
                host=host,
            )
        if reason == "hostname_mismatch":
            return _(
                "The security certificate of the server was issued for another name than “%(host)s”, so Odoo did "
                "not send your password. Use the exact host name given by your provider.",
                host=host,
            )
        if reason == "no_starttls":
            return _(
                "The server %(host)s does not offer an encrypted connection (STARTTLS) on port %(port)s. Odoo never "
                "sends a password unencrypted: use SSL on port 465, or ask your provider.",
                host=host,
                port=port,
            )
        if reason == "no_auth":
            return _(
                "The server %(host)s does not accept a login on port %(port)s. Check the port with your provider.",
                host=host,
                port=port,
            )
        if reason == "auth_failed":
            return _(
                "The user name or password was refused. Check them; for Gmail, use an App Password, not your usual "
                "password (Google Account › Security › App passwords)."
            )
        if reason == "app_password_required":
            return _(
                "Gmail requires an App Password for this account: 1. In your Google Account, open Security and turn "
                "on 2-Step Verification. 2. In Security › App passwords, create an App Password. 3. Paste the "
                "16-character App Password here instead of your usual password, save and verify again."
            )
        if reason == "basic_auth_disabled":
            return _(
                "Microsoft 365 refused the login: basic authentication (Authenticated SMTP) is disabled for this "
                "mailbox or organisation. Ask your Microsoft 365 administrator to enable Authenticated SMTP for "
                "%(user)s.",
                user=login,
            )
        if reason == "sender_refused":
            return _(
                "The server refused to send as %(email)s: the sender email must belong to the mailbox %(user)s "
                "(or be an alias it may use).",
                email=sender,
                user=login,
            )
        if reason == "send_as_denied":
            return _(
                "Microsoft 365 refused to send as %(email)s (SendAsDenied): give %(user)s the “Send As” permission "
                "on this address, or use the mailbox's own address as sender email.",
                email=sender,
                user=login,
            )
        if reason == "temporary":
            return _(
                "The server answered with a temporary error; try again in a few minutes. (%(detail)s)",
                detail=error.detail,
            )
        if reason == "network":
            return _("The connection to %(host)s was interrupted. Try again in a few minutes.", host=host)
        return _("The server %(host)s answered unexpectedly: %(detail)s", host=host, detail=error.detail)

    # ------------------------------------------------------------------
    # Sending
    # ------------------------------------------------------------------

    def _smtp_invoicing_is_enabled(self):
        return tools.str2bool(self.env["ir.config_parameter"].sudo().get_param(ENABLED_PARAM, "False"))

    def connect(
        self,
        host=None,
        port=None,
        user=None,
        password=None,
        encryption=None,
        smtp_from=None,
        ssl_certificate=None,
        ssl_private_key=None,
        smtp_debug=False,
        mail_server_id=None,
        allow_archived=False,
    ):
        """Own mailboxes connect with verified TLS and their sender identity; others as core does.

        Called by ``mail.mail.send()`` once per batch and by ``send_email()``.
        """
        mailbox = self.sudo().browse(mail_server_id).exists() if mail_server_id else self.browse()
        if mailbox.smtp_invoicing_mailbox and not modules.module.current_test:
            if not allow_archived and not mailbox.active:
                raise UserError(_('The server "%s" cannot be used because it is archived.', mailbox.display_name))
            return mailbox._smtp_invoicing_connect()
        token = _DECRYPTING.set(True)
        try:
            return super().connect(
                host=host,
                port=port,
                user=user,
                password=password,
                encryption=encryption,
                smtp_from=smtp_from,
                ssl_certificate=ssl_certificate,
                ssl_private_key=ssl_private_key,
                smtp_debug=smtp_debug,
                mail_server_id=mail_server_id,
                allow_archived=allow_archived,
            )
        finally:
            _DECRYPTING.reset(token)
            # the plaintext must not outlive the connection in the ORM cache
            self.env["ir.mail_server"].invalidate_model(["smtp_pass"])

    def _smtp_invoicing_connect(self):
        """Open an authenticated, verified session sending as the mailbox's identity."""
        self.ensure_one()
        self._smtp_invoicing_check_ready()
        password = self._smtp_invoicing_password()
        timeout, deadline = self._smtp_invoicing_timeouts()
        try:
            connection = smtp.open_session(
                self.smtp_host,
                self.smtp_port,
                self.smtp_encryption,
                self.smtp_user,
                password or "",
                ca_pem=self.smtp_invoicing_ca_cert or None,
                timeout=timeout,
                deadline=deadline,
            )
        except smtp.SmtpCheckError as error:
            self._smtp_invoicing_connect_failed(error)
            raise UserError(self._smtp_invoicing_reason_message(error)) from None
        sender = email_normalize(self.sender_email)
        connection.smtp_invoicing_mailbox = True  # read by _prepare_email_message()
        # Core's _prepare_email_message() puts smtp_from in the From header and
        # its address in MAIL FROM: the mailbox's identity, never spoofed.
        connection.from_filter = sender
        # one_line(): a name written behind the constraint's back must not add headers
        connection.smtp_from = formataddr((validation.one_line(self.sender_name), sender))
        return connection

    def _prepare_email_message(self, message, smtp_session):
        """Own mailboxes only send single-line headers; called by ``send_email()``.

        Python's email package decodes RFC 2047 words when a header is set and may
        write the decoded CR/LF back verbatim: a Subject "=?utf-8?q?=0D=0ABcc:...?="
        would add a header. Values are flattened to one line before sending.
        """
        if getattr(smtp_session, "smtp_invoicing_mailbox", False):
            for name in set(message.keys()):
                values = [str(value) for value in message.get_all(name)]
                if any(validation.one_line(value) != value for value in values):
                    del message[name]
                    for value in values:
                        message[name] = validation.one_line(value)
        return super()._prepare_email_message(message, smtp_session)

    def _find_mail_server(self, email_from, mail_servers=None):
        """Own mailboxes only carry mails whose template chose them: never a fallback."""
        if mail_servers is None:
            mail_servers = self.sudo().search([], order="sequence")
        mail_servers = mail_servers.filtered(lambda server: not server.smtp_invoicing_mailbox)
        return super()._find_mail_server(email_from, mail_servers=mail_servers)

    def _smtp_invoicing_accepts(self, company):
        """True when this mailbox may carry a mail of ``company``'s records."""
        self.ensure_one()
        if not self._smtp_invoicing_is_enabled():
            return False
        return not self.smtp_invoicing_company_id or not company or company == self.smtp_invoicing_company_id

    # ------------------------------------------------------------------
    # Deliverability hint: SPF and DMARC of the sender's domain
    # ------------------------------------------------------------------

    smtp_invoicing_deliverability = fields.Selection(
        [("good", "Good"), ("warning", "To check"), ("bad", "At risk"), ("unknown", "Not checked")],
        string="Deliverability",
        compute="_compute_smtp_invoicing_deliverability",
        help="Whether the SPF and DMARC records of the sender email's domain allow this mailbox to send for it.",
    )
    smtp_invoicing_deliverability_message = fields.Text(
        string="Deliverability Details", compute="_compute_smtp_invoicing_deliverability"
    )

    @api.depends("smtp_invoicing_mailbox", "sender_email", "smtp_host")
    def _compute_smtp_invoicing_deliverability(self):
        """Not stored: read from DNS (bounded timeout, cached by the lib) when the form shows it.

        Nameservers: ``smtp_invoicing.dns_nameservers`` ("ip[:port], ..."), else the system's.
        In test mode, as Odoo neither connects nor sends, only configured nameservers are asked.
        """
        params = self.env["ir.config_parameter"].sudo()
        try:
            nameservers = deliverability.parse_nameservers(params.get_param("smtp_invoicing.dns_nameservers"))
            timeout = float(params.get_param("smtp_invoicing.dns_timeout", 3))
        except ValueError:
            _logger.warning("Invalid smtp_invoicing.dns_nameservers or dns_timeout: using the system resolver")
            nameservers, timeout = None, 3.0
        for server in self:
            if not server.smtp_invoicing_mailbox or not server.sender_email:
                server.smtp_invoicing_deliverability = False
                server.smtp_invoicing_deliverability_message = False
                continue
            if modules.module.current_test and not nameservers:
                report = deliverability.Report(domain="", level=deliverability.UNKNOWN, reason="test_mode")
            else:
                report = deliverability.check(server.sender_email, server.smtp_host, nameservers, timeout)
            server.smtp_invoicing_deliverability = report.level
            server.smtp_invoicing_deliverability_message = server._smtp_invoicing_deliverability_text(report)

    def _smtp_invoicing_deliverability_text(self, report):
        domain = report.domain
        if report.reason == "reserved":
            return _("%(domain)s is a reserved example domain: it has no public DNS records to check.", domain=domain)
        if report.reason == "dns_error":
            return _(
                "The DNS records of %(domain)s could not be read in time. This does not prevent sending; "
                "the hint is refreshed in a few minutes.",
                domain=domain,
            )
        if report.reason:
            return _("Not checked.")
        include = deliverability.PROVIDER_INCLUDES.get((self.smtp_host or "").lower(), ())
        suggestion = f"v=spf1 include:{include[0]} ~all" if include else "v=spf1 a mx ~all"
        if report.spf == deliverability.SPF_PASS:
            spf = _("SPF: %(domain)s allows this mailbox's server to send for it.", domain=domain)
        elif report.spf == deliverability.SPF_NOT_LISTED:
            spf = _(
                "SPF: the record of %(domain)s does not list %(host)s, so some recipients may file your invoices "
                "as spam. Ask whoever manages the domain to add “include:%(include)s” to it.",
                domain=domain,
                host=self.smtp_host,
                include=include[0] if include else self.smtp_host,
            )
        elif report.spf == deliverability.SPF_INVALID:
            spf = _(
                "SPF: %(domain)s publishes several SPF records, which recipients treat as an error. "
                "Merge them into one.",
                domain=domain,
            )
        else:
            spf = _(
                "SPF: %(domain)s publishes no SPF record, so recipients cannot tell that this mailbox may send "
                "for it and invoices may land in spam. Add a TXT record such as “%(record)s” to the domain.",
                domain=domain,
                record=suggestion,
            )
        if report.dmarc == deliverability.DMARC_PRESENT:
            dmarc = _("DMARC: policy “%(policy)s”.", policy=report.dmarc_policy or "none")
        elif report.dmarc == deliverability.DMARC_INVALID:
            dmarc = _("DMARC: %(domain)s publishes several DMARC records; keep only one.", domain=domain)
        else:
            dmarc = _(
                "DMARC: %(domain)s publishes no DMARC record; Gmail and Yahoo expect one. Add a TXT record "
                "“_dmarc.%(domain)s” with “v=DMARC1; p=none”.",
                domain=domain,
            )
        return f"{spf}\n{dmarc}"

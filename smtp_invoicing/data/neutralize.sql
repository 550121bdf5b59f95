-- a staging copy must never send invoices from the company's mailbox:
-- forget the passwords and OAuth tokens of own mailboxes, archive them and switch the feature off
UPDATE smtp_invoicing_mailbox
   SET smtp_invoicing_password_enc = NULL,
       smtp_invoicing_oauth_refresh_enc = NULL,
       smtp_invoicing_oauth_access_enc = NULL,
       smtp_invoicing_oauth_expires = 0,
       verification_state = 'draft',
       verification_message = 'Neutralized database copy: enter the password again and verify before use.',
       smtp_invoicing_verified_at = NULL,
       smtp_invoicing_next_check_at = NULL,
       smtp_invoicing_check_warning = NULL,
       smtp_invoicing_lease_until = NULL;

UPDATE ir_mail_server
   SET active = false,
       smtp_pass = NULL
 WHERE id IN (SELECT mail_server_id FROM smtp_invoicing_mailbox);

UPDATE ir_config_parameter
   SET value = 'False'
 WHERE key = 'smtp_invoicing.enabled';

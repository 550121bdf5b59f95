{
    "name": "SMTP Invoicing: send invoices from your own mailbox",
    "summary": "Send invoices and payment reminders through the company's own "
    "verified mailbox (Gmail, Microsoft 365, OVH, any SMTP), with encrypted passwords.",
    "version": "18.0.1.2.0",
    "category": "Accounting/Accounting",
    "license": "LGPL-3",
    "author": "smtp_invoicing",
    "maintainers": ["smtp-invoicing"],
    "website": "https://github.com/smtp-invoicing/smtp_invoicing",
    "images": ["static/description/screenshot_mailboxes.png"],
    "depends": ["account", "mail"],
    "external_dependencies": {"python": ["cryptography", "dnspython", "imapclient", "flufl.bounce"]},
    "data": [
        "security/smtp_invoicing_security.xml",
        "security/ir.model.access.csv",
        "data/ir_cron_data.xml",
        "data/mail_template_data.xml",
        "views/ir_mail_server_views.xml",
        "views/ir_mail_server_delivery_views.xml",
        "views/smtp_invoicing_test_email_views.xml",
        "views/smtp_invoicing_template_mailbox_views.xml",
        "views/mail_template_views.xml",
        "views/res_config_settings_views.xml",
        "views/account_move_views.xml",
        "views/res_partner_views.xml",
        "views/ir_mail_server_conversion_views.xml",
    ],
    "demo": [
        "demo/smtp_invoicing_demo.xml",
    ],
    "assets": {
        "web.assets_tests": [
            "smtp_invoicing/static/src/tours/*.js",
        ],
    },
    "uninstall_hook": "_uninstall_release_mailboxes",
    "installable": True,
}

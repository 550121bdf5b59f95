"""Provider presets: what an administrator picks instead of typing host and port."""

PRESETS = {
    "gmail": {
        "label": "Gmail / Google Workspace",
        "host": "smtp.gmail.com",
        "port": 587,
        "encryption": "starttls",
        "imap_host": "imap.gmail.com",
        "imap_port": 993,
        # Gmail files the mails sent through its SMTP in "Sent Mail" itself
        "sent_copy": False,
    },
    "microsoft365": {
        "label": "Microsoft 365",
        "host": "smtp.office365.com",
        "port": 587,
        "encryption": "starttls",
        "imap_host": "outlook.office365.com",
        "imap_port": 993,
        # Exchange Online stores every message submitted over SMTP AUTH in Sent Items itself
        # (lib/providers.py); a copy of ours would file each mail twice
        "sent_copy": False,
    },
    "outlook": {
        "label": "Outlook.com",
        "host": "smtp-mail.outlook.com",
        "port": 587,
        "encryption": "starttls",
        "imap_host": "outlook.office365.com",
        "imap_port": 993,
        # same SMTP submission service as Microsoft 365: it files Sent Items itself
        "sent_copy": False,
    },
    "ovh": {
        "label": "OVH",
        "host": "ssl0.ovh.net",
        "port": 465,
        "encryption": "ssl",
        "imap_host": "ssl0.ovh.net",
        "imap_port": 993,
        "sent_copy": True,
    },
}

SELECTION = [(code, preset["label"]) for code, preset in PRESETS.items()] + [("custom", "Custom")]


def preset_values(code):
    """Return the ``ir.mail_server`` values a preset fills (sending and incoming), or {} for Custom."""
    preset = PRESETS.get(code)
    if not preset:
        return {}
    return {
        "smtp_host": preset["host"],
        "smtp_port": preset["port"],
        "smtp_encryption": preset["encryption"],
        "smtp_invoicing_imap_host": preset["imap_host"],
        "smtp_invoicing_imap_port": preset["imap_port"],
        "smtp_invoicing_sent_copy": preset["sent_copy"],
    }


def preset_of_host(host):
    """Return the preset whose host is ``host``, or "custom"."""
    host = (host or "").strip().lower()
    return next((code for code, preset in PRESETS.items() if preset["host"] == host), "custom")

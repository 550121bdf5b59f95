"""Provider presets: what an administrator picks instead of typing host and port."""

PRESETS = {
    "gmail": {"label": "Gmail / Google Workspace", "host": "smtp.gmail.com", "port": 587, "encryption": "starttls"},
    "microsoft365": {"label": "Microsoft 365", "host": "smtp.office365.com", "port": 587, "encryption": "starttls"},
    "outlook": {"label": "Outlook.com", "host": "smtp-mail.outlook.com", "port": 587, "encryption": "starttls"},
    "ovh": {"label": "OVH", "host": "ssl0.ovh.net", "port": 465, "encryption": "ssl"},
}

SELECTION = [(code, preset["label"]) for code, preset in PRESETS.items()] + [("custom", "Custom")]


def preset_values(code):
    """Return the ``ir.mail_server`` values a preset fills, or {} for Custom."""
    preset = PRESETS.get(code)
    if not preset:
        return {}
    return {"smtp_host": preset["host"], "smtp_port": preset["port"], "smtp_encryption": preset["encryption"]}


def preset_of_host(host):
    """Return the preset whose host is ``host``, or "custom"."""
    host = (host or "").strip().lower()
    return next((code for code, preset in PRESETS.items() if preset["host"] == host), "custom")

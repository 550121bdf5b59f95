"""Take the documentation screenshots from a real headless Chromium against a running demo.

Start the product first (scripts/run.sh), then:

    venv/bin/python scripts/screenshots.py [--url http://127.0.0.1:8069] [--db smtp_invoicing_demo]
                                           [--only NAME ...] [--out DIR]

Logs in as admin over JSON-RPC, hands the session cookie to Chromium through the
DevTools protocol (websocket-client), and saves PNGs in smtp_invoicing/static/description/
(shown in README.md and on the Apps store page). Adds a mailbox on a closed port
to show a failed verification, once.

Each screenshot is one ``Shot`` of ``SHOTS``: a file name, the URL to open (``{name}``
placeholders are filled from ``records()``), the selector to wait for, then optional
steps (click, wait, scroll) and the part of the page to keep. To add one, add a line.
"""

import argparse
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from dataclasses import dataclass

import requests
import websocket

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "smtp_invoicing", "static", "description")
FAILED_NAME = "Old office server"
SETTING = "#smtp_invoicing_enabled_setting"
# the settings block: its title and its container
SETTINGS_BLOCK_RECT = f"""(() => {{
    const box = document.querySelector('{SETTING}').parentElement;
    const top = box.previousElementSibling.getBoundingClientRect(), rect = box.getBoundingClientRect();
    return [rect.x, top.y, rect.width, rect.bottom - top.y];
}})()"""


class Odoo:
    def __init__(self, url, db, login="admin", password="admin"):
        self.url, self.http = url, requests.Session()
        self.rpc("/web/session/authenticate", db=db, login=login, password=password)

    def rpc(self, path, **params):
        reply = self.http.post(self.url + path, json={"jsonrpc": "2.0", "params": params}, timeout=60).json()
        if "error" in reply:
            raise RuntimeError(json.dumps(reply["error"])[:2000])
        return reply["result"]

    def call(self, model, method, *args, **kwargs):
        return self.rpc("/web/dataset/call_kw", model=model, method=method, args=list(args), kwargs=kwargs)


class Chrome:
    def __init__(self, width=1400, height=900):
        self.profile = tempfile.mkdtemp(prefix="si_chrome_")
        self.process = subprocess.Popen(
            ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--window-size={width},{height}", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
             f"--user-data-dir={self.profile}", "--no-first-run", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        for _ in range(100):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.1)
        port = open(port_file).read().split()[0]
        targets = requests.get(f"http://127.0.0.1:{port}/json", timeout=10).json()
        page = next(t for t in targets if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self.ids = 0
        self.send("Page.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def send(self, method, **params):
        self.ids += 1
        self.ws.send(json.dumps({"id": self.ids, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.ids:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def js(self, expression):
        result = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        return result.get("result", {}).get("value")

    def wait_for(self, selector, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.js(f"!!document.querySelector({json.dumps(selector)})"):
                time.sleep(0.8)  # let the web client finish rendering
                return
            time.sleep(0.2)
        raise TimeoutError(f"{selector} never appeared")

    def click(self, selector):
        self.wait_for(selector)
        self.js(f"document.querySelector({json.dumps(selector)}).click()")

    def open(self, url, selector):
        self.send("Page.navigate", url=url)
        self.wait_for(selector)

    def scroll_to(self, selector):
        self.js(f"document.querySelector({json.dumps(selector)}).scrollIntoView({{block: 'center'}})")
        time.sleep(0.5)

    def shoot(self, path, clip_js=None, margin=16):
        """Save a screenshot; ``clip_js`` returns the [x, y, width, height] to keep."""
        # the bus may warn that assets changed since the demo was updated: not what the docs show
        self.js("document.querySelectorAll('.o_notification').forEach((n) => n.remove())")
        params = {"format": "png"}
        if clip_js:
            x, y, width, height = self.js(clip_js)
            params["clip"] = {"x": max(x - margin, 0), "y": max(y - margin, 0), "width": width + 2 * margin,
                              "height": height + 2 * margin, "scale": 1}  # fmt: skip
        data = self.send("Page.captureScreenshot", **params)["data"]
        with open(path, "wb") as handle:
            handle.write(base64.b64decode(data))
        print(path)

    def close(self):
        self.ws.close()
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.profile, ignore_errors=True)


def failed_mailbox(odoo):
    """A mailbox on a closed port, verified by the server's cron: it shows a Failed status."""
    found = odoo.call("ir.mail_server", "search", [("name", "=", FAILED_NAME)])
    if found:
        return found[0]
    admin = odoo.call("res.users", "read", [2], ["email"])[0]
    mailbox_id = odoo.call(
        "ir.mail_server",
        "create",
        {
            "name": FAILED_NAME,
            "smtp_invoicing_mailbox": True,
            "sender_name": "YourCompany Accounts",
            "sender_email": admin["email"],
            "smtp_user": admin["email"],
            "smtp_pass": "old-password",
            "smtp_host": "127.0.0.1",
            "smtp_port": 2599,
            "smtp_encryption": "starttls",
            "smtp_authentication": "login",
        },
    )
    odoo.call("ir.mail_server", "action_verify", [mailbox_id])
    for _ in range(60):
        state = odoo.call("ir.mail_server", "read", [mailbox_id], ["verification_state"])[0]["verification_state"]
        if state == "failed":
            break
        time.sleep(1)
    return mailbox_id


@dataclass
class Shot:
    """One screenshot: open ``url`` (after the server's address), wait for ``wait``, run ``steps``, keep ``clip``.

    ``steps`` are ("click", selector), ("wait", selector) or ("scroll", selector); ``clip`` is a
    JavaScript expression returning [x, y, width, height], or None for the whole window.
    """

    name: str
    url: str
    wait: str
    steps: tuple = ()
    clip: str | None = None
    margin: int = 16


SHOTS = [
    Shot(
        "screenshot_settings.png",
        "/odoo/action-account.action_account_config",
        SETTING,
        steps=(("scroll", SETTING),),
        clip=SETTINGS_BLOCK_RECT,
    ),
    Shot(
        "screenshot_mailboxes.png",
        "/odoo/action-smtp_invoicing.action_smtp_invoicing_mail_servers",
        ".o_list_table",
        clip="[0, 0, 1400, 300]",
        margin=0,
    ),
    Shot(
        "screenshot_failed.png",
        "/odoo/action-smtp_invoicing.action_smtp_invoicing_mail_servers/{failed_mailbox}",
        ".o_smtp_invoicing_failure",
    ),
    Shot(
        "screenshot_template.png",
        "/odoo/action-mail.action_email_template_tree_all/{invoice_template}",
        ".o_form_view",
        steps=(
            ("click", "a[name='email_settings']"),
            ("click", "div[name='mail_server_id'] input"),
            ("wait", ".o-autocomplete--dropdown-menu"),
        ),
        clip="[0, 0, 1400, 600]",
        margin=0,
    ),
]


def records(odoo):
    """The records the shots' URLs name, made on the demo when missing."""
    return {
        "failed_mailbox": failed_mailbox(odoo),
        "invoice_template": odoo.call(
            "ir.model.data", "check_object_reference", "account", "email_template_edi_invoice"
        )[1],
    }


def take(chrome, base_url, shot, ids, out):
    chrome.open(base_url + shot.url.format(**ids), shot.wait)
    actions = {"click": chrome.click, "wait": chrome.wait_for, "scroll": chrome.scroll_to}
    for action, selector in shot.steps:
        actions[action](selector)
    chrome.shoot(os.path.join(out, shot.name), shot.clip, margin=shot.margin)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('HTTP_PORT', '8069')}")
    parser.add_argument("--db", default=os.environ.get("SMTP_INVOICING_DEMO_DB", "smtp_invoicing_demo"))
    parser.add_argument("--only", nargs="+", metavar="NAME", help="take these shots only (file names)")
    parser.add_argument("--out", default=OUT, help="directory for the PNGs (default: the addon's description)")
    args = parser.parse_args()
    shots = [shot for shot in SHOTS if not args.only or shot.name in args.only]
    unknown = set(args.only or ()) - {shot.name for shot in SHOTS}
    if unknown:
        parser.error(f"unknown shots {sorted(unknown)}; known: {[shot.name for shot in SHOTS]}")
    odoo = Odoo(args.url, args.db)
    ids = records(odoo)
    os.makedirs(args.out, exist_ok=True)
    chrome = Chrome()
    try:
        host = urllib.parse.urlsplit(args.url).hostname
        chrome.send("Network.enable")
        chrome.send(
            "Network.setCookie", name="session_id", value=odoo.http.cookies["session_id"], domain=host, path="/"
        )
        for shot in shots:
            take(chrome, args.url, shot, ids, args.out)
    finally:
        chrome.close()


if __name__ == "__main__":
    main()

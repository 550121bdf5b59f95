"""Take the documentation screenshots from a real headless Chromium against a running demo.

Start the product first (scripts/run.sh), then:

    venv/bin/python scripts/screenshots.py [--url http://127.0.0.1:8069] [--db smtp_invoicing_demo]
                                           [--only NAME ...] [--out DIR]

Logs in as admin over JSON-RPC, hands the session cookie to Chromium through the
DevTools protocol (websocket-client), and saves PNGs in smtp_invoicing/static/description/
(shown in README.md and on the Apps store page).

``records()`` makes the states the shots show, once, by the paths users take; no state is
written by hand: a mailbox on a closed port whose first verification failed; a mailbox
verified through a relay that is then switched off, its daily re-check brought forward, so
the re-check cannot reach the server (Verified with a warning); an invoice delivered by
Send; and invoices sent by Send to the two customer addresses that the demo
sink refuses (``REFUSED_RECIPIENTS`` of scripts/smtp_sink.py), one for good (550: not
delivered) and one for now (451: waiting for its next attempt); a mailbox verified on the sink and
chosen by a copy of the invoice template, then moved to a closed port and verified again (Failed),
so that a Send with that template cannot send; the company's document layout, which the first
Send asks for. A shot taken in another language installs it first.

Each screenshot is one ``Shot`` of ``SHOTS``: a file name, the URL to open (``{name}``
placeholders are filled from ``records()``), the selector to wait for, then optional
steps (click, wait, scroll) and the part of the page to keep. To add one, add a line.
"""

import argparse
import base64
import json
import os
import shutil
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass

import requests
import websocket

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "smtp_invoicing", "static", "description")
FAILED_NAME = "Old office server"
WARNING_NAME = "Lyon office"
MOVED_NAME = "Nantes office"
MOVED_TEMPLATE = "Invoice: Sending from Nantes"
CLOSED_PORT = 2599
# customers whose address the demo sink refuses at RCPT (REFUSED_RECIPIENTS of scripts/smtp_sink.py),
# and the delivery state that refusal gives their invoice
REFUSED_CUSTOMERS = {
    "undelivered_invoice": ("Papeterie Roux", "compta@papeterie-roux.example.com", "failed"),
    "waiting_invoice": ("Fromagerie Blanc", "factures@fromagerie-blanc.example.com", "queued"),
}
MAILBOX = "smtp_invoicing.mailbox"
MAILBOXES = "/odoo/action-smtp_invoicing.smtp_invoicing_mailbox_action"
INVOICES = "/odoo/action-account.action_move_out_invoice_type"
SETTING = "#smtp_invoicing_enabled_setting"
# the settings block: its title and its container
SETTINGS_BLOCK_RECT = f"""(() => {{
    const box = document.querySelector('{SETTING}').parentElement;
    const top = box.previousElementSibling.getBoundingClientRect(), rect = box.getBoundingClientRect();
    return [rect.x, top.y, rect.width, rect.bottom - top.y];
}})()"""


def area(*selectors):
    """JavaScript returning the [x, y, width, height] around the first element of each selector."""
    return f"""(() => {{
    const rects = {json.dumps(selectors)}.map((s) => document.querySelector(s).getBoundingClientRect());
    const left = Math.min(...rects.map((r) => r.left)), top = Math.min(...rects.map((r) => r.top));
    const right = Math.max(...rects.map((r) => r.right)), bottom = Math.max(...rects.map((r) => r.bottom));
    return [left, top, right - left, bottom - top];
}})()"""


class Odoo:
    def __init__(self, url, db, login="admin", password="admin"):
        self.url, self.http = url, requests.Session()
        self.uid = self.rpc("/web/session/authenticate", db=db, login=login, password=password)["uid"]

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

    def click_text(self, selector, text):
        """Click the element of ``selector`` that reads ``text`` (a search filter has no name to select)."""
        self.wait_for(selector)
        found = self.js(
            f"""(() => {{
            const item = [...document.querySelectorAll({json.dumps(selector)})]
                .find((el) => el.textContent.trim() === {json.dumps(text)});
            return item ? (item.click(), true) : false;
        }})()"""
        )
        if not found:
            raise LookupError(f"no {selector} reads {text!r}")
        time.sleep(0.5)

    def wait_for_text(self, selector, text, timeout=120):
        """Wait until an element of ``selector`` reads ``text``: a result the server saves in the background
        (the scheduled action's verification) shows once the form reloads on the bus."""
        found = (
            f"[...document.querySelectorAll({json.dumps(selector)})]"
            f".some((el) => el.textContent.includes({json.dumps(text)}))"
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.js(found):
                time.sleep(0.8)  # let the web client finish rendering
                return
            time.sleep(0.5)
        raise TimeoutError(f"no {selector} read {text!r} within {timeout} s")

    def type_text(self, selector, text):
        """Replace the text of an input as a user types it (a many2one searches as it is typed)."""
        self.wait_for(selector)
        self.js(f"(el => (el.focus(), el.select()))(document.querySelector({json.dumps(selector)}))")
        self.send("Input.insertText", text=text)
        time.sleep(0.5)

    def check(self, selector):
        """Tick a checkbox (an optional list column), whatever an earlier shot left."""
        self.wait_for(selector)
        self.js(f"(el => el.checked || el.click())(document.querySelector({json.dumps(selector)}))")

    def open(self, url, selector):
        self.send("Page.navigate", url=url)
        # the first page of a new demo waits for its asset bundles: half a minute on a busy machine
        self.wait_for(selector, timeout=120)

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


def wait_until(read, done, what, timeout=90):
    """Poll ``read()`` until ``done(value)``: the server's queue and crons work in the background."""
    deadline = time.time() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.time() > deadline:
            raise TimeoutError(f"{what}: still {value!r} after {timeout} s")
        time.sleep(1)


def xmlid(odoo, module, name):
    return odoo.call("ir.model.data", "check_object_reference", module, name)[1]


class Relay(socketserver.ThreadingTCPServer):
    """A plain TCP relay from a loopback port to the sink: a server that can be switched off.

    TLS passes through untouched, so Odoo still verifies the sink's certificate.
    """

    daemon_threads = True

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        super().__init__(("127.0.0.1", 0), _RelayHandler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def close(self):
        self.shutdown()
        self.server_close()


class _RelayHandler(socketserver.BaseRequestHandler):
    def handle(self):
        with socket.create_connection(("127.0.0.1", self.server.upstream_port), timeout=30) as upstream:
            threading.Thread(target=self._pump, args=(upstream, self.request), daemon=True).start()
            self._pump(self.request, upstream)

    @staticmethod
    def _pump(source, target):
        try:
            while data := source.recv(65536):
                target.sendall(data)
            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def new_mailbox(odoo, name, port):
    """An own mailbox of the administrator on 127.0.0.1:``port``, its verification requested."""
    admin = odoo.call("res.users", "read", [2], ["email"])[0]
    mailbox_id = odoo.call(
        MAILBOX,
        "create",
        {
            "name": name,
            "sender_name": "YourCompany Accounts",
            "sender_email": admin["email"],
            "smtp_user": admin["email"],
            "smtp_pass": "old-password",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_encryption": "starttls",
            "smtp_authentication": "login",
        },
    )
    odoo.call(MAILBOX, "action_verify", [mailbox_id])
    return mailbox_id


def mailbox_field(odoo, mailbox_id, field):
    return lambda: odoo.call(MAILBOX, "read", [mailbox_id], [field])[0][field]


def failed_mailbox(odoo):
    """A mailbox on a closed port, verified by the server's cron: it shows a Failed status."""
    found = odoo.call(MAILBOX, "search", [("name", "=", FAILED_NAME)])
    if found:
        return found[0]
    mailbox_id = new_mailbox(odoo, FAILED_NAME, CLOSED_PORT)
    wait_until(mailbox_field(odoo, mailbox_id, "verification_state"), lambda s: s == "failed", FAILED_NAME)
    return mailbox_id


def warning_mailbox(odoo):
    """A mailbox verified through a relay to the sink; with the relay gone, its next re-check cannot
    reach the server: it stays Verified, with a warning and the time of the next attempt."""
    found = odoo.call(MAILBOX, "search", [("name", "=", WARNING_NAME)])
    if found:
        return found[0]
    sink = odoo.call(MAILBOX, "read", [xmlid(odoo, "smtp_invoicing", "demo_mailbox_invoices")], ["smtp_port"])
    relay = Relay(sink[0]["smtp_port"])
    try:
        mailbox_id = new_mailbox(odoo, WARNING_NAME, relay.port)
        wait_until(mailbox_field(odoo, mailbox_id, "verification_state"), lambda s: s == "verified", WARNING_NAME)
    finally:
        relay.close()
    # the daily re-check, brought forward: the scheduled action runs it now
    odoo.call(MAILBOX, "write", [mailbox_id], {"smtp_invoicing_next_check_at": "2000-01-01 00:00:00"})
    odoo.call("ir.cron", "method_direct_trigger", [xmlid(odoo, "smtp_invoicing", "ir_cron_verify_mail_servers")])
    wait_until(mailbox_field(odoo, mailbox_id, "smtp_invoicing_check_warning"), bool, WARNING_NAME)
    return mailbox_id


def moved_mailbox_template(odoo):
    """A copy of the invoice template that sends from a mailbox verified on the sink; the mailbox
    is then moved to a closed port and verified again: Failed, while the template still chose it."""
    found = odoo.call("mail.template", "search", [("name", "=", MOVED_TEMPLATE)])
    if found:
        return found[0]
    sink = odoo.call(MAILBOX, "read", [xmlid(odoo, "smtp_invoicing", "demo_mailbox_invoices")], ["smtp_port"])
    mailbox_id = new_mailbox(odoo, MOVED_NAME, sink[0]["smtp_port"])
    wait_until(mailbox_field(odoo, mailbox_id, "verification_state"), lambda s: s == "verified", MOVED_NAME)
    # Duplicate, then rename and choose the mailbox, as on the template's form (a copy is named "… (copy)")
    template_id = odoo.call("mail.template", "copy", [xmlid(odoo, "account", "email_template_edi_invoice")])[0]
    server_id = odoo.call(MAILBOX, "read", [mailbox_id], ["mail_server_id"])[0]["mail_server_id"][0]
    odoo.call("mail.template", "write", [template_id], {"name": MOVED_TEMPLATE, "mail_server_id": server_id})
    odoo.call(MAILBOX, "write", [mailbox_id], {"smtp_port": CLOSED_PORT})
    odoo.call(MAILBOX, "action_verify", [mailbox_id])
    wait_until(mailbox_field(odoo, mailbox_id, "verification_state"), lambda s: s == "failed", MOVED_NAME)
    return template_id


def document_layout(odoo):
    """The company's document layout, chosen as an administrator's first Send asks (Continue):
    until then, Send opens the layout window instead of the Send dialog."""
    company_id = odoo.call("res.users", "read", [odoo.uid], ["company_id"])[0]["company_id"][0]
    if odoo.call("res.company", "read", [company_id], ["external_report_layout_id"])[0]["external_report_layout_id"]:
        return
    layout_id = xmlid(odoo, "web", "external_layout_standard")
    wizard_id = odoo.call("base.document.layout", "create", {"external_report_layout_id": layout_id})
    odoo.call("base.document.layout", "document_layout_save", [wizard_id])


def install_lang(odoo, code):
    """The language ``code`` installed as Settings › Languages › Add does, when it is not yet."""
    lang_ids = odoo.call("res.lang", "search", [("code", "=", code), ("active", "=", False)])
    if lang_ids:
        wizard_id = odoo.call("base.language.install", "create", {"lang_ids": [(6, 0, lang_ids)]})
        odoo.call("base.language.install", "lang_install", [wizard_id])


def move_delivery(odoo, move_id):
    fields = ["smtp_invoicing_delivery_state", "smtp_invoicing_mail_failure"]
    move = odoo.call("account.move", "read", [move_id], fields)[0]
    return move["smtp_invoicing_delivery_state"], move["smtp_invoicing_mail_failure"]


def send_and_print(odoo, move_id, state):
    """Send the invoice as a user does (Send, default options) and wait for ``state``."""
    context = {"active_model": "account.move", "active_ids": [move_id]}
    wizard_id = odoo.call("account.move.send.wizard", "create", {}, context=context)
    odoo.call("account.move.send.wizard", "action_send_and_print", [wizard_id], context=context)
    # queued alone is the state of a mail not tried yet: wait for the reason of its wait
    wait_until(
        lambda: move_delivery(odoo, move_id),
        lambda value: value[0] == state and (state != "queued" or value[1]),
        f"invoice {move_id}",
    )


def delivered_invoice(odoo):
    """The demo's first invoice, delivered by Send."""
    move_id = xmlid(odoo, "smtp_invoicing", "demo_invoice_overdue_long")
    if move_delivery(odoo, move_id)[0] != "sent":
        send_and_print(odoo, move_id, "sent")
    return move_id


def refused_invoice(odoo, key):
    """An invoice of a customer whose address the sink refuses, sent by Send."""
    name, email, state = REFUSED_CUSTOMERS[key]
    partner_ids = odoo.call("res.partner", "search", [("email", "=", email)], limit=1)
    if partner_ids:
        partner_id = partner_ids[0]
    else:
        partner_id = odoo.call("res.partner", "create", {"name": name, "email": email, "is_company": True})
    domain = [("partner_id", "=", partner_id), ("move_type", "=", "out_invoice"), ("state", "=", "posted")]
    move_ids = odoo.call("account.move", "search", domain, limit=1)
    if move_ids:
        move_id = move_ids[0]
    else:
        move_id = odoo.call(
            "account.move",
            "create",
            {
                "move_type": "out_invoice",
                "partner_id": partner_id,
                "invoice_line_ids": [(0, 0, {"name": "Bookkeeping, monthly", "quantity": 1, "price_unit": 320.0})],
            },
        )
        odoo.call("account.move", "action_post", [move_id])
    if move_delivery(odoo, move_id)[0] != state:
        send_and_print(odoo, move_id, state)
    return move_id


@dataclass
class Shot:
    """One screenshot: open ``url`` (after the server's address), wait for ``wait``, run ``steps``, keep ``clip``.

    ``steps`` are ("click", selector), ("click_text", selector, text), ("type", selector, text),
    ("check", selector), ("wait", selector), ("wait_text", selector, text) or ("scroll", selector);
    ``clip`` is a JavaScript expression returning [x, y, width, height] (``area()`` writes one),
    or None for the whole window; ``lang`` is the administrator's language during the shot (his own is restored after).
    """

    name: str
    url: str
    wait: str
    steps: tuple = ()
    clip: str | None = None
    margin: int = 16
    lang: str | None = None


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
        MAILBOXES,
        ".o_list_table",
        clip=area(".o_main_navbar", ".o_list_table"),
        margin=0,
    ),
    Shot(
        "screenshot_failed.png",
        f"{MAILBOXES}/{{failed_mailbox}}",
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
    Shot(
        "screenshot_delivered.png",
        f"{INVOICES}/{{delivered_invoice}}",
        ".o_form_view",
        steps=(("click", "a[name='other_info']"), ("wait", "a[name='other_info'].active")),
        clip=area(".oe_title", ".o_notebook"),
    ),
    Shot(
        "screenshot_invoice_list.png",
        INVOICES,
        ".o_list_table",
        steps=(
            ("click", ".o_optional_columns_dropdown_toggle"),
            ("check", ".o-dropdown--menu input[name='smtp_invoicing_delivery_state']"),
            ("click", ".o_searchview_dropdown_toggler"),
            ("click_text", ".o_filter_menu .o_menu_item", "Not delivered"),
            ("click_text", ".o_filter_menu .o_menu_item", "Email waiting"),
            ("click", ".o_searchview_dropdown_toggler"),
        ),
        clip=area(".o_control_panel", ".o_list_table"),
        margin=0,
    ),
    Shot(
        "screenshot_not_delivered.png",
        f"{INVOICES}/{{undelivered_invoice}}",
        ".o_smtp_invoicing_mail_failure",
        clip=area(".o_form_statusbar", "div[name='partner_id']", "div[name='invoice_date_due']"),
    ),
    Shot(
        "screenshot_waiting.png",
        f"{INVOICES}/{{waiting_invoice}}",
        ".o_smtp_invoicing_mail_waiting",
        clip=area(".o_form_statusbar", "div[name='partner_id']", "div[name='invoice_date_due']"),
    ),
    Shot(
        "screenshot_send_from.png",
        f"{INVOICES}/{{invoice_to_send}}",
        ".o_form_view button[name='action_invoice_sent']",
        steps=(
            ("click", ".o_form_view button[name='action_invoice_sent']"),
            ("wait", ".modal .alert-info div[name^='smtp_invoicing_from_']"),
        ),
        clip=area(".modal-content"),
        margin=0,
    ),
    Shot(
        "screenshot_send_blocked.png",
        f"{INVOICES}/{{invoice_to_send}}",
        ".o_form_view button[name='action_invoice_sent']",
        steps=(
            ("click", ".o_form_view button[name='action_invoice_sent']"),
            ("type", ".modal div[name='mail_template_id'] input", "Nantes"),
            ("click_text", ".o-autocomplete--dropdown-item", MOVED_TEMPLATE),
            ("wait", ".modal .alert-danger div[name^='smtp_invoicing_mailbox_not_ready_']"),
            ("wait", ".modal button.o_smtp_invoicing_send_blocked:disabled"),
        ),
        clip=area(".modal-content"),
        margin=0,
    ),
    Shot(
        "screenshot_check_warning.png",
        f"{MAILBOXES}/{{warning_mailbox}}",
        ".o_smtp_invoicing_check_warning",
        clip=area(".o_form_statusbar", ".oe_title"),
    ),
    Shot(
        "screenshot_test_email.png",
        f"{MAILBOXES}/{{invoice_mailbox}}",
        ".o_form_view",
        steps=(("click", "button[name='action_smtp_invoicing_send_test_email']"), ("wait", ".modal .o_form_view")),
        clip=area(".modal-content"),
        margin=0,
    ),
    Shot(
        "screenshot_mailbox_french.png",
        f"{MAILBOXES}/{{invoice_mailbox}}",
        ".o_form_view button[name='action_verify']",
        # Verify as the French administrator: the scheduled action writes the status in his language
        steps=(
            ("click", ".o_form_view button[name='action_verify']"),
            ("wait_text", ".o_form_view .alert-success .o_smtp_invoicing_success", "Vérifiée :"),
        ),
        clip=area(
            ".o_main_navbar", ".o_inner_group:has(div[name='smtp_pass'])", ".o_inner_group:has(div[name='smtp_port'])"
        ),
        margin=0,
        lang="fr_FR",
    ),
]


def records(odoo):
    """The records the shots show (their URLs name most of them), made on the demo when missing."""
    document_layout(odoo)
    return {
        "failed_mailbox": failed_mailbox(odoo),
        "warning_mailbox": warning_mailbox(odoo),
        "invoice_mailbox": xmlid(odoo, "smtp_invoicing", "demo_mailbox_invoices"),
        "invoice_template": xmlid(odoo, "account", "email_template_edi_invoice"),
        "delivered_invoice": delivered_invoice(odoo),
        "invoice_to_send": xmlid(odoo, "smtp_invoicing", "demo_invoice_overdue_short"),
        "moved_template": moved_mailbox_template(odoo),
        **{key: refused_invoice(odoo, key) for key in REFUSED_CUSTOMERS},
    }


def take(odoo, chrome, base_url, shot, ids, out):
    own_lang = None
    if shot.lang:
        install_lang(odoo, shot.lang)
        own_lang = odoo.call("res.users", "read", [odoo.uid], ["lang"])[0]["lang"]
        odoo.call("res.users", "write", [odoo.uid], {"lang": shot.lang})
    try:
        chrome.open(base_url + shot.url.format(**ids), shot.wait)
        actions = {
            "click": chrome.click,
            "click_text": chrome.click_text,
            "type": chrome.type_text,
            "check": chrome.check,
            "wait": chrome.wait_for,
            "wait_text": chrome.wait_for_text,
            "scroll": chrome.scroll_to,
        }
        for action, *args in shot.steps:
            actions[action](*args)
        chrome.shoot(os.path.join(out, shot.name), shot.clip, margin=shot.margin)
    finally:
        if own_lang:
            odoo.call("res.users", "write", [odoo.uid], {"lang": own_lang})


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
            take(odoo, chrome, args.url, shot, ids, args.out)
    finally:
        chrome.close()


if __name__ == "__main__":
    main()

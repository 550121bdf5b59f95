import { registry } from "@web/core/registry";
import { rpc } from "@web/core/network/rpc";

// A French-speaking administrator's first hour (tests/test_french_tour.py). The steps find
// elements by field names, button names and classes: the screens are in French.

// What the test prepared: its loopback server (port, CA) and the invoice to send.
const prepared = {};

async function readPrepared() {
    const call = (key) =>
        rpc("/web/dataset/call_kw/ir.config_parameter/get_param", {
            model: "ir.config_parameter",
            method: "get_param",
            args: [key],
            kwargs: {},
        });
    prepared.port = await call("smtp_invoicing.tour_smtp_port");
    prepared.ca = await call("smtp_invoicing.tour_smtp_ca");
    prepared.invoiceId = await call("smtp_invoicing.tour_invoice_id");
}

const MAILBOX = "Boîte factures";

registry.category("web_tour.tours").add("smtp_invoicing_french_setup", {
    url: "/odoo/action-account.action_account_config",
    steps: () => [
        {
            content: "The Settings search finds the setting by a French word of its own",
            trigger: ".o_searchview_input",
            run: "edit courriel",
        },
        {
            trigger: "#smtp_invoicing_enabled_setting",
        },
        {
            content: "… and by the words of the other languages the module ships",
            trigger: ".o_searchview_input",
            run: "edit Postausgang",
        },
        {
            trigger: "#smtp_invoicing_enabled_setting",
        },
        {
            trigger: ".o_searchview_input",
            run: "edit buzón",
        },
        {
            content: "Switch the feature on",
            trigger: "#smtp_invoicing_enabled_setting input[type=checkbox]",
            run: "click",
        },
        {
            content: "Save the settings (the page reloads)",
            trigger: ".o_form_button_save",
            async run(helpers) {
                document.body.classList.add("o_smtp_invoicing_before_reload");
                await helpers.click();
            },
        },
        {
            trigger: "body:not(.o_smtp_invoicing_before_reload) #smtp_invoicing_enabled_setting input:checked",
        },
        {
            content: "Open the mailboxes",
            trigger: "button[name=action_smtp_invoicing_open_mailboxes]",
            run: "click",
        },
        {
            trigger: ".o_list_button_add",
            run: "click",
        },
        {
            content: "A new mailbox offers no Connect or Disconnect: it takes its password in this form",
            trigger:
                ".o_form_view:has(div[name=smtp_pass]):not(:has(button[name=action_smtp_invoicing_connect]))" +
                ":not(:has(button[name=action_smtp_invoicing_disconnect]))",
        },
        {
            trigger: "div[name=name] input",
            async run(helpers) {
                await readPrepared();
                await helpers.edit(MAILBOX);
            },
        },
        {
            trigger: "div[name=sender_name] input",
            run: "edit ACME Facturation",
        },
        {
            trigger: "div[name=sender_email] input",
            run: "edit billing@invoicing.test",
        },
        {
            trigger: "div[name=smtp_user] input",
            run: "edit billing@invoicing.test",
        },
        {
            trigger: "div[name=smtp_pass] input",
            run: "edit app-pass-4f9Kq2",
        },
        {
            content: "The test's loopback STARTTLS server stands for the provider",
            trigger: "div[name=smtp_host] input",
            run: "edit 127.0.0.1",
        },
        {
            trigger: "div[name=smtp_port] input",
            async run(helpers) {
                await helpers.edit(String(prepared.port));
            },
        },
        {
            trigger: "a.nav-link[name=advanced]",
            run: "click",
        },
        {
            trigger: "div[name=smtp_invoicing_ca_cert] textarea",
            async run(helpers) {
                await helpers.edit(prepared.ca);
            },
        },
        {
            trigger: ".o_form_button_save",
            run: "click",
        },
        {
            trigger: ".o_form_saved",
        },
        {
            content: "The port reads as typed, without a thousands separator",
            trigger: "div[name=smtp_port] input",
            run({ anchor }) {
                if (anchor.value !== String(prepared.port)) {
                    throw new Error(`port shown as "${anchor.value}", typed ${prepared.port}`);
                }
            },
        },
        {
            content: "A password mailbox, saved with its password, still offers no Connect or Disconnect",
            trigger:
                ".o_form_view:has(button[name=action_verify]):not(:has(button[name=action_smtp_invoicing_connect]))" +
                ":not(:has(button[name=action_smtp_invoicing_disconnect]))",
        },
        {
            content: "Ask for verification",
            trigger: "button[name=action_verify]",
            run: "click",
        },
        {
            trigger: ".o_statusbar_status button[aria-checked=true]:not([data-value=draft])",
        },
    ],
});

registry.category("web_tour.tours").add("smtp_invoicing_french_send", {
    steps: () => [
        {
            content: "The invoice email template: its Settings tab",
            trigger: "a.nav-link[name=email_settings]",
            async run(helpers) {
                await readPrepared();
                await helpers.click();
            },
        },
        {
            content: "Send from the verified mailbox",
            trigger: "div[name=mail_server_id] input",
            run: `edit ${MAILBOX}`,
        },
        {
            trigger: `.o-autocomplete--dropdown-item a:contains(${MAILBOX})`,
            run: "click",
        },
        {
            trigger: ".o_form_button_save",
            run: "click",
        },
        {
            trigger: ".o_form_saved",
        },
        {
            content: "Open the invoice",
            trigger: ".o_form_saved",
            async run(helpers) {
                await helpers.goToUrl(`/odoo/action-account.action_move_out_invoice_type/${prepared.invoiceId}`);
            },
        },
        {
            content: "Send",
            trigger: ".o_form_view button[name=action_invoice_sent]",
            run: "click",
        },
        {
            content: "Tick: by email",
            trigger: ".modal div[name=sending_method_checkboxes] input#email",
            run: "check",
        },
        {
            content: "Send by email from the wizard",
            trigger: ".modal button[name=action_send_and_print].o_mail_send",
            run: "click",
        },
        {
            content: "The dialog closes once the invoice's PDF is made and the mail queued",
            trigger: "body:not(:has(.modal))",
            // wkhtmltopdf makes the PDF first: seconds on a busy machine, past the 10 s default
            timeout: 60000,
        },
        {
            content: "The delivery state: next to the title, or in the Other Info tab",
            trigger: ".o_form_view a.nav-link[name=other_info]",
            run: "click",
        },
        {
            content: "The email waits in the queue (the field as a selection or as a badge)",
            trigger:
                "div[name=smtp_invoicing_delivery_state] span[raw-value=queued], " +
                "div[name=smtp_invoicing_delivery_state] .badge.text-bg-warning",
        },
    ],
});

registry.category("web_tour.tours").add("smtp_invoicing_french_delivered", {
    steps: () => [
        {
            trigger: ".o_form_view a.nav-link[name=other_info]",
            run: "click",
        },
        {
            content: "The customer's server accepted the email (the field as a selection or as a badge)",
            trigger:
                "div[name=smtp_invoicing_delivery_state] span[raw-value=sent], " +
                "div[name=smtp_invoicing_delivery_state] .badge.text-bg-success",
        },
    ],
});

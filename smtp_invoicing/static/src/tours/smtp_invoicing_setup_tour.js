import { registry } from "@web/core/registry";
import { rpc } from "@web/core/network/rpc";

// The loopback server the test started: its port and the CA that signed its certificate.
const loopback = {};

async function readLoopbackServer() {
    const call = (key) =>
        rpc("/web/dataset/call_kw/ir.config_parameter/get_param", {
            model: "ir.config_parameter",
            method: "get_param",
            args: [key],
            kwargs: {},
        });
    loopback.port = await call("smtp_invoicing.tour_smtp_port");
    loopback.ca = await call("smtp_invoicing.tour_smtp_ca");
}

registry.category("web_tour.tours").add("smtp_invoicing_setup", {
    url: "/odoo/action-account.action_account_config",
    steps: () => [
        {
            content: "Switch on 'Send from my own mailbox'",
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
            content: "The settings are saved",
            trigger: "body:not(.o_smtp_invoicing_before_reload) #smtp_invoicing_enabled_setting input:checked",
        },
        {
            content: "Open the mailboxes",
            trigger: "button[name=action_smtp_invoicing_open_mailboxes]",
            run: "click",
        },
        {
            content: "Add a mailbox",
            trigger: ".o_list_button_add",
            run: "click",
        },
        {
            trigger: "div[name=name] input",
            run: "edit Gmail invoices",
        },
        {
            content: "Choose the Gmail preset",
            trigger: "div[name=smtp_invoicing_preset] select",
            run: 'select "gmail"',
        },
        {
            content: "The preset filled Gmail's host and port, and shows the App Password help",
            trigger: "div[name=smtp_host] input:value(smtp.gmail.com)",
        },
        {
            trigger: "div[name=smtp_port] input:value(587)",
        },
        {
            trigger: ".alert-warning:contains(App Password)",
        },
        {
            content: "The protocol is TLS (STARTTLS) or SSL: no unencrypted choice is offered",
            trigger:
                "div[name=smtp_invoicing_protocol]:has(input[data-value=starttls]:checked)" +
                ":has(input[data-value=ssl]):not(:has(input[data-value=none]))",
        },
        {
            content: "Point the mailbox at the test's loopback server (Gmail itself is not reachable here)",
            trigger: "div[name=smtp_host] input",
            async run(helpers) {
                await readLoopbackServer();
                await helpers.edit("127.0.0.1");
            },
        },
        {
            trigger: "div[name=smtp_port] input",
            async run(helpers) {
                await helpers.edit(String(loopback.port));
            },
        },
        {
            trigger: "div[name=sender_name] input",
            run: "edit ACME Billing",
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
            trigger: "a.nav-link:contains(Advanced)",
            run: "click",
        },
        {
            trigger: "div[name=smtp_invoicing_ca_cert] textarea",
            async run(helpers) {
                await helpers.edit(loopback.ca);
            },
        },
        {
            content: "Save the mailbox",
            trigger: ".o_form_button_save",
            run: "click",
        },
        {
            trigger: ".o_form_saved",
        },
        {
            content: "The saved form says a password is set and never shows it",
            trigger: "div:contains(A password is saved)",
        },
        {
            content: "Ask for verification",
            trigger: "button[name=action_verify]",
            run: "click",
        },
        {
            content: "The mailbox is pending verification",
            trigger: ".o_statusbar_status button[aria-checked=true]:contains(Pending)",
        },
    ],
});

registry.category("web_tour.tours").add("smtp_invoicing_status", {
    url: "/odoo/action-smtp_invoicing.smtp_invoicing_mailbox_action",
    steps: () => [
        {
            content: "The list shows the mailbox as verified",
            trigger: ".o_data_row:contains(Gmail invoices) .badge:contains(Verified)",
        },
        {
            trigger: ".o_data_row:contains(Gmail invoices) td[name=name]",
            run: "click",
        },
        {
            content: "The form explains the result",
            trigger: ".alert-success:contains(Verified)",
        },
        {
            trigger: ".o_statusbar_status button[aria-checked=true]:contains(Verified)",
        },
    ],
});

import { registry } from "@web/core/registry";

// The owner's connect page: Sign in goes to the loopback authorization server, whose
// sign-in page the test's browser submits, and comes back through Odoo's redirect URL.
registry.category("web_tour.tours").add("smtp_invoicing_oauth_connect", {
    steps: () => [
        {
            content: "The mailbox awaits its owner",
            trigger: ".o_smtp_invoicing_connect:contains(awaiting connection)",
        },
        {
            content: "Sign in with Microsoft",
            trigger: ".o_smtp_invoicing_sign_in",
            run: "click",
        },
        {
            content: "Back in Odoo, connected",
            trigger: ".o_smtp_invoicing_connect_done",
        },
        {
            content: "Signed in as the mailbox's account",
            trigger: ".o_smtp_invoicing_connect:contains(Signed in as billing@invoicing.test)",
        },
    ],
});

registry.category("web_tour.tours").add("smtp_invoicing_oauth_refused", {
    steps: () => [
        {
            content: "Sign in with Microsoft",
            trigger: ".o_smtp_invoicing_sign_in",
            run: "click",
        },
        {
            content: "Signing in as another account is refused",
            trigger: ".o_smtp_invoicing_connect_error:contains(You signed in as intruder@invoicing.test)",
        },
        {
            content: "Nothing was saved: the mailbox still awaits its owner",
            trigger: ".o_smtp_invoicing_connect:contains(awaiting connection)",
        },
    ],
});

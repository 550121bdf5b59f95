import { registry } from "@web/core/registry";

// An accountant opens Send, then Send payment reminder, on an invoice whose mailboxes cannot
// send: each window shows where the mail leaves from, why it cannot, and a disabled Send.
registry.category("web_tour.tours").add("smtp_invoicing_send_windows", {
    steps: () => [
        {
            content: "Open the Send dialog",
            trigger: ".o_form_view button[name=action_invoice_sent]",
            run: "click",
        },
        {
            content: "The From line of the invoices mailbox",
            trigger: ".modal .alert-info div[name^=smtp_invoicing_from_]:contains(billing@invoicing.test)",
        },
        {
            content: "Why it cannot send, before any click",
            trigger: ".modal .alert-danger div[name^=smtp_invoicing_mailbox_not_ready_]",
        },
        {
            content: "Send is disabled",
            trigger: ".modal .modal-footer button.o_smtp_invoicing_send_blocked:disabled",
        },
        {
            content: "No enabled Send button is left",
            trigger: ".modal .modal-footer:not(:has(button[name=action_send_and_print]))",
        },
        {
            content: "Close the dialog",
            trigger: ".modal .modal-footer button.btn-secondary",
            run: "click",
        },
        {
            content: "Open the payment reminder window",
            trigger: "body:not(:has(.modal)) .o_form_view button[name=action_smtp_invoicing_send_reminder]",
            run: "click",
        },
        {
            content: "The From line of the reminders mailbox",
            trigger: ".modal .alert-info div[name^=smtp_invoicing_from_]:contains(credit@invoicing.test)",
        },
        {
            content: "Why it cannot send, before any click",
            trigger: ".modal .alert-danger div[name^=smtp_invoicing_mailbox_not_ready_]",
        },
        {
            content: "Send is disabled",
            trigger: ".modal .modal-footer button.o_smtp_invoicing_send_blocked:disabled",
        },
        {
            content: "No enabled Send button is left",
            trigger: ".modal .modal-footer:not(:has(.o_mail_send))",
        },
    ],
});

import { registry } from "@web/core/registry";
import { rpc } from "@web/core/network/rpc";

// The test checks the mailbox in a thread once the form shows it Pending (the tour says so
// in a parameter): the open form must then show the result by itself. The body's mark
// disappears if the page is reloaded.
function checkNow() {
    return rpc("/web/dataset/call_kw/ir.config_parameter/set_param", {
        model: "ir.config_parameter",
        method: "set_param",
        args: ["smtp_invoicing.tour_check_now", "1"],
        kwargs: {},
    });
}

function verifyAndWait(mailbox, state, extra) {
    return [
        {
            content: `Open ${mailbox}`,
            trigger: `.o_data_row td[name=name]:contains(${mailbox})`,
            run: "click",
        },
        {
            trigger: `.o_form_view div[name=name] input:value(${mailbox})`,
            run() {
                document.body.classList.add("o_smtp_invoicing_not_reloaded");
            },
        },
        {
            content: "Ask for verification",
            trigger: ".o_form_view button[name=action_verify]",
            run: "click",
        },
        {
            content: "The form shows Pending",
            trigger: "body.o_smtp_invoicing_not_reloaded .o_statusbar_status button[aria-checked=true][data-value=pending]",
        },
        {
            content: "The test may check the mailbox now",
            trigger: "body.o_smtp_invoicing_not_reloaded .o_form_view .o_form_saved",
            run: checkNow,
        },
        {
            content: "The form shows the result without a reload",
            trigger: `body.o_smtp_invoicing_not_reloaded .o_statusbar_status button[aria-checked=true][data-value=${state}]`,
            timeout: 30000,
        },
        ...extra,
        {
            trigger: ".o_back_button a",
            run: "click",
        },
        {
            trigger: ".o_list_view",
        },
    ];
}

registry.category("web_tour.tours").add("smtp_invoicing_verify_result", {
    url: "/odoo/action-smtp_invoicing.smtp_invoicing_mailbox_action",
    steps: () => [
        ...verifyAndWait("Good invoices", "verified", [
            {
                content: "The success and the requester's notification",
                trigger: "body.o_smtp_invoicing_not_reloaded .alert-success .o_smtp_invoicing_success",
            },
            {
                trigger: ".o_notification:has(.o_notification_bar.bg-success) .o_notification_content:contains(Good invoices)",
            },
        ]),
        ...verifyAndWait("Refused invoices", "failed", [
            {
                content: "The reason, in the form and in the requester's notification",
                trigger: "body.o_smtp_invoicing_not_reloaded .alert-danger .o_smtp_invoicing_failure:contains(password was refused)",
            },
            {
                trigger: ".o_notification:has(.o_notification_bar.bg-danger) .o_notification_content:contains(Refused invoices):contains(password was refused)",
            },
        ]),
    ],
});

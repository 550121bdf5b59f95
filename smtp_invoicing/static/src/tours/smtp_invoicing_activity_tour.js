import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("smtp_invoicing_activity_menu", {
    url: "/odoo",
    steps: () => [
        {
            content: "Open the activity menu",
            trigger: ".o-mail-ActivityMenu-counter",
            run: "click",
        },
        {
            content: "Own mailboxes' to-dos have a group of their own, with the product's icon",
            trigger: ".o-mail-ActivityGroup[data-model_name='ir.mail_server']:has(img[src*=smtp_invoicing])",
            run: "click",
        },
        {
            content: "The product's list of own mailboxes (its status column), without core's servers",
            trigger:
                ".o_list_view:has(th[data-name=verification_state]):not(:has(.o_data_row:contains(Relay))) " +
                ".o_data_row td[name=name]:contains(Invoices mailbox)",
            run: "click",
        },
        {
            content: "The product's form",
            trigger: ".o_form_view div[name=smtp_invoicing_preset]",
        },
    ],
});

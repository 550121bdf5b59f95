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
            content: "Own mailboxes' to-dos are in their model's own group, with the product's icon",
            trigger:
                ".o-mail-ActivityGroup[data-model_name='smtp_invoicing.mailbox']:has(img[src*=smtp_invoicing])",
            run: "click",
        },
        {
            content:
                "The product's list of own mailboxes (its status column): the mailbox with the to-do, not the other",
            trigger:
                ".o_list_view:has(th[data-name=verification_state]):not(:has(.o_data_row:contains(Reminders mailbox))) " +
                ".o_data_row td[name=name]:contains(Invoices mailbox)",
            run: "click",
        },
        {
            content: "The product's form of that mailbox, its to-do in its chatter",
            trigger:
                ".o_form_view:has(div[name=name] input:value(Invoices mailbox)) div[name=smtp_invoicing_preset]",
        },
        {
            trigger: ".o-mail-Chatter .o-mail-Activity:contains(Check)",
        },
    ],
});

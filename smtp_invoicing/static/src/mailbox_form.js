import { onWillUnmount } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { FormController } from "@web/views/form/form_controller";
import { formView } from "@web/views/form/form_view";

/**
 * The own-mailbox form shows the result of a verification by itself: the server sends
 * "smtp_invoicing.mailbox_checked" to whoever requested it once the result is saved
 * (smtp_invoicing_mailbox_verification.py, _smtp_invoicing_tell_requester), and the form of that
 * mailbox reloads, unless it holds unsaved changes.
 */
export class MailboxFormController extends FormController {
    setup() {
        super.setup();
        const busService = useService("bus_service");
        const onChecked = async ({ id }) => {
            const record = this.model.root;
            if (record.resId === id && !(await record.isDirty())) {
                await record.load();
            }
        };
        busService.subscribe("smtp_invoicing.mailbox_checked", onChecked);
        onWillUnmount(() => busService.unsubscribe("smtp_invoicing.mailbox_checked", onChecked));
    }
}

registry.category("views").add("smtp_invoicing_mailbox_form", {
    ...formView,
    Controller: MailboxFormController,
});

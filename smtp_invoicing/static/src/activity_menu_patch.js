import { ActivityMenu } from "@mail/core/web/activity_menu";
import { patch } from "@web/core/utils/patch";

// Own mailboxes' activities open the product's list and form (res_users.py, _get_activity_groups).
patch(ActivityMenu.prototype, {
    availableViews(group) {
        return group.smtp_invoicing_views || super.availableViews(...arguments);
    },
});

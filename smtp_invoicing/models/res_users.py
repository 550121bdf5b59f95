from odoo import _, api, models, modules


class ResUsers(models.Model):
    _inherit = "res.users"

    @api.model
    def _get_activity_groups(self):
        """The activity menu lists own mailboxes' activities under "Own Mailboxes", opening the
        product's list and form (static/src/activity_menu_patch.js); other servers' stay in
        core's group, which opens core's technical views."""
        groups = super()._get_activity_groups()
        servers = next((group for group in groups if group["model"] == "ir.mail_server"), None)
        if servers is None:
            return groups
        activities = self.env["mail.activity"].search(
            [("user_id", "=", self.env.uid), ("res_model", "=", "ir.mail_server")]
        )
        # the records core's group counts: those this user may read (the others are "Other activities")
        readable = self.env["ir.mail_server"].browse(set(activities.mapped("res_id")))._filtered_access("read")
        own_ids = set(readable.filtered("smtp_invoicing_mailbox").ids)
        own = activities.filtered(lambda activity: activity.res_id in own_ids)
        if not own:
            return groups
        counts = dict.fromkeys(("total_count", "today_count", "overdue_count", "planned_count"), 0)
        for activity in own:
            counts["%s_count" % activity.state] += 1
            if activity.state in ("today", "overdue"):
                counts["total_count"] += 1
        mailboxes = {
            **servers,
            **counts,
            "name": _("Own Mailboxes"),
            "icon": modules.module.get_module_icon("smtp_invoicing"),
            "domain": [("smtp_invoicing_mailbox", "=", True)],
            "smtp_invoicing_views": [
                [self.env.ref("smtp_invoicing.ir_mail_server_view_list_smtp_invoicing").id, "list"],
                [self.env.ref("smtp_invoicing.ir_mail_server_view_form_smtp_invoicing").id, "form"],
            ],
        }
        index = groups.index(servers)
        if set(readable.ids) - own_ids:  # core servers' activities too: core's group keeps them
            for key, count in counts.items():
                servers[key] -= count
            servers["domain"] = [("smtp_invoicing_mailbox", "=", False)]
            groups.insert(index + 1, mailboxes)
        else:
            groups[index] = mailboxes
        return groups

"""A drill's lifecycle is set by its actions only.

A KSeF manager may plan a drill (name, company, simulator address, script) but not write its
state, journal, start and end, report or saved settings over RPC: a forged "running" drill
would make End "restore" settings that were never saved, a forged journal would have a real
journal archived and its drafts cancelled. The actions check the caller's rights and the
record's company, then write these fields as superuser (see account_move_ksef_guard.py).
"""
from odoo import _, api, models
from odoo.exceptions import AccessError

from .account_move_ksef_guard import forged_fields

PROTECTED_DRILL_FIELDS = frozenset({
    "state", "journal_id", "started_by_id", "started_at", "end_by", "ended_by_id", "ended_at",
    "report_html", "report_summary", "report_invoice_count", "report_offline_count", "report_in_time_count",
    "report_all_in_time", "report_line_ids", "end_error",
    "saved_environment", "saved_base_url", "saved_latarnia_url", "saved_auth_method", "saved_token",
    "saved_offline_certificate_id", "saved_latarnia_status", "saved_latarnia_checked_at", "saved_latarnia_error",
    "saved_snapshot", "applied_settings", "control_secret", "simulator_pid",
    "event_floor_id", "drill_certificate_id",
})
# What a planned drill is made of: fixed once it has started.
PLAN_FIELDS = frozenset({"company_id", "simulator_url", "step_ids"})
PROTECTED_STEP_FIELDS = frozenset({"planned_at", "applied_at"})


def _refuse(env, names, model):
    raise AccessError(_("%(fields)s of a KSeF drill are set by the drill's own actions (Start, End), never by hand.",
                        fields=", ".join(model._fields[name].get_description(env)["string"] for name in names)))


class L10nPlKsefDrillGuard(models.Model):
    _inherit = "l10n_pl_ksef.drill"

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            forged = forged_fields(self.env, self, vals, PROTECTED_DRILL_FIELDS, defaults=True)
            if forged:
                _refuse(self.env, forged, self)
        return super().create(vals_list)

    def write(self, vals):
        forged = forged_fields(self.env, self, vals, PROTECTED_DRILL_FIELDS)
        if forged:
            _refuse(self.env, forged, self)
        if not self.env.su and PLAN_FIELDS.intersection(vals) and self.filtered(lambda d: d.state != "draft"):
            raise AccessError(_("The company, simulator address and script of a KSeF drill cannot change once it "
                                "has started."))
        return super().write(vals)

    def _l10n_pl_ksef_check_manager(self, operation="write"):
        """A KSeF manager, on drills of his own companies: the record rules are checked before
        any action runs as superuser."""
        super()._l10n_pl_ksef_check_manager()
        if not self.env.su:
            self.check_access(operation)


class L10nPlKsefDrillStepGuard(models.Model):
    _inherit = "l10n_pl_ksef.drill.step"

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            forged = forged_fields(self.env, self, vals, PROTECTED_STEP_FIELDS, defaults=True)
            if forged:
                _refuse(self.env, forged, self)
            drill = self.env["l10n_pl_ksef.drill"].browse(vals.get("drill_id"))
            if not self.env.su and drill.exists() and drill.state != "draft":
                raise AccessError(_("The script of a KSeF drill cannot change once it has started."))
        return super().create(vals_list)

    def write(self, vals):
        forged = forged_fields(self.env, self, vals, PROTECTED_STEP_FIELDS)
        if forged:
            _refuse(self.env, forged, self)
        if not self.env.su and self.filtered(lambda s: s.drill_id.state != "draft"):
            raise AccessError(_("The script of a KSeF drill cannot change once it has started."))
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_except_started_drill(self):
        if not self.env.su and self.filtered(lambda s: s.drill_id.state != "draft"):
            raise AccessError(_("The script of a KSeF drill cannot change once it has started."))

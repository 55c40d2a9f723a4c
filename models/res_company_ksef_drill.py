"""The company's side of drills: the running drill, the drill journal, the readiness panel's line."""
from odoo import _, fields, models
from odoo.exceptions import UserError

DRILL_JOURNAL_CODES = ("CWKS", "CWK2", "CWK3", "CWK4", "CWK5")


class ResCompanyKsefDrill(models.Model):
    _inherit = "res.company"

    l10n_pl_ksef_running_drill_id = fields.Many2one(
        "l10n_pl_ksef.drill", string="Running KSeF drill", readonly=True, copy=False,
        help="While set, the company works with the KSeF simulator and new customer invoices go to the drill journal.")
    l10n_pl_ksef_drill_journal_id = fields.Many2one(
        "account.journal", string="KSeF drill journal", readonly=True, copy=False)

    def _l10n_pl_ksef_drill_journal(self):
        """The company's "KSeF drill" sale journal (created on the first drill): its own code and so
        its own numbering, never the real books' sequence."""
        self.ensure_one()
        journal = self.sudo().l10n_pl_ksef_drill_journal_id
        if journal:
            if not journal.active:
                journal.active = True
            return journal
        Journal = self.env["account.journal"].sudo().with_company(self)
        model = Journal.search([*Journal._check_company_domain(self), ("type", "=", "sale"),
                                ("l10n_pl_ksef_drill", "=", False)], limit=1)
        used = set(Journal.with_context(active_test=False).search(
            [*Journal._check_company_domain(self)]).mapped("code"))
        code = next((c for c in DRILL_JOURNAL_CODES if c not in used), None)
        if not code:
            raise UserError(_("Company %(company)s: no free journal code for the KSeF drill journal (tried %(codes)s).",
                              company=self.name, codes=", ".join(DRILL_JOURNAL_CODES)))
        journal = Journal.create({
            "name": _("KSeF drill (not real invoices)"),
            "code": code,
            "type": "sale",
            "company_id": self.id,
            "l10n_pl_ksef_drill": True,
            "refund_sequence": True,
            "default_account_id": model.default_account_id.id or False,
            "sequence": 1000,
        })
        self.sudo().l10n_pl_ksef_drill_journal_id = journal
        return journal

    def _l10n_pl_ksef_offline_readiness_checks(self):
        """The panel's last-drill line also tells how that drill went."""
        checks = super()._l10n_pl_ksef_offline_readiness_checks()
        company = self.sudo()
        drill = self.env["l10n_pl_ksef.drill"].sudo().search(
            [("company_id", "=", company.id), ("state", "=", "done")], order="ended_at desc, id desc", limit=1)
        for check in checks:
            if check["key"] != "drill":
                continue
            if company.l10n_pl_ksef_running_drill_id:
                check["text"] = _("A KSeF drill is running now (%(drill)s, until %(end)s).",
                                  drill=company.l10n_pl_ksef_running_drill_id.name,
                                  end=self.env["account.move"]._l10n_pl_ksef_moment_text(
                                      company.l10n_pl_ksef_running_drill_id.end_by))
            elif drill and company.l10n_pl_ksef_last_drill_date:
                check["text"] = _("Last offline drill: %(date)s - %(summary)s",
                                  date=self.env["account.move"]._l10n_pl_ksef_date_text(
                                      company.l10n_pl_ksef_last_drill_date),
                                  summary=drill.report_summary or "")
        return checks

    def action_l10n_pl_ksef_new_drill(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": _("KSeF drill"),
            "res_model": "l10n_pl_ksef.drill",
            "view_mode": "form",
            "context": {"default_company_id": self.id},
            "target": "current",
        }

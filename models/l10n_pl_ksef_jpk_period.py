"""The "KSeF register" of a JPK_VAT period: one line per sales document with its KSeF number or
JPK marker as of the period's filing date, the amounts per rate, and whether the filed JPK must
be corrected (an offline24 / unavailability invoice filed as DI has its number now).

Lines and the filing date are facts of the filed return: users read them, only this code writes
them (with sudo, after the access check of the button that asks for it)."""
import datetime

from dateutil.relativedelta import relativedelta

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError

from ..ksef import jpk as ksef_jpk
from .account_move_ksef_jpk import JPK_MARKERS, JPK_MOVE_TYPES

# Register columns: the KSeF rate codes of the taxes (account.tax.l10n_pl_ksef_rate) summed together.
RATE_GROUPS = {
    "23": "23", "22": "23", "8": "8", "7": "8", "5": "5",
    "0 KR": "0", "0 WDT": "0", "0 EX": "0", "zw": "zw", "oo": "oo", "np I": "np", "np II": "np",
}
AMOUNT_FIELDS = ("net_23", "vat_23", "net_8", "vat_8", "net_5", "vat_5", "net_0", "net_zw", "net_oo", "net_np",
                 "net_other", "vat_other")
PROTECTED_PERIOD_FIELDS = {"state", "filing_date", "line_ids", "filed_by", "filed_at"}


class L10nPlKsefJpkPeriod(models.Model):
    _name = "l10n_pl_ksef.jpk.period"
    _description = "JPK_VAT period (KSeF register)"
    _order = "date_from desc, id desc"

    name = fields.Char(compute="_compute_name", store=True)
    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company, index=True)
    date_from = fields.Date(string="From", required=True)
    date_to = fields.Date(string="To", required=True)
    state = fields.Selection([("open", "Not filed"), ("filed", "Filed")], default="open", required=True, readonly=True)
    filing_date = fields.Date(string="Filing date", readonly=True,
                              help="The day the JPK_VAT of this period was filed: the markers are judged as of it.")
    filed_by = fields.Many2one("res.users", readonly=True)
    filed_at = fields.Datetime(readonly=True)
    line_ids = fields.One2many("l10n_pl_ksef.jpk.line", "period_id", string="Register", readonly=True)
    line_count = fields.Integer(compute="_compute_counts")
    correction_count = fields.Integer(string="Lines to correct", compute="_compute_counts")
    needs_correction = fields.Boolean(string="Needs JPK correction", compute="_compute_counts",
                                      search="_search_needs_correction")

    _sql_constraints = [
        ("period_unique", "UNIQUE(company_id, date_from, date_to)", "This JPK_VAT period already exists."),
    ]

    @api.depends("date_from", "date_to")
    def _compute_name(self):
        for period in self:
            if period.date_from and period.date_to and period.date_from.day == 1 \
                    and period.date_to == period.date_from + relativedelta(months=1, days=-1):
                period.name = period.date_from.strftime("%Y-%m")
            else:
                period.name = "%s – %s" % (period.date_from, period.date_to)

    @api.depends("state", "line_ids", "line_ids.needs_correction")
    def _compute_counts(self):
        for period in self:
            lines = period.line_ids
            period.line_count = len(lines)
            to_correct = lines.filtered("needs_correction") if period.state == "filed" else lines.browse()
            period.correction_count = len(to_correct)
            period.needs_correction = bool(to_correct)

    def _search_needs_correction(self, operator, value):
        if operator not in ("=", "!=") or not isinstance(value, bool):
            raise UserError(_("Unsupported search on 'Needs JPK correction'."))
        ids = self.search([("state", "=", "filed")]).filtered("needs_correction").ids
        return [("id", "in" if (operator == "=") == value else "not in", ids)]

    @api.constrains("date_from", "date_to")
    def _check_dates(self):
        for period in self:
            if period.date_to < period.date_from:
                raise UserError(_("JPK_VAT period %(period)s: 'To' is before 'From'.", period=period.name))

    # ---- forge-proof: the filed facts are written by our code only ---------------------------

    @api.model_create_multi
    def create(self, vals_list):
        if not self.env.su and any(PROTECTED_PERIOD_FIELDS.intersection(vals) for vals in vals_list):
            raise AccessError(_("The filing of a JPK_VAT period is recorded with the 'Record filing' button only."))
        periods = super().create(vals_list)
        periods._l10n_pl_ksef_refresh()
        return periods

    def write(self, vals):
        if not self.env.su:
            if PROTECTED_PERIOD_FIELDS.intersection(vals):
                raise AccessError(_("The filing of a JPK_VAT period is recorded with the 'Record filing' button only."))
            if self.filtered(lambda p: p.state == "filed") and {"date_from", "date_to", "company_id"}.intersection(vals):
                raise UserError(_("JPK_VAT period %(period)s is filed: its dates cannot change.",
                                  period=", ".join(self.filtered(lambda p: p.state == "filed").mapped("name"))))
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_except_filed(self):
        filed = self.filtered(lambda p: p.state == "filed")
        if filed:
            raise UserError(_("JPK_VAT period %(period)s is filed and is kept as evidence.",
                              period=", ".join(filed.mapped("name"))))

    # ---- the register -----------------------------------------------------------------------

    def _l10n_pl_ksef_as_of(self):
        self.ensure_one()
        return self.filing_date or self.env["account.move"]._l10n_pl_ksef_today()

    def _l10n_pl_ksef_moves(self):
        self.ensure_one()
        return self.env["account.move"].search([
            ("company_id", "=", self.company_id.id), ("move_type", "in", JPK_MOVE_TYPES), ("state", "=", "posted"),
            ("date", ">=", self.date_from), ("date", "<=", self.date_to),
        ], order="date, name, id")

    def _l10n_pl_ksef_refresh(self, rebuild=False):
        """Rebuild the register lines as of the filing date (today while not filed). A filed
        register stays as filed (unless ``rebuild``, when the filing is recorded): documents posted
        into the period since are only added, flagged for the correction they call for."""
        Line = self.env["l10n_pl_ksef.jpk.line"].sudo()
        for period in self:
            period.check_access("read")
            as_of = period._l10n_pl_ksef_as_of()
            moves = period._l10n_pl_ksef_moves()
            if period.state == "filed" and not rebuild:
                moves -= period.sudo().line_ids.move_id
                Line.create([dict(period._l10n_pl_ksef_line_values(move, as_of), period_id=period.id,
                                  added_after_filing=True) for move in moves])
                continue
            Line.search([("period_id", "=", period.id)]).unlink()
            Line.create([dict(period._l10n_pl_ksef_line_values(move, as_of), period_id=period.id) for move in moves])
        return True

    @api.model
    def _l10n_pl_ksef_line_values(self, move, as_of):
        move = move.sudo()
        document = move._l10n_pl_ksef_jpk_document()
        marking = ksef_jpk.marking(document, as_of)
        buyer = move.commercial_partner_id
        values = {
            "move_id": move.id,
            "document": move.name,
            "date": move.invoice_date or move.date,
            "partner_name": buyer.name,
            "partner_vat": buyer.vat or False,
            "ksef_number": marking.ksef_number or False,
            "marker": marking.marker or False,
            "problem": bool(marking.problem),
            "will_need_correction": ksef_jpk.awaits_correction(document, as_of),
        }
        values.update(dict.fromkeys(AMOUNT_FIELDS, 0.0))
        for line in move.line_ids:
            if line.display_type == "product":
                rates = line.tax_ids.mapped("l10n_pl_ksef_rate")
                group = RATE_GROUPS.get(rates[0]) if rates and rates[0] else None
                key = "net_%s" % group if group and "net_%s" % group in values else "net_other"
                values[key] += -line.balance
            elif line.display_type == "tax":
                group = RATE_GROUPS.get(line.tax_line_id.l10n_pl_ksef_rate)
                key = "vat_%s" % group if group and "vat_%s" % group in values else "vat_other"
                values[key] += -line.balance
        return values

    def action_l10n_pl_ksef_refresh(self):
        self._l10n_pl_ksef_refresh()
        return True

    def action_l10n_pl_ksef_record_filing(self):
        """Open the dialog that records the filing date."""
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": _("Record JPK_VAT filing"),
            "res_model": "l10n_pl_ksef.jpk.filing",
            "view_mode": "form",
            "target": "new",
            "context": {"default_period_id": self.id},
        }

    def _l10n_pl_ksef_record_filing(self, filing_date):
        self.ensure_one()
        self.check_access("write")
        today = self.env["account.move"]._l10n_pl_ksef_today()
        if not isinstance(filing_date, datetime.date):
            raise UserError(_("JPK_VAT period %(period)s: the filing date is missing.", period=self.name))
        if filing_date <= self.date_to:
            raise UserError(_("JPK_VAT period %(period)s: the filing date %(date)s must be after the end of the "
                              "period (%(end)s).", period=self.name, date=filing_date, end=self.date_to))
        if filing_date > today:
            raise UserError(_("JPK_VAT period %(period)s: the filing date %(date)s is in the future.",
                              period=self.name, date=filing_date))
        self.sudo().write({"state": "filed", "filing_date": filing_date, "filed_by": self.env.uid,
                           "filed_at": fields.Datetime.now()})
        self._l10n_pl_ksef_refresh(rebuild=True)
        return True

    # ---- periods to correct -----------------------------------------------------------------

    @api.model
    def action_l10n_pl_ksef_periods_to_correct(self):
        """The filed periods whose JPK_VAT must be corrected: lines filed as DI (offline24 or
        unavailability invoices) whose invoice has its KSeF number now, documents posted into
        the period after the filing, documents cancelled since."""
        periods = self.search([("state", "=", "filed")])
        periods._l10n_pl_ksef_refresh()
        to_correct = periods.filtered("needs_correction")
        return {
            "type": "ir.actions.act_window",
            "name": _("JPK_VAT periods to correct"),
            "res_model": self._name,
            "view_mode": "list,form",
            "domain": [("id", "in", to_correct.ids)],
            "context": {"create": False},
        }


class L10nPlKsefJpkLine(models.Model):
    _name = "l10n_pl_ksef.jpk.line"
    _description = "KSeF register line"
    _order = "date, document, id"

    period_id = fields.Many2one("l10n_pl_ksef.jpk.period", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="period_id.company_id", store=True)
    move_id = fields.Many2one("account.move", string="Document", ondelete="set null", index=True)
    document = fields.Char(string="Document number")
    date = fields.Date()
    partner_name = fields.Char(string="Buyer")
    partner_vat = fields.Char(string="Buyer NIP")
    net_23 = fields.Float(string="Net 23%", digits="Account")
    vat_23 = fields.Float(string="VAT 23%", digits="Account")
    net_8 = fields.Float(string="Net 8%", digits="Account")
    vat_8 = fields.Float(string="VAT 8%", digits="Account")
    net_5 = fields.Float(string="Net 5%", digits="Account")
    vat_5 = fields.Float(string="VAT 5%", digits="Account")
    net_0 = fields.Float(string="Net 0%", digits="Account")
    net_zw = fields.Float(string="Net exempt", digits="Account")
    net_oo = fields.Float(string="Net reverse charge", digits="Account")
    net_np = fields.Float(string="Net outside scope", digits="Account")
    net_other = fields.Float(string="Net other", digits="Account")
    vat_other = fields.Float(string="VAT other", digits="Account")
    ksef_number = fields.Char(string="KSeF number (as filed)")
    marker = fields.Selection(JPK_MARKERS, string="Marker (as filed)")
    value = fields.Char(string="KSeF number or marker", compute="_compute_value")
    problem = fields.Boolean(string="No number, no marker",
                             help="An invoice that should be in KSeF has no KSeF number: send it before filing.")
    will_need_correction = fields.Boolean(
        string="Correction once numbered",
        help="An offline24 or unavailability invoice without a KSeF number on the filing day: the JPK_VAT must be "
             "corrected once it has its number.")
    current_ksef_number = fields.Char(related="move_id.l10n_pl_ksef_number", string="KSeF number now")
    added_after_filing = fields.Boolean(
        string="Added after filing", help="Posted into the period after its JPK_VAT was filed: not in the filed file.")
    needs_correction = fields.Boolean(
        string="Needs JPK correction", compute="_compute_needs_correction",
        help="The filed JPK_VAT must be corrected for this line: filed as DI and numbered since, added after filing, "
             "or cancelled since.")

    def _compute_value(self):
        for line in self:
            line.value = line.ksef_number or line.marker or ""

    @api.depends("move_id.l10n_pl_ksef_number", "move_id.state", "marker", "period_id.filing_date",
                 "added_after_filing")
    def _compute_needs_correction(self):
        for line in self:
            period = line.period_id
            move = line.move_id.sudo()
            line.needs_correction = bool(period.filing_date) and (
                line.added_after_filing or not move or move.state != "posted"
                or (line.marker == ksef_jpk.DI
                    and ksef_jpk.needs_correction(move._l10n_pl_ksef_jpk_document(), period.filing_date)))

"""A KSeF collective identifier (IZ, API 2.7 ``/collective-identifiers``): up to 500 vendor bills
of one seller paid with one payment whose memo is the IZ. Created by this code only, after the
checks KSeF makes, with KSeF's answer; never edited afterwards."""
from markupsafe import Markup

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError

from ..ksef import errors as ksef_errors
from ..ksef import payments as ksef_payments


class L10nPlKsefCollectiveIdentifier(models.Model):
    _name = "l10n_pl_ksef.collective.identifier"
    _description = "KSeF collective identifier (IZ)"
    _order = "id desc"

    name = fields.Char(string="Collective identifier", required=True, readonly=True, index=True)
    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True)
    partner_id = fields.Many2one("res.partner", string="Seller", readonly=True)
    move_ids = fields.One2many("account.move", "l10n_pl_ksef_collective_id", string="Bills", readonly=True)
    move_count = fields.Integer(compute="_compute_totals")
    amount_residual = fields.Monetary(string="Left to pay", compute="_compute_totals", currency_field="currency_id")
    currency_id = fields.Many2one("res.currency", readonly=True)
    created_by = fields.Many2one("res.users", readonly=True)

    _sql_constraints = [("name_unique", "UNIQUE(name)", "This collective identifier is already recorded.")]

    def _compute_totals(self):
        for identifier in self:
            identifier.move_count = len(identifier.move_ids)
            identifier.amount_residual = sum(identifier.move_ids.mapped("amount_residual"))

    @api.model_create_multi
    def create(self, vals_list):
        if not self.env.su:
            raise AccessError(_("KSeF collective identifiers are created by KSeF only (Create a KSeF collective "
                                "identifier on vendor bills)."))
        return super().create(vals_list)

    def write(self, vals):
        if not self.env.su:
            raise AccessError(_("A KSeF collective identifier cannot be changed."))
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_never(self):
        raise UserError(_("KSeF collective identifier %(number)s is known to KSeF and is kept.",
                          number=", ".join(self.mapped("name"))))

    @api.model
    def _l10n_pl_ksef_check_bills(self, bills):
        """Clear, translated refusals, before anything is asked of KSeF."""
        if not bills:
            raise UserError(_("Select the vendor bills to group under one KSeF collective identifier."))
        if len(bills) > ksef_payments.MAX_IZ_INVOICES:
            raise UserError(_("%(count)s bills selected: a KSeF collective identifier groups at most %(max)s bills.",
                              count=len(bills), max=ksef_payments.MAX_IZ_INVOICES))
        bills.check_access("write")
        for bill in bills:
            if bill.move_type != "in_invoice" or bill.state != "posted":
                raise UserError(_("%(bill)s: only posted vendor bills can be grouped under a KSeF collective "
                                  "identifier.", bill=bill.display_name))
            if not bill.l10n_pl_ksef_number:
                raise UserError(_("Vendor bill %(bill)s has no KSeF number (field 'KSeF number'): only bills "
                                  "received through KSeF can be grouped.", bill=bill.display_name))
            if bill.l10n_pl_ksef_collective_id:
                raise UserError(_("Vendor bill %(bill)s is already paid under collective identifier %(number)s.",
                                  bill=bill.display_name, number=bill.l10n_pl_ksef_collective_id.name))
            if bill.payment_state in ("paid", "in_payment", "reversed"):
                raise UserError(_("Vendor bill %(bill)s is already paid.", bill=bill.display_name))
        if len(bills.company_id) > 1:
            raise UserError(_("The selected bills belong to several companies; a collective identifier is asked "
                              "for one company."))
        sellers = {bill.l10n_pl_ksef_number[:10] for bill in bills}
        if len(sellers) > 1 or len(bills.commercial_partner_id) > 1:
            raise UserError(_("A KSeF collective identifier groups bills of one seller; the selection has bills of "
                              "%(sellers)s.", sellers=", ".join(sorted(bills.commercial_partner_id.mapped("name")))))
        if len(bills.currency_id) > 1:
            raise UserError(_("The selected bills are in several currencies; one payment pays one currency."))

    @api.model
    def _l10n_pl_ksef_create_for(self, bills):
        self._l10n_pl_ksef_check_bills(bills)
        company = bills.company_id
        invoices = [ksef_payments.CollectiveInvoice(
            bill.l10n_pl_ksef_number, amount=bill.amount_residual, currency=bill.currency_id.name,
            description=(bill.ref or bill.name or "")[:512]) for bill in bills]
        try:
            ksef_payments.check_collective_request(invoices)
            client = company._l10n_pl_ksef_client()
            number = ksef_payments.create_collective_identifier(client, invoices)
        except ksef_payments.CollectiveIdentifierError as error:
            raise UserError(_("KSeF collective identifier not requested: %(problem)s",
                              problem=self._l10n_pl_ksef_problem_text(error, bills))) from error
        except ksef_errors.KsefError as error:
            raise UserError(_("KSeF refused the collective identifier for %(bills)s: %(error)s",
                              bills=", ".join(bills.mapped("display_name")), error=str(error))) from error
        identifier = self.sudo().create({
            "name": number, "company_id": company.id, "partner_id": bills.commercial_partner_id.id,
            "currency_id": bills.currency_id.id, "created_by": self.env.uid,
        })
        bills.sudo()._l10n_pl_ksef_write({"l10n_pl_ksef_collective_id": identifier.id})
        body = Markup(_("Paid under KSeF collective identifier %(number)s.", number=number))
        for bill in bills:
            bill.message_post(body=body)
        return identifier.sudo(False)

    @api.model
    def _l10n_pl_ksef_problem_text(self, error, bills):
        texts = {
            "empty": _("no bill selected."),
            "too_many": _("more than %(max)s bills.", max=ksef_payments.MAX_IZ_INVOICES),
            "invalid_number": _("not a KSeF number: %(numbers)s.", numbers=", ".join(map(str, error.numbers))),
            "duplicate": _("the same KSeF number twice: %(numbers)s.", numbers=", ".join(error.numbers)),
            "several_sellers": _("bills of several sellers (NIP %(nips)s).", nips=", ".join(error.numbers)),
        }
        return texts.get(error.code) or str(error)

    def action_l10n_pl_ksef_register_payment(self):
        """One payment for the bills of this identifier, the identifier as its memo."""
        self.ensure_one()
        bills = self.move_ids.filtered(lambda m: m.payment_state not in ("paid", "in_payment"))
        if not bills:
            raise UserError(_("The bills of collective identifier %(number)s are paid.", number=self.name))
        action = bills.action_register_payment()
        action["context"] = dict(action.get("context") or {}, default_group_payment=True)
        return action

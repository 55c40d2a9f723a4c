"""Bank statement lines matched to invoices by KSeF number (art. 108g) the Odoo way: a
reconciliation model of type "invoice matching" flagged *Match KSeF numbers* says which journals
and whether to reconcile automatically. The text of the line (label, reference, notes) is searched
for KSeF numbers (CRC checked) and collective identifiers; the open invoices or bills they name
are reconciled with the line when the amounts agree. Odoo Community has no matching engine
(Enterprise's bank reconciliation widget has), so the rule is applied here."""
from odoo import _, api, models
from odoo.exceptions import UserError

from ..ksef import payments as ksef_payments


class AccountBankStatementLine(models.Model):
    _inherit = "account.bank.statement.line"

    def _l10n_pl_ksef_text(self):
        self.ensure_one()
        return " ".join(filter(None, [self.payment_ref, self.move_id.ref, self.narration and str(self.narration)]))

    def _l10n_pl_ksef_matched_moves(self):
        """The open invoices/bills this line pays, by the KSeF numbers and collective identifiers
        it names; empty unless their open amount equals the line's (same sign: money in pays
        customer invoices, money out pays bills)."""
        self.ensure_one()
        text = self._l10n_pl_ksef_text()
        numbers = ksef_payments.find_ksef_numbers(text)
        identifiers = ksef_payments.find_collective_identifiers(text)
        if not numbers and not identifiers:
            return self.env["account.move"]
        Move = self.env["account.move"]
        moves = Move.search([("company_id", "=", self.company_id.id), ("state", "=", "posted"),
                             ("l10n_pl_ksef_number", "in", numbers)]) if numbers else Move
        if identifiers:
            moves |= self.env["l10n_pl_ksef.collective.identifier"].search(
                [("company_id", "=", self.company_id.id), ("name", "in", identifiers)]).move_ids
        inbound = self.amount > 0
        moves = moves.filtered(lambda m: m.state == "posted" and m.payment_state not in ("paid", "reversed")
                               and (m.move_type in ("out_invoice", "in_refund") if inbound
                                    else m.move_type in ("in_invoice", "out_refund")))
        lines = moves.line_ids.filtered(lambda line: line.account_type in ("asset_receivable", "liability_payable")
                                        and not line.reconciled)
        if not lines or len(lines.account_id) != 1 or len(moves.commercial_partner_id) != 1:
            return Move
        open_balance = sum(lines.mapped("amount_residual"))
        if self.company_id.currency_id.compare_amounts(open_balance, self.amount) != 0:
            return Move
        return moves

    def _l10n_pl_ksef_reconcile(self):
        """Reconcile each line with the invoices its KSeF numbers name. Returns the lines done."""
        done = self.browse()
        for st_line in self.filtered(lambda line: not line.is_reconciled):
            rule = self.env["account.reconcile.model"]._l10n_pl_ksef_default_model(st_line.company_id)
            if not rule.active or (rule.match_journal_ids and st_line.journal_id not in rule.match_journal_ids):
                continue
            moves = st_line._l10n_pl_ksef_matched_moves()
            if not moves:
                continue
            counterpart = moves.line_ids.filtered(lambda line: line.account_type in ("asset_receivable", "liability_payable")
                                                  and not line.reconciled)
            partner = moves.commercial_partner_id
            _liquidity, suspense, _other = st_line.with_context(skip_account_move_synchronization=True)._seek_for_lines()
            if len(suspense) != 1:
                continue
            with self.env.cr.savepoint():
                if st_line.partner_id != partner:
                    st_line.partner_id = partner
                    _liquidity, suspense, _other = st_line.with_context(
                        skip_account_move_synchronization=True)._seek_for_lines()
                suspense.with_context(skip_account_move_synchronization=True).write(
                    {"account_id": counterpart.account_id.id, "partner_id": partner.id})
                (suspense + counterpart).reconcile()
            done |= st_line
            for move in moves:
                move.message_post(body=_("Paid by bank statement line %(line)s, matched by KSeF number.",
                                         line=st_line.display_name))
        return done

    def action_l10n_pl_ksef_match(self):
        done = self._l10n_pl_ksef_reconcile()
        if not done and len(self) == 1:
            raise UserError(_("Bank statement line %(line)s names no open invoice by its KSeF number (or the amounts "
                              "differ).", line=self.display_name))
        return True

    @api.model_create_multi
    def create(self, vals_list):
        lines = super().create(vals_list)
        auto = lines.filtered(lambda line: line.company_id.account_fiscal_country_id.code == "PL" and (
            ksef_payments.find_ksef_numbers(line._l10n_pl_ksef_text())
            or ksef_payments.find_collective_identifiers(line._l10n_pl_ksef_text())))
        if auto:
            rules = {company: self.env["account.reconcile.model"]._l10n_pl_ksef_default_model(company)
                     for company in auto.company_id}
            auto.filtered(lambda line: rules[line.company_id].auto_reconcile)._l10n_pl_ksef_reconcile()
        return lines

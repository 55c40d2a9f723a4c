from decimal import Decimal

from stdnum.pl import nip as stdnum_nip

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from ..ksef import crypto, fa3
from . import ksef_messages
from .account_move_ksef_lifecycle import LOCKED_STATES, ON_THE_WAY_STATES

WARSAW = "Europe/Warsaw"


def _to_decimal(value, digits=2):
    return Decimal(repr(round(value, digits))).quantize(Decimal(1).scaleb(-digits))


class AccountMove(models.Model):
    _inherit = "account.move"

    # l10n_pl_ksef_state: the KSeF life of the invoice, see account_move_ksef_lifecycle.py
    l10n_pl_ksef_number = fields.Char(string="KSeF number", copy=False, readonly=True, index=True, tracking=True)
    l10n_pl_ksef_xml_id = fields.Many2one(
        "ir.attachment", string="KSeF XML", copy=False, readonly=True,
        help="The FA(3) file exactly as it is (or will be) sent to KSeF. Frozen: never re-rendered.",
    )
    l10n_pl_ksef_xml_hash = fields.Char(
        string="KSeF XML hash", copy=False, readonly=True, index=True,
        help="SHA-256 of the frozen FA(3) file, Base64 (the form sent to the KSeF API).",
    )
    l10n_pl_ksef_xml_hash_url = fields.Char(
        string="KSeF XML hash (QR form)", copy=False, readonly=True,
        help="SHA-256 of the frozen FA(3) file, Base64URL without padding (the form printed in QR codes).",
    )
    l10n_pl_ksef_frozen_at = fields.Datetime(string="KSeF XML frozen on", copy=False, readonly=True)

    _sql_constraints = [
        # Per company and KSeF environment: each environment (and each simulator) numbers on its own.
        ("l10n_pl_ksef_number_unique",
         "UNIQUE(company_id, l10n_pl_ksef_number_environment, l10n_pl_ksef_number)",
         "This KSeF number of this KSeF environment is already assigned to another invoice."),
    ]

    @api.model
    def _l10n_pl_ksef_today(self):
        """Today in Poland, the day KSeF and the VAT act count in (Odoo's ``context_today`` takes
        the user's zone: UTC when he has none, a day behind between midnight and 1-2 am)."""
        return fields.Date.context_today(self.with_context(tz=WARSAW))

    # ---- applicability ---------------------------------------------------------------------

    def _l10n_pl_ksef_is_applicable(self):
        self.ensure_one()
        return (
            self.country_code == "PL"
            and self.move_type in ("out_invoice", "out_refund")
            and self.state == "posted"
        )

    # ---- FA(3) mapping ---------------------------------------------------------------------

    def _l10n_pl_ksef_build_xml(self, created_at=None):
        """The FA(3) bytes of this posted customer invoice or credit note, validated against
        the official schema. Raises a UserError naming the invoice and the field on any
        data that KSeF would not accept; stores nothing."""
        self.ensure_one()
        invoice = self._l10n_pl_ksef_fa3_invoice(created_at or fields.Datetime.now())
        try:
            xml = fa3.build(invoice)
        except fa3.Fa3Error as error:
            raise UserError(_("Invoice %(invoice)s cannot be converted to FA(3): %(error)s",
                              invoice=self.display_name, error=ksef_messages.fa3_error_text(self.env, error))) from error
        limit = fa3.MAX_SIZE_WITH_ATTACHMENTS if self._l10n_pl_ksef_xml_has_attachment(xml) else fa3.MAX_SIZE
        if len(xml) > limit:
            # Said as what it is: the file is too large for KSeF, not "not matching the schema".
            raise UserError(_(
                "The FA(3) file of invoice %(invoice)s has %(size)s bytes; KSeF accepts at most %(limit)s bytes per "
                "invoice. Split it into several invoices or shorten the line descriptions.",
                invoice=self.display_name, size=len(xml), limit=limit))
        issues = fa3.validate(xml, self.env["ir.attachment"]._l10n_pl_ksef_fa3_schema())
        if issues:
            raise UserError(_(
                "The FA(3) file of invoice %(invoice)s does not match the official schema:\n%(issues)s",
                invoice=self.display_name, issues="\n".join("- %s" % issue for issue in issues[:10]),
            ))
        return xml

    @api.model
    def _l10n_pl_ksef_xml_has_attachment(self, xml):
        """Whether the FA(3) file carries attachments (KSeF's larger size limit applies)."""
        return bool(fa3._ATTACHMENT_RE.search(xml))  # noqa: SLF001 - the core's own test of it

    def _l10n_pl_ksef_fa3_invoice(self, created_at):
        self.ensure_one()
        errors = []
        if not self._l10n_pl_ksef_is_applicable():
            raise UserError(_("Only posted customer invoices and credit notes of a Polish company can be sent to KSeF (%s).",
                              self.display_name))
        today_pl = self._l10n_pl_ksef_today()
        if self.invoice_date and self.invoice_date > today_pl:
            errors.append(_("Invoice Date: %(date)s is in the future; KSeF refuses invoices dated after the day they are received.",
                            date=self.invoice_date))

        seller = self._l10n_pl_ksef_seller(errors)
        buyer = self._l10n_pl_ksef_buyer(errors)
        lines, totals, rates = self._l10n_pl_ksef_lines_and_totals(errors)
        annotations = fa3.Annotations(reverse_charge="oo" in rates)
        if "zw" in rates:
            bases = self.invoice_line_ids.tax_ids.filtered(lambda t: t.l10n_pl_ksef_rate == "zw").mapped("l10n_pl_ksef_exemption_basis")
            if not all(bases):
                errors.append(_("Taxes: an exempt (zw) tax has no 'KSeF exemption basis' (the legal basis of the exemption)."))
            annotations.exemption_basis_act = "; ".join(sorted(set(filter(None, bases))))[:256] or None
        correction = None
        # A credit note, or the reversal of a credit note (an invoice that undoes it), corrects.
        if self.move_type == "out_refund" or self.reversed_entry_id.move_type == "out_refund":
            correction = self._l10n_pl_ksef_correction(errors)

        foreign = self.currency_id != self.company_id.currency_id
        invoice = fa3.Invoice(
            seller=seller,
            buyer=buyer,
            number=self.name,
            issue_date=self.invoice_date,
            created_at=created_at,
            totals=totals,
            lines=lines,
            currency=self.currency_id.name,
            issue_place=self.company_id.city or None,
            delivery_date=self.delivery_date if self.delivery_date and self.delivery_date != self.invoice_date else None,
            annotations=annotations,
            kind="KOR" if correction else "VAT",
            correction=correction,
            additional_info=self._l10n_pl_ksef_additional_info(foreign),
            payment=self._l10n_pl_ksef_payment(),
            system_info="Odoo 18 l10n_pl_ksef",
        )
        self._l10n_pl_ksef_complete_fa3(invoice, errors)
        if errors:
            raise UserError(_("Invoice %(invoice)s cannot be sent to KSeF:\n%(errors)s",
                              invoice=self.display_name, errors="\n".join("- %s" % e for e in errors)))
        return invoice

    def _l10n_pl_ksef_complete_fa3(self, invoice, errors):
        """Hook: the content rules kept in their own files complete ``invoice`` (an fa3.Invoice)
        or add to ``errors``; the mapping above refuses the invoice if any."""

    def _l10n_pl_ksef_seller(self, errors):
        company = self.company_id
        nip = company._l10n_pl_ksef_nip()
        if not nip:
            errors.append(_("Company %(company)s: Tax ID is missing or is not a valid Polish NIP.", company=company.name))
        return fa3.Seller(
            nip=nip or "",
            name=company.name,
            address=self._l10n_pl_ksef_address(company.partner_id) or fa3.Address(country="PL", line1=company.name),
            email=company.email or None,
            phone=company.phone or None,
        )

    @api.model
    def _l10n_pl_ksef_address(self, partner):
        line1 = ", ".join(filter(None, [partner.street, partner.street2]))
        line2 = " ".join(filter(None, [partner.zip, partner.city]))
        if not (line1 or line2) or not partner.country_id:
            return None
        return fa3.Address(country=partner.country_id.code, line1=line1 or line2, line2=line2 if line1 else None)

    def _l10n_pl_ksef_buyer(self, errors):
        partner = self.commercial_partner_id
        country = partner.country_id
        vat = (partner.vat or "").replace(" ", "").replace("-", "").upper()
        values = {"name": partner.name, "address": self._l10n_pl_ksef_address(partner), "email": partner.email or None}
        if not country or country.code == "PL":
            nip = vat[2:] if vat.startswith("PL") else vat
            if nip:
                if not stdnum_nip.is_valid(nip):
                    errors.append(_("Customer %(partner)s: Tax ID %(vat)s is not a valid Polish NIP.", partner=partner.name, vat=partner.vat))
                values["nip"] = nip
            elif partner.is_company:
                errors.append(_("Customer %(partner)s: a Polish business buyer needs a Tax ID (NIP).", partner=partner.name))
        elif vat:
            values.update(self._l10n_pl_ksef_foreign_tax_id(vat, country))
        return fa3.Buyer(**values)

    @api.model
    def _l10n_pl_ksef_foreign_tax_id(self, vat, country):
        """How FA(3) identifies a party outside Poland (Podmiot2 and Podmiot3 alike): KodUE + NrVatUE
        (the number without its country prefix; Greece is EL) inside the EU, KodKraju + NrID elsewhere."""
        if country in self.env.ref("base.europe").country_ids:
            prefix = "EL" if country.code == "GR" else country.code
            return {"eu_country": prefix, "eu_vat_number": vat[2:] if vat[:2] in (prefix, country.code) else vat}
        return {"tax_id_country": country.code, "tax_id": vat}

    def _l10n_pl_ksef_lines_and_totals(self, errors):
        """FA(3) lines and per-rate totals, taken from Odoo's own amounts so that they match
        the accounting to the grosz: net from each line's subtotal, VAT from the tax lines."""
        foreign = self.currency_id != self.company_id.currency_id
        # A credit note is a KOR invoice: its amounts are the (negative) change to the original.
        doc_sign = -1 if self.move_type == "out_refund" else 1
        # Tax lines carry sales VAT as credits on invoices and as debits on credit notes.
        book_sign = -1 if self.move_type == "out_invoice" else 1
        exchange_rate = _to_decimal(1 / self.invoice_currency_rate, 6) if foreign and self.invoice_currency_rate else None
        totals = fa3.Totals(p_15=_to_decimal(doc_sign * self.amount_total))
        lines, rates = [], set()
        for line in self.invoice_line_ids.filtered(lambda move_line: move_line.display_type == "product"):
            vat_taxes = line.tax_ids.flatten_taxes_hierarchy()
            rated = vat_taxes.filtered("l10n_pl_ksef_rate")
            label = line.name or line.product_id.display_name or ""
            if len(vat_taxes) != 1 or len(rated) != 1:
                if vat_taxes:
                    errors.append(_(
                        "Line '%(line)s', Taxes: each line needs exactly one VAT tax with a 'KSeF VAT rate' (found: %(taxes)s).",
                        line=label[:60], taxes=", ".join(vat_taxes.mapped("name")),
                    ))
                else:
                    errors.append(_(
                        "Line '%(line)s', Taxes: the line has no tax; each line needs exactly one VAT tax with a "
                        "'KSeF VAT rate'.", line=label[:60],
                    ))
                continue
            rate = rated.l10n_pl_ksef_rate
            rates.add(rate)
            price_include = rated.price_include
            quantity = line.quantity
            unit_price = line.price_unit
            if price_include and quantity:
                unit_price = line.price_subtotal / (quantity * (1 - (line.discount or 0.0) / 100.0)) if line.discount != 100 else 0.0
            discount = quantity * unit_price * (line.discount or 0.0) / 100.0
            lines.append(fa3.Line(
                name=label or line.product_id.display_name or "-",
                code=line.product_id.default_code or None,
                unit=line.product_uom_id.name or None,
                quantity=_to_decimal(doc_sign * quantity, 6),
                unit_price=_to_decimal(unit_price, 8),
                # P_8B × P_9A − P_10 = P_11: on a credit note the discount takes the sign of the line
                discount=_to_decimal(doc_sign * discount, 2) if line.discount else None,
                net_amount=_to_decimal(doc_sign * line.price_subtotal),
                rate=rate,
                exchange_rate=exchange_rate,
            ))
            totals.add(rate, _to_decimal(doc_sign * line.price_subtotal))
        for tax_line in self.line_ids.filtered(lambda move_line: move_line.display_type == "tax"):
            rate = tax_line.tax_line_id.l10n_pl_ksef_rate
            if not rate:
                errors.append(_("Tax %(tax)s has no 'KSeF VAT rate'.", tax=tax_line.tax_line_id.name))
                continue
            if fa3.RATE_TOTAL_FIELDS[rate][1] is None:
                continue  # a zero-rate category has no VAT total
            vat = _to_decimal(doc_sign * book_sign * tax_line.amount_currency)
            vat_pln = _to_decimal(doc_sign * book_sign * tax_line.balance) if foreign else None
            totals.add(rate, Decimal(0), vat, vat_pln)
        # Categories with a VAT amount need both members of their pair, even at 0.00.
        for rate in rates:
            net_field, vat_field, pln_field = fa3.RATE_TOTAL_FIELDS[rate]
            if vat_field and getattr(totals, vat_field) is None:
                setattr(totals, vat_field, Decimal("0.00"))
                if foreign:
                    setattr(totals, pln_field, Decimal("0.00"))
        if not lines and not errors:
            errors.append(_("Invoice Lines: the invoice has no product line."))
        return lines, totals, rates

    def _l10n_pl_ksef_correction(self, errors):
        original = self.reversed_entry_id
        if not original:
            errors.append(_("Reversal of: a credit note sent to KSeF must refer to the invoice it corrects."))
            return None
        if not original.l10n_pl_ksef_number and original.l10n_pl_ksef_state in ON_THE_WAY_STATES:
            # FA(3) XSD, DaneFaKorygowanej: a correction names its original by KSeF number once it has one.
            errors.append(_("Reversal of: the corrected invoice %(original)s has no KSeF number yet; "
                            "the credit note can be sent once KSeF has accepted it.", original=original.name))
            return None
        return fa3.Correction(
            corrected=[fa3.CorrectedInvoice(
                issue_date=original.invoice_date,
                number=original.name,
                ksef_number=original.l10n_pl_ksef_number or None,
                outside_ksef=not original.l10n_pl_ksef_number,
            )],
            reason=(self.ref or "").strip()[:256] or _("Correction of invoice %s", original.name),
        )

    def _l10n_pl_ksef_additional_info(self, foreign):
        info = []
        if self.invoice_payment_term_id:
            info.append((_("Payment terms"), self.invoice_payment_term_id.name))
        if self.invoice_origin:
            info.append((_("Source document"), self.invoice_origin))
        return info

    def _l10n_pl_ksef_payment(self):
        due = self.invoice_date_due
        bank = self.partner_bank_id
        if not due and not bank:
            return None
        accounts = []
        if bank:
            accounts.append(fa3.BankAccount(
                number=bank.acc_number.replace(" ", ""),
                swift=bank.bank_id.bic or None,
                bank_name=bank.bank_id.name or None,
            ))
        return fa3.Payment(
            due_dates=[due] if due else [],
            method=6 if bank else None,  # 6 = bank transfer
            bank_accounts=accounts,
        )

    def _l10n_pl_ksef_write(self, vals):
        """Write KSeF bookkeeping fields on posted moves. They never touch the journal items,
        so skip the line synchronisation (most of the cost of account.move.write) and do not
        flag the move as manually modified. The only way to write KSeF facts (see
        account_move_ksef_guard.py): the caller's right to change these invoices is checked,
        then the write runs as superuser."""
        if not self.env.su:
            self.check_access("write")
        return self.sudo().with_context(
            skip_invoice_sync=True, skip_is_manually_modified=True, check_move_validity=False,
        ).write(vals)

    # ---- freezing --------------------------------------------------------------------------

    def action_l10n_pl_ksef_freeze(self):
        """Build, validate and store the FA(3) bytes once. From then on they are only read:
        for the QR codes, the API call and a technical correction. Idempotent."""
        for move in self.filtered(lambda m: not m.l10n_pl_ksef_xml_id):
            now = fields.Datetime.now()
            xml = move._l10n_pl_ksef_build_xml(created_at=now)
            move._l10n_pl_ksef_store_frozen_xml(xml, now, "FA3", _(
                "FA(3) e-invoice frozen for KSeF (SHA-256 %s)", crypto.sha256_b64(xml)))
        return True

    def _l10n_pl_ksef_store_frozen_xml(self, xml, frozen_at, suffix, description, extra_values=None):
        """Keep ``xml`` as this invoice's frozen e-invoice: an attachment protected from change,
        and its hash in both spellings. Returns the attachment."""
        self.ensure_one()
        attachment = self.env["ir.attachment"].sudo().create({
            "name": "%s_%s.xml" % (self.name.replace("/", "_"), suffix),
            "raw": xml,
            "mimetype": "application/xml",
            "res_model": self._name,
            "res_id": self.id,
            "description": description,
        })
        self._l10n_pl_ksef_write({
            "l10n_pl_ksef_xml_id": attachment.id,
            "l10n_pl_ksef_xml_hash": crypto.sha256_b64(xml),
            "l10n_pl_ksef_xml_hash_url": crypto.sha256_b64url(xml),
            "l10n_pl_ksef_frozen_at": frozen_at,
            **(extra_values or {}),
        })
        return attachment

    def _l10n_pl_ksef_frozen_xml(self):
        """The frozen bytes, checked against their stored hash before every use."""
        self.ensure_one()
        if not self.l10n_pl_ksef_xml_id:
            raise UserError(_("Invoice %s has no frozen KSeF XML.", self.display_name))
        xml = self.l10n_pl_ksef_xml_id.sudo().raw
        if crypto.sha256_b64(xml) != self.l10n_pl_ksef_xml_hash:
            raise UserError(_("The stored KSeF XML of invoice %s no longer matches its hash.", self.display_name))
        return xml

    def _l10n_pl_ksef_may_reset_to_draft(self):
        """Whether this KSeF-locked invoice may be reset all the same (drill invoices at the drill's end)."""
        return False

    def _check_draftable(self):
        locked = self.filtered(lambda m: m.l10n_pl_ksef_state in LOCKED_STATES
                               and not m._l10n_pl_ksef_may_reset_to_draft())
        if locked:
            raise UserError(_(
                "Invoice %(invoice)s cannot be reset to draft: KSeF has, or may already have, its "
                "e-invoice (status: %(state)s). Issue a credit note instead.",
                invoice=", ".join(locked.mapped("name")),
                state=dict(self._fields["l10n_pl_ksef_state"]._description_selection(self.env)).get(locked[0].l10n_pl_ksef_state),
            ))
        return super()._check_draftable()

    def button_draft(self):
        # A draft is edited and re-frozen later; the old file stays on the invoice as history.
        result = super().button_draft()
        self.filtered("l10n_pl_ksef_xml_id")._l10n_pl_ksef_move_to(False, {
            "l10n_pl_ksef_xml_id": False, "l10n_pl_ksef_xml_hash": False,
            "l10n_pl_ksef_xml_hash_url": False, "l10n_pl_ksef_frozen_at": False,
        })
        return result

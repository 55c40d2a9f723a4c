"""One verdict: l10n_pl_ksef decides, l10n_pl_edi's fields show the same final answer; an
invoice l10n_pl_edi got accepted is adopted by l10n_pl_ksef instead of being sent again.

Vendor bills: l10n_pl_edi's download of purchase invoices into vendor bills, over l10n_pl_ksef's KSeF
connection: each company's own environment (the simulator included) and login, instead of
l10n_pl_edi's single global environment and its own tokens. Its FA(3)-to-bill mapping and its
'already downloaded' rule (the bill's KSeF number) are kept."""
import base64
import datetime
import logging

from lxml import etree

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError

from odoo.addons.l10n_pl_ksef.ksef import crypto
from odoo.addons.l10n_pl_ksef.ksef import errors as ksef_errors
from odoo.addons.l10n_pl_ksef.models.account_move_ksef_lifecycle import POSTABLE_STATES
from odoo.addons.l10n_pl_ksef.models.account_move_ksef_send import UNREACHABLE_ERRORS

FINAL_VERDICTS = ("accepted", "adopted", "rejected")
# l10n_pl_edi's verdict fields: read-only in its views only; a verdict in them is adopted by us,
# so only KSeF code (as superuser, after its own checks) may put one there.
EDI_VERDICT_FIELDS = ("l10n_pl_edi_status", "l10n_pl_edi_number", "l10n_pl_edi_ref", "l10n_pl_edi_session_id",
                      "l10n_pl_edi_attachment_file", "l10n_pl_edi_upo_file")
ADOPT_PER_RUN = 200                          # KSeF confirms each number with one download
PAGE_SIZE = 64                               # as l10n_pl_edi: within KSeF's download rate limits
MAX_WINDOW = datetime.timedelta(days=90)     # KSeF: a metadata query covers at most 3 months

_logger = logging.getLogger(__name__)


class AccountMove(models.Model):
    _inherit = "account.move"

    def write(self, vals):
        # Clearing them stays allowed (l10n_pl_edi's reset to draft of a rejected invoice does).
        if not self.env.su and any(vals.get(name) for name in EDI_VERDICT_FIELDS):
            raise AccessError(_("The KSeF status, number and files of Odoo's KSeF module are written by the KSeF "
                                "integration only (invoices %(invoices)s).",
                                invoices=", ".join(self.mapped("display_name"))))
        return super().write(vals)

    # ---- one verdict: ours, mirrored into l10n_pl_edi's fields -------------------------------

    @api.model
    def _l10n_pl_ksef_apply_results(self, results, bulk=False):
        # EXTENDS l10n_pl_ksef: the one place where a KSeF verdict lands on an invoice.
        outcome = super()._l10n_pl_ksef_apply_results(results, bulk=bulk)
        moves = self.browse([r["move"].id for r in results if r["verdict"] in FINAL_VERDICTS])
        moves._l10n_pl_ksef_edi_mirror()
        return outcome

    def _l10n_pl_ksef_edi_mirror(self):
        """Write our final verdict into l10n_pl_edi's fields so its reports, its reset-to-draft
        rule and its crons agree with ours. Only final verdicts: its status cron polls every
        invoice it sees as 'sent', and ours are not its to poll. Drill invoices are never real:
        their simulated numbers stay out of its fields (they would collide with real ones)."""
        for move in self.sudo():
            if move.l10n_pl_ksef_drill_id or move.journal_id.l10n_pl_ksef_drill:
                continue
            if move.l10n_pl_ksef_state == "accepted":
                document = move.l10n_pl_ksef_document_ids.filtered(
                    lambda d: d.state == "accepted" and d.ksef_number == move.l10n_pl_ksef_number)[:1]
                values = {
                    "l10n_pl_edi_status": "accepted",
                    "l10n_pl_edi_number": move.l10n_pl_ksef_number,
                    "l10n_pl_edi_ref": document.invoice_reference or move.l10n_pl_edi_ref,
                    "l10n_pl_edi_session_id": document.session_reference or move.l10n_pl_edi_session_id,
                    "l10n_pl_edi_header": False,
                }
                # A file l10n_pl_edi sent stays: it is what KSeF holds under that number.
                if not move.l10n_pl_edi_attachment_id and move.l10n_pl_ksef_xml_id:
                    values["l10n_pl_edi_attachment_file"] = base64.b64encode(move.l10n_pl_ksef_xml_id.raw)
                # the invoice's own UPO; a batch session's UPO (shared by thousands) is not copied
                upo = move.l10n_pl_ksef_upo_id
                if not move.l10n_pl_edi_upo_id and upo and (upo.res_model, upo.res_id) == (move._name, move.id):
                    values["l10n_pl_edi_upo_file"] = base64.b64encode(upo.raw)
            elif move.l10n_pl_ksef_state == "rejected":
                values = {"l10n_pl_edi_status": "rejected", "l10n_pl_edi_number": False, "l10n_pl_edi_header": False}
            else:
                continue
            move._l10n_pl_ksef_write(values)

    # ---- adoption of what l10n_pl_edi got accepted ------------------------------------------

    def _l10n_pl_ksef_post(self):
        # EXTENDS l10n_pl_ksef: an invoice KSeF already has from l10n_pl_edi is not sent again.
        self.ensure_one()
        if self._l10n_pl_ksef_edi_adopt():
            return True
        return super()._l10n_pl_ksef_post()

    def _l10n_pl_ksef_edi_adopt(self):
        """Adopt the invoices that l10n_pl_edi got accepted (sent before this add-on was there,
        or through its own sender): our state becomes accepted with its KSeF number, its file
        and UPO. Returns True when every invoice of ``self`` was adopted."""
        adopted = self.browse()
        for move in self:
            if move.l10n_pl_ksef_state not in POSTABLE_STATES or not move._l10n_pl_ksef_is_applicable():
                continue
            if move.l10n_pl_edi_status == "sent" and move.l10n_pl_edi_ref:
                move._l10n_pl_ksef_edi_refresh_their_status()
            if move.l10n_pl_edi_status != "accepted" or not move.l10n_pl_edi_number:
                continue
            held = move._l10n_pl_ksef_edi_confirmed_by_ksef()
            if held is None:
                continue
            move._l10n_pl_ksef_edi_adopt_one(held)
            adopted |= move
        return bool(self) and adopted == self

    def _l10n_pl_ksef_edi_confirmed_by_ksef(self):
        """The file KSeF holds under l10n_pl_edi's number when it is this invoice's (the file
        l10n_pl_edi sent, or else this seller's invoice with this number), otherwise None: a
        number in its fields is never taken on trust."""
        number = self.l10n_pl_edi_number
        try:
            held = self.company_id._l10n_pl_ksef_client().invoice_xml(number)
        except UNREACHABLE_ERRORS + (ksef_errors.KsefError,) as error:
            _logger.info("KSeF number %s of invoice %s not confirmed by KSeF: %s", number, self.id, error)
            return None
        their_xml = self.sudo().l10n_pl_edi_attachment_id.raw
        if their_xml:
            return held if crypto.sha256_b64(held) == crypto.sha256_b64(their_xml) else None
        try:
            root = etree.fromstring(held, etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.XMLSyntaxError:
            return None
        namespace = {"fa": etree.QName(root).namespace}
        seller = root.findtext("fa:Podmiot1/fa:DaneIdentyfikacyjne/fa:NIP", namespaces=namespace)
        invoice_number = root.findtext("fa:Fa/fa:P_2", namespaces=namespace)
        if seller == self.company_id._l10n_pl_ksef_nip() and invoice_number == self.name:
            return held
        return None

    def _l10n_pl_ksef_edi_refresh_their_status(self):
        """Ask KSeF (through l10n_pl_edi, in its environment) about an invoice it sent; quietly
        nothing when its environment cannot be this company's (a 440 will tell instead)."""
        if not self.company_id._l10n_pl_ksef_edi_mode_fits():
            return
        try:
            with self.env.cr.savepoint():
                super(AccountMove, self.sudo()).action_l10n_pl_edi_update_invoice_status()
        except UserError:
            pass

    def _l10n_pl_ksef_edi_adopt_one(self, their_xml):
        """Adopt this invoice with l10n_pl_edi's number; ``their_xml`` is the file KSeF holds."""
        self.ensure_one()
        number = self.l10n_pl_edi_number
        if their_xml and not self.l10n_pl_ksef_xml_id:
            self._l10n_pl_ksef_store_frozen_xml(their_xml, fields.Datetime.now(), "FA3", _(
                "FA(3) e-invoice sent to KSeF by Odoo's KSeF module (SHA-256 %(hash)s)", hash=crypto.sha256_b64(their_xml)))
        document = self.env["l10n_pl_ksef.document"].sudo().create({
            "move_id": self.id,
            "company_id": self.company_id.id,
            "session_reference": self.l10n_pl_edi_session_id,
            "invoice_reference": self.l10n_pl_edi_ref,
            "invoice_hash": crypto.sha256_b64(their_xml),
            "state": "sending",
            "sent_at": fields.Datetime.now(),
        })
        self._l10n_pl_ksef_log(_("Sent to KSeF by Odoo's KSeF module (l10n_pl_edi) with KSeF number %(number)s: "
                                 "adopted, not sent again.", number=number))
        self._l10n_pl_ksef_apply_results([{
            "move": self, "document": document, "verdict": "adopted", "ksef_number": number,
            "upo_xml": self.sudo().l10n_pl_edi_upo_id.raw or None,
            "document_values": {"status_code": 200, "status_description": _("Accepted (sent by l10n_pl_edi)")},
        }])

    @api.model
    def _cron_l10n_pl_ksef_submit(self):
        # EXTENDS l10n_pl_ksef: what l10n_pl_edi got accepted is adopted before the engine
        # would send it again (KSeF would answer 440 for a file that is not ours).
        self.search([
            ("l10n_pl_edi_status", "=", "accepted"), ("l10n_pl_edi_number", "!=", False),
            ("l10n_pl_ksef_state", "in", POSTABLE_STATES),
            ("move_type", "in", ("out_invoice", "out_refund")), ("state", "=", "posted"),
        ], limit=ADOPT_PER_RUN)._l10n_pl_ksef_edi_adopt()
        return super()._cron_l10n_pl_ksef_submit()

    # ---- a 440 whose original is l10n_pl_edi's sending is ours too --------------------------

    def _l10n_pl_ksef_own_ksef_numbers(self):
        # EXTENDS l10n_pl_ksef
        return super()._l10n_pl_ksef_own_ksef_numbers() | ({self.l10n_pl_edi_number} - {False})

    def _l10n_pl_ksef_own_hashes(self):
        # EXTENDS l10n_pl_ksef: the file l10n_pl_edi sent for this invoice
        their_xml = self.sudo().l10n_pl_edi_attachment_id.raw
        return super()._l10n_pl_ksef_own_hashes() | ({crypto.sha256_b64(their_xml)} if their_xml else set())

    # ---- l10n_pl_edi's own ways to KSeF: only in an environment it can express --------------

    def action_l10n_pl_edi_update_invoice_status(self):
        # EXTENDS l10n_pl_edi: only its own earlier sendings are its to ask about, in its
        # environment; what it learns is adopted.
        self.ensure_one()
        self.check_access("write")
        self.company_id._l10n_pl_ksef_edi_check_mode()
        result = super(AccountMove, self.sudo()).action_l10n_pl_edi_update_invoice_status()
        self._l10n_pl_ksef_edi_adopt()
        return result

    def action_l10n_pl_edi_get_invoice_UPO(self):
        # EXTENDS l10n_pl_edi: our UPO is already on the invoice; its own download only where it can reach KSeF.
        self.ensure_one()
        self.check_access("write")
        self.company_id._l10n_pl_ksef_edi_check_mode()
        return super(AccountMove, self.sudo()).action_l10n_pl_edi_get_invoice_UPO()

    def _cron_l10n_pl_edi_check_invoice_status(self):
        # EXTENDS l10n_pl_edi: never ask an environment that is not the company's.
        if self.env.company._l10n_pl_ksef_edi_mode_fits():
            return super()._cron_l10n_pl_edi_check_invoice_status()
        return None

    # ---- l10n_pl_edi's vendor-bill download, over our KSeF connection ----------------------

    @api.model
    def _cron_l10n_pl_edi_download_bills(self):
        # EXTENDS l10n_pl_edi (replaces its company selection: ours are the configured ones)
        companies = self.env["res.company"].sudo().search([("partner_id.country_id.code", "=", "PL")]).filtered(
            lambda c: c.l10n_pl_ksef_token or c.l10n_pl_ksef_auth_certificate_id)
        for company in companies:
            try:
                if self.with_company(company)._l10n_pl_edi_download_bills_from_ksef():
                    break   # KSeF asked to slow down: the cron comes back when it allows
            except (UserError, ksef_errors.KsefError, OSError) as error:
                _logger.warning("KSeF purchase invoices of company %s not downloaded: %s", company.id, error)

    @api.model
    def _l10n_pl_edi_download_bills_from_ksef(self):
        """Fetch the invoices KSeF holds with this company as buyer (Subject2) since the last
        downloaded bill and create the vendor bills not created yet. Returns True when KSeF
        asked to wait (the cron is re-armed at its Retry-After)."""
        company = self.env.company
        client = company._l10n_pl_ksef_client()
        last = self.search([
            ("l10n_pl_edi_number", "!=", False), ("move_type", "=", "in_invoice"),
            *self._check_company_domain(company),
        ], order="invoice_date DESC", limit=1)
        now = fields.Datetime.now()
        start = fields.Datetime.to_datetime(last.invoice_date) if last else now - datetime.timedelta(days=31)
        start = max(start, now - MAX_WINDOW)
        # no "to": KSeF takes its own current time (ours is cut to the second)
        query = {"subjectType": "Subject2", "dateRange": {
            "dateType": "Invoicing", "from": start.replace(tzinfo=datetime.timezone.utc).isoformat(),
        }}
        try:
            numbers, page = [], 0
            while True:
                answer = client.query_invoice_metadata(query, page_size=PAGE_SIZE, page_offset=page)
                numbers += [item["ksefNumber"] for item in answer.get("invoices") or []]
                if not answer.get("hasMore"):
                    break
                page += 1
            known = set(self.sudo().search([("l10n_pl_edi_number", "in", numbers)]).mapped("l10n_pl_edi_number"))
            for number in [n for n in numbers if n not in known]:
                self._l10n_pl_ksef_edi_create_bill(number, client.invoice_xml(number))
        except ksef_errors.RateLimited as error:
            cron = self.env.ref("l10n_pl_edi.cron_l10n_pl_edi_ksef_download_bills")
            cron._trigger(at=fields.Datetime.now() + datetime.timedelta(seconds=int(error.retry_after or 60)))
            return True
        return False

    @api.model
    def _l10n_pl_ksef_edi_create_bill(self, number, xml):
        values = self.l10n_pl_edi_get_ksef_bill_vals_from_xml(xml)
        values["l10n_pl_edi_number"] = number
        bill = self.create(values)
        self.env["ir.attachment"].sudo().create({
            "name": "KSeF-%s.xml" % number,
            "raw": xml,
            "mimetype": "application/xml",
            "res_model": bill._name,
            "res_id": bill.id,
            "description": _("Purchase invoice downloaded from KSeF (KSeF number %(number)s)", number=number),
        })
        return bill

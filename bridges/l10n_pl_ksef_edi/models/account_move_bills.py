"""l10n_pl_edi's download of purchase invoices into vendor bills, over l10n_pl_ksef's KSeF
connection: each company's own environment (the simulator included) and login, instead of
l10n_pl_edi's single global environment and its own tokens. Its FA(3)-to-bill mapping and its
'already downloaded' rule (the bill's KSeF number) are kept."""
import datetime
import logging

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from odoo.addons.l10n_pl_ksef.ksef import errors as ksef_errors

_logger = logging.getLogger(__name__)

PAGE_SIZE = 64                               # as l10n_pl_edi: within KSeF's download rate limits
MAX_WINDOW = datetime.timedelta(days=90)     # KSeF: a metadata query covers at most 3 months


class AccountMove(models.Model):
    _inherit = "account.move"

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
            "description": _("Purchase invoice downloaded from KSeF (KSeF number %s)", number),
        })
        return bill

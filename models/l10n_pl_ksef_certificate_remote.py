"""The company's certificates as KSeF lists them (``/certificates/query``): a mirror refreshed
on demand, from which an administrator revokes one. Written only by our code after KSeF answered."""
import datetime

from odoo import _, fields, models
from odoo.exceptions import UserError

from ..ksef import enrollment as ksef_enrollment
from ..ksef import errors as ksef_errors
from .certificate_ksef_status import KSEF_STATUSES
from .l10n_pl_ksef_certificate_request import CERTIFICATE_TYPES


def _naive(moment):
    if not moment:
        return False
    if moment.tzinfo:
        moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return moment


class L10nPlKsefCertificateRemote(models.Model):
    _name = "l10n_pl_ksef.certificate.remote"
    _description = "KSeF certificate listed by KSeF"
    _order = "valid_to desc, id desc"
    _rec_name = "serial"

    company_id = fields.Many2one("res.company", required=True, readonly=True, ondelete="cascade")
    serial = fields.Char(string="Serial number", required=True, readonly=True)
    name = fields.Char(string="Name in KSeF", readonly=True)
    certificate_type = fields.Selection(CERTIFICATE_TYPES, string="Type", readonly=True)
    status = fields.Selection(KSEF_STATUSES, string="Status in KSeF", readonly=True)
    common_name = fields.Char(string="Common name", readonly=True)
    subject = fields.Char(string="Issued to", readonly=True)
    valid_from = fields.Datetime(string="Valid from", readonly=True)
    valid_to = fields.Datetime(string="Valid until", readonly=True)
    last_use = fields.Datetime(string="Last used", readonly=True)
    request_date = fields.Datetime(string="Requested on", readonly=True)
    certificate_id = fields.Many2one("certificate.certificate", string="In Odoo", readonly=True,
                                     help="The certificate with its private key in Odoo's store, when Odoo has it.")
    in_use = fields.Char(string="Used for", compute="_compute_in_use")

    _sql_constraints = [("serial_company_uniq", "unique(company_id, serial)", "A KSeF serial is listed once per company.")]

    def _compute_in_use(self):
        for row in self:
            company = row.company_id.sudo()
            uses = []
            if row.certificate_id and row.certificate_id == company.l10n_pl_ksef_offline_certificate_id:
                uses.append(_("signs KOD II"))
            if row.certificate_id and row.certificate_id == company.l10n_pl_ksef_auth_certificate_id:
                uses.append(_("KSeF login"))
            row.in_use = ", ".join(uses) or False

    def _l10n_pl_ksef_sync(self, company, listed):
        """Mirror ``listed`` (``ksef.enrollment.RemoteCertificate``) for ``company``."""
        existing = {row.serial: row for row in self.search([("company_id", "=", company.id)])}
        local = {cert.l10n_pl_ksef_serial: cert for cert in self.env["certificate.certificate"].sudo().search(
            [("company_id", "=", company.id), ("scope", "=", "l10n_pl_ksef"), ("l10n_pl_ksef_serial", "!=", False)])}
        seen = set()
        for item in listed:
            values = {
                "company_id": company.id, "serial": item.serial, "name": item.name,
                "certificate_type": item.certificate_type if item.certificate_type in dict(CERTIFICATE_TYPES) else False,
                "status": item.status if item.status in dict(KSEF_STATUSES) else False,
                "common_name": item.common_name, "subject": "%s %s" % (item.subject_type, item.subject_value),
                "valid_from": _naive(item.valid_from), "valid_to": _naive(item.valid_to),
                "last_use": _naive(item.last_use), "request_date": _naive(item.request_date),
                "certificate_id": local.get(item.serial, self.env["certificate.certificate"]).id,
            }
            seen.add(item.serial)
            if item.serial in existing:
                existing[item.serial].write(values)
            else:
                self.create(values)
        for serial, row in existing.items():
            if serial not in seen:
                row.unlink()

    def action_l10n_pl_ksef_revoke(self):
        """Revoke in KSeF for good (reason: superseded, or key compromise from the context)."""
        self.env["res.company"]._l10n_pl_ksef_check_certificate_admin()
        reason = self.env.context.get("l10n_pl_ksef_revocation_reason") or "Unspecified"
        for company in self.company_id:
            client = company._l10n_pl_ksef_certificate_client()
            for row in self.filtered(lambda r, c=company: r.company_id == c):
                try:
                    ksef_enrollment.revoke(client, row.serial, reason)
                except (ksef_errors.KsefError, OSError) as error:
                    raise UserError(_("Certificate %(serial)s: %(error)s", serial=row.serial,
                                      error=company._l10n_pl_ksef_certificate_error_text(error))) from None
            company._l10n_pl_ksef_read_certificates(client)
        return True

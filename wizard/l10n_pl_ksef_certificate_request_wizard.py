from odoo import _, api, fields, models
from odoo.exceptions import UserError

from ..ksef import enrollment as ksef_enrollment
from ..ksef import errors as ksef_errors
from ..models.l10n_pl_ksef_certificate_request import KEY_ALGORITHMS


class L10nPlKsefCertificateRequestWizard(models.TransientModel):
    """Request the company's KSeF certificates: no file to handle, the key pair is made here."""
    _name = "l10n_pl_ksef.certificate.request.wizard"
    _description = "Request KSeF certificates"

    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company)
    request_authentication = fields.Boolean(
        string="Authentication certificate", default=True,
        help="Logs in to KSeF instead of a KSeF token; Odoo switches the KSeF login to it once received.")
    request_offline = fields.Boolean(
        string="Offline certificate", default=True,
        help="Signs KOD II of invoices issued offline; Odoo uses it as the company's Offline certificate once received.")
    authentication_name = fields.Char(string="Name of the Authentication certificate",
                                      default=lambda self: self._default_name("Authentication"))
    offline_name = fields.Char(string="Name of the Offline certificate",
                               default=lambda self: self._default_name("Offline"))
    key_algorithm = fields.Selection(KEY_ALGORITHMS, string="Key", required=True, default=ksef_enrollment.KEY_EC_P256,
                                     help="EC P-256 is what the Ministry recommends; RSA 2048 for software that needs RSA.")
    signer_certificate_id = fields.Many2one(
        "certificate.certificate", string="Log in with",
        domain="[('company_id', '=', company_id), ('private_key_id', '!=', False)]",
        help="The certificate that logs in to KSeF for this request (e.g. the company's qualified seal). "
             "Empty: the company's KSeF Authentication certificate, or on KSeF TEST and the simulator a "
             "self-signed test seal.")

    @api.model
    def _default_name(self, kind):
        # KSeF allows letters, digits, spaces, '-' and '_' (EnrollCertificateRequest.certificateName)
        return "Odoo %s %s" % (kind, fields.Date.context_today(self).isoformat())

    def action_request(self):
        """Log in once, check the identity and the limits, then send each request and follow it.
        Until KSeF holds the first request any problem is raised (nothing is kept); afterwards a
        refused request is recorded on it, so that an issued certificate never loses its key."""
        self.ensure_one()
        company = self.company_id
        company._l10n_pl_ksef_check_certificate_admin()
        wanted = [(kind, name) for kind, name, flag in (
            ("Authentication", self.authentication_name, self.request_authentication),
            ("Offline", self.offline_name, self.request_offline)) if flag]
        if not wanted:
            raise UserError(_("Choose the Authentication certificate, the Offline certificate or both."))
        for _kind, name in wanted:
            try:
                ksef_enrollment.check_name(name)
            except ksef_enrollment.EnrollmentError:
                raise UserError(_("The certificate name %(name)s cannot be used in KSeF: it needs 5 to 100 letters, "
                                  "digits, spaces, '-' or '_'.", name=name or "")) from None
        nip = company._l10n_pl_ksef_nip()
        if not nip:
            raise UserError(_("Company %s has no valid Polish NIP: KSeF certificates are issued to a NIP.", company.name))
        client = company._l10n_pl_ksef_certificate_client(self.signer_certificate_id)
        try:
            data = ksef_enrollment.enrollment_data(client)
            limits = ksef_enrollment.limits(client)
        except (ksef_errors.KsefError, OSError) as error:
            raise UserError(company._l10n_pl_ksef_certificate_error_text(error)) from None
        if data.nip != nip:
            raise UserError(_(
                "The identity that logged in to KSeF is %(other)s, not company %(company)s (NIP %(nip)s): KSeF "
                "issues certificates only in the name of who logged in, so these would not belong to the company. "
                "Log in with the company's own seal or certificate.",
                other=data.nip and _("NIP %s", data.nip) or (data.get("commonName") or "?"),
                company=company.name, nip=nip))
        if not limits.can_request or limits.enrollment_remaining < len(wanted) \
                or limits.certificate_remaining < len(wanted):
            raise UserError(_(
                "KSeF allows no more certificates now: %(requests)s of %(requests_limit)s certificate requests and "
                "%(active)s of %(active_limit)s active certificates left (%(wanted)s needed). Revoke certificates "
                "that are no longer used in the KSeF certificate list.",
                requests=limits.enrollment_remaining, requests_limit=limits.enrollment_limit,
                active=limits.certificate_remaining, active_limit=limits.certificate_limit, wanted=len(wanted)))
        Request = self.env["l10n_pl_ksef.certificate.request"].sudo()
        requests = Request
        for kind, name in wanted:
            request = Request.create({"name": name.strip(), "company_id": company.id, "certificate_type": kind,
                                      "key_algorithm": self.key_algorithm})
            if not requests:
                request._l10n_pl_ksef_send(client, data)  # raises when KSeF refused it: nothing is kept
            else:
                try:
                    with self.env.cr.savepoint():
                        request._l10n_pl_ksef_send(client, data)
                except UserError as error:
                    request.write({"state": "rejected", "status_text": error.args[0]})
            requests |= request
        for request in requests:
            request._l10n_pl_ksef_follow(client)
        try:
            company._l10n_pl_ksef_read_certificates(client)
        except UserError:
            pass  # the list is refreshed next time; the certificates are stored already
        return {
            "type": "ir.actions.act_window",
            "name": _("KSeF certificate requests"),
            "res_model": "l10n_pl_ksef.certificate.request",
            "view_mode": "list,form",
            "domain": [("id", "in", requests.ids)],
            "target": "current",
        }

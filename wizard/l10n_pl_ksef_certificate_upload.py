import base64

from odoo import _, fields, models
from odoo.exceptions import UserError

from ..ksef import certificates as ksef_certificates
from ..models.certificate import certificate_error_message


class L10nPlKsefCertificateUpload(models.TransientModel):
    """Upload a KSeF certificate with its private key, checked before anything is stored."""
    _name = "l10n_pl_ksef.certificate.upload"
    _description = "Upload a KSeF certificate"

    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company)
    name = fields.Char(required=True, default=lambda self: _("KSeF Offline certificate"))
    file_format = fields.Selection(
        [("pem", "Certificate + private key (PEM/DER)"), ("pkcs12", "PKCS#12 bundle (.p12/.pfx)")],
        string="Files", required=True, default="pem",
    )
    certificate_file = fields.Binary(string="Certificate file", required=True, attachment=False)
    certificate_filename = fields.Char()
    key_file = fields.Binary(string="Private key file", attachment=False)
    key_filename = fields.Char()
    password = fields.Char(help="The password of the private key or PKCS#12 file, if it has one.")
    certificate_id = fields.Many2one("certificate.certificate", string="Uploaded certificate", readonly=True)
    use_as_offline = fields.Boolean(
        string="Use as the company's Offline certificate", default=True,
        help="Sign KOD II of invoices issued offline with this certificate.",
    )

    def _l10n_pl_ksef_load(self):
        self.ensure_one()
        certificate_bytes = base64.b64decode(self.certificate_file or b"")
        try:
            if self.file_format == "pkcs12":
                return ksef_certificates.load_pkcs12(certificate_bytes, self.password or None)
            if not self.key_file:
                raise UserError(_("Upload the private key file as well: KSeF certificates are useless without it."))
            return ksef_certificates.load_pem(certificate_bytes, base64.b64decode(self.key_file), self.password or None)
        except ksef_certificates.CertificateError as error:
            raise UserError(certificate_error_message(self.env, error)) from None

    def action_upload(self):
        """Store the certificate (and key) only when they load and match; with "use as Offline
        certificate", also only when it is a valid Offline certificate of the company's NIP."""
        self.ensure_one()
        loaded = self._l10n_pl_ksef_load()
        if self.use_as_offline:
            try:
                ksef_certificates.require_kind(loaded, ksef_certificates.OFFLINE)
            except ksef_certificates.CertificateError as error:
                raise UserError(certificate_error_message(self.env, error)) from None
        with self.env.cr.savepoint():
            values = {
                "name": self.name,
                "scope": "l10n_pl_ksef",
                "company_id": self.company_id.id,
                "content": self.certificate_file,
            }
            if self.file_format == "pkcs12":
                values["pkcs12_password"] = self.password or False
            else:
                values["private_key_id"] = self.env["certificate.key"].create({
                    "name": "%s.key" % self.name,
                    "content": self.key_file,
                    "password": self.password or False,
                    "company_id": self.company_id.id,
                }).id
            certificate = self.env["certificate.certificate"].create(values)
            if not certificate.private_key_id:
                raise UserError(_("The private key of certificate %s could not be stored.", self.name))
            if self.use_as_offline:
                self.company_id.l10n_pl_ksef_offline_certificate_id = certificate
        self.certificate_id = certificate
        # Say what was stored and stay where the administrator was (no raw certificate form).
        kind = dict(certificate._fields["l10n_pl_ksef_kind"]._description_selection(self.env)).get(
            certificate.l10n_pl_ksef_kind, "")
        message = _("Certificate %(name)s (%(kind)s, serial %(serial)s) is stored, valid until %(date)s.",
                    name=certificate.name, kind=kind, serial=certificate.l10n_pl_ksef_serial,
                    date=self.env["account.move"]._l10n_pl_ksef_moment_text(certificate.date_end))
        if self.use_as_offline:
            message = _("%(message)s It signs KOD II of %(company)s's invoices issued offline from now on.",
                        message=message, company=self.company_id.name)
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {"type": "success", "title": _("KSeF certificate uploaded"), "message": message,
                       "sticky": False, "next": {"type": "ir.actions.client", "tag": "soft_reload"}},
        }

"""KSeF certificates kept in Odoo's certificate store (certificate.certificate).

The type (Offline / Authentication), the serial as KOD II writes it, the subject identifier and the validity
are read from the certificate itself with ``ksef.certificates``; nothing is typed in by hand.
"""
import base64
import logging

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..ksef import certificates as ksef_certificates
from ..ksef import qr
from . import ksef_messages

_logger = logging.getLogger(__name__)

KSEF_KINDS = [
    (ksef_certificates.OFFLINE, "Offline (signs KOD II)"),
    (ksef_certificates.AUTHENTICATION, "Authentication (API login)"),
    ("unknown", "Not a KSeF certificate type"),
]
# Days before expiry at which administrators get an activity (each threshold once).
EXPIRY_THRESHOLDS = (30, 7, 1)


def certificate_kind_label(env, kind):
    """The translated label of a KSeF certificate type (``ksef.certificates`` kind key)."""
    _ = ksef_messages.user_language_env(env)._
    return {
        ksef_certificates.OFFLINE: _("Offline (signs KOD II)"),
        ksef_certificates.AUTHENTICATION: _("Authentication (API login)"),
    }.get(kind) or _("Not a KSeF certificate type")


def certificate_error_message(env, error, certificate_name=None):
    """A translated, user-facing text for a ``ksef.certificates.CertificateError`` (never
    carries key material or passwords: the core errors do not contain any). Every case is a
    whole sentence: the core's English words (file kinds, certificate types) never reach it."""
    params = error.params or {}
    env = ksef_messages.user_language_env(env)
    _ = env._  # a module-level function: tell the translation which language to use
    corrupt = {
        "private key": _("The private key file cannot be read: it is damaged or in an unknown format."),
        "PKCS#12": _("The PKCS#12 file (.p12/.pfx) cannot be read: it is damaged or in an unknown format."),
    }
    required = params.get("required")
    messages = {
        "corrupt_file": corrupt.get(params.get("what")) or _(
            "The certificate file cannot be read: it is damaged or in an unknown format."),
        "wrong_password": _("The password is wrong: the private key or PKCS#12 file cannot be opened."),
        "password_required": _("The file is protected: enter its password."),
        "missing_private_key": _("The private key is missing: KSeF certificates need their private key here."),
        "key_mismatch": _("The private key does not belong to this certificate."),
        "unsupported_key": _("The certificate's key type is not supported: KSeF certificates use RSA 2048 or EC P-256 keys."),
        "weak_key": _("The certificate %(serial)s has a key KSeF does not accept for KOD II (%(key)s): an Offline "
                      "certificate needs an RSA key of at least 2048 bits or an EC P-256 key.",
                      serial=params.get("serial"), key=params.get("key")),
        "expired": _("The certificate %(serial)s expired on %(date)s (UTC).",
                     serial=params.get("serial"), date=params.get("valid_to")),
        "not_yet_valid": _("The certificate %(serial)s is not valid yet: valid from %(date)s (UTC).",
                           serial=params.get("serial"), date=params.get("valid_from")),
        "wrong_kind": _("The certificate %(serial)s cannot log in to KSeF: its type is %(actual)s. Only an "
                        "Authentication certificate logs in; Offline certificates only sign KOD II.",
                        serial=params.get("serial"), actual=certificate_kind_label(env, params.get("actual")))
        if required == ksef_certificates.AUTHENTICATION else
        _("The certificate %(serial)s is not a KSeF Offline certificate (its type is: %(actual)s). "
          "Only an Offline certificate may sign KOD II; Authentication certificates are for "
          "logging in to KSeF only.",
          serial=params.get("serial"), actual=certificate_kind_label(env, params.get("actual"))),
        "identifier_mismatch": _("The certificate %(serial)s belongs to %(actual)s, not to NIP %(expected)s.",
                                 serial=params.get("serial"), actual=params.get("actual"),
                                 expected=params.get("expected"))
        if params.get("identifiers") else
        _("The certificate %(serial)s names no NIP or PESEL, so it cannot belong to NIP %(expected)s.",
          serial=params.get("serial"), expected=params.get("expected")),
    }
    text = messages.get(error.code) or _("The certificate cannot be used (%(code)s).", code=error.code)
    if certificate_name:
        text = _("Certificate %(name)s: %(problem)s", name=certificate_name, problem=text)
    return text


class CertificateCertificate(models.Model):
    _name = "certificate.certificate"
    _inherit = ["certificate.certificate", "mail.thread", "mail.activity.mixin"]

    scope = fields.Selection(selection_add=[("l10n_pl_ksef", "KSeF")], ondelete={"l10n_pl_ksef": "set null"})
    l10n_pl_ksef_kind = fields.Selection(
        KSEF_KINDS, string="KSeF type", compute="_compute_l10n_pl_ksef_details", store=True,
        help="Read from the key usage: Non-Repudiation = Offline, Digital Signature = Authentication.",
    )
    l10n_pl_ksef_serial = fields.Char(string="KSeF serial", compute="_compute_l10n_pl_ksef_details", store=True)
    l10n_pl_ksef_identifier = fields.Char(
        string="Subject identifier", compute="_compute_l10n_pl_ksef_details", store=True,
        help="The NIP or PESEL the certificate was issued to.",
    )
    l10n_pl_ksef_days_left = fields.Integer(string="Days left", compute="_compute_l10n_pl_ksef_days_left")
    l10n_pl_ksef_expiry_notified_days = fields.Integer(
        string="Expiry warning sent at (days)", copy=False, readonly=True,
        help="The smallest expiry threshold (30, 7 or 1 days) for which administrators were warned.",
    )

    @api.depends("pem_certificate")
    def _compute_l10n_pl_ksef_details(self):
        for record in self:
            pem = record.with_context(bin_size=False).pem_certificate
            parsed = None
            if pem:
                try:
                    parsed = ksef_certificates.load_certificate(base64.b64decode(pem))
                except ksef_certificates.CertificateError:
                    parsed = None
            if not parsed:
                record.l10n_pl_ksef_kind = False
                record.l10n_pl_ksef_serial = False
                record.l10n_pl_ksef_identifier = False
                continue
            record.l10n_pl_ksef_kind = parsed.kind or "unknown"
            record.l10n_pl_ksef_serial = parsed.serial
            record.l10n_pl_ksef_identifier = (
                "%s %s" % (parsed.identifier_type, parsed.identifier) if parsed.identifier else False)

    @api.depends("date_end")
    def _compute_l10n_pl_ksef_days_left(self):
        for record in self:
            record.l10n_pl_ksef_days_left = record._l10n_pl_ksef_days_left_now() or 0

    def _l10n_pl_ksef_days_left_now(self):
        """Whole days until expiry, computed now (the stored field may be cached); None without a date."""
        self.ensure_one()
        return (self.date_end - fields.Datetime.now()).days if self.date_end else None

    @api.constrains("loading_error", "scope")
    def _check_l10n_pl_ksef_loadable(self):
        # Odoo keeps an unreadable certificate with a loading error; a KSeF one must not be half-stored.
        for record in self:
            if record.scope == "l10n_pl_ksef" and record.loading_error:
                raise ValidationError(_("Certificate %(name)s cannot be stored: %(error)s",
                                        name=record.name or "", error=record.loading_error))

    # ---- loading ---------------------------------------------------------------------------

    def _l10n_pl_ksef_load(self, with_private_key=True):
        """This certificate as a ``ksef.certificates.KsefCertificate`` (with its private key when
        asked). Raises UserError on any problem."""
        self.ensure_one()
        record = self.sudo()
        pem = record.with_context(bin_size=False).pem_certificate
        if not pem:
            raise UserError(record.loading_error or _("Certificate %s has no readable content.", record.name))
        try:
            if not with_private_key:
                return ksef_certificates.load_certificate(base64.b64decode(pem))
            key = record.private_key_id
            if not key:
                raise ksef_certificates.MissingPrivateKeyError("no private key")
            if key.loading_error:
                raise UserError(_("Certificate %(name)s: its private key cannot be read (%(error)s).",
                                  name=record.name, error=key.loading_error))
            key_pem = key.with_context(bin_size=False).pem_key
            return ksef_certificates.load_pem(base64.b64decode(pem), base64.b64decode(key_pem))
        except ksef_certificates.CertificateError as error:
            raise UserError(certificate_error_message(self.env, error, record.name)) from None

    def _l10n_pl_ksef_check_offline_signer(self, company, now=None):
        """Everything KOD II needs: an Offline certificate of the company's NIP, valid now, with
        its matching private key. Returns the loaded certificate; raises ValidationError."""
        self.ensure_one()
        loaded = self._l10n_pl_ksef_load(with_private_key=True) if self.sudo().private_key_id else None
        if loaded is None:
            loaded = self._l10n_pl_ksef_load(with_private_key=False)
            try:
                ksef_certificates.require_kind(loaded, ksef_certificates.OFFLINE)
            except ksef_certificates.CertificateError as error:
                raise ValidationError(certificate_error_message(self.env, error, self.sudo().name)) from None
            raise ValidationError(_("Certificate %s: the private key is missing; KOD II cannot be signed without it.",
                                    self.sudo().name))
        nip = company._l10n_pl_ksef_nip()
        try:
            ksef_certificates.require_offline_signer(loaded, nip=nip or None, now=now)
        except ksef_certificates.CertificateError as error:
            raise ValidationError(certificate_error_message(self.env, error, self.sudo().name)) from None
        if not nip:
            raise ValidationError(_("Company %s has no valid Polish NIP to check the certificate against.", company.name))
        # Judge it by what KOD II will need: sign a sample code with the stored key, verify it.
        try:
            qr.check_signer(loaded.serial, loaded.private_key, loaded.certificate, nip)
        except qr.Kod2SerialError as error:
            raise ValidationError(_(
                "Certificate %(name)s cannot sign KOD II (the second QR code of invoices issued offline): its serial "
                "number %(serial)s cannot be written in the code (%(detail)s).",
                name=self.sudo().name, serial=loaded.serial, detail=error)) from None
        except qr.Kod2KeyError as error:
            raise ValidationError(_(
                "Certificate %(name)s cannot sign KOD II (the second QR code of invoices issued offline): a code "
                "signed with its private key does not verify (%(detail)s). KOD II needs an RSA key of at least "
                "2048 bits or an EC P-256 key matching the certificate.",
                name=self.sudo().name, detail=error)) from None
        return loaded

    # ---- expiry ----------------------------------------------------------------------------

    def _l10n_pl_ksef_warn_expiry(self, company):
        """Schedule one activity per administrator when the certificate crosses 30, 7 or 1 days
        before expiry; each threshold only once (idempotent)."""
        self.ensure_one()
        record = self.sudo()
        days = record._l10n_pl_ksef_days_left_now()
        if days is None:
            return False
        crossed = [threshold for threshold in EXPIRY_THRESHOLDS if days <= threshold]
        if not crossed:
            if record.l10n_pl_ksef_expiry_notified_days:
                record.l10n_pl_ksef_expiry_notified_days = 0  # renewed: warn again next time
            return False
        threshold = min(crossed)
        if record.l10n_pl_ksef_expiry_notified_days and record.l10n_pl_ksef_expiry_notified_days <= threshold:
            return False
        administrators = self.env.ref("base.group_system").sudo().users.filtered(lambda user: not user.share)
        admins = administrators.filtered(lambda user: company in user.company_ids) or administrators
        summary = _("KSeF certificate expires in %s day(s)", max(days, 0)) if days >= 0 else _("KSeF certificate expired")
        details = {
            "kind": dict(record._fields["l10n_pl_ksef_kind"]._description_selection(self.env)).get(
                record.l10n_pl_ksef_kind, ""),
            "name": record.name, "serial": record.l10n_pl_ksef_serial, "company": company.name,
            "date": record.date_end,
        }
        if record.l10n_pl_ksef_kind == ksef_certificates.AUTHENTICATION:
            note = _("The KSeF %(kind)s certificate %(name)s (serial %(serial)s) of %(company)s is valid until %(date)s "
                     "UTC. Request a new one in KSeF and set it here before it expires: without it Odoo cannot log in "
                     "to KSeF and no invoice is sent.", **details)
        else:
            note = _("The KSeF %(kind)s certificate %(name)s (serial %(serial)s) of %(company)s is valid until %(date)s "
                     "UTC. Request a new one in KSeF and upload it here before it expires: without it invoices cannot "
                     "be issued offline.", **details)
        for admin in admins:
            record.activity_schedule(
                "mail.mail_activity_data_warning", date_deadline=fields.Date.context_today(record),
                summary=summary, note=note, user_id=admin.id)
        record.l10n_pl_ksef_expiry_notified_days = threshold
        return True

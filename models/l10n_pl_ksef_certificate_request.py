"""A KSeF certificate requested from Odoo: the key pair is generated here and its private key
stays in Odoo's key store (administrators only); KSeF gets the CSR and gives back the
certificate, which lands in the store with its key, type and validity.

Once KSeF holds a request (it answered with a reference number) nothing is rolled back any more:
the key and the reference are kept, and what comes later (status, retrieval) is recorded on the
request and retried, never raised - otherwise a certificate KSeF issued would lose its key.

A request whose answer was lost (no HTTP answer: a timeout, a dropped connection) may be held by
KSeF all the same: its key is kept and the certificate is looked for by its name
(``/certificates/query``), the one whose public key is ours; a request KSeF shows no trace of
after ``LOST_REQUEST_GIVE_UP`` is taken as never received and its key forgotten."""
import base64
import datetime
import logging

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from ..ksef import certificates as ksef_certificates
from ..ksef import enrollment as ksef_enrollment
from ..ksef import errors as ksef_errors
from .certificate import certificate_error_message

_logger = logging.getLogger(__name__)

CERTIFICATE_TYPES = [("Authentication", "Authentication (login)"), ("Offline", "Offline (KOD II)")]
KEY_ALGORITHMS = [(ksef_enrollment.KEY_EC_P256, "EC P-256 (recommended)"), (ksef_enrollment.KEY_RSA_2048, "RSA 2048")]
# KSeF processes a certificate request within minutes; no trace of it a day later: never received.
LOST_REQUEST_GIVE_UP = datetime.timedelta(days=1)
# ``/certificates/retrieve`` takes at most this many serial numbers at once (OpenAPI).
RETRIEVE_AT_ONCE = 10


def answer_lost(error):
    """KSeF may hold what it was sent: no HTTP answer came (a timeout, a dropped connection; a
    refused one cannot be told apart, and the check of KSeF's data just before makes it rare). An
    answer (a 4xx refusal, a 5xx) means it does not."""
    return isinstance(error, ksef_errors.KsefUnavailable) and not error.http_status


class L10nPlKsefCertificateRequest(models.Model):
    _name = "l10n_pl_ksef.certificate.request"
    _description = "KSeF certificate request"
    _order = "id desc"

    name = fields.Char(string="Certificate name", required=True, readonly=True,
                       help="The name given to the certificate in KSeF.")
    company_id = fields.Many2one("res.company", required=True, readonly=True, ondelete="cascade")
    certificate_type = fields.Selection(CERTIFICATE_TYPES, string="Type", required=True, readonly=True)
    key_algorithm = fields.Selection(KEY_ALGORITHMS, string="Key", required=True, readonly=True,
                                     default=ksef_enrollment.KEY_EC_P256)
    state = fields.Selection(
        [("draft", "Draft"), ("sent", "Awaiting KSeF"), ("done", "Certificate received"),
         ("rejected", "Refused by KSeF")],
        default="draft", required=True, readonly=True, copy=False)
    reference_number = fields.Char(string="KSeF reference", readonly=True, copy=False)
    requested_at = fields.Datetime(string="Requested on", readonly=True, copy=False)
    serial = fields.Char(string="Serial number", readonly=True, copy=False)
    status_text = fields.Char(string="KSeF answer", readonly=True, copy=False)
    private_key_id = fields.Many2one("certificate.key", string="Private key", readonly=True, copy=False,
                                     ondelete="restrict")
    certificate_id = fields.Many2one("certificate.certificate", string="Issued certificate", readonly=True, copy=False)
    date_end = fields.Datetime(related="certificate_id.date_end", string="Valid until")

    # ---- sending ---------------------------------------------------------------------------

    def _l10n_pl_ksef_send(self, client, data):
        """Generate the key, build the CSR from KSeF's ``data`` and send it. Raises (and leaves
        nothing behind) until KSeF has accepted the request."""
        self.ensure_one()
        if self.state != "draft":
            raise UserError(_("The certificate request %s was already sent to KSeF.", self.name))
        key = ksef_enrollment.generate_private_key(self.key_algorithm)
        try:
            reference = ksef_enrollment.enroll(client, self.name, self.certificate_type,
                                               ksef_enrollment.build_csr(data, key))
        except ksef_enrollment.EnrollmentError:
            # the only request-side check left here is the name (type and key come from selections)
            raise UserError(_("The certificate name %(name)s cannot be used in KSeF: it needs 5 to 100 letters, "
                              "digits, spaces, '-' or '_'.", name=self.name)) from None
        except (ksef_errors.KsefError, OSError) as error:
            if not answer_lost(error):
                raise UserError(_("Certificate request %(name)s: %(error)s", name=self.name,
                                  error=self.company_id._l10n_pl_ksef_certificate_error_text(error))) from None
            reference = False   # KSeF may hold it: keep the key, look for the certificate by its name
            _logger.info("KSeF certificate request %s: the answer was lost (%s); kept, looked for by its name",
                         self.id, type(error).__name__)
        # KSeF has it now (or may have it): from here on nothing may roll the key back.
        key_record = self.env["certificate.key"].sudo().create({
            "name": "%s.key" % self.name,
            "content": base64.b64encode(ksef_enrollment.private_key_pem(key)),
            "company_id": self.company_id.id,
        })
        self.sudo().write({
            "state": "sent", "reference_number": reference, "private_key_id": key_record.id,
            "requested_at": fields.Datetime.now(),
            "status_text": False if reference else _(
                "KSeF's answer to the request was lost: it may have received it. The certificate is looked "
                "for in KSeF by its name; its key is kept."),
        })
        del key

    # ---- status and retrieval ----------------------------------------------------------------

    def _l10n_pl_ksef_follow(self, client, timeout=20.0):
        """Ask KSeF how the request is doing; store the certificate once issued. Never raises."""
        self.ensure_one()
        if self.state != "sent":
            return
        if not self.reference_number:
            self._l10n_pl_ksef_find_lost(client)
            return
        try:
            status = ksef_enrollment.wait_for_enrollment(client, self.reference_number, timeout=timeout, interval=0.2)
            if status.pending:
                self.status_text = _("KSeF is still processing the request (%(description)s).",
                                     description=status.description)
                return
            if not status.issued:
                detail = "; ".join([status.description] + [str(d) for d in status.details if d])
                self.sudo().write({"state": "rejected", "status_text": _(
                    "KSeF refused the request (code %(code)s): %(detail)s", code=status.code, detail=detail)})
                # a key no certificate will ever match is useless: forget it
                key = self.sudo().private_key_id
                self.sudo().private_key_id = False
                key.unlink()
                return
            retrieved = ksef_enrollment.retrieve(client, [status.serial]).get(status.serial)
            if not retrieved:
                self.status_text = _("KSeF issued the certificate %(serial)s but did not hand it out yet.",
                                     serial=status.serial)
                return
            self._l10n_pl_ksef_store(status.serial, retrieved[0])
        except (ksef_errors.KsefError, OSError) as error:
            self.status_text = self.company_id._l10n_pl_ksef_certificate_error_text(error)
        except UserError as error:
            self.status_text = error.args[0]

    def _l10n_pl_ksef_find_lost(self, client):
        """A request whose answer was lost: KSeF's certificates of its name and type, newest
        first; the one whose public key is ours is the issued one. Never raises."""
        request = self.sudo()
        key_pem = base64.b64decode(request.private_key_id.with_context(bin_size=False).content)
        try:
            named = [c for c in ksef_enrollment.query(client, certificate_type=request.certificate_type, name=request.name)
                     if c.name == request.name]
            named.sort(key=lambda c: c.request_date or datetime.datetime.min.replace(tzinfo=datetime.timezone.utc),
                       reverse=True)
            retrieved = ksef_enrollment.retrieve(client, [c.serial for c in named[:RETRIEVE_AT_ONCE]]) if named else {}
            for serial, (der, _type, _name) in retrieved.items():
                try:
                    ksef_certificates.load_pem(der, key_pem)
                except ksef_certificates.CertificateError:
                    continue    # same name, another key: an earlier certificate
                self._l10n_pl_ksef_store(serial, der)
                return
        except (ksef_errors.KsefError, OSError) as error:
            request.status_text = request.company_id._l10n_pl_ksef_certificate_error_text(error)
            return
        except UserError as error:
            request.status_text = error.args[0]
            return
        if request.requested_at and request.requested_at < fields.Datetime.now() - LOST_REQUEST_GIVE_UP:
            request.write({"state": "rejected", "status_text": _(
                "KSeF has no certificate of this request a day after it was sent: the request never reached KSeF. "
                "Request the certificate again.")})
            key = request.private_key_id
            request.private_key_id = False
            key.unlink()
            return
        request.status_text = _(
            "KSeF's answer to the request was lost; no certificate named %(name)s with this request's key in KSeF "
            "yet. Odoo looks again later.", name=request.name)

    def _l10n_pl_ksef_store(self, serial, der):
        """The issued certificate, checked against our key, type and NIP, into the store; then
        used by the company (Offline: signs KOD II; Authentication: the KSeF login)."""
        self.ensure_one()
        request = self.sudo()
        company = request.company_id
        key_pem = base64.b64decode(request.private_key_id.with_context(bin_size=False).content)
        try:
            loaded = ksef_certificates.load_pem(der, key_pem)
            ksef_certificates.require_kind(loaded, request.certificate_type)
        except ksef_certificates.CertificateError as error:
            raise UserError(certificate_error_message(self.env, error, request.name)) from None
        nip = company._l10n_pl_ksef_nip()
        if loaded.nip != nip:
            raise UserError(_("KSeF issued the certificate %(serial)s to %(other)s, not to this company's NIP %(nip)s.",
                              serial=serial, other=loaded.nip or "-", nip=nip))
        with self.env.cr.savepoint():
            certificate = self.env["certificate.certificate"].sudo().create({
                "name": request.name,
                "scope": "l10n_pl_ksef",
                "company_id": company.id,
                "content": base64.b64encode(der),
                "private_key_id": request.private_key_id.id,
            })
            certificate._l10n_pl_ksef_set_status("Active", company)
            certificate.l10n_pl_ksef_remote_name = request.name
        request.write({"state": "done", "serial": serial, "certificate_id": certificate.id,
                       "status_text": _("Certificate %(serial)s received, valid until %(date)s (UTC).",
                                        serial=serial, date=certificate.date_end)})
        try:
            with self.env.cr.savepoint():
                if request.certificate_type == "Offline":
                    company.l10n_pl_ksef_offline_certificate_id = certificate
                else:
                    company.write({"l10n_pl_ksef_auth_certificate_id": certificate.id,
                                   "l10n_pl_ksef_auth_method": "certificate"})
        except UserError as error:
            request.status_text = _("Certificate %(serial)s received but not put to use: %(error)s",
                                    serial=serial, error=error.args[0])
        return certificate

    def action_l10n_pl_ksef_check(self):
        """Ask KSeF again for requests still waiting."""
        waiting = self.filtered(lambda request: request.state == "sent")
        for company in waiting.company_id:
            client = company._l10n_pl_ksef_certificate_client()
            for request in waiting.filtered(lambda r, c=company: r.company_id == c):
                request._l10n_pl_ksef_follow(client, timeout=5.0)
        return True

    @api.model
    def _cron_l10n_pl_ksef_certificate_requests(self):
        if self.env["res.company"]._l10n_pl_ksef_neutralized():
            return
        for request in self.sudo().search([("state", "=", "sent")]):
            try:
                with self.env.cr.savepoint():
                    request.action_l10n_pl_ksef_check()
            except UserError as error:
                request.status_text = error.args[0]

"""KSeF on the company: its NIP, and the connection (environment, context, credentials and
the cached tokens). Secrets (KSeF token, access/refresh tokens) are readable by administrators
only and are read with sudo() inside the sending code, never logged and never shown in chatter."""
import base64
import datetime as _datetime
import logging as _logging

from stdnum.pl import nip as stdnum_nip

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..ksef import certificates as ksef_certificates
from ..ksef import client as ksef_client
from ..ksef import errors as ksef_errors
from .certificate import certificate_error_message, certificate_kind_label

_ksef_logger = _logging.getLogger(__name__)

KSEF_ENVIRONMENTS = [
    ("test", "Test (api-test.ksef.mf.gov.pl)"),
    ("demo", "Demo / pre-production (api-demo.ksef.mf.gov.pl)"),
    ("production", "Production (api.ksef.mf.gov.pl)"),
    ("simulator", "Local simulator / custom address"),
]
KSEF_CONTEXT_TYPES = [("Nip", "NIP"), ("InternalId", "Internal identifier"), ("NipVatUe", "NIP-VAT UE")]
KSEF_CONNECTION_FIELDS = {
    "l10n_pl_ksef_environment", "l10n_pl_ksef_base_url", "l10n_pl_ksef_context_type", "l10n_pl_ksef_context_value",
    "l10n_pl_ksef_auth_method", "l10n_pl_ksef_token", "l10n_pl_ksef_auth_certificate_id",
}
# A cached token this close to its end is treated as expired.
TOKEN_MARGIN = _datetime.timedelta(seconds=60)


def _utc_naive(moment):
    """An aware datetime as the naive UTC value Odoo stores."""
    if not moment:
        return False
    if moment.tzinfo:
        moment = moment.astimezone(_datetime.timezone.utc).replace(tzinfo=None)
    return moment


def _aware(moment):
    return moment.replace(tzinfo=_datetime.timezone.utc) if moment else None


class _PersistingKsefClient(ksef_client.KsefClient):
    """A KsefClient that hands every new access/refresh token to the company cache, so the next
    call (in another request or worker) reuses them instead of logging in again."""

    def __init__(self, company, **kwargs):
        super().__init__(**kwargs)
        self._ksef_company = company

    def redeem(self, operation):
        tokens = super().redeem(operation)
        self._ksef_company._l10n_pl_ksef_store_tokens(self)
        return tokens

    def refresh(self):
        token = super().refresh()
        self._ksef_company._l10n_pl_ksef_store_tokens(self)
        return token


class ResCompany(models.Model):
    _inherit = "res.company"

    l10n_pl_ksef_environment = fields.Selection(
        KSEF_ENVIRONMENTS, string="KSeF environment", default="test",
        help="Where invoices are sent. 'Local simulator' uses the address below (e.g. the built-in "
             "simulator started with python -m ksef.simulator).",
    )
    l10n_pl_ksef_base_url = fields.Char(
        string="KSeF API address",
        help="Base address of the KSeF API for the local simulator or a custom endpoint, "
             "e.g. http://127.0.0.1:8123 (the /v2 suffix is added when missing).",
    )
    l10n_pl_ksef_context_type = fields.Selection(
        KSEF_CONTEXT_TYPES, string="KSeF context type", default="Nip",
        help="The KSeF context in which this company logs in and sends invoices.",
    )
    l10n_pl_ksef_context_value = fields.Char(
        string="KSeF context identifier", compute="_compute_l10n_pl_ksef_context_value",
        store=True, readonly=False,
        help="Identifier of the KSeF context; by default the company's NIP.",
    )
    l10n_pl_ksef_auth_method = fields.Selection(
        [("token", "KSeF token"), ("certificate", "KSeF Authentication certificate (XAdES)")],
        string="KSeF login with", default="token",
    )
    l10n_pl_ksef_token = fields.Char(
        string="KSeF token", groups="base.group_system", copy=False,
        help="A KSeF token generated in the KSeF application for this context, with the right to "
             "send invoices (InvoiceWrite).",
    )
    l10n_pl_ksef_auth_certificate_id = fields.Many2one(
        "certificate.certificate", string="KSeF Authentication certificate", groups="base.group_system",
        copy=False, domain="[('company_id', '=', id)]",
        help="A KSeF certificate of type Authentication (with its private key) used to log in with a "
             "XAdES signature. Offline certificates cannot be used to log in.",
    )
    l10n_pl_ksef_timeout = fields.Float(
        string="KSeF timeout (s)", default=30.0,
        help="How long to wait for one answer of KSeF before treating it as unreachable.",
    )
    # -- cache: secrets, administrators only ------------------------------------------------
    l10n_pl_ksef_access_token = fields.Char(groups="base.group_system", copy=False)
    l10n_pl_ksef_access_token_until = fields.Datetime(groups="base.group_system", copy=False)
    l10n_pl_ksef_refresh_token = fields.Char(groups="base.group_system", copy=False)
    l10n_pl_ksef_refresh_token_until = fields.Datetime(groups="base.group_system", copy=False)

    @api.depends("vat")
    def _compute_l10n_pl_ksef_context_value(self):
        for company in self:
            if not company.l10n_pl_ksef_context_value or company.l10n_pl_ksef_context_type in (False, "Nip"):
                company.l10n_pl_ksef_context_value = company._l10n_pl_ksef_nip() or company.l10n_pl_ksef_context_value

    @api.constrains("l10n_pl_ksef_auth_certificate_id", "l10n_pl_ksef_context_value")
    def _check_l10n_pl_ksef_auth_certificate(self):
        for company in self.sudo().filtered("l10n_pl_ksef_auth_certificate_id"):
            company._l10n_pl_ksef_auth_certificate()

    def write(self, vals):
        result = super().write(vals)
        if KSEF_CONNECTION_FIELDS & set(vals):
            # Another environment or identity: cached tokens and open sessions belong to the old one.
            self._l10n_pl_ksef_forget_tokens()
            self.env["l10n_pl_ksef.session"].sudo().search(
                [("company_id", "in", self.ids), ("state", "=", "open")]).write({"state": "closed"})
        return result

    def _l10n_pl_ksef_nip(self):
        """The company's NIP as KSeF wants it (10 digits), or False when missing or invalid."""
        self.ensure_one()
        vat = (self.vat or "").replace(" ", "").replace("-", "").upper()
        nip = vat[2:] if vat.startswith("PL") else vat
        return nip if nip and stdnum_nip.is_valid(nip) else False

    # -- addresses and credentials -------------------------------------------------------------

    def _l10n_pl_ksef_api_url(self):
        self.ensure_one()
        if self.l10n_pl_ksef_environment == "simulator" or (self.l10n_pl_ksef_base_url and not self.l10n_pl_ksef_environment):
            url = (self.l10n_pl_ksef_base_url or "").strip().rstrip("/")
            if not url:
                raise UserError(_("Company %s: the KSeF environment is 'Local simulator' but no KSeF API address is set "
                                  "(Settings > Invoicing > KSeF).", self.name))
            return url if url.endswith("/v2") else url + "/v2"
        return ksef_client.ENVIRONMENTS[self.l10n_pl_ksef_environment or "test"]

    def _l10n_pl_ksef_context(self):
        self.ensure_one()
        value = (self.l10n_pl_ksef_context_value or self._l10n_pl_ksef_nip() or "").strip()
        if not value:
            raise UserError(_("Company %s: set the KSeF context identifier (or a valid Polish NIP as Tax ID) "
                              "in Settings > Invoicing > KSeF.", self.name))
        return self.l10n_pl_ksef_context_type or "Nip", value

    def _l10n_pl_ksef_auth_certificate(self):
        """The company's KSeF Authentication certificate with its key, checked for login:
        Authentication type, valid now, carrying the context NIP. Raises a clear error otherwise."""
        self.ensure_one()
        company = self.sudo()
        record = company.l10n_pl_ksef_auth_certificate_id
        if not record:
            raise UserError(_("Company %s: choose a KSeF Authentication certificate for the KSeF login "
                              "(Settings > Invoicing > KSeF).", company.name))
        try:
            content = base64.b64decode(record.with_context(bin_size=False).content or b"")
            if record.content_format == "pkcs12" or (record.loading_error and not record.pem_certificate):
                loaded = ksef_certificates.load_pkcs12(content, record.pkcs12_password or None)
            else:
                if not record.private_key_id:
                    raise ksef_certificates.MissingPrivateKeyError("no private key")
                key = base64.b64decode(record.private_key_id.with_context(bin_size=False).pem_key or b"")
                loaded = ksef_certificates.load_pem(base64.b64decode(record.pem_certificate), key)
        except ksef_certificates.WrongPasswordError as error:
            raise ValidationError(_("The KSeF certificate %(name)s cannot be opened: the PKCS#12 password is wrong "
                                    "(or missing). Enter the password the file was exported with.",
                                    name=record.display_name)) from error
        except ksef_certificates.MissingPrivateKeyError as error:
            raise ValidationError(_("The KSeF certificate %(name)s has no private key: upload a PKCS#12 file or "
                                    "add its private key.", name=record.display_name)) from error
        except ksef_certificates.CertificateError as error:
            raise ValidationError(_("The KSeF certificate %(name)s cannot be read: %(error)s",
                                    name=record.display_name,
                                    error=certificate_error_message(self.env, error))) from error
        context_type, context_value = company._l10n_pl_ksef_context()
        try:
            ksef_certificates.require_kind(loaded, ksef_certificates.AUTHENTICATION)
        except ksef_certificates.WrongKindError as error:
            raise ValidationError(_(
                "The certificate %(name)s cannot be used to log in to KSeF: its type is %(kind)s, "
                "and only an Authentication certificate can log in. (Offline certificates only sign the "
                "QR codes of offline invoices.)", name=record.display_name,
                kind=certificate_kind_label(self.env, loaded.kind),
            )) from error
        try:
            ksef_certificates.require_valid(loaded)
        except ksef_certificates.CertificateError as error:
            raise ValidationError(_("The KSeF certificate %(name)s is not valid now (valid from %(start)s to %(end)s UTC).",
                                    name=record.display_name, start=loaded.valid_from, end=loaded.valid_to)) from error
        nip = company._l10n_pl_ksef_nip()
        expected = nip if context_type != "Nip" and nip else context_value
        if not loaded.nip:
            raise ValidationError(_("The KSeF certificate %(name)s names no NIP, so it cannot log in for this "
                                    "company's NIP %(nip)s.", name=record.display_name, nip=expected))
        if loaded.nip != expected:
            raise ValidationError(_("The KSeF certificate %(name)s was issued to NIP %(cert_nip)s, not to this "
                                    "company's NIP %(nip)s.", name=record.display_name,
                                    cert_nip=loaded.nip, nip=expected))
        return loaded

    # -- tokens ------------------------------------------------------------------------------

    def _l10n_pl_ksef_store_tokens(self, client):
        self.ensure_one()
        values = {}
        if client.access_token:
            values.update(l10n_pl_ksef_access_token=client.access_token.token,
                          l10n_pl_ksef_access_token_until=_utc_naive(client.access_token.valid_until))
        if client.refresh_token:
            values.update(l10n_pl_ksef_refresh_token=client.refresh_token.token,
                          l10n_pl_ksef_refresh_token_until=_utc_naive(client.refresh_token.valid_until))
        # Through super(): storing tokens must not itself look like a change of connection.
        super(ResCompany, self.sudo()).write(values)

    def _l10n_pl_ksef_forget_tokens(self):
        values = {"l10n_pl_ksef_access_token": False, "l10n_pl_ksef_access_token_until": False,
                  "l10n_pl_ksef_refresh_token": False, "l10n_pl_ksef_refresh_token_until": False}
        for company in self.sudo():
            if company.l10n_pl_ksef_access_token or company.l10n_pl_ksef_refresh_token:
                super(ResCompany, company).write(values)

    def _l10n_pl_ksef_new_client(self, **tokens):
        self.ensure_one()
        company = self.sudo()
        return _PersistingKsefClient(
            company, base_url=company._l10n_pl_ksef_api_url(), timeout=company.l10n_pl_ksef_timeout or 30.0,
            poll_interval=0.2, **tokens)

    def _l10n_pl_ksef_authenticate(self, client):
        """Log in (KSeF token or XAdES with the Authentication certificate); tokens land in the cache."""
        self.ensure_one()
        company = self.sudo()
        context_type, context_value = company._l10n_pl_ksef_context()
        if company.l10n_pl_ksef_auth_method == "certificate":
            certificate = company._l10n_pl_ksef_auth_certificate()
            client.authenticate_with_certificate(context_type, context_value, certificate.certificate,
                                                 certificate.private_key, timeout=30.0)
        else:
            if not company.l10n_pl_ksef_token:
                raise UserError(_("Company %s: enter the KSeF token (Settings > Invoicing > KSeF) or log in with "
                                  "a KSeF Authentication certificate.", company.name))
            client.authenticate_with_token(context_type, context_value, company.l10n_pl_ksef_token.strip(), timeout=30.0)
        _ksef_logger.info("KSeF: company %s logged in to %s (context %s)", company.id, client.base_url, context_type)
        return client

    def _l10n_pl_ksef_client(self, force_login=False):
        """An authenticated ``ksef.client.KsefClient`` for this company: the cached access token is
        reused; the client refreshes it once on 401 or expiry; a new login happens when there is
        no usable refresh token. ``client.l10n_pl_ksef_fresh_login`` tells which case it was."""
        self.ensure_one()
        company = self.sudo()
        now = fields.Datetime.now()
        refresh_usable = (company.l10n_pl_ksef_refresh_token and not force_login and (
            not company.l10n_pl_ksef_refresh_token_until
            or company.l10n_pl_ksef_refresh_token_until - TOKEN_MARGIN > now))
        if refresh_usable:
            access = None
            if company.l10n_pl_ksef_access_token:
                access = ksef_client.TokenInfo(company.l10n_pl_ksef_access_token,
                                               _aware(company.l10n_pl_ksef_access_token_until))
            client = company._l10n_pl_ksef_new_client(
                access_token=access,
                refresh_token=ksef_client.TokenInfo(company.l10n_pl_ksef_refresh_token,
                                                    _aware(company.l10n_pl_ksef_refresh_token_until)))
            try:
                if access is None:
                    client.refresh()
                client.l10n_pl_ksef_fresh_login = False
                return client
            except ksef_errors.Unauthorized:
                _ksef_logger.info("KSeF: company %s cached refresh token refused; logging in again", company.id)
        client = company._l10n_pl_ksef_new_client()
        company._l10n_pl_ksef_authenticate(client)
        client.l10n_pl_ksef_fresh_login = True
        return client


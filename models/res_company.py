import base64

from stdnum.pl import nip as stdnum_nip

from odoo import models


class ResCompany(models.Model):
    _inherit = "res.company"

    def _l10n_pl_ksef_nip(self):
        """The company's NIP as KSeF wants it (10 digits), or False when missing or invalid."""
        self.ensure_one()
        vat = (self.vat or "").replace(" ", "").replace("-", "").upper()
        nip = vat[2:] if vat.startswith("PL") else vat
        return nip if nip and stdnum_nip.is_valid(nip) else False


# =============================================================================================
# KSeF connection (online sending): environment, context, credentials and the cached tokens.
# Secrets (KSeF token, access/refresh tokens) are readable by administrators only and are
# read with sudo() inside the sending code, never logged and never shown in chatter.
# =============================================================================================
import datetime as _datetime  # noqa: E402
import logging as _logging  # noqa: E402

from odoo import _, api, fields  # noqa: E402
from odoo.exceptions import UserError, ValidationError  # noqa: E402

from ..ksef import certificates as ksef_certificates  # noqa: E402
from ..ksef import client as ksef_client  # noqa: E402
from ..ksef import errors as ksef_errors  # noqa: E402

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


class ResCompanyKsefConnection(models.Model):
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
                                    name=record.display_name, error=error)) from error
        context_type, context_value = company._l10n_pl_ksef_context()
        try:
            ksef_certificates.require_kind(loaded, ksef_certificates.AUTHENTICATION)
        except ksef_certificates.WrongKindError as error:
            raise ValidationError(_(
                "The certificate %(name)s cannot be used to log in to KSeF: it is a KSeF %(kind)s certificate, "
                "and only an Authentication certificate can log in. (Offline certificates only sign the "
                "QR codes of offline invoices.)", name=record.display_name, kind=loaded.kind or _("unknown"),
            )) from error
        try:
            ksef_certificates.require_valid(loaded)
        except ksef_certificates.CertificateError as error:
            raise ValidationError(_("The KSeF certificate %(name)s is not valid now (valid from %(start)s to %(end)s UTC).",
                                    name=record.display_name, start=loaded.valid_from, end=loaded.valid_to)) from error
        nip = company._l10n_pl_ksef_nip()
        expected = nip if context_type != "Nip" and nip else context_value
        if loaded.nip != expected:
            raise ValidationError(_("The KSeF certificate %(name)s was issued to NIP %(cert_nip)s, not to this "
                                    "company's NIP %(nip)s.", name=record.display_name,
                                    cert_nip=loaded.nip or _("(none)"), nip=expected))
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
        super(ResCompanyKsefConnection, self.sudo()).write(values)

    def _l10n_pl_ksef_forget_tokens(self):
        values = {"l10n_pl_ksef_access_token": False, "l10n_pl_ksef_access_token_until": False,
                  "l10n_pl_ksef_refresh_token": False, "l10n_pl_ksef_refresh_token_until": False}
        for company in self.sudo():
            if company.l10n_pl_ksef_access_token or company.l10n_pl_ksef_refresh_token:
                super(ResCompanyKsefConnection, company).write(values)

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



# =============================================================================================
# Offline issuing (branch "offline"): environment for QR/Latarnia, fallback policy, Latarnia
# status, the Offline certificate, expiry warnings and the offline readiness panel.
# =============================================================================================
import datetime
import logging

from markupsafe import Markup, escape

from odoo import _, api, fields
from odoo.exceptions import UserError, ValidationError

from ..ksef import certificates as ksef_certificates
from ..ksef import deadlines as ksef_deadlines
from ..ksef.latarnia import LatarniaClient, LatarniaUnavailable

_logger = logging.getLogger(__name__)

# Shared with the online flow: the same field is defined there. Both definitions are identical
# so either can go at integration; the offline code only reads it.
KSEF_ENVIRONMENTS = [
    ("test", "Test (TE)"),
    ("demo", "Demo (pre-production)"),
    ("production", "Production"),
    ("simulator", "Local simulator"),
]
# The local simulator has no QR host of its own: its codes point at the test host.
QR_ENVIRONMENT = {"test": "test", "demo": "demo", "production": "production", "simulator": "test"}
LATARNIA_STATUSES = [
    (ksef_deadlines.STATUS_AVAILABLE, "Available"),
    (ksef_deadlines.STATUS_MAINTENANCE, "Maintenance (unavailability)"),
    (ksef_deadlines.STATUS_FAILURE, "Failure"),
    (ksef_deadlines.STATUS_TOTAL_FAILURE, "Total failure"),
]
# Latarnia statuses in which nothing should be sent to KSeF (the sending queue waits).
SENDING_PAUSED_STATUSES = (
    ksef_deadlines.STATUS_MAINTENANCE, ksef_deadlines.STATUS_FAILURE, ksef_deadlines.STATUS_TOTAL_FAILURE,
)
CERTIFICATE_WARNING_DAYS = (30, 7, 1)


class ResCompanyKsefOffline(models.Model):
    _inherit = "res.company"

    l10n_pl_ksef_environment = fields.Selection(
        KSEF_ENVIRONMENTS, string="KSeF environment", default="test",
        help="Which KSeF the company works with; it also decides the QR code host and the Latarnia polled.",
    )
    l10n_pl_ksef_latarnia_url = fields.Char(
        string="Latarnia URL",
        help="Leave empty to use the official Latarnia (KSeF status service) of the environment. "
             "For the local simulator: its base URL, e.g. http://127.0.0.1:8765.",
    )
    l10n_pl_ksef_offline_fallback = fields.Selection(
        [("auto", "Automatically"), ("confirm", "After confirmation")],
        string="Offline fallback", default="confirm", required=True,
        help="What happens when KSeF cannot be reached while sending an invoice: issue it offline "
             "at once, or ask the user to confirm first.",
    )
    l10n_pl_ksef_latarnia_status = fields.Selection(
        LATARNIA_STATUSES, string="KSeF status (Latarnia)", readonly=True,
        help="The last status Latarnia reported. Kept as it was when Latarnia itself is unreachable.",
    )
    l10n_pl_ksef_latarnia_checked_at = fields.Datetime(string="Latarnia last answered", readonly=True)
    l10n_pl_ksef_latarnia_error = fields.Char(string="Latarnia last problem", readonly=True)
    l10n_pl_ksef_offline_certificate_id = fields.Many2one(
        "certificate.certificate", string="KSeF Offline certificate", groups="base.group_system",
        domain="[('company_id', '=', id), ('l10n_pl_ksef_kind', '=', 'Offline')]",
        help="The KSeF certificate of type Offline whose private key signs KOD II on invoices issued offline.",
    )
    l10n_pl_ksef_responsible_id = fields.Many2one(
        "res.users", string="Responsible for KSeF submissions",
        help="Who makes sure invoices issued offline reach KSeF before their deadline.",
    )
    l10n_pl_ksef_last_drill_date = fields.Date(
        string="Last offline drill", help="When the offline procedure was last rehearsed.",
    )
    l10n_pl_ksef_offline_ready = fields.Boolean(string="Ready to issue offline", compute="_compute_l10n_pl_ksef_offline_readiness")
    l10n_pl_ksef_offline_readiness_html = fields.Html(
        string="Offline readiness", compute="_compute_l10n_pl_ksef_offline_readiness", sanitize=False,
    )
    l10n_pl_ksef_certificate_warning = fields.Char(
        string="KSeF certificate warning", compute="_compute_l10n_pl_ksef_certificate_warning",
    )

    # ---- environment -----------------------------------------------------------------------

    def _l10n_pl_ksef_qr_environment(self):
        """The QR host key (test/demo/production) for this company's KSeF environment."""
        self.ensure_one()
        return QR_ENVIRONMENT.get(self.l10n_pl_ksef_environment or "test", "test")

    def _l10n_pl_ksef_latarnia_client(self, timeout=10.0):
        self.ensure_one()
        if self.l10n_pl_ksef_latarnia_url:
            return LatarniaClient(base_url=self.l10n_pl_ksef_latarnia_url, timeout=timeout)
        environment = self.l10n_pl_ksef_environment or "test"
        if environment == "simulator":
            raise UserError(_("Company %s works with the local KSeF simulator: set its Latarnia URL "
                              "(the simulator's base URL).", self.name))
        return LatarniaClient(environment=environment, timeout=timeout)

    def _l10n_pl_ksef_event_environment(self):
        """The environment under which Latarnia events of this company are stored."""
        self.ensure_one()
        return self.l10n_pl_ksef_environment or "test"

    # ---- Latarnia --------------------------------------------------------------------------

    def _l10n_pl_ksef_sending_paused(self):
        """True while Latarnia says KSeF is in maintenance or failure: the send queue waits."""
        self.ensure_one()
        return self.l10n_pl_ksef_latarnia_status in SENDING_PAUSED_STATUSES

    @api.model
    def _cron_l10n_pl_ksef_poll_latarnia(self):
        companies = self.search([("account_fiscal_country_id.code", "=", "PL")])
        companies._l10n_pl_ksef_poll_latarnia()

    def _l10n_pl_ksef_poll_latarnia(self, timeout=10.0):
        """Ask Latarnia for the status and notices, store the notices as events and the status on
        the companies. Companies sharing a Latarnia are polled once. Latarnia's own outage is
        never a KSeF failure: it is logged, and the last known status stays.

        Returns {company id: status or None when Latarnia could not be asked}."""
        by_source = {}
        for company in self:
            try:
                client = company._l10n_pl_ksef_latarnia_client(timeout=timeout)
            except UserError as error:
                company.sudo().l10n_pl_ksef_latarnia_error = str(error)
                continue
            key = (client.base_url, company._l10n_pl_ksef_event_environment())
            by_source.setdefault(key, [client, self.browse()])[1] |= company
        result = {company.id: None for company in self}
        for (base_url, environment), (client, companies) in by_source.items():
            try:
                status = client.status()
                messages = client.messages()
            except LatarniaUnavailable as error:
                _logger.warning("Latarnia at %s is unreachable (%s); keeping the last known KSeF status", base_url, error)
                companies.sudo().write({
                    "l10n_pl_ksef_latarnia_error": _("Latarnia unreachable (%(time)s): %(error)s",
                                                     time=fields.Datetime.now(), error=error),
                })
                continue
            self.env["l10n_pl_ksef.event"].sudo()._l10n_pl_ksef_store_latarnia_messages(
                list(status.messages) + list(messages), environment)
            companies.sudo().write({
                "l10n_pl_ksef_latarnia_status": status.status,
                "l10n_pl_ksef_latarnia_checked_at": fields.Datetime.now(),
                "l10n_pl_ksef_latarnia_error": False,
            })
            for company in companies:
                result[company.id] = status.status
        return result

    # ---- the Offline certificate -----------------------------------------------------------

    def _l10n_pl_ksef_watched_certificates(self):
        """The KSeF certificates whose expiry is watched (the lead adds the authentication one)."""
        return self.sudo().l10n_pl_ksef_offline_certificate_id

    @api.constrains("l10n_pl_ksef_offline_certificate_id")
    def _check_l10n_pl_ksef_offline_certificate(self):
        for company in self.sudo():
            certificate = company.l10n_pl_ksef_offline_certificate_id
            if certificate:
                certificate._l10n_pl_ksef_check_offline_signer(company)

    def _l10n_pl_ksef_offline_signer(self):
        """The loaded Offline certificate with its private key, checked for KOD II signing today.
        Raises a UserError saying what is missing."""
        self.ensure_one()
        certificate = self.sudo().l10n_pl_ksef_offline_certificate_id
        if not certificate:
            raise UserError(_(
                "Company %s has no KSeF Offline certificate: invoices issued offline need one to sign "
                "their second QR code (KOD II). An administrator can add it in the company's KSeF offline settings.",
                self.name))
        return certificate._l10n_pl_ksef_check_offline_signer(self)

    @api.model
    def _cron_l10n_pl_ksef_certificate_expiry(self):
        for company in self.search([]):
            for certificate in company._l10n_pl_ksef_watched_certificates():
                certificate._l10n_pl_ksef_warn_expiry(company)

    @api.depends_context("uid")
    def _compute_l10n_pl_ksef_certificate_warning(self):
        for company in self:
            warnings = []
            for certificate in company._l10n_pl_ksef_watched_certificates():
                days = certificate.l10n_pl_ksef_days_left
                if days is not None and days <= max(CERTIFICATE_WARNING_DAYS):
                    if days < 0:
                        warnings.append(_("KSeF certificate %(name)s expired %(days)s day(s) ago.",
                                          name=certificate.name, days=-days))
                    else:
                        warnings.append(_("KSeF certificate %(name)s expires in %(days)s day(s): renew it in KSeF "
                                          "and upload the new one before it runs out.", name=certificate.name, days=days))
            company.l10n_pl_ksef_certificate_warning = " ".join(warnings) or False

    # ---- offline readiness -----------------------------------------------------------------

    def _l10n_pl_ksef_offline_readiness_checks(self):
        """What offline issuing needs, as a list of {"key", "ok", "text"} (all ok = ready)."""
        self.ensure_one()
        checks = []
        company = self.sudo()
        nip = company._l10n_pl_ksef_nip()
        checks.append({"key": "nip", "ok": bool(nip), "text": _("Company NIP: %s", nip) if nip else
                       _("The company's Tax ID is missing or is not a valid Polish NIP.")})
        certificate = company.l10n_pl_ksef_offline_certificate_id
        if not certificate:
            checks.append({"key": "certificate", "ok": False,
                           "text": _("No KSeF Offline certificate: KOD II cannot be signed, so only "
                                     "total-failure invoices could be issued offline.")})
        else:
            try:
                certificate._l10n_pl_ksef_check_offline_signer(company)
                checks.append({"key": "certificate", "ok": True, "text": _(
                    "Offline certificate %(serial)s valid until %(date)s (%(days)s days left).",
                    serial=certificate.l10n_pl_ksef_serial, date=certificate.date_end,
                    days=certificate.l10n_pl_ksef_days_left)})
            except UserError as error:
                checks.append({"key": "certificate", "ok": False, "text": str(error)})
        responsible = company.l10n_pl_ksef_responsible_id
        checks.append({"key": "responsible", "ok": bool(responsible), "text": _(
            "Responsible for submissions: %s", responsible.name) if responsible else
            _("Nobody is responsible for submitting invoices issued offline.")})
        drill = company.l10n_pl_ksef_last_drill_date
        checks.append({"key": "drill", "ok": bool(drill), "text": _("Last offline drill: %s", drill) if drill else
                       _("The offline procedure has never been rehearsed.")})
        environment = dict(self._fields["l10n_pl_ksef_environment"]._description_selection(self.env)).get(
            company.l10n_pl_ksef_environment)
        checks.append({"key": "environment", "ok": bool(company.l10n_pl_ksef_environment), "text": _(
            "KSeF environment: %s", environment) if environment else _("No KSeF environment is set.")})
        return checks

    @api.depends_context("uid")
    def _compute_l10n_pl_ksef_offline_readiness(self):
        for company in self:
            if not company.id:
                company.l10n_pl_ksef_offline_ready = False
                company.l10n_pl_ksef_offline_readiness_html = False
                continue
            checks = company._l10n_pl_ksef_offline_readiness_checks()
            ready = all(check["ok"] for check in checks)
            rows = Markup("").join(
                Markup('<li class="%s"><i class="fa %s me-1"/>%s</li>') % (
                    "text-success" if check["ok"] else "text-danger",
                    "fa-check" if check["ok"] else "fa-times", check["text"])
                for check in checks)
            title = _("Ready to issue invoices offline.") if ready else _("Not ready to issue invoices offline:")
            company.l10n_pl_ksef_offline_ready = ready
            company.l10n_pl_ksef_offline_readiness_html = (
                Markup('<p class="fw-bold">%s</p><ul class="list-unstyled">%s</ul>') % (escape(title), rows))

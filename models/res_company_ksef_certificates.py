"""KSeF certificates managed from the company: the login used for certificate operations, the
limits and the list KSeF keeps, the daily health check of the Offline certificate, and the
warning for companies still logging in with a KSeF token (tokens end on 31 December 2026)."""
import datetime
import logging

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError

from ..ksef import client as ksef_client
from ..ksef import enrollment as ksef_enrollment
from ..ksef import errors as ksef_errors
from . import ksef_messages
from .certificate_ksef_status import BLOCKING_STATUSES

_logger = logging.getLogger(__name__)

# KSeF tokens stop working at the end of 2026 (Ministry of Finance, KSeF 2.0 authentication
# schedule); during December 2026 companies still on a token get an activity.
TOKEN_SUNSET = datetime.date(2026, 12, 31)
TOKEN_WARNING_FROM = datetime.date(2026, 12, 1)
# Environments accepting a self-signed seal for a XAdES login (KSeF srodowiska.md: TEST only).
SELF_SIGNED_LOGIN_ENVIRONMENTS = ("test", "simulator")
# Beyond this age the last known status is shown as unconfirmed on the readiness panel.
STATUS_FRESH_HOURS = 48


class ResCompanyKsefCertificates(models.Model):
    _inherit = "res.company"

    l10n_pl_ksef_auth_method = fields.Selection(default="certificate")
    l10n_pl_ksef_cert_can_request = fields.Boolean(string="May request KSeF certificates", readonly=True,
                                                   groups="base.group_system", copy=False)
    l10n_pl_ksef_cert_enrollment_remaining = fields.Integer(string="Certificate requests left", readonly=True,
                                                            groups="base.group_system", copy=False)
    l10n_pl_ksef_cert_enrollment_limit = fields.Integer(string="Certificate requests allowed", readonly=True,
                                                        groups="base.group_system", copy=False)
    l10n_pl_ksef_cert_remaining = fields.Integer(string="Active certificates left", readonly=True,
                                                 groups="base.group_system", copy=False)
    l10n_pl_ksef_cert_limit = fields.Integer(string="Active certificates allowed", readonly=True,
                                             groups="base.group_system", copy=False)
    l10n_pl_ksef_cert_listed_at = fields.Datetime(string="KSeF certificate list read at", readonly=True,
                                                  groups="base.group_system", copy=False)
    l10n_pl_ksef_token_warned = fields.Boolean(string="Warned of the token end", readonly=True, copy=False,
                                               groups="base.group_system")
    l10n_pl_ksef_login_warning = fields.Char(string="KSeF login warning", compute="_compute_l10n_pl_ksef_login_warning")
    l10n_pl_ksef_offline_status_text = fields.Char(
        string="Offline certificate in KSeF", compute="_compute_l10n_pl_ksef_offline_status_text")

    # ---- the login for certificate operations ----------------------------------------------

    def _l10n_pl_ksef_check_certificate_admin(self):
        if not self.env.su and not self.env.user.has_group("base.group_system"):
            raise AccessError(_("Only administrators (Settings) manage KSeF certificates."))

    def _l10n_pl_ksef_certificate_login_identity(self, signer=None):
        """(certificate, private key) for the XAdES login of certificate operations: the chosen
        signer (e.g. a qualified seal), else the company's Authentication certificate while KSeF has
        not revoked or blocked it, else - on KSeF TEST and the simulator only - a self-signed seal."""
        self.ensure_one()
        company = self.sudo()
        if signer:
            loaded = signer._l10n_pl_ksef_load(with_private_key=True)
            return loaded.certificate, loaded.private_key
        auth = company.l10n_pl_ksef_auth_certificate_id
        self_signed_allowed = (company.l10n_pl_ksef_environment or "test") in SELF_SIGNED_LOGIN_ENVIRONMENTS
        if auth and auth.l10n_pl_ksef_status not in BLOCKING_STATUSES:
            try:
                loaded = company._l10n_pl_ksef_auth_certificate()
                return loaded.certificate, loaded.private_key
            except UserError:
                if not self_signed_allowed:
                    raise
        if self_signed_allowed:
            nip = company._l10n_pl_ksef_nip()
            if not nip:
                raise UserError(_("Company %s has no valid Polish NIP: KSeF certificates are issued to a NIP.",
                                  company.name))
            return ksef_enrollment.self_signed_seal(nip, company.name)
        raise UserError(_(
            "Company %s has no KSeF Authentication certificate to log in with. To request the first KSeF "
            "certificates in this environment, log in once with the company's qualified electronic seal (or a "
            "qualified signature of a person entitled to act for it): upload it with 'Upload a KSeF certificate' "
            "(without 'Use as the company's Offline certificate') and choose it as the signer of the request.",
            company.name))

    def _l10n_pl_ksef_certificate_client(self, signer=None):
        """A client logged in with XAdES for certificate operations. A KSeF token is not enough
        (enrollment and revocation refuse it); the company's token cache is left alone."""
        self.ensure_one()
        self._l10n_pl_ksef_check_certificate_admin()
        company = self.sudo()
        certificate, private_key = company._l10n_pl_ksef_certificate_login_identity(signer)
        context_type, context_value = company._l10n_pl_ksef_context()
        client = ksef_client.KsefClient(base_url=company._l10n_pl_ksef_api_url(),
                                        timeout=company.l10n_pl_ksef_timeout or 30.0, poll_interval=0.2)
        try:
            client.authenticate_with_certificate(context_type, context_value, certificate, private_key, timeout=30.0)
        except ksef_errors.KsefError as error:
            raise UserError(company._l10n_pl_ksef_certificate_error_text(error)) from None
        except OSError as error:
            raise UserError(ksef_messages.ksef_error_text(self.env, error)) from None
        return client

    def _l10n_pl_ksef_certificate_error_text(self, error):
        """A translated sentence for KSeF's certificate errors (codes of the OpenAPI *Certyfikaty* tag)."""
        texts = {
            25001: _("KSeF gives the data for a certificate request only after a login with a certificate or "
                     "signature, not with a KSeF token."),
            25002: _("KSeF accepts certificate requests only after a login with a certificate or signature, not "
                     "with a KSeF token."),
            25003: _("KSeF refused the certificate request: its subject does not match the identity that logged "
                     "in (a certificate can only be requested in one's own name)."),
            25004: _("KSeF refused the certificate request: the request (CSR) is malformed or its signature is wrong."),
            25005: _("KSeF does not know this certificate request."),
            25006: _("KSeF refused the certificate request: the limit of certificate requests is reached."),
            25007: _("KSeF refused the certificate request: the limit of active certificates is reached. Revoke "
                     "a certificate that is no longer used first."),
            25008: _("KSeF does not know a certificate with this serial number."),
            25009: _("The certificate is already revoked, blocked or expired in KSeF."),
            25010: _("KSeF refused the key: KSeF certificates use RSA 2048 or EC P-256 keys."),
            25011: _("KSeF refused the signature algorithm of the certificate request."),
        }
        if isinstance(error, ksef_errors.KsefError) and error.code in texts:
            text = texts[error.code]
            detail = ksef_messages.ksef_description(error)
            return _("%(message)s KSeF says: %(description)s", message=text, description=detail) if detail else text
        if isinstance(error, ksef_errors.AuthenticationFailed):
            return _("KSeF refused the login for certificate operations: %(error)s",
                     error=ksef_messages.ksef_error_text(self.env, error))
        return ksef_messages.ksef_error_text(self.env, error)

    # ---- limits and the list of certificates -------------------------------------------------

    def action_l10n_pl_ksef_certificates_refresh(self):
        """Read the limits and every certificate KSeF lists for the logged-in identity; mirror
        them and update the status of our own certificates."""
        self._l10n_pl_ksef_check_certificate_admin()
        for company in self:
            client = company._l10n_pl_ksef_certificate_client()
            company._l10n_pl_ksef_read_certificates(client)
        return True

    def action_l10n_pl_ksef_certificates_open(self):
        self.ensure_one()
        self._l10n_pl_ksef_check_certificate_admin()
        action = self.env["ir.actions.act_window"]._for_xml_id("l10n_pl_ksef.action_l10n_pl_ksef_certificate_remote")
        action["domain"] = [("company_id", "=", self.id)]
        return action

    def _l10n_pl_ksef_read_certificates(self, client):
        self.ensure_one()
        company = self.sudo()
        try:
            limits = ksef_enrollment.limits(client)
            listed = ksef_enrollment.query(client)
        except (ksef_errors.KsefError, OSError) as error:
            raise UserError(company._l10n_pl_ksef_certificate_error_text(error)) from None
        company.write({
            "l10n_pl_ksef_cert_can_request": limits.can_request,
            "l10n_pl_ksef_cert_enrollment_remaining": limits.enrollment_remaining,
            "l10n_pl_ksef_cert_enrollment_limit": limits.enrollment_limit,
            "l10n_pl_ksef_cert_remaining": limits.certificate_remaining,
            "l10n_pl_ksef_cert_limit": limits.certificate_limit,
            "l10n_pl_ksef_cert_listed_at": fields.Datetime.now(),
        })
        self.env["l10n_pl_ksef.certificate.remote"].sudo()._l10n_pl_ksef_sync(company, listed)
        local = self.env["certificate.certificate"].sudo().search(
            [("company_id", "=", company.id), ("scope", "=", "l10n_pl_ksef"), ("l10n_pl_ksef_serial", "!=", False)])
        by_serial = {item.serial: item for item in listed}
        for certificate in local:
            item = by_serial.get(certificate.l10n_pl_ksef_serial)
            certificate._l10n_pl_ksef_set_status(item.status if item else "not_found", company)
        return limits, listed

    # ---- health of the Offline certificate ---------------------------------------------------

    @api.model
    def _l10n_pl_ksef_neutralized(self):
        # a restored copy must not talk to KSeF in the production company's name
        return bool(self.env["ir.config_parameter"].sudo().get_param("database.is_neutralized"))

    @api.model
    def _cron_l10n_pl_ksef_certificate_health(self):
        if self._l10n_pl_ksef_neutralized():
            return
        for company in self.sudo().search([("l10n_pl_ksef_offline_certificate_id", "!=", False)]):
            company = ksef_messages.in_company_language(company, company)
            company._l10n_pl_ksef_check_certificate_health()

    def action_l10n_pl_ksef_check_certificate_health(self):
        """The daily check, now (button on the KSeF offline tab)."""
        self._l10n_pl_ksef_check_certificate_admin()
        for company in self:
            company._l10n_pl_ksef_check_certificate_health()
        return True

    def _l10n_pl_ksef_check_certificate_health(self):
        """Ask KSeF for the Offline certificate's status with the company's usual login. When KSeF
        cannot be asked, the last known status stays and the problem is recorded beside it.
        Returns the status KSeF gave, or None."""
        self.ensure_one()
        company = self.sudo()
        certificate = company.l10n_pl_ksef_offline_certificate_id
        if not certificate or not certificate.l10n_pl_ksef_serial:
            return None
        try:
            client = company._l10n_pl_ksef_client()
            items = ksef_enrollment.query(client, serial=certificate.l10n_pl_ksef_serial)
        except (ksef_errors.KsefError, UserError, OSError) as error:
            text = error.args[0] if isinstance(error, UserError) else company._l10n_pl_ksef_certificate_error_text(error)
            certificate._l10n_pl_ksef_set_status_error(_("KSeF could not be asked on %(time)s: %(error)s",
                                                         time=fields.Datetime.now(), error=text))
            _logger.info("KSeF: certificate status of company %s not checked (%s)", company.id, type(error).__name__)
            return None
        status = items[0].status if items else "not_found"
        certificate._l10n_pl_ksef_set_status(status, company)
        return status

    @api.depends_context("uid")
    def _compute_l10n_pl_ksef_offline_status_text(self):
        for company in self:
            certificate = company.sudo().l10n_pl_ksef_offline_certificate_id
            company.l10n_pl_ksef_offline_status_text = company._l10n_pl_ksef_status_text(certificate) or False

    def _l10n_pl_ksef_status_text(self, certificate):
        if not certificate:
            return ""
        certificate = certificate.sudo()
        if not certificate.l10n_pl_ksef_status:
            text = _("Status in KSeF not checked yet.")
        else:
            text = _("Status in KSeF: %(status)s, confirmed %(age)s.", status=certificate._l10n_pl_ksef_status_label(),
                     age=certificate._l10n_pl_ksef_status_age_text())
        if certificate.l10n_pl_ksef_status_error:
            text = _("%(status)s %(problem)s The last known status is used.", status=text,
                     problem=certificate.l10n_pl_ksef_status_error)
        return text

    def _l10n_pl_ksef_offline_readiness_checks(self):
        checks = super()._l10n_pl_ksef_offline_readiness_checks()
        company = self.sudo()
        certificate = company.l10n_pl_ksef_offline_certificate_id
        if certificate:
            stale = (not certificate.l10n_pl_ksef_status_checked_at or fields.Datetime.now()
                     - certificate.l10n_pl_ksef_status_checked_at > datetime.timedelta(hours=STATUS_FRESH_HOURS))
            text = company._l10n_pl_ksef_status_text(certificate)
            if stale and certificate.l10n_pl_ksef_status_checked_at:
                text = _("%(text)s Not confirmed for more than %(hours)s hours.", text=text, hours=STATUS_FRESH_HOURS)
            # Offline issuing exists for when KSeF cannot be asked: only a status KSeF gave blocks it.
            checks.append({"key": "certificate_status", "text": text,
                           "ok": certificate.l10n_pl_ksef_status not in BLOCKING_STATUSES})
        if company.l10n_pl_ksef_auth_method == "token":
            # a token still sends until it ends; after that nothing issued offline could reach KSeF
            checks.append({"key": "login", "text": company.l10n_pl_ksef_login_warning,
                           "ok": fields.Date.context_today(company) <= TOKEN_SUNSET})
        return checks

    # ---- tokens end in 2026 ----------------------------------------------------------------

    @api.depends("l10n_pl_ksef_auth_method")
    def _compute_l10n_pl_ksef_login_warning(self):
        for company in self:
            warning = False
            if company.l10n_pl_ksef_auth_method == "token" and fields.Date.context_today(company) <= TOKEN_SUNSET:
                warning = _("This company logs in to KSeF with a KSeF token. KSeF tokens stop working on "
                            "%(date)s: request a KSeF Authentication certificate (Request KSeF certificates) and "
                            "log in with it.", date=TOKEN_SUNSET)
            elif company.l10n_pl_ksef_auth_method == "token":
                warning = _("This company logs in to KSeF with a KSeF token, which no longer works since %(date)s: "
                            "request a KSeF Authentication certificate and log in with it.", date=TOKEN_SUNSET)
            company.l10n_pl_ksef_login_warning = warning

    @api.model
    def _cron_l10n_pl_ksef_token_sunset(self):
        today = fields.Date.context_today(self)
        if not TOKEN_WARNING_FROM <= today <= TOKEN_SUNSET:
            return
        companies = self.sudo().search([("l10n_pl_ksef_auth_method", "=", "token"),
                                        ("l10n_pl_ksef_token_warned", "=", False),
                                        ("account_fiscal_country_id.code", "=", "PL")])
        for company in companies:
            ksef_messages.in_company_language(company, company)._l10n_pl_ksef_warn_token_sunset()

    def _l10n_pl_ksef_warn_token_sunset(self):
        """One activity per administrator of the company, once."""
        self.ensure_one()
        company = self.sudo()
        administrators = self.env.ref("base.group_system").sudo().users.filtered(lambda user: not user.share)
        admins = administrators.filtered(lambda user: company in user.company_ids) or administrators
        partner = company.partner_id.with_context(lang=self.env.lang)
        for admin in admins:
            partner.activity_schedule(
                "mail.mail_activity_data_warning", date_deadline=min(TOKEN_SUNSET, fields.Date.context_today(self)
                                                                     + datetime.timedelta(days=14)),
                summary=_("KSeF token ends on %(date)s", date=TOKEN_SUNSET),
                note=_("%(company)s still logs in to KSeF with a KSeF token, which stops working on %(date)s. In "
                       "Settings > Companies > %(company)s > KSeF offline, press 'Request KSeF certificates': Odoo "
                       "obtains a KSeF Authentication certificate and logs in with it.", company=company.name,
                       date=TOKEN_SUNSET),
                user_id=admin.id)
        company.l10n_pl_ksef_token_warned = True

"""Offline issuing on the company: fallback policy, the Latarnia status, the Offline
certificate and its expiry warnings, and the offline readiness panel. The KSeF environment
itself (which also decides the QR host and the Latarnia polled) is defined with the connection
settings in res_company.py."""
import logging

from markupsafe import Markup, escape

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from ..ksef import deadlines as ksef_deadlines
from ..ksef.latarnia import LatarniaClient, LatarniaUnavailable
from . import ksef_messages

_logger = logging.getLogger(__name__)

# The local simulator has no QR host of its own: its codes point at the test host.
QR_ENVIRONMENT = {"test": "test", "demo": "demo", "production": "production", "simulator": "test"}
LATARNIA_STATUSES = [
    (ksef_deadlines.STATUS_AVAILABLE, "Available"),
    (ksef_deadlines.STATUS_MAINTENANCE, "Maintenance (unavailability)"),
    (ksef_deadlines.STATUS_FAILURE, "Failure"),
    (ksef_deadlines.STATUS_TOTAL_FAILURE, "Total failure"),
]
# Latarnia statuses in which nothing should be sent to KSeF (the sending queue waits).
# Readiness lines that inform without blocking offline issuing.
ADVISORY_CHECKS = ("drill",)
SENDING_PAUSED_STATUSES = (
    ksef_deadlines.STATUS_MAINTENANCE, ksef_deadlines.STATUS_FAILURE, ksef_deadlines.STATUS_TOTAL_FAILURE,
)
CERTIFICATE_WARNING_DAYS = (30, 7, 1)


class ResCompanyKsefOffline(models.Model):
    _inherit = "res.company"

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
        by_language = {}
        for company in self.search([("account_fiscal_country_id.code", "=", "PL")]):
            company = ksef_messages.in_company_language(company, company)
            by_language[company.env.lang] = by_language.get(company.env.lang, self.browse()) | company
        for lang, companies in by_language.items():
            companies.with_context(lang=lang)._l10n_pl_ksef_poll_latarnia()

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
                # The core's message is English (for the log above); the field gets a sentence.
                if error.http_status:
                    problem = _("Latarnia could not be asked at %(time)s: it answered with error %(code)s.",
                                time=fields.Datetime.now(), code=error.http_status)
                else:
                    problem = _("Latarnia could not be asked at %(time)s: no connection, no answer in time or an "
                                "unreadable answer.", time=fields.Datetime.now())
                companies.sudo().write({"l10n_pl_ksef_latarnia_error": problem})
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
        """The KSeF certificates whose expiry is watched: the Offline one (signs KOD II) and the
        Authentication one (the KSeF login) when the company has them."""
        company = self.sudo()
        offline = company.l10n_pl_ksef_offline_certificate_id
        if company.l10n_pl_ksef_running_drill_id:
            # During a drill the company holds the drill's throw-away certificate: never ask to renew
            # it in KSeF; the real one (put aside on the drill) is still watched.
            offline = company.l10n_pl_ksef_running_drill_id.saved_offline_certificate_id
        return offline | company.l10n_pl_ksef_auth_certificate_id

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
                ksef_messages.in_company_language(certificate, company)._l10n_pl_ksef_warn_expiry(company)

    @api.depends_context("uid")
    def _compute_l10n_pl_ksef_certificate_warning(self):
        for company in self:
            warnings = []
            for certificate in company._l10n_pl_ksef_watched_certificates():
                days = certificate._l10n_pl_ksef_days_left_now()
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
                    serial=certificate.l10n_pl_ksef_serial,
                    date=self.env["account.move"]._l10n_pl_ksef_moment_text(certificate.date_end),
                    days=certificate.l10n_pl_ksef_days_left)})
            except UserError as error:
                checks.append({"key": "certificate", "ok": False, "text": str(error)})
        responsible = company.l10n_pl_ksef_responsible_id
        checks.append({"key": "responsible", "ok": bool(responsible), "text": _(
            "Responsible for submissions: %s", responsible.name) if responsible else
            _("Nobody is responsible for submitting invoices issued offline.")})
        drill = company.l10n_pl_ksef_last_drill_date
        checks.append({"key": "drill", "ok": bool(drill), "text": _(
            "Last offline drill: %s", self.env["account.move"]._l10n_pl_ksef_date_text(drill)) if drill else
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
            # A drill is advice, not a condition: a company that never rehearsed can still issue offline.
            ready = all(check["ok"] for check in checks if check["key"] not in ADVISORY_CHECKS)

            def style(check):
                if check["ok"]:
                    return "text-success", "fa-check"
                return ("text-muted", "fa-info-circle") if check["key"] in ADVISORY_CHECKS else ("text-danger", "fa-times")
            # <i></i>, never <i/>: in HTML a self-closing <i> opens an element the next lines nest in.
            rows = Markup("").join(
                Markup('<li class="%s"><i class="fa %s me-1" role="img"></i>%s</li>') % (*style(check), check["text"])
                for check in checks)
            title = _("Ready to issue invoices offline.") if ready else _("Not ready to issue invoices offline:")
            company.l10n_pl_ksef_offline_ready = ready
            company.l10n_pl_ksef_offline_readiness_html = (
                Markup('<p class="fw-bold">%s</p><ul class="list-unstyled">%s</ul>') % (escape(title), rows))

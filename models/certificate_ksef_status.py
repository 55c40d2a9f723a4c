"""A KSeF certificate's status in KSeF (Active, Blocked, Revoked, Expired) as last reported by
``/certificates/query``, with when KSeF last answered and what went wrong when it could not be
asked. KSeF checks the Offline certificate when a KOD II is scanned (KSeF ``kody-qr.md``: the
certificate must exist, be valid and be neither revoked nor blocked), so a revoked or blocked one
must not sign any more codes; while KSeF cannot be asked, the last known status decides and its
age is shown."""
from odoo import _, fields, models
from odoo.exceptions import ValidationError

from . import ksef_messages

KSEF_STATUSES = [
    ("Active", "Active (valid)"),
    ("Blocked", "Blocked"),
    ("Revoked", "Revoked"),
    ("Expired", "Expired"),
    ("not_found", "Not listed by KSeF"),
]
# KOD II signed with a certificate in one of these states fails verification in KSeF.
BLOCKING_STATUSES = ("Blocked", "Revoked", "Expired")


class CertificateCertificateKsefStatus(models.Model):
    _inherit = "certificate.certificate"

    l10n_pl_ksef_status = fields.Selection(
        KSEF_STATUSES, string="Status in KSeF", readonly=True, copy=False,
        help="What KSeF last said about this certificate. Revoked, blocked or expired certificates cannot "
             "sign KOD II: invoices would fail verification.",
    )
    l10n_pl_ksef_status_checked_at = fields.Datetime(string="KSeF status confirmed at", readonly=True, copy=False)
    l10n_pl_ksef_status_error = fields.Char(
        string="Last status check problem", readonly=True, copy=False,
        help="Why KSeF could not be asked the last time; the last known status is kept meanwhile.")
    l10n_pl_ksef_status_alerted = fields.Char(string="Administrators alerted of status", readonly=True, copy=False)
    l10n_pl_ksef_remote_name = fields.Char(string="Name in KSeF", readonly=True, copy=False)

    # ---- status ----------------------------------------------------------------------------

    def _l10n_pl_ksef_status_label(self):
        self.ensure_one()
        return dict(self._fields["l10n_pl_ksef_status"]._description_selection(self.env)).get(
            self.l10n_pl_ksef_status) or _("not checked yet")

    def _l10n_pl_ksef_status_age_text(self):
        """How old the last confirmed status is, in words ("" when never confirmed)."""
        self.ensure_one()
        record = self.sudo()
        if not record.l10n_pl_ksef_status_checked_at:
            return ""
        seconds = (fields.Datetime.now() - record.l10n_pl_ksef_status_checked_at).total_seconds()
        if seconds < 2 * 3600:
            return _("%(minutes)s minute(s) ago", minutes=max(0, int(seconds // 60)))
        if seconds < 48 * 3600:
            return _("%(hours)s hour(s) ago", hours=int(seconds // 3600))
        return _("%(days)s day(s) ago", days=int(seconds // 86400))

    def _l10n_pl_ksef_set_status(self, status, company=None):
        """Record what KSeF said now (our code only, after KSeF answered); alert the administrators
        once per blocking status."""
        for record in self.sudo():
            record.write({"l10n_pl_ksef_status": status, "l10n_pl_ksef_status_checked_at": fields.Datetime.now(),
                          "l10n_pl_ksef_status_error": False})
            if status in BLOCKING_STATUSES and record.l10n_pl_ksef_status_alerted != status:
                record._l10n_pl_ksef_alert_status(company or record.company_id)
                record.l10n_pl_ksef_status_alerted = status
            elif status not in BLOCKING_STATUSES and record.l10n_pl_ksef_status_alerted:
                record.l10n_pl_ksef_status_alerted = False

    def _l10n_pl_ksef_set_status_error(self, text):
        self.sudo().write({"l10n_pl_ksef_status_error": text})

    def _l10n_pl_ksef_alert_status(self, company):
        self.ensure_one()
        record = ksef_messages.in_company_language(self.sudo(), company)
        administrators = self.env.ref("base.group_system").sudo().users.filtered(lambda user: not user.share)
        admins = administrators.filtered(lambda user: company in user.company_ids) or administrators
        summary = _("KSeF certificate %(status)s in KSeF", status=record._l10n_pl_ksef_status_label())
        note = _("KSeF reports the certificate %(name)s (serial %(serial)s) of %(company)s as %(status)s. "
                 "It can no longer sign KOD II (the code would fail verification), so invoices cannot be issued "
                 "offline with it. Request a new KSeF Offline certificate on the company's KSeF offline tab.",
                 name=record.name, serial=record.l10n_pl_ksef_serial, company=company.name,
                 status=record._l10n_pl_ksef_status_label())
        for admin in admins:
            record.activity_schedule("mail.mail_activity_data_warning", date_deadline=fields.Date.context_today(record),
                                     summary=summary, note=note, user_id=admin.id)

    def _l10n_pl_ksef_check_offline_signer(self, company, now=None):
        loaded = super()._l10n_pl_ksef_check_offline_signer(company, now=now)
        record = self.sudo()
        if record.l10n_pl_ksef_status in BLOCKING_STATUSES:
            raise ValidationError(_(
                "The KSeF Offline certificate %(name)s (serial %(serial)s) is %(status)s in KSeF (status confirmed "
                "%(age)s): a KOD II signed with it would fail verification, so invoices cannot be issued offline "
                "with it. Request a new KSeF Offline certificate on the company's KSeF offline tab.",
                name=record.name, serial=record.l10n_pl_ksef_serial, status=record._l10n_pl_ksef_status_label(),
                age=record._l10n_pl_ksef_status_age_text()))
        return loaded

"""KSeF drill: rehearse the outage procedure on the built-in simulator (issue 5).

An administrator starts a drill for a company. For its duration the company talks to the local
KSeF simulator (API and Latarnia), the simulator plays an outage script (connection lost,
failure announced, failure ended, connection restored), and the staff issue invoices as usual:
new customer invoices land in a dedicated "KSeF drill" journal with its own numbering. The drill
ends (by hand, or automatically at its end time) with a report: which invoices were issued
offline, their deadlines, whether each reached KSeF in time, who did what.

Safety, checked in one place each:
* ``account.move._l10n_pl_ksef_drill_blocked()``: which invoices may not talk to the company's
  current KSeF connection now: real invoices while a drill runs (they would go to the simulator),
  drill invoices when their drill is not running (they would go to the real KSeF). Post to KSeF,
  the status refresh, offline issuing and the submission engine's claim all ask it.
* the company's real connection (environment, addresses, login, token, Offline certificate) is
  saved on the drill (administrators only) and restored at the end: only from a snapshot Start
  really took, never over a value an administrator changed meanwhile, and wiped once restored;
* drill invoices are cancelled at the end, so they never count in the books.

This file holds the drill and its steps, Start and End; beside it: ``l10n_pl_ksef_drill_simulator``
(the drill's simulator), ``l10n_pl_ksef_drill_invoices`` (the real and drill invoices at Start and
End), ``l10n_pl_ksef_drill_report`` (the report), ``l10n_pl_ksef_drill_guard`` (who writes what),
and the other models' drill parts in ``res_company_ksef_drill``, ``account_journal_ksef_drill`` and
``account_move_ksef_drill``.
"""
import base64
import datetime
import json
import logging
import secrets

import pytz

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from ..ksef import devcerts, safeurl
from . import ksef_messages
from .account_move_ksef_lifecycle import ENGINE_QUEUE_STATES

_logger = logging.getLogger(__name__)

# Not 8765, the port scripts/setup.sh gives the demo's simulator: a drill needs a simulator of its own.
DEFAULT_SIMULATOR_URL = "http://127.0.0.1:8766"
DRILL_ACTIONS = [
    ("connection_lost", "Company loses its connection (offline24)"),
    ("connection_restored", "Connection restored"),
    ("latarnia:maintenance", "MF announces KSeF maintenance (unavailability mode)"),
    ("latarnia:failure_start", "MF announces a KSeF failure (emergency mode)"),
    ("latarnia:failure_end", "Failure ends"),
    ("latarnia:total_failure", "Total failure announced"),
    ("latarnia:total_failure_end", "Total failure ended"),
]
# The script: offline24 at the start, a failure announced an hour later, its end an hour
# after that. The connection comes back with the announcement: the simulator's lost connection
# also hides its Latarnia, and the company must be able to read the announcement to issue in
# emergency mode. The trainer may shorten the offsets (e.g. 0/10/20).
DEFAULT_SCRIPT = [
    (0, "connection_lost"),
    (60, "connection_restored"),
    (60, "latarnia:failure_start"),
    (120, "latarnia:failure_end"),
]
# A drill ends by itself this long after its last step: a forgotten drill must not keep the
# company on the simulator.
AUTO_END_AFTER = datetime.timedelta(minutes=60)
WARSAW = pytz.timezone("Europe/Warsaw")
# The company's connection as saved on the drill: company field -> drill field.
SAVED_SETTINGS = {
    "l10n_pl_ksef_environment": "saved_environment",
    "l10n_pl_ksef_base_url": "saved_base_url",
    "l10n_pl_ksef_latarnia_url": "saved_latarnia_url",
    "l10n_pl_ksef_auth_method": "saved_auth_method",
    "l10n_pl_ksef_token": "saved_token",
    "l10n_pl_ksef_offline_certificate_id": "saved_offline_certificate_id",
    "l10n_pl_ksef_latarnia_status": "saved_latarnia_status",
    "l10n_pl_ksef_latarnia_checked_at": "saved_latarnia_checked_at",
    "l10n_pl_ksef_latarnia_error": "saved_latarnia_error",
}


def _iso_utc(moment):
    return moment.replace(tzinfo=datetime.timezone.utc).isoformat().replace("+00:00", "Z")


class L10nPlKsefDrillStep(models.Model):
    _name = "l10n_pl_ksef.drill.step"
    _description = "KSeF drill step"
    _order = "drill_id, offset_minutes, sequence, id"

    drill_id = fields.Many2one("l10n_pl_ksef.drill", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="drill_id.company_id", store=True)
    sequence = fields.Integer(default=10)
    offset_minutes = fields.Integer(
        string="Minutes after the start", required=True, default=0,
        help="When the simulator plays this step, counted from the start of the drill.")
    action = fields.Selection(DRILL_ACTIONS, string="What happens", required=True)
    planned_at = fields.Datetime(string="Planned at", readonly=True)
    applied_at = fields.Datetime(string="Happened at", readonly=True,
                                 help="When the simulator played this step (read from the simulator).")

    @api.constrains("offset_minutes")
    def _check_offset_minutes(self):
        for step in self:
            if step.offset_minutes < 0:
                raise ValidationError(_("Drill step '%(step)s': the minutes after the start cannot be negative.",
                                        step=step._l10n_pl_ksef_label()))

    def _l10n_pl_ksef_label(self):
        self.ensure_one()
        env = ksef_messages.user_language_env(self.env)   # like _(): the user's language in a cron job too
        return dict(self._fields["action"]._description_selection(env)).get(self.action, self.action or "")

    def _l10n_pl_ksef_script_id(self):
        self.ensure_one()
        return "drill-%s-step-%s" % (self.drill_id.id, self.id)


class L10nPlKsefDrill(models.Model):
    _name = "l10n_pl_ksef.drill"
    _description = "KSeF drill"
    _inherit = ["mail.thread"]
    _order = "id desc"

    name = fields.Char(string="Drill", required=True, tracking=True,
                       default=lambda self: _("KSeF drill %s", fields.Date.context_today(self)))
    company_id = fields.Many2one("res.company", required=True, index=True,
                                 default=lambda self: self.env.company)
    state = fields.Selection(
        [("draft", "Planned"), ("running", "Running"), ("done", "Done"), ("cancelled", "Cancelled")],
        string="Status", default="draft", required=True, readonly=True, tracking=True, copy=False)
    simulator_url = fields.Char(
        string="Simulator address", required=True, default=DEFAULT_SIMULATOR_URL,
        help="The built-in KSeF simulator on this server (127.0.0.1). It is started when it does not answer.")
    step_ids = fields.One2many(
        "l10n_pl_ksef.drill.step", "drill_id", string="Outage script", copy=True,
        default=lambda self: [fields.Command.create({"sequence": index, "offset_minutes": offset, "action": action})
                              for index, (offset, action) in enumerate(DEFAULT_SCRIPT)])
    journal_id = fields.Many2one("account.journal", string="Drill journal", readonly=True, copy=False,
                                 help="New customer invoices go to this journal while the drill runs: it has "
                                      "its own numbering, separate from the real books.")
    started_by_id = fields.Many2one("res.users", string="Started by", readonly=True, copy=False)
    started_at = fields.Datetime(string="Started at", readonly=True, copy=False)
    end_by = fields.Datetime(string="Ends automatically at", readonly=True, copy=False,
                             help="One hour after the last step: a forgotten drill ends by itself.")
    ended_by_id = fields.Many2one("res.users", string="Ended by", readonly=True, copy=False)
    ended_at = fields.Datetime(string="Ended at", readonly=True, copy=False)
    invoice_ids = fields.One2many("account.move", "l10n_pl_ksef_drill_id", string="Drill invoices", readonly=True)
    invoice_count = fields.Integer(compute="_compute_invoice_count")
    pending_step_count = fields.Integer(string="Steps still to play", compute="_compute_pending_step_count")
    # ---- the report (its rows stored when the drill ends, the HTML rendered from them) --------
    report_html = fields.Html(string="Report", compute="_compute_report_html", sanitize=True)
    report_line_ids = fields.One2many("l10n_pl_ksef.drill.report.line", "drill_id", string="Report lines",
                                      readonly=True, copy=False)
    end_error = fields.Text(string="Problems while ending", readonly=True, copy=False,
                            help="What went wrong while the drill ended; the company's real settings were "
                                 "restored all the same.")
    report_summary = fields.Char(string="Result", readonly=True, copy=False)
    report_invoice_count = fields.Integer(string="Invoices issued", readonly=True, copy=False)
    report_offline_count = fields.Integer(string="Issued offline", readonly=True, copy=False)
    report_in_time_count = fields.Integer(string="Submitted in time", readonly=True, copy=False)
    report_all_in_time = fields.Boolean(string="All submitted in time", readonly=True, copy=False)
    # ---- the company's real connection, saved while the drill runs (administrators only) -------
    saved_environment = fields.Char(groups="base.group_system", copy=False)
    saved_base_url = fields.Char(groups="base.group_system", copy=False)
    saved_latarnia_url = fields.Char(groups="base.group_system", copy=False)
    saved_auth_method = fields.Char(groups="base.group_system", copy=False)
    saved_token = fields.Char(groups="base.group_system", copy=False)
    saved_offline_certificate_id = fields.Many2one("certificate.certificate", groups="base.group_system", copy=False)
    saved_latarnia_status = fields.Char(groups="base.group_system", copy=False)
    saved_latarnia_checked_at = fields.Datetime(groups="base.group_system", copy=False)
    saved_latarnia_error = fields.Char(groups="base.group_system", copy=False)
    # Whether the settings above were really saved (End restores nothing else), and what the drill
    # put in their place (End keeps a value an administrator changed meanwhile).
    saved_snapshot = fields.Boolean(string="Settings saved", groups="base.group_system", copy=False)
    applied_settings = fields.Text(string="Drill settings", groups="base.group_system", copy=False)
    control_secret = fields.Char(string="Simulator control secret", groups="base.group_system", copy=False)
    simulator_pid = fields.Integer(string="Simulator process", groups="base.group_system", copy=False,
                                   help="The simulator this drill started (stopped at its end).")
    event_floor_id = fields.Integer(
        copy=False, help="The last KSeF event id stored before the drill: the simulator's notices come after it.")
    drill_certificate_id = fields.Many2one(
        "certificate.certificate", string="Drill Offline certificate", groups="base.group_system", copy=False,
        help="A self-made certificate that signs KOD II of drill invoices; never the company's real one.")

    @api.depends("invoice_ids")
    def _compute_invoice_count(self):
        for drill in self:
            drill.invoice_count = len(drill.invoice_ids)

    @api.depends("step_ids.applied_at", "state")
    def _compute_pending_step_count(self):
        for drill in self:
            drill.pending_step_count = len(drill.step_ids.filtered(lambda s: not s.applied_at)) \
                if drill.state == "running" else 0

    @api.constrains("state", "company_id", "simulator_url")
    def _check_one_running_drill(self):
        for drill in self.filtered(lambda d: d.state == "running"):
            others = self.sudo().search([("state", "=", "running"), ("id", "!=", drill.id), "|",
                                         ("company_id", "=", drill.company_id.id),
                                         ("simulator_url", "=", drill.simulator_url)], limit=1)
            if others.company_id == drill.company_id:
                raise ValidationError(_("A KSeF drill (%(drill)s) is already running for company %(company)s: "
                                        "end it before starting another one.",
                                        drill=others.name, company=drill.company_id.name))
            if others:
                raise ValidationError(_("The simulator %(url)s is already used by a running drill of "
                                        "%(company)s: one simulator plays one outage script at a time. "
                                        "Choose another simulator address or wait for that drill to end.",
                                        url=drill.simulator_url,
                                        company=self._l10n_pl_ksef_company_label(others.company_id)))

    @api.constrains("simulator_url")
    def _check_simulator_url(self):
        for drill in self:
            url = (drill.simulator_url or "").strip()
            try:
                safeurl.local_simulator_url(url)
            except safeurl.UnsafeUrl:
                raise ValidationError(_("Drill %(drill)s: the simulator address must be on this server "
                                        "(http://127.0.0.1:<port>, nothing before the address and nothing after "
                                        "the port), not %(url)s.", drill=drill.name, url=url)) from None

    @api.ondelete(at_uninstall=False)
    def _unlink_except_running(self):
        if self.filtered(lambda d: d.state == "running"):
            raise UserError(_("A running KSeF drill cannot be deleted: end it first."))

    def _l10n_pl_ksef_is_current_endpoint(self):
        """Whether the company's KSeF connection is this drill's simulator right now (an
        administrator may have switched it to another environment during the drill)."""
        self.ensure_one()
        company = self.company_id.sudo()
        try:
            return (company.l10n_pl_ksef_environment == "simulator"
                    and safeurl.local_simulator_url(company.l10n_pl_ksef_base_url or "")
                    == safeurl.local_simulator_url(self.simulator_url))
        except safeurl.UnsafeUrl:
            return False

    def _l10n_pl_ksef_company_label(self, company):
        """A company's name for the current user, or "another company" when he does not work in it."""
        if company in self.env.user.company_ids:
            return _("company %s", company.name)
        return _("another company")

    # ---- rights ----------------------------------------------------------------------------

    def _l10n_pl_ksef_check_manager(self):
        user = self.env.user
        if not (self.env.su or user.has_group("l10n_pl_ksef.group_l10n_pl_ksef_manager") or user.has_group("base.group_system")):
            raise AccessError(_("Only a KSeF manager (accounting administrator) can start or end a KSeF drill."))

    # ---- start -------------------------------------------------------------------------------

    def action_l10n_pl_ksef_drill_start(self):
        self._l10n_pl_ksef_check_manager()
        for drill in self:
            drill.sudo()._l10n_pl_ksef_start()
        return True

    def _l10n_pl_ksef_start(self):
        """Runs as superuser (the company's secrets are written); the caller's rights are checked."""
        self.ensure_one()
        user = self.env.user   # sudo() keeps the user: the one who pressed Start
        company = self.company_id
        if self.state != "draft":
            raise UserError(_("Drill %s has already been started.", self.name))
        if not self.step_ids:
            raise UserError(_("Drill %s has no outage script: add at least one step.", self.name))
        nip = company._l10n_pl_ksef_nip()
        if not nip:
            raise UserError(_("Company %s has no valid Polish NIP (Tax ID): a KSeF drill needs it.", company.name))
        if company.l10n_pl_ksef_running_drill_id:
            raise UserError(_("A KSeF drill (%(drill)s) is already running for company %(company)s: end it before "
                              "starting another one.", drill=company.l10n_pl_ksef_running_drill_id.name,
                              company=company.name))
        self._l10n_pl_ksef_check_simulator_not_in_use()
        now = fields.Datetime.now().replace(microsecond=0)
        end_by = now + datetime.timedelta(minutes=max(self.step_ids.mapped("offset_minutes"))) + AUTO_END_AFTER
        self._l10n_pl_ksef_check_real_invoices(end_by)

        launcher_tokens = ()
        # A simulator this drill starts answers its control API only to the drill (and is stopped at the end).
        self.control_secret = secrets.token_urlsafe(32)
        started = self._l10n_pl_ksef_simulator_call(
            "ensure_running", self.simulator_url, str(self._l10n_pl_ksef_state_path()), launcher_tokens)
        if (started or {}).get("started"):
            self.simulator_pid = started["pid"]
        try:
            self._l10n_pl_ksef_simulator_reset()
        except Exception as error:  # noqa: BLE001 - the launcher's SimulatorControlError, connection errors
            raise UserError(_("The KSeF simulator at %(url)s could not be prepared for drill %(drill)s (the previous "
                              "drill's invoices were not cleared). Technical details: %(detail)s",
                              url=self.simulator_url, drill=self.name, detail=type(error).__name__)) from None
        token = "drill-%s" % secrets.token_urlsafe(24)
        self._l10n_pl_ksef_simulator_call("register_token", self.simulator_url, nip, token)

        # Save the real connection before anything changes it.
        self.write({**{drill_field: _saved_value(company[company_field])
                       for company_field, drill_field in SAVED_SETTINGS.items()}, "saved_snapshot": True})
        certificate = self._l10n_pl_ksef_make_drill_certificate(company, nip)
        journal = company._l10n_pl_ksef_drill_journal()
        planned = {step: now + datetime.timedelta(minutes=step.offset_minutes) for step in self.step_ids}
        for step, at in planned.items():
            step.write({"planned_at": at, "applied_at": False})
        self.write({
            "state": "running", "started_at": now, "started_by_id": user.id, "end_by": end_by,
            "journal_id": journal.id, "drill_certificate_id": certificate.id,
            "ended_at": False, "ended_by_id": False, "report_html": False, "report_summary": False,
            "event_floor_id": self.env["l10n_pl_ksef.event"].with_context(active_test=False).search(
                [], order="id desc", limit=1).id,
        })
        applied = {
            "l10n_pl_ksef_environment": "simulator",
            "l10n_pl_ksef_base_url": self.simulator_url,
            "l10n_pl_ksef_latarnia_url": self.simulator_url,
            "l10n_pl_ksef_auth_method": "token",
            "l10n_pl_ksef_token": token,
            "l10n_pl_ksef_offline_certificate_id": certificate.id,
        }
        self.applied_settings = json.dumps(applied)
        company.write({
            **applied,
            "l10n_pl_ksef_latarnia_status": False,
            "l10n_pl_ksef_latarnia_checked_at": False,
            "l10n_pl_ksef_latarnia_error": False,
            "l10n_pl_ksef_running_drill_id": self.id,
        })
        self._l10n_pl_ksef_simulator_call("set_script", self.simulator_url, [
            {"at": _iso_utc(at), "action": step.action, "id": step._l10n_pl_ksef_script_id()}
            for step, at in sorted(planned.items(), key=lambda pair: (pair[1], pair[0].sequence, pair[0].id))])
        self._l10n_pl_ksef_arm_autoend()
        self.message_post(body=_(
            "Drill started by %(user)s: company %(company)s now works with the KSeF simulator at %(url)s. New "
            "customer invoices go to journal %(journal)s. The drill ends automatically at %(end)s.",
            user=user.name, company=company.name, url=self.simulator_url, journal=journal.display_name,
            end=self.env["account.move"]._l10n_pl_ksef_moment_text(end_by)))
        return True

    def _l10n_pl_ksef_make_drill_certificate(self, company, nip):
        """A self-made Offline certificate for the drill: drill invoices are never signed with the
        company's real key, so a drill QR code can never pass for a real one."""
        certificate, key = devcerts.make_certificate(
            devcerts.OFFLINE, nip, name=company.name, valid_days=2)
        cert_pem, key_pem = devcerts.to_pem(certificate, key)
        name = _("DRILL certificate - not for real invoices (%s)", self.name)
        key_record = self.env["certificate.key"].create({
            "name": "%s.key" % name, "content": base64.b64encode(key_pem), "company_id": company.id})
        return self.env["certificate.certificate"].create({
            "name": name, "scope": "l10n_pl_ksef", "company_id": company.id,
            "content": base64.b64encode(cert_pem), "private_key_id": key_record.id,
        })

    # ---- progress ----------------------------------------------------------------------------

    def action_l10n_pl_ksef_drill_next_step(self):
        """The trainer plays the next step now (instead of waiting for its time)."""
        self._l10n_pl_ksef_check_manager()
        for drill in self:
            if drill.state != "running":
                raise UserError(_("Drill %s is not running.", drill.name))
            drill.sudo()._l10n_pl_ksef_refresh_steps()
            if not drill.pending_step_count:
                raise UserError(_("Drill %s has played every step of its script: end it to get the report.",
                                  drill.name))
            drill._l10n_pl_ksef_simulator_call("advance_script", drill.simulator_url)
            drill.sudo()._l10n_pl_ksef_refresh_steps()
            # The company sees the new situation at once (Latarnia is the simulator's).
            drill.company_id.sudo()._l10n_pl_ksef_poll_latarnia(timeout=5.0)
        return True

    def action_l10n_pl_ksef_drill_refresh(self):
        self.check_access("read")
        for drill in self.filtered(lambda d: d.state == "running"):
            drill.sudo()._l10n_pl_ksef_refresh_steps()
        return True

    # ---- end ---------------------------------------------------------------------------------

    def action_l10n_pl_ksef_drill_end(self):
        self._l10n_pl_ksef_check_manager()
        for drill in self:
            if drill.state != "running":
                raise UserError(_("Drill %s is not running.", drill.name))
            drill.sudo()._l10n_pl_ksef_end()
        return True

    def action_l10n_pl_ksef_drill_cancel(self):
        self._l10n_pl_ksef_check_manager()
        if self.filtered(lambda d: d.state != "draft"):
            raise UserError(_("Only a planned drill can be cancelled; end a running drill instead."))
        self.sudo().write({"state": "cancelled"})
        return True

    def action_l10n_pl_ksef_drill_print(self):
        self.ensure_one()
        return self.env.ref("l10n_pl_ksef.action_report_l10n_pl_ksef_drill").report_action(self)

    def action_l10n_pl_ksef_drill_open_invoices(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": _("Drill invoices"),
            "res_model": "account.move",
            "view_mode": "list,form",
            "domain": [("l10n_pl_ksef_drill_id", "=", self.id)],
            "context": {"create": False},
        }

    def _l10n_pl_ksef_end(self):
        """Send what can be sent, write the report, give the company its real connection back,
        cancel the drill invoices. Cannot fail half-way: each part runs in its own savepoint, the
        real connection is restored whatever the other parts did, and what failed is reported on
        the drill, which ends all the same."""
        self.ensure_one()
        company = self.company_id
        uid = self.env.uid
        problems = []

        def attempt(what, function):
            try:
                with self.env.cr.savepoint():
                    function()
            except Exception as error:  # noqa: BLE001 - one failed part never keeps the company on the simulator
                _logger.warning("KSeF drill %s: %s failed while ending: %s", self.id, what, error, exc_info=True)
                problems.append(_("%(part)s: %(error)s", part=what, error=_l10n_pl_ksef_error_text(error)))

        attempt(_("reading the simulator's script"), self._l10n_pl_ksef_refresh_steps)
        attempt(_("the final sending to the simulator"), self._l10n_pl_ksef_end_send)
        attempt(_("the report"), self._l10n_pl_ksef_end_report)
        simulator_api = company._l10n_pl_ksef_api_url()
        self._l10n_pl_ksef_restore_company(problems)
        attempt(_("stopping the simulator"), self._l10n_pl_ksef_end_simulator)
        attempt(_("closing the simulator's sessions"), lambda: self.env["l10n_pl_ksef.session"].search([
            ("company_id", "=", company.id), ("api_url", "=", simulator_api)]).write(
            {"journal_state": "settled", "state": "closed"}))
        attempt(_("cancelling the drill invoices"), self._l10n_pl_ksef_end_invoices)
        attempt(_("forgetting the simulator's notices"), self._l10n_pl_ksef_forget_simulated_events)
        attempt(_("the real invoices waiting"), self._l10n_pl_ksef_end_real_invoices)
        self.write({"state": "done", "ended_at": fields.Datetime.now(), "ended_by_id": uid or False,
                    "end_error": "\n".join(problems) or False})
        if problems:
            self.message_post(body=_(
                "Drill ended with problems; company %(company)s works with its real KSeF connection again.\n"
                "%(problems)s", company=company.name, problems="\n".join(problems)))
        self.message_post(body=_("Drill ended. %(summary)s Company %(company)s works with its real KSeF "
                                 "connection again.", summary=self.report_summary or "", company=company.name))
        return True

    def _l10n_pl_ksef_end_send(self):
        # Everything sendable goes now, as the engine would: Latarnia first (pause or not). Waiting
        # drill invoices go at once, even those Post to KSeF reserved a few minutes ago.
        company = self.company_id
        if company.l10n_pl_ksef_running_drill_id != self or not self._l10n_pl_ksef_is_current_endpoint():
            return   # the company is not on this drill's simulator: nothing of the drill goes anywhere
        Move = self.env["account.move"]
        Move.search([("l10n_pl_ksef_drill_id", "=", self.id), ("state", "=", "posted"),
                     ("l10n_pl_ksef_state", "in", ENGINE_QUEUE_STATES)])._l10n_pl_ksef_write(
            {"l10n_pl_ksef_next_try": False})
        try:
            company._l10n_pl_ksef_poll_latarnia(timeout=5.0)
        except Exception as error:  # noqa: BLE001 - Latarnia's trouble must not stop the sending
            _logger.info("KSeF drill %s: Latarnia not read at the end: %s", self.id, type(error).__name__)
        Move.with_context(l10n_pl_ksef_no_commit=True)._l10n_pl_ksef_engine_run(company)
        Move.with_context(l10n_pl_ksef_no_commit=True)._l10n_pl_ksef_engine_follow_posted(company)
        self.env.flush_all()

    def _l10n_pl_ksef_end_report(self):
        # Drafts left in the drill journal belong to the drill too (and are cancelled with it).
        if self.journal_id:
            self.env["account.move"].search([("journal_id", "=", self.journal_id.id), ("state", "=", "draft"),
                                             ("l10n_pl_ksef_drill_id", "=", False)]).write(
                {"l10n_pl_ksef_drill_id": self.id})
        self._l10n_pl_ksef_write_report()

    def _l10n_pl_ksef_restore_company(self, problems):
        """The company's real connection back: only from a snapshot this drill really took, and
        never over a value an administrator set meanwhile (his stays, and the drill says so)."""
        company = self.company_id
        restore = {"l10n_pl_ksef_running_drill_id": False,
                   "l10n_pl_ksef_last_drill_date": fields.Date.context_today(self)}
        if company.l10n_pl_ksef_running_drill_id != self:
            restore.pop("l10n_pl_ksef_running_drill_id")
        kept = []
        # A drill started before snapshots were flagged: the company still points to it, so Start ran.
        legacy = company.l10n_pl_ksef_running_drill_id == self and bool(self.saved_environment)
        if self.saved_snapshot or legacy:
            applied = json.loads(self.applied_settings or "{}")
            for company_field, drill_field in SAVED_SETTINGS.items():
                current = _saved_value(company[company_field])
                if company_field in applied and current != applied[company_field]:
                    kept.append(company._fields[company_field].get_description(self.env)["string"])
                    continue
                restore[company_field] = _restored_value(company, company_field, self[drill_field])
        else:
            problems.append(_("no snapshot of the company's settings was taken: nothing was restored."))
        if kept:
            problems.append(_("an administrator changed %(fields)s during the drill: the new values were kept.",
                              fields=", ".join(kept)))
        try:
            with self.env.cr.savepoint():
                company.write(restore)
        except ValidationError as error:
            # E.g. the real Offline certificate expired during the drill: everything else goes back.
            restore.pop("l10n_pl_ksef_offline_certificate_id", None)
            company.write(restore)
            problems.append(_("The company's Offline certificate could not be put back (%s): choose it "
                              "again in the company's KSeF offline settings.", error.args[0]))
        # The real secrets leave the drill once they are back with the company.
        self.write({**{drill_field: False for drill_field in SAVED_SETTINGS.values()},
                    "saved_snapshot": False, "applied_settings": False})

    @api.model
    def _cron_l10n_pl_ksef_drill_autoend(self):
        drills = self.sudo().search([("state", "=", "running"), ("end_by", "<=", fields.Datetime.now())])
        for drill in drills:
            drill = ksef_messages.in_company_language(drill, drill.company_id)
            try:
                with self.env.cr.savepoint():
                    drill._l10n_pl_ksef_end()
                    drill.message_post(body=drill.env._("The drill ended automatically at its end time."))
            except Exception:  # noqa: BLE001 - one drill's trouble never keeps another company on the simulator
                _logger.exception("KSeF drill %s could not be ended automatically", drill.id)
        return True

    def _l10n_pl_ksef_arm_autoend(self):
        cron = self.env.ref("l10n_pl_ksef.ir_cron_l10n_pl_ksef_drill_autoend", raise_if_not_found=False)
        if cron and self.end_by:
            cron.sudo()._trigger(self.end_by)

def _l10n_pl_ksef_error_text(error):
    """One line about ``error`` for the drill's problems (a UserError's message, else its kind)."""
    if isinstance(error, (UserError, ValidationError, AccessError)):
        return error.args[0]
    return "%s: %s" % (type(error).__name__, str(error).splitlines()[0][:300] if str(error) else "")


def _saved_value(value):
    if hasattr(value, "_name"):
        return value.id or False
    return value or False


def _restored_value(company, field_name, value):
    if company._fields[field_name].type == "many2one":
        return value.id or False
    return value or False

"""The drill's own KSeF simulator: started, reset, scripted, read and stopped through the
simulator's launcher (``ksef/simulator/launcher.py``), each trouble one translated sentence
naming the drill."""
import datetime
import logging
from pathlib import Path

from odoo import _, models, tools
from odoo.exceptions import UserError

from .l10n_pl_ksef_drill import DEFAULT_SIMULATOR_URL

_logger = logging.getLogger(__name__)


def _launcher():
    """The simulator launcher (imported late: the drill works with an already running simulator
    as well, and a missing launcher must only fail the drill, not the module)."""
    from ..ksef.simulator import launcher
    return launcher


def _parse_utc(text):
    if not text:
        return False
    moment = datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if moment.tzinfo:
        moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return moment.replace(microsecond=0)


class L10nPlKsefDrillSimulator(models.Model):
    _inherit = "l10n_pl_ksef.drill"

    def _l10n_pl_ksef_state_path(self):
        self.ensure_one()
        port = int(self.simulator_url.strip().rstrip("/").rsplit(":", 1)[-1])   # checked: a loopback URL's port
        folder = Path(tools.config["data_dir"]) / "l10n_pl_ksef"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / ("drill-simulator-%s.sqlite" % port)

    def _l10n_pl_ksef_simulator_call(self, what, *args):
        """Call the simulator launcher; its trouble becomes a UserError naming the drill: one
        translated sentence per request, the launcher's (English) message last as the detail."""
        self.ensure_one()
        try:
            launcher = _launcher()
            return getattr(launcher, what)(*args, secret=self.sudo().control_secret or None)
        except ImportError as error:
            raise UserError(_("The KSeF simulator is not available on this server, so drill %(drill)s cannot use "
                              "it. Technical details: %(detail)s", drill=self.name, detail=error)) from None
        except Exception as error:  # noqa: BLE001 - SimulatorControlError, connection errors
            raise UserError(_("%(message)s Technical details: %(detail)s",
                              message=self._l10n_pl_ksef_simulator_trouble(what), detail=error)) from None

    def _l10n_pl_ksef_simulator_trouble(self, what):
        """What the simulator failed to do for the drill, as one sentence (``what``: a launcher call)."""
        url, drill = self.simulator_url, self.name
        troubles = {
            "ensure_running": _("The KSeF simulator at %(url)s could not be started for drill %(drill)s.",
                                url=url, drill=drill),
            "register_token": _("The KSeF simulator at %(url)s did not accept the login token of drill %(drill)s.",
                                url=url, drill=drill),
            "set_script": _("The KSeF simulator at %(url)s did not accept the outage script of drill %(drill)s.",
                            url=url, drill=drill),
            "get_script": _("The KSeF simulator at %(url)s did not tell which steps of drill %(drill)s it has "
                            "played.", url=url, drill=drill),
            "advance_script": _("The KSeF simulator at %(url)s did not play the next step of drill %(drill)s.",
                                url=url, drill=drill),
            "clear_script": _("The KSeF simulator at %(url)s did not clear the outage script of drill %(drill)s.",
                              url=url, drill=drill),
            "reset_faults": _("The KSeF simulator at %(url)s did not end the simulated outage of drill %(drill)s.",
                              url=url, drill=drill),
        }
        return troubles.get(what) or _("The KSeF simulator at %(url)s did not do what drill %(drill)s asked.",
                                       url=url, drill=drill)

    def _l10n_pl_ksef_simulator_reset(self):
        """Forget the previous drill's invoices, sessions and Latarnia notices (keys and tokens stay)."""
        self.ensure_one()
        _launcher().reset(self.simulator_url, secret=self.sudo().control_secret or None)

    def _l10n_pl_ksef_check_simulator_not_in_use(self):
        """A drill resets its simulator: never one that a company uses as its KSeF (e.g. the demo's)."""
        def address(url):
            return (url or "").strip().rstrip("/").lower()

        mine = address(self.simulator_url)
        users = self.env["res.company"].sudo().search([("l10n_pl_ksef_base_url", "!=", False)]).filtered(
            lambda company: address(company.l10n_pl_ksef_base_url) == mine)
        if users:
            raise UserError(_(
                "Drill %(drill)s cannot use the KSeF simulator at %(url)s: %(company)s works with it as its "
                "KSeF, and a drill clears its simulator. Give the drill a simulator of its own (another port, e.g. "
                "%(default)s; it is started automatically).",
                drill=self.name, url=self.simulator_url, company=self._l10n_pl_ksef_company_label(users[0]),
                default=DEFAULT_SIMULATOR_URL))

    def _l10n_pl_ksef_refresh_steps(self):
        """Copy the simulator's applied times onto the steps."""
        self.ensure_one()
        script = self._l10n_pl_ksef_simulator_call("get_script", self.simulator_url)
        applied = {step.get("id"): _parse_utc(step.get("appliedAt")) for step in (script or {}).get("steps", [])}
        for step in self.step_ids:
            at = applied.get(step._l10n_pl_ksef_script_id())
            if at and step.applied_at != at:
                step.applied_at = at
                self.message_post(body=_("Simulator: %(step)s (at %(time)s).",
                                         step=step._l10n_pl_ksef_label(),
                                         time=self.env["account.move"]._l10n_pl_ksef_moment_text(at)))
        return script

    def _l10n_pl_ksef_end_simulator(self):
        for step in ("clear_script", "reset_faults"):
            try:
                self._l10n_pl_ksef_simulator_call(step, self.simulator_url)
            except UserError as error:
                _logger.info("KSeF drill %s: simulator not cleaned up (%s): %s", self.id, step, error)
        if self.simulator_pid:
            _launcher().stop(self.simulator_pid)
        self.write({"simulator_pid": 0, "control_secret": False})

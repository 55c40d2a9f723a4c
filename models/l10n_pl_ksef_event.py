"""KSeF availability events: Latarnia notices and notices copied by hand from BIP MF.

Each record is one notice (one Latarnia message, e.g. K/2026/AWR/02, kept in its newest
version). Notices of the same event (a FAILURE_START and its FAILURE_END share ``event_ref``)
are combined into one ``ksef.deadlines.KsefEvent`` for the deadline computation. They are the
evidence for the offline mode and deadline of the invoices issued under them (VAT act art. 106ne; the Ministry's ksef-docs ``tryby-offline.md``).
"""
import datetime
import logging

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from ..ksef import deadlines as ksef_deadlines
from .res_company import KSEF_ENVIRONMENTS

_logger = logging.getLogger(__name__)

CATEGORIES = [
    (ksef_deadlines.CATEGORY_MAINTENANCE, "Maintenance (unavailability)"),
    (ksef_deadlines.CATEGORY_FAILURE, "Failure"),
    (ksef_deadlines.CATEGORY_TOTAL_FAILURE, "Total failure"),
]
MESSAGE_TYPES = [
    ("MAINTENANCE_ANNOUNCEMENT", "Maintenance announcement"),
    ("FAILURE_START", "Start of failure"),
    ("FAILURE_END", "End of failure"),
]


class L10nPlKsefEvent(models.Model):
    _name = "l10n_pl_ksef.event"
    _description = "KSeF availability event"
    _order = "published desc, id desc"
    _rec_name = "display_title"

    source = fields.Selection(
        [("latarnia", "Latarnia"), ("bip", "BIP MF"), ("manual", "Other (entered by hand)")],
        required=True, default="bip",
    )
    environment = fields.Selection(
        KSEF_ENVIRONMENTS,
        help="The KSeF environment the notice is about. Empty: it applies to every environment.",
    )
    notice_ref = fields.Char(string="Notice", help="The notice identifier, e.g. K/2026/AWR/02.")
    event_ref = fields.Integer(
        string="Event number", help="Links the notices of one event (start and end of a failure).",
    )
    category = fields.Selection(CATEGORIES, required=True)
    message_type = fields.Selection(MESSAGE_TYPES, string="Type")
    title = fields.Char()
    text = fields.Text()
    date_start = fields.Datetime(string="Start")
    date_end = fields.Datetime(string="End", help="Empty while the event is still going on.")
    published = fields.Datetime(required=True, default=fields.Datetime.now)
    version = fields.Integer(default=1)
    active = fields.Boolean(default=True)
    display_title = fields.Char(compute="_compute_display_title")

    _sql_constraints = [
        ("notice_unique", "UNIQUE(source, environment, notice_ref)",
         "This notice is already recorded."),
    ]

    @api.depends("notice_ref", "title", "category")
    def _compute_display_title(self):
        categories = dict(self._fields["category"]._description_selection(self.env))
        for event in self:
            parts = [event.notice_ref, event.title or categories.get(event.category)]
            event.display_title = " - ".join(filter(None, parts)) or _("KSeF event")

    @api.constrains("date_start", "date_end")
    def _check_dates(self):
        for event in self:
            if event.date_start and event.date_end and event.date_end < event.date_start:
                raise ValidationError(_("KSeF event %(event)s: the end (%(end)s) is before the start (%(start)s).",
                                        event=event.display_title, end=event.date_end, start=event.date_start))

    # ---- recompute deadlines when events change --------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        events = super().create(vals_list)
        self._l10n_pl_ksef_events_changed()
        return events

    def write(self, vals):
        result = super().write(vals)
        self._l10n_pl_ksef_events_changed()
        return result

    def unlink(self):
        result = super().unlink()
        self._l10n_pl_ksef_events_changed()
        return result

    @api.model
    def _l10n_pl_ksef_events_changed(self):
        if self.env.context.get("l10n_pl_ksef_no_deadline_recompute"):
            return
        self.env["account.move"].sudo()._l10n_pl_ksef_recompute_waiting_deadlines()

    # ---- Latarnia ----------------------------------------------------------------------------

    @api.model
    def _l10n_pl_ksef_store_latarnia_messages(self, messages, environment):
        """Create or update one record per notice (by notice id; a higher version replaces the
        stored one, the same or a lower version is ignored). Idempotent. Returns the records
        created or changed."""
        changed = self.browse()
        seen = {}
        for message in messages:
            if not message.id or message.category not in dict(CATEGORIES):
                _logger.warning("Latarnia notice without id or with unknown category ignored: %r", message.id)
                continue
            version = int(message.version or 1)
            if message.id in seen and seen[message.id] >= version:
                continue
            seen[message.id] = version
            values = {
                "source": "latarnia",
                "environment": environment,
                "notice_ref": message.id,
                "event_ref": message.event_id if isinstance(message.event_id, int) else 0,
                "category": message.category,
                "message_type": message.type if message.type in dict(MESSAGE_TYPES) else False,
                "title": message.title or False,
                "text": message.text or False,
                "date_start": _naive_utc(message.start),
                "date_end": _naive_utc(message.end),
                "published": _naive_utc(message.published) or fields.Datetime.now(),
                "version": version,
            }
            existing = self.with_context(active_test=False).search([
                ("source", "=", "latarnia"), ("environment", "=", environment), ("notice_ref", "=", message.id)], limit=1)
            quiet = self.with_context(l10n_pl_ksef_no_deadline_recompute=True)
            if not existing:
                changed |= quiet.create(values)
            elif existing.version < version:
                existing.with_context(l10n_pl_ksef_no_deadline_recompute=True).write(values)
                changed |= existing
        if changed:
            self._l10n_pl_ksef_events_changed()
        return changed

    # ---- for the deadline computation --------------------------------------------------------

    @api.model
    def _l10n_pl_ksef_events_for(self, environment):
        """The events (``KsefEvent``) that apply to ``environment``, notices of one event merged:
        the earliest start and publication, the end given by the newest notice (an
        event is ongoing until an end is announced). Returns [(KsefEvent, newest notice record)]."""
        records = self.search(["|", ("environment", "=", False), ("environment", "=", environment)],
                              order="published asc, id asc")
        groups = {}
        for record in records:
            key = (record.source, record.environment, record.event_ref) if record.event_ref else ("record", record.id)
            groups.setdefault(key, self.browse())
            groups[key] |= record
        result = []
        for notices in groups.values():
            newest = notices[-1]
            starts = [n.date_start for n in notices if n.date_start]
            event = ksef_deadlines.KsefEvent(
                category=newest.category,
                start=min(starts) if starts else None,
                # the newest notice says whether the event is over (a FAILURE_END carries the end)
                end=newest.date_end or None,
                published=min(notices.mapped("published")),
                event_id=newest.event_ref or newest.notice_ref or newest.id,
                title=newest.title or "",
            )
            result.append((event, newest))
        return result


def _naive_utc(moment):
    """Odoo stores naive UTC datetimes."""
    if not moment:
        return False
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return moment.replace(microsecond=0)

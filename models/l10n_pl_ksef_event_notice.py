"""Every KSeF notice kept verbatim, each version as it was fetched (or entered), with when and
from where: the evidence that an invoice was issued offline lawfully. Latarnia drops its messages
after 30 days and replaces a notice by its newer version; this archive keeps them all. Notices
are never deleted (only archived); the archive is written by this code only."""
import hashlib
import json

from odoo import _, api, fields, models
from odoo.exceptions import UserError

# Fields of a notice entered by hand (BIP MF) that make a new version when they change.
MANUAL_NOTICE_FIELDS = ("source", "environment", "notice_ref", "event_ref", "category", "message_type", "title",
                        "text", "date_start", "date_end", "published", "version")


class L10nPlKsefEventNotice(models.Model):
    _name = "l10n_pl_ksef.event.notice"
    _description = "KSeF notice (verbatim archive)"
    _order = "fetched_at, id"
    _rec_name = "notice_ref"

    event_id = fields.Many2one("l10n_pl_ksef.event", string="KSeF event", required=True, index=True,
                               ondelete="restrict", readonly=True)
    notice_ref = fields.Char(string="Notice", readonly=True)
    version = fields.Integer(readonly=True)
    raw = fields.Text(string="Notice as received", readonly=True,
                      help="The notice exactly as Latarnia sent it (JSON), or as it was entered by hand.")
    raw_sha256 = fields.Char(readonly=True, index=True)
    fetched_at = fields.Datetime(string="Fetched on", readonly=True, required=True)
    fetched_from = fields.Char(string="Fetched from", readonly=True,
                               help="The Latarnia URL it was read from, or who entered it by hand.")

    def write(self, vals):
        if self:
            raise UserError(_("KSeF notices are kept verbatim as evidence and cannot be changed."))
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_never(self):
        # Only the simulated notices of a drill go, with their event (see the event's unlink).
        if not self.env.context.get("l10n_pl_ksef_drop_drill_notices") or any(
                notice.event_id.environment != "simulator" for notice in self):
            raise UserError(_("KSeF notices are kept verbatim as evidence and cannot be deleted."))

    @api.model
    def _l10n_pl_ksef_archive(self, event, raw, fetched_from, version=None):
        """Keep ``raw`` (a dict, or text) for ``event`` unless this very text is archived already."""
        text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False, indent=2, sort_keys=True)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        Notice = self.sudo()
        if Notice.search_count([("event_id", "=", event.id), ("raw_sha256", "=", digest)], limit=1):
            return Notice.browse()
        return Notice.create({
            "event_id": event.id, "notice_ref": event.notice_ref, "version": version or event.version,
            "raw": text, "raw_sha256": digest, "fetched_at": fields.Datetime.now(), "fetched_from": fetched_from,
        })


class L10nPlKsefEvent(models.Model):
    _inherit = "l10n_pl_ksef.event"

    notice_ids = fields.One2many("l10n_pl_ksef.event.notice", "event_id", string="Notices as received")

    @api.model_create_multi
    def create(self, vals_list):
        events = super().create(vals_list)
        for event in events.filtered(lambda e: e.source != "latarnia"):
            event._l10n_pl_ksef_archive_manual()
        return events

    def write(self, vals):
        result = super().write(vals)
        if set(MANUAL_NOTICE_FIELDS).intersection(vals):
            for event in self.filtered(lambda e: e.source != "latarnia"):
                event._l10n_pl_ksef_archive_manual()
        return result

    @api.ondelete(at_uninstall=False)
    def _unlink_except_real_notice(self):
        # The drill's simulated notices are no Ministry notices: they may go.
        real = self.filtered(lambda e: e.environment != "simulator")
        if real:
            raise UserError(_("KSeF notice %(notice)s is evidence for invoices issued offline and is never deleted; "
                              "archive it instead.", notice=", ".join(real.mapped("display_title"))))

    def unlink(self):
        self._unlink_except_real_notice()
        self.sudo().notice_ids.with_context(l10n_pl_ksef_drop_drill_notices=True).unlink()
        return super().unlink()

    def _l10n_pl_ksef_archive_manual(self):
        self.ensure_one()
        values = {}
        for name in MANUAL_NOTICE_FIELDS:
            value = self[name]
            values[name] = fields.Datetime.to_string(value) if name.startswith(("date_", "published")) else value
        self.env["l10n_pl_ksef.event.notice"]._l10n_pl_ksef_archive(
            self, values, _("entered by hand by %(user)s", user=self.env.user.name))

    @api.model
    def _l10n_pl_ksef_store_latarnia_messages(self, messages, environment):
        changed = super()._l10n_pl_ksef_store_latarnia_messages(messages, environment)
        Event = self.with_context(active_test=False)
        for message in messages:
            if not message.id or message.raw is None:
                continue
            event = Event.search([("source", "=", "latarnia"), ("environment", "=", environment),
                                  ("notice_ref", "=", message.id)], limit=1)
            if event:
                self.env["l10n_pl_ksef.event.notice"]._l10n_pl_ksef_archive(
                    event, message.raw, message.fetched_from, version=int(message.version or 1))
        return changed


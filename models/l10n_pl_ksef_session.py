import datetime
import json

from odoo import api, fields, models

from ..ksef import client as ksef_client


class L10nPlKsefSession(models.Model):
    """An interactive KSeF session opened by a company, kept open and reused for later invoices
    until it expires. Its AES key and IV are secrets: the model is for administrators only and
    the sending code reads it with sudo()."""
    _name = "l10n_pl_ksef.session"
    _description = "KSeF interactive session"
    _order = "id desc"
    _rec_name = "reference_number"

    company_id = fields.Many2one("res.company", required=True, index=True, ondelete="cascade")
    reference_number = fields.Char(required=True, index=True, readonly=True)
    valid_until = fields.Datetime(readonly=True)
    state = fields.Selection([("open", "Open"), ("closed", "Closed")], default="open", required=True, index=True)
    api_url = fields.Char(readonly=True, help="The KSeF API the session was opened on.")
    secret = fields.Text(readonly=True, groups="base.group_system", help="The session (with its AES key and IV) as JSON.")

    @api.model
    def _l10n_pl_ksef_open_session(self, company, client, margin_minutes=5):
        """A usable ``OnlineSession`` of ``company`` on ``client``'s API: the newest open one that
        is not about to expire, else a new one. Returns ``(record, session)``."""
        Session = self.sudo()
        threshold = fields.Datetime.add(fields.Datetime.now(), minutes=margin_minutes)
        record = Session.search([
            ("company_id", "=", company.id), ("state", "=", "open"), ("api_url", "=", client.base_url),
            ("engine", "=", False),
            "|", ("valid_until", "=", False), ("valid_until", ">", threshold),
        ], limit=1)
        if record:
            return record, ksef_client.OnlineSession.from_dict(json.loads(record.secret))
        session = client.open_online_session("FA (3)")
        record = Session.create({
            "company_id": company.id,
            "reference_number": session.reference_number,
            "valid_until": _naive_utc(session.valid_until),
            "api_url": client.base_url,
            "secret": json.dumps(session.to_dict()),
        })
        return record, session

    def _l10n_pl_ksef_mark_closed(self):
        self.sudo().write({"state": "closed"})


def _naive_utc(moment):
    if not moment:
        return False
    return moment.astimezone(datetime.timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment

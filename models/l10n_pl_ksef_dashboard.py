"""KSeF overview: one tile per situation that needs a look (overdue, due today, due soon,
issued offline, rejected, credit notes waiting for their original, ...) with its count and the
next deadline; a tile opens the customer invoice list filtered on it. The tiles are computed
when the overview is opened (counts depend on today and on the user's companies), as transient
records of the current user."""
from odoo import _, api, fields, models


CUSTOMER_MOVE_TYPES = ("out_invoice", "out_refund")
# (kind, label, search filter of the invoice list, colour: 1 red, 2 orange, 3 yellow, 4 blue, 10 green)
TILES = [
    ("overdue", "Offline - overdue", "l10n_pl_ksef_filter_overdue", 1),
    ("due_today", "Due today", "l10n_pl_ksef_filter_due_today", 2),
    ("due_soon", "Due within 2 business days", "l10n_pl_ksef_filter_due_soon", 2),
    ("rejected", "Rejected by KSeF", "l10n_pl_ksef_filter_rejected", 1),
    ("offline", "Issued offline, to submit", "l10n_pl_ksef_filter_offline", 3),
    ("waiting_original", "Credit notes waiting for their original", "l10n_pl_ksef_filter_waiting_original", 4),
    ("to_send", "To send", "l10n_pl_ksef_filter_to_send", 4),
    ("sending", "Sent, awaiting KSeF", "l10n_pl_ksef_filter_sending", 4),
]


class L10nPlKsefDashboard(models.TransientModel):
    _name = "l10n_pl_ksef.dashboard"
    _description = "KSeF overview tile"
    _order = "sequence, id"

    sequence = fields.Integer()
    kind = fields.Selection([(kind, label) for kind, label, _filter, _color in TILES], required=True, readonly=True)
    name = fields.Char(readonly=True)
    count = fields.Integer(readonly=True)
    next_deadline = fields.Date(string="Next deadline", readonly=True)
    color = fields.Integer(readonly=True)
    alert = fields.Boolean(readonly=True, help="Something here needs action now.")

    @api.model
    def _l10n_pl_ksef_tile_domain(self, kind):
        Move = self.env["account.move"]
        domains = {
            "overdue": Move._l10n_pl_ksef_urgency_domain("overdue"),
            "due_today": Move._l10n_pl_ksef_urgency_domain("today"),
            "due_soon": Move._search_l10n_pl_ksef_urgency("in", ["today", "soon"]),
            "rejected": [("l10n_pl_ksef_state", "=", "rejected")],
            "offline": [("l10n_pl_ksef_state", "=", "offline")],
            "waiting_original": [("l10n_pl_ksef_waiting_original", "=", True)],
            "to_send": [("l10n_pl_ksef_state", "=", "to_send"), ("l10n_pl_ksef_waiting_original", "=", False)],
            "sending": [("l10n_pl_ksef_state", "=", "sending")],
        }
        return [("move_type", "in", CUSTOMER_MOVE_TYPES), ("state", "=", "posted")] + domains[kind]

    @api.model
    def _l10n_pl_ksef_tile_values(self):
        Move = self.env["account.move"]
        labels = dict(self._fields["kind"]._description_selection(self.env))
        values = []
        for sequence, (kind, _label, _filter, color) in enumerate(TILES):
            domain = self._l10n_pl_ksef_tile_domain(kind)
            count = Move.search_count(domain)
            next_deadline = False
            if count:
                first = Move.search(domain + [("l10n_pl_ksef_deadline", "!=", False)],
                                    order="l10n_pl_ksef_deadline asc", limit=1)
                next_deadline = first.l10n_pl_ksef_deadline
            values.append({
                "sequence": sequence, "kind": kind, "name": labels[kind], "count": count,
                "next_deadline": next_deadline, "color": color if count else 0,
                "alert": bool(count) and kind in ("overdue", "due_today", "rejected"),
            })
        return values

    @api.model
    def action_l10n_pl_ksef_open_overview(self):
        """Menu entry: fresh tiles for the current user, shown as a kanban."""
        self.search([("create_uid", "=", self.env.uid)]).unlink()
        tiles = self.create(self._l10n_pl_ksef_tile_values())
        return {
            "type": "ir.actions.act_window",
            "name": _("KSeF overview"),
            "res_model": self._name,
            "view_mode": "kanban",
            "views": [(self.env.ref("l10n_pl_ksef.l10n_pl_ksef_dashboard_view_kanban").id, "kanban")],
            "domain": [("id", "in", tiles.ids)],
            "context": {"create": False, "edit": False, "delete": False},
            "target": "current",
        }

    def action_l10n_pl_ksef_open_invoices(self):
        """The customer invoices and credit notes of this tile, as a list with its filter on."""
        self.ensure_one()
        filter_name = next(f for kind, _label, f, _color in TILES if kind == self.kind)
        return {
            "type": "ir.actions.act_window",
            "name": _("KSeF: %s", self.name),
            "res_model": "account.move",
            "view_mode": "list,form",
            # Our list without Odoo's sample rows: an empty tile opens an empty list, not faded examples.
            "views": [(self.env.ref("l10n_pl_ksef.view_invoice_tree_l10n_pl_ksef_no_sample").id, "list"),
                      (self.env.ref("account.view_move_form").id, "form")],
            "search_view_id": [self.env.ref("account.view_account_invoice_filter").id],
            "domain": [("move_type", "in", CUSTOMER_MOVE_TYPES)],
            "context": {"default_move_type": "out_invoice", "search_default_%s" % filter_name: 1,
                        "search_default_posted": 1},
        }

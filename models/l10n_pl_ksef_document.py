from odoo import fields, models

DOCUMENT_STATES = [
    ("sending", "Sent, awaiting KSeF"),
    ("accepted", "Accepted"),
    ("rejected", "Rejected"),
    ("failed", "Not processed (to resend)"),
]


class L10nPlKsefDocument(models.Model):
    """One attempt to send an invoice to KSeF, kept for audit: what was sent (hash, session,
    KSeF reference), what KSeF answered (status, KSeF number, UPO) and when."""
    _name = "l10n_pl_ksef.document"
    _description = "KSeF submission"
    _order = "id desc"
    _rec_name = "name"

    name = fields.Char(compute="_compute_name")
    move_id = fields.Many2one("account.move", string="Invoice", required=True, index=True, ondelete="restrict", readonly=True)
    company_id = fields.Many2one("res.company", required=True, index=True, readonly=True)
    session_reference = fields.Char(string="KSeF session", readonly=True)
    invoice_reference = fields.Char(string="KSeF invoice reference", readonly=True, index=True,
                                    help="The reference KSeF gave the sent invoice; its status is read with it. "
                                         "None for an invoice accepted in a batch session: its results come "
                                         "from the session's UPO, which names it by its KSeF number.")
    invoice_hash = fields.Char(string="Hash sent", readonly=True, help="SHA-256 (Base64) of the FA(3) file sent.")
    offline_mode = fields.Boolean(string="Sent as offline invoice", readonly=True)
    hash_of_corrected_invoice = fields.Char(string="Hash of corrected invoice", readonly=True,
                                            help="For a technical correction: hash of the rejected original.")
    state = fields.Selection(DOCUMENT_STATES, required=True, default="sending", readonly=True, index=True)
    ksef_number = fields.Char(string="KSeF number", readonly=True)
    status_code = fields.Integer(string="KSeF status code", readonly=True)
    status_description = fields.Char(string="KSeF status", readonly=True)
    status_details = fields.Text(string="KSeF status details", readonly=True)
    sent_at = fields.Datetime(string="Sent on", readonly=True)
    checked_at = fields.Datetime(string="Status checked on", readonly=True)
    acquisition_date = fields.Datetime(string="Received by KSeF on", readonly=True)
    upo_id = fields.Many2one("ir.attachment", string="UPO", readonly=True)
    error = fields.Text(readonly=True)

    def _compute_name(self):
        for document in self:
            reference = document.invoice_reference or document.ksef_number or document.id
            document.name = "%s / %s" % (document.move_id.name or "", reference)

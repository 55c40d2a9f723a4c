"""KSeF facts of an invoice are written by the add-on's own code only.

``readonly=True`` binds the form, not JSON-RPC / XML-RPC, and a context key can be sent by any
caller. What cannot be forged over RPC is the superuser mode: our flows check the caller's
rights (``check_access``) and then write these fields through ``_l10n_pl_ksef_write``, which
runs them with ``sudo()``. Any other write or create carrying one of them is refused, like
Odoo's ``account`` refuses changes to the hashed fields of a posted, inalterable entry.
"""
from odoo import api, models
from odoo.exceptions import AccessError, UserError

# What KSeF said, what was frozen and printed, the offline obligation and the drill link.
PROTECTED_MOVE_FIELDS = frozenset({
    "l10n_pl_ksef_state", "l10n_pl_ksef_number", "l10n_pl_ksef_number_environment", "l10n_pl_ksef_error",
    "l10n_pl_ksef_xml_id", "l10n_pl_ksef_xml_hash", "l10n_pl_ksef_xml_hash_url", "l10n_pl_ksef_frozen_at",
    "l10n_pl_ksef_acquisition_date", "l10n_pl_ksef_upo_id", "l10n_pl_ksef_document_ids",
    "l10n_pl_ksef_offline_mode", "l10n_pl_ksef_offline_event_id", "l10n_pl_ksef_offline_issued_at",
    "l10n_pl_ksef_deadline", "l10n_pl_ksef_deadline_reason", "l10n_pl_ksef_deadline_reason_key",
    "l10n_pl_ksef_deadline_event_id",
    "l10n_pl_ksef_qr_certificate_url", "l10n_pl_ksef_offline_certificate_serial",
    "l10n_pl_ksef_corrected_hash", "l10n_pl_ksef_rejected_xml_id", "l10n_pl_ksef_technical_correction_at",
    "l10n_pl_ksef_next_try", "l10n_pl_ksef_attempts",
    "l10n_pl_ksef_drill_id", "l10n_pl_ksef_drill_posted_by_id", "l10n_pl_ksef_drill_sent_by_id",
})

# The one registry of the invoice's fields written by our code only: (fields, what a forger is told).
GUARDED_MOVE_FIELDS = (
    (PROTECTED_MOVE_FIELDS, lambda env, labels: env._(
        "KSeF data of an invoice (%(fields)s) is written only by KSeF itself through the add-on "
        "(Post to KSeF, offline issuing, the submission engine), never by hand.", fields=labels)),
    # every KSeF notice that justified the offline mode or moved the deadline (evidence pack)
    (frozenset({"l10n_pl_ksef_evidence_event_ids"}), lambda env, labels: env._(
        "The KSeF notices of an invoice are recorded by the KSeF module only.")),
    # the collective identifier (IZ) a bill is paid under (VAT act art. 108g)
    (frozenset({"l10n_pl_ksef_collective_id"}), lambda env, labels: env._(
        "The collective identifier of a bill is set by the KSeF module only.")),
    # KSeF's own classification of an invoice sent online as offline
    (frozenset({"l10n_pl_ksef_ksef_offline"}), lambda env, labels: env._(
        "KSeF's classification of an invoice is recorded by the KSeF module only.")),
)

# Fields the e-invoice is built from that Odoo does not lock on posted entries itself: they may
# change only while the invoice is a draft (the kind of an advance/settlement, the payer).
DRAFT_ONLY_FIELDS = frozenset({
    "l10n_pl_ksef_invoice_kind", "l10n_pl_ksef_advance_ids", "l10n_pl_ksef_order_line_ids", "l10n_pl_ksef_payer_id",
})


def forged_fields(env, model, vals, protected, defaults=False):
    """The protected fields ``vals`` (and, on create, the context's ``default_*`` keys) would set,
    unless the environment is in superuser mode: the only mode RPC cannot ask for."""
    if env.su:
        return []
    names = set(vals or ())
    if defaults:
        names |= {key[len("default_"):] for key in env.context if key.startswith("default_")}
    return sorted(name for name in names & protected if name in model._fields)


class AccountMoveKsefGuard(models.Model):
    _inherit = "account.move"

    def _l10n_pl_ksef_refuse_forgery(self, vals, defaults=False):
        for protected, message in GUARDED_MOVE_FIELDS:
            forged = forged_fields(self.env, self, vals, protected, defaults=defaults)
            if forged:
                raise AccessError(message(self.env, ", ".join(
                    self._fields[name].get_description(self.env)["string"] for name in forged)))

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._l10n_pl_ksef_refuse_forgery(vals, defaults=True)
        return super().create(vals_list)

    def _l10n_pl_ksef_check_draft_only(self, vals):
        changed = sorted(DRAFT_ONLY_FIELDS.intersection(vals))
        posted = self.filtered(lambda m: m.state == "posted") if changed else self.browse()
        if posted:
            raise UserError(self.env._(
                "Invoice %(invoice)s is posted: %(fields)s can only be changed in draft.",
                invoice=", ".join(posted.mapped("name")),
                fields=", ".join(self._fields[name].get_description(self.env)["string"] for name in changed)))

    def write(self, vals):
        self._l10n_pl_ksef_refuse_forgery(vals)
        self._l10n_pl_ksef_check_draft_only(vals)
        return super().write(vals)

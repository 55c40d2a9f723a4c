from . import models


def _l10n_pl_ksef_edi_post_init(env):
    # l10n_pl_edi's neutralize.sql deletes the certificate its company column points to: the
    # column is no longer used (the field now follows our Authentication certificate), empty it.
    env.cr.execute("UPDATE res_company SET l10n_pl_edi_certificate = NULL")
    env["res.company"]._l10n_pl_ksef_edi_sync_mode()
    # Invoices l10n_pl_edi got accepted before this bridge came: ours from now on.
    env["account.move"].search([
        ("l10n_pl_edi_status", "=", "accepted"), ("l10n_pl_edi_number", "!=", False),
        ("l10n_pl_ksef_state", "in", (False, "to_send", "offline", "rejected")),
        ("move_type", "in", ("out_invoice", "out_refund")),
    ])._l10n_pl_ksef_edi_adopt()

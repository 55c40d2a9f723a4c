from . import models


def _l10n_pl_ksef_edi_post_init(env):
    # l10n_pl_edi's neutralize.sql deletes the certificate its company column points to: the
    # column is no longer used (the field now follows our Authentication certificate), empty it.
    env.cr.execute("UPDATE res_company SET l10n_pl_edi_certificate = NULL")
    env["res.company"]._l10n_pl_ksef_edi_sync_mode()
    # Invoices l10n_pl_edi got accepted before this bridge came are adopted by the submission
    # engine's next run, once KSeF confirms their numbers (no network call during the install).
    env.ref("l10n_pl_ksef.ir_cron_l10n_pl_ksef_submit")._trigger()

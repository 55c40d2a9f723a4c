# Odoo imports this package as odoo.addons.l10n_pl_ksef. pytest, collecting the pure ksef/
# core from the repository root, imports it under another name and without Odoo's addons:
# then there are no models to load.
if __name__.startswith("odoo.addons."):
    from . import models
    from . import wizard


def _l10n_pl_ksef_post_init(env):
    polish_companies = env["res.company"].search([("chart_template", "=", "pl")])
    env["account.chart.template"]._l10n_pl_ksef_set_tax_rates(polish_companies)

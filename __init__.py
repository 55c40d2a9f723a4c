from . import models


def _l10n_pl_ksef_post_init(env):
    polish_companies = env["res.company"].search([("chart_template", "=", "pl")])
    env["account.chart.template"]._l10n_pl_ksef_set_tax_rates(polish_companies)

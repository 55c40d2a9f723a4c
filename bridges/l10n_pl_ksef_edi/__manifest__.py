{
    "name": "Poland - KSeF 2.0 (offline-first) with Odoo's l10n_pl_edi",
    "version": "18.0.1.0.0",
    "category": "Accounting/Localizations/EDI",
    "summary": "One sender, one verdict, one set of KSeF screens when Odoo's own KSeF module is installed too",
    "author": "l10n_pl_ksef contributors",
    "website": "https://github.com/l10n-pl-ksef/l10n_pl_ksef",
    "license": "LGPL-3",
    "depends": ["l10n_pl_ksef", "l10n_pl_edi"],
    "data": [
        "views/account_move_views.xml",
        "views/res_config_settings_views.xml",
    ],
    "post_init_hook": "_l10n_pl_ksef_edi_post_init",
    "auto_install": True,
    "installable": True,
    "application": False,
}

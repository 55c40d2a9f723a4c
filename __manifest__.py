{
    "name": "Poland - KSeF 2.0 e-invoicing (offline-first)",
    "version": "18.0.1.0.0",
    "category": "Accounting/Localizations/EDI",
    "summary": "Send Polish invoices to KSeF 2.0, keep invoicing offline, submit on time",
    "author": "l10n_pl_ksef contributors",
    "website": "https://github.com/l10n-pl-ksef/l10n_pl_ksef",
    "license": "LGPL-3",
    "depends": ["account", "l10n_pl", "certificate"],
    "external_dependencies": {
        "python": ["lxml", "cryptography", "requests", "qrcode", "holidays", "stdnum"],
    },
    "data": [
        "security/ir.model.access.csv",
        "views/l10n_pl_ksef_document_views.xml",
        "views/account_move_views.xml",
        "views/res_config_settings_views.xml",
        "views/menus.xml",
        "data/ir_cron_engine.xml",
    ],
    "post_init_hook": "_l10n_pl_ksef_post_init",
    "installable": True,
    "application": False,
}

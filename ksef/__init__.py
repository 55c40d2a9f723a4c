"""Pure-Python KSeF 2.0 core.

Nothing in this package imports Odoo: it is usable (and tested with pytest) on its own,
and the Odoo models of the add-on are thin wrappers around it.  Inside the package use
relative imports only, so it works both as ``ksef`` (pytest, ``python -m ksef.simulator``)
and as ``odoo.addons.l10n_pl_ksef.ksef``.
"""

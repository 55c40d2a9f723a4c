{
    "name": "KSeF benchmark: SQL query and memory counter (server-wide, bench only)",
    "version": "18.0.1.0.0",
    "summary": "Loaded with --load by scripts/bench_backlog_multi.py; never installed, not part of l10n_pl_ksef.",
    "author": "l10n_pl_ksef contributors",
    "license": "LGPL-3",
    "depends": ["base"],
    "installable": False,
}

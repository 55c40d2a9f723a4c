# pylint: disable=print-used  # a command-line program: printing is its output
# Benchmark (issue: foundation): build + validate + freeze of N posted invoices, against a plain
# Odoo post of the same invoices as the baseline, in one run.  Run inside `odoo shell` through
# scripts/bench_fa3.sh; everything is rolled back at the end.
import os
import statistics
import time

from odoo import Command, fields

N = int(os.environ.get("KSEF_BENCH_N", "1000"))
LINES = int(os.environ.get("KSEF_BENCH_LINES", "5"))
company = env.company
chart = env["account.chart.template"].with_company(company)
taxes = [chart.ref(x) for x in ("vs_kraj_23", "vs_kraj_8", "vs_kraj_5")]
partner = env["res.partner"].search([("vat", "=", "PL7251801126")], limit=1)
product = env["product.product"].search([("default_code", "=", "LAP-01")], limit=1)
today = fields.Date.context_today(env.user.with_context(tz="Europe/Warsaw"))  # the day KSeF counts in
moves = env["account.move"].create([{
    "move_type": "out_invoice",
    "partner_id": partner.id,
    "invoice_date": today,
    "invoice_line_ids": [Command.create({
        "product_id": product.id, "name": "Pozycja %d/%d" % (i, j), "quantity": 1 + j,
        "price_unit": 10.0 + i % 97 + j * 0.37, "tax_ids": [Command.set(taxes[j % 3].ids)],
    }) for j in range(LINES)],
} for i in range(N)])
env.flush_all()


def timed(label, action):
    times = []
    for move in moves:
        start = time.perf_counter()
        action(move)
        env.flush_all()
        times.append(time.perf_counter() - start)
    return times


def pct(values, q):
    return statistics.quantiles(values, n=100)[q - 1] * 1000


post = timed("post", lambda m: m.action_post())
freeze = timed("freeze", lambda m: m.action_l10n_pl_ksef_freeze())
assert all(moves.mapped("l10n_pl_ksef_xml_hash"))
print("invoices: %d, lines per invoice: %d" % (N, LINES))
print("%-34s %10s %10s %10s" % ("per invoice (ms)", "p50", "p95", "total s"))
print("%-34s %10.2f %10.2f %10.1f" % ("baseline: Odoo action_post", pct(post, 50), pct(post, 95), sum(post)))
print("%-34s %10.2f %10.2f %10.1f" % ("build + validate + freeze", pct(freeze, 50), pct(freeze, 95), sum(freeze)))
print("ratio freeze/post: p50 %.1f %%, p95 %.1f %%, total %.1f %%  (goal <= 30 %%)" % (
    100 * pct(freeze, 50) / pct(post, 50), 100 * pct(freeze, 95) / pct(post, 95), 100 * sum(freeze) / sum(post)))
env.cr.rollback()

# pylint: disable=print-used  # a command-line program: printing is its output
# Builds the offline backlog of the multi-company benchmark (scripts/bench_backlog.sh, mode
# "multi"), inside `odoo shell`, as a user would make it: invoices created through the ORM (many
# moves per `create`), one `action_post` per chunk, then issued offline with the product's own
# action (`action_l10n_pl_ksef_issue_offline24`: frozen FA(3), KOD II signed with the company's
# Offline certificate, deadline, chatter). No SQL writes.
#   KSEF_BENCH_STEP      companies: make the 3 Polish companies (idempotent, one process)
#                        invoices:  company KSEF_BENCH_COMPANY (its NIP) holds KSEF_BENCH_COUNT offline
#                                   invoices afterwards (resumes: only the missing ones are made)
#   KSEF_BENCH_CHUNK     moves per create/post/issue (1000)
import base64
import os
import time

from odoo import Command, fields

from odoo.addons.l10n_pl_ksef.ksef import devcerts

# company 1 is the demo company (scripts/demo_data.py); 2 and 3 are added here (valid NIPs)
COMPANIES = [
    ("5265877635", None),
    ("7770000005", {"name": "Bench Północ Sp. z o.o.", "street": "ul. Długa 1", "zip": "80-827", "city": "Gdańsk"}),
    ("9510000009", {"name": "Bench Południe Sp. z o.o.", "street": "ul. Floriańska 3", "zip": "31-019",
                    "city": "Kraków"}),
]
BUYER_VAT = "PL7251801126"
PRODUCT_CODE = "LAP-01"
STEP = os.environ.get("KSEF_BENCH_STEP", "invoices")
CHUNK = int(os.environ.get("KSEF_BENCH_CHUNK", "1000"))


def company_of(nip):
    return env["res.company"].search([("vat", "=", "PL" + nip)], limit=1)


def make_companies():
    admin = env.ref("base.user_admin")
    for nip, values in COMPANIES:
        company = company_of(nip)
        if not company:
            company = env["res.company"].create(dict(
                values, vat="PL" + nip, country_id=env.ref("base.pl").id, currency_id=env.ref("base.PLN").id))
            admin.company_ids = [Command.link(company.id)]
            env.user.company_ids = [Command.link(company.id)]
            env["account.chart.template"].try_loading("pl", company=company, install_demo=False)
            print("company %s (NIP %s) with the Polish chart of accounts" % (company.name, nip), flush=True)
        if not company.l10n_pl_ksef_offline_certificate_id:
            certificate, key = devcerts.make_certificate(devcerts.OFFLINE, nip, key_type="ec", name=company.name)
            cert_pem, key_pem = devcerts.to_pem(certificate, key)
            env["l10n_pl_ksef.certificate.upload"].create({
                "company_id": company.id, "name": "KSeF Offline (bench, ECDSA P-256)", "file_format": "pem",
                "certificate_file": base64.b64encode(cert_pem), "key_file": base64.b64encode(key_pem),
                "use_as_offline": True,
            }).action_upload()
        if not company.l10n_pl_ksef_responsible_id:
            company.l10n_pl_ksef_responsible_id = admin
        company.sudo().write({"l10n_pl_ksef_environment": "simulator", "l10n_pl_ksef_auth_method": "token",
                              "l10n_pl_ksef_batch_threshold": 10})
        env.cr.commit()
    print("companies ready: %s" % ", ".join(company_of(nip).name for nip, _values in COMPANIES), flush=True)


def make_invoices(nip, count):
    company = company_of(nip)
    user_env = env(context=dict(env.context, allowed_company_ids=[company.id], tracking_disable=True))
    chart = user_env["account.chart.template"].with_company(company)
    tax = chart.ref("vs_kraj_23")
    partner = user_env["res.partner"].search([("vat", "=", BUYER_VAT)], limit=1)
    product = user_env["product.product"].search([("default_code", "=", PRODUCT_CODE)], limit=1)
    Move = user_env["account.move"].with_company(company)
    today = fields.Date.context_today(Move.with_context(tz="Europe/Warsaw"))
    started = time.perf_counter()
    done = Move.search_count([("company_id", "=", company.id), ("l10n_pl_ksef_state", "=", "offline")])
    while done < count:
        size = min(CHUNK, count - done)
        moves = Move.create([{
            "move_type": "out_invoice", "partner_id": partner.id, "invoice_date": today,
            "invoice_line_ids": [Command.create({"product_id": product.id, "name": "Pozycja %d" % (done + i),
                                                 "quantity": 1 + (done + i) % 3, "price_unit": 10.0 + (done + i) % 97,
                                                 "tax_ids": [Command.set(tax.ids)]})],
        } for i in range(size)])
        moves.action_post()
        moves.action_l10n_pl_ksef_issue_offline24()
        env.cr.commit()
        done += size
        moves.invalidate_recordset()
        env.invalidate_all()
        print("  %s: %d/%d issued offline (%.0f s)" % (company.name, done, count, time.perf_counter() - started),
              flush=True)


if STEP == "companies":
    make_companies()
else:
    make_invoices(os.environ["KSEF_BENCH_COMPANY"], int(os.environ["KSEF_BENCH_COUNT"]))

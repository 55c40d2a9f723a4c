# pylint: disable=print-used  # a command-line program: printing is its output
# Run inside `odoo shell` (scripts/setup.sh does it): a Polish demo company with customers
# of every KSeF buyer kind and products at every VAT rate, ready to issue offline (an ECDSA P-256
# Offline certificate, a person responsible for submissions, the simulator's Latarnia) and in
# Polish (installed, used by the company, its Polish customers and the administrator).  Idempotent.
import base64
import os

from odoo import Command
from odoo.addons.l10n_pl_ksef.ksef import devcerts

company = env.ref("base.main_company")
if company.country_id.code != "PL" or not company.chart_template:
    company.write({
        "name": "Demo KSeF Sp. z o.o.",
        "vat": "PL5265877635",
        "street": "ul. Świętokrzyska 12",
        "zip": "00-916",
        "city": "Warszawa",
        "country_id": env.ref("base.pl").id,
        "currency_id": env.ref("base.PLN").id,
        "email": "faktury@demo-ksef.pl",
        "phone": "+48 22 123 45 67",
    })
    env["account.chart.template"].try_loading("pl", company=company, install_demo=False)
    env.ref("base.EUR").active = True
    env.ref("base.USD").active = True
    bank = env["res.partner.bank"].create({
        "acc_number": "PL61109010140000071219812874",
        "partner_id": company.partner_id.id,
    })
    env["account.journal"].search([("type", "=", "sale"), ("company_id", "=", company.id)], limit=1).bank_account_id = bank

Partner = env["res.partner"]
customers = [
    {"name": "Hurtownia Łódzka S.A.", "is_company": True, "vat": "PL7251801126", "street": "ul. Piotrkowska 100",
     "zip": "90-004", "city": "Łódź", "country_id": env.ref("base.pl").id},
    {"name": "Jan Kowalski", "is_company": False, "street": "ul. Długa 5/7", "zip": "80-827", "city": "Gdańsk",
     "country_id": env.ref("base.pl").id},
    {"name": "Berliner Handels GmbH", "is_company": True, "vat": "DE811907980", "street": "Friedrichstraße 43",
     "zip": "10117", "city": "Berlin", "country_id": env.ref("base.de").id},
    {"name": "Acme Trading Inc.", "is_company": True, "vat": "98-7654321", "street": "500 Fifth Avenue",
     "zip": "10110", "city": "New York", "country_id": env.ref("base.us").id},
]
for values in customers:
    if not Partner.search([("name", "=", values["name"])], limit=1):
        Partner.create(values)

# Polish: installed with every installed module's terms, used by the company, its Polish
# customers and the administrator (the README's outage rehearsal reads in Polish).
if not env["res.lang"].search([("code", "=", "pl_PL"), ("active", "=", True)]):
    env["base.language.install"].create({"lang_ids": [Command.set(env.ref("base.lang_pl").ids)]}).lang_install()
polish_customers = Partner.search([("name", "in", [c["name"] for c in customers]),
                                   ("country_id", "=", env.ref("base.pl").id)])
(company.partner_id | polish_customers).filtered(lambda p: p.lang != "pl_PL").write({"lang": "pl_PL"})
admin = env.ref("base.user_admin")
if admin.lang != "pl_PL":
    admin.lang = "pl_PL"
if not admin.tz:
    admin.tz = "Europe/Warsaw"

def tax(xmlid):
    return env["account.chart.template"].with_company(company).ref(xmlid, raise_if_not_found=False)

products = [
    ("Laptop biznesowy", "LAP-01", 4200.00, "vs_kraj_23"),
    ("Usługa wdrożeniowa (godz.)", "SRV-01", 250.00, "vs_kraj_usl_23"),
    ("Catering konferencyjny", "FOOD-08", 85.00, "vs_kraj_8"),
    ("Książka „KSeF w praktyce”", "BOOK-05", 79.90, "vs_kraj_5"),
    ("Szkolenie medyczne (zw)", "EDU-ZW", 1200.00, "vs_kraj_zw"),
    ("Dostawa wewnątrzwspólnotowa", "WDT-00", 1000.00, "vs_unia"),
    ("Eksport towarów", "EX-00", 1000.00, "vs_eksp_tow"),
    ("Usługa poza terytorium kraju (np)", "NP-01", 500.00, "vs_ekspu"),
    ("Pręty stalowe (odwrotne obciążenie)", "STAL-OO", 3000.00, "vs_stal"),
    ("Produkt 0% krajowy", "KR-00", 100.00, "vs_kraj_0"),
]
for name, code, price, tax_xmlid in products:
    if not env["product.product"].search([("default_code", "=", code)], limit=1):
        sale_tax = tax(tax_xmlid)
        env["product.product"].create({
            "name": name, "default_code": code, "list_price": price, "type": "consu",
            "taxes_id": [Command.set(sale_tax.ids)] if sale_tax else False,
        })
# Training on the built-in simulator (scripts/setup.sh starts it on 127.0.0.1).
if not company.l10n_pl_ksef_base_url:
    company.write({
        "l10n_pl_ksef_environment": "simulator",
        "l10n_pl_ksef_base_url": os.environ.get("KSEF_SIM_URL", "http://127.0.0.1:8765"),
        "l10n_pl_ksef_auth_method": "token",
        "l10n_pl_ksef_token": os.environ.get("KSEF_SIM_TOKEN", "demo-ksef-token"),
    })

# Offline-ready out of the box: an ECDSA P-256 KSeF-like Offline certificate of the company's NIP
# (self-made for the simulator: KOD II is signed and verifies, but only KSeF's own certificates
# pass the Ministry's scan), the administrator responsible for submissions, the simulator's Latarnia.
if not company.l10n_pl_ksef_offline_certificate_id:
    certificate, key = devcerts.make_certificate(devcerts.OFFLINE, "5265877635", key_type="ec", name=company.name)
    cert_pem, key_pem = devcerts.to_pem(certificate, key)
    env["l10n_pl_ksef.certificate.upload"].create({
        "company_id": company.id, "name": "KSeF Offline (demo, ECDSA P-256)", "file_format": "pem",
        "certificate_file": base64.b64encode(cert_pem), "key_file": base64.b64encode(key_pem),
        "use_as_offline": True,
    }).action_upload()
if not company.l10n_pl_ksef_responsible_id:
    company.l10n_pl_ksef_responsible_id = admin
if not company.l10n_pl_ksef_latarnia_url and company.l10n_pl_ksef_environment == "simulator":
    company.l10n_pl_ksef_latarnia_url = company.l10n_pl_ksef_base_url

# Servers without internet validate against a local copy of the FA(3) schema.
xsd_folder = os.environ.get("KSEF_XSD_DIR")
if xsd_folder and os.path.isdir(xsd_folder):
    env["ir.config_parameter"].sudo().set_param("l10n_pl_ksef.xsd_path", xsd_folder)
env.cr.commit()
print("demo data ready for", company.name)

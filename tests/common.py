import base64
import os
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path

import requests
from lxml import etree

from odoo import Command, fields
from odoo.addons.account.tests.common import AccountTestInvoicingCommon

from ..ksef import devcerts, fa3
from ..ksef.simulator import start_subprocess, stop_subprocess

NS = {"fa": fa3.NAMESPACE}


def shared_dir():
    """The read-only reference data beside the checkout (../shared), or $KSEF_SHARED."""
    if os.environ.get("KSEF_SHARED"):
        return Path(os.environ["KSEF_SHARED"])
    return Path(__file__).resolve().parents[1].parent / "shared"


class KsefTestCommon(AccountTestInvoicingCommon):
    """A Polish company on Odoo's Polish chart, buyers of every KSeF kind, the FA(3)
    schema from ../shared, and an accountant without administrator rights."""

    @classmethod
    @AccountTestInvoicingCommon.setup_country("pl")
    def setUpClass(cls):
        super().setUpClass()
        cls.env["ir.config_parameter"].sudo().set_param(
            "l10n_pl_ksef.xsd_path", str(shared_dir() / "ksef" / "xsd" / "FA3"))
        cls.company = cls.company_data["company"]
        cls.company.write({
            "name": "Firma Testowa Sp. z o.o.",
            "vat": "PL5265877635",
            "street": "ul. Marszałkowska 1",
            "zip": "00-001",
            "city": "Warszawa",
            "email": "biuro@firma-testowa.pl",
        })
        ChartTemplate = cls.env["account.chart.template"].with_company(cls.company)
        cls.tax_23 = ChartTemplate.ref("vs_kraj_23")
        cls.tax_8 = ChartTemplate.ref("vs_kraj_8")
        cls.tax_5 = ChartTemplate.ref("vs_kraj_5")
        cls.tax_0 = ChartTemplate.ref("vs_kraj_0")
        cls.tax_zw = ChartTemplate.ref("vs_kraj_zw")
        cls.tax_wdt = ChartTemplate.ref("vs_unia")
        cls.tax_export = ChartTemplate.ref("vs_eksp_tow")
        cls.tax_np = ChartTemplate.ref("vs_ekspu")
        cls.tax_oo = ChartTemplate.ref("vs_stal")
        cls.pl = cls.env.ref("base.pl")
        cls.buyer_pl = cls.env["res.partner"].create({
            "name": "Hurtownia Łódzka S.A.", "is_company": True, "vat": "PL7251801126",
            "street": "ul. Piotrkowska 100", "zip": "90-004", "city": "Łódź", "country_id": cls.pl.id,
        })
        cls.buyer_consumer = cls.env["res.partner"].create({
            "name": "Jan Kowalski", "street": "ul. Długa 5", "zip": "80-827", "city": "Gdańsk",
            "country_id": cls.pl.id,
        })
        cls.buyer_eu = cls.env["res.partner"].create({
            "name": "Berliner Handels GmbH", "is_company": True, "vat": "DE811907980",
            "street": "Friedrichstraße 43", "zip": "10117", "city": "Berlin", "country_id": cls.env.ref("base.de").id,
        })
        cls.buyer_foreign = cls.env["res.partner"].create({
            "name": "Acme Trading Inc.", "is_company": True, "vat": "98-7654321",
            "street": "500 Fifth Avenue", "zip": "10110", "city": "New York", "country_id": cls.env.ref("base.us").id,
        })
        cls.product = cls.env["product.product"].create({"name": "Usługa", "default_code": "SRV", "list_price": 100.0})
        # Everything in these tests must work for an accountant who is no administrator: neither of
        # Settings (secrets) nor of Accounting (hence a KSeF user, not a KSeF manager).
        cls.user.sudo().groups_id = [Command.unlink(cls.env.ref(xmlid).id) for xmlid in (
            "base.group_system", "base.group_erp_manager", "account.group_account_manager",
            "l10n_pl_ksef.group_l10n_pl_ksef_manager")]

    @classmethod
    def setup_other_currency(cls, code, **kwargs):
        # Activating a currency and its rates is an administrator's set-up, not the accountant's flow.
        env, cls.env = cls.env, cls.env(su=True)
        try:
            return super().setup_other_currency(code, **kwargs).with_env(env)
        finally:
            cls.env = env

    @classmethod
    def _ksef_invoice(cls, partner=None, lines=None, move_type="out_invoice", post=True, **values):
        """lines: (price_unit, taxes, extra line values) tuples."""
        lines = lines or [(100.0, cls.tax_23, {})]
        move = cls.env["account.move"].create({
            "move_type": move_type,
            "partner_id": (partner or cls.buyer_pl).id,
            "invoice_date": values.pop("invoice_date", fields.Date.today()),
            "invoice_line_ids": [
                Command.create({
                    "product_id": cls.product.id,
                    "name": extra.get("name", "Usługa"),
                    "quantity": extra.get("quantity", 1.0),
                    "price_unit": price,
                    "discount": extra.get("discount", 0.0),
                    "tax_ids": [Command.set(taxes.ids)],
                })
                for price, taxes, extra in lines
            ],
            **values,
        })
        if post:
            move.action_post()
        return move

    def _parse(self, xml_bytes):
        return etree.fromstring(xml_bytes)

    def _total(self, root, element):
        node = root.find("fa:Fa/fa:%s" % element, NS)
        return Decimal(node.text) if node is not None else None

    def _sum_totals(self, root, prefix):
        return sum((Decimal(n.text) for n in root.find("fa:Fa", NS)
                    if etree.QName(n).localname.startswith(prefix) and not etree.QName(n).localname.endswith("W")),
                   Decimal(0))


class KsefSimulatorCommon(KsefTestCommon):
    """A real `python -m ksef.simulator` subprocess on a free 127.0.0.1 port, its state in a
    temporary folder, a KSeF token for the company NIP; the company connected to it."""

    ksef_nip = "5265877635"
    ksef_token = "sim-token-5265877635-online-tests"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ksef_state_dir = tempfile.mkdtemp(prefix="ksef-sim-")
        cls.addClassCleanup(shutil.rmtree, cls.ksef_state_dir, True)
        cls.ksef_process, cls.ksef_url = start_subprocess(
            Path(cls.ksef_state_dir) / "state.db", tokens=["%s:%s" % (cls.ksef_nip, cls.ksef_token)],
            rate_limits="off", processing_delay=0.1, xsd_dir=shared_dir() / "ksef" / "xsd" / "FA3")
        cls.addClassCleanup(stop_subprocess, cls.ksef_process)
        cls.company.sudo().write({
            "l10n_pl_ksef_environment": "simulator",
            "l10n_pl_ksef_base_url": cls.ksef_url,
            "l10n_pl_ksef_auth_method": "token",
            "l10n_pl_ksef_token": cls.ksef_token,
            "l10n_pl_ksef_timeout": 10.0,
        })

    @classmethod
    def ksef_control(cls, action, payload=None, method="POST"):
        answer = requests.request(method, "%s/_control/%s" % (cls.ksef_url, action), json=payload, timeout=10)
        answer.raise_for_status()
        return answer.json()

    def setUp(self):
        super().setUp()
        # Each test rolls Odoo back (invoice numbers are reused): KSeF must forget as well.
        self.ksef_control("reset")
        self.addCleanup(self.ksef_control, "faults/clear")


KSEF_TEST_NIP = "5265877635"


class KsefOfflineTestMixin:
    """Uploads KSeF look-alike certificates through the upload wizard, as an administrator."""

    @classmethod
    def _ksef_make_certificate(cls, kind=devcerts.OFFLINE, nip=KSEF_TEST_NIP, key_type="ec", **kwargs):
        return devcerts.make_certificate(kind, nip, key_type=key_type, **kwargs)

    @classmethod
    def _ksef_upload_certificate(cls, certificate=None, key=None, file_format="pem", password=None,
                                 use_as_offline=True, company=None, name="KSeF Offline", **make):
        if certificate is None:
            certificate, key = cls._ksef_make_certificate(**make)
        if file_format == "pkcs12":
            values = {"certificate_file": base64.b64encode(devcerts.to_pkcs12(certificate, key, password or "secret"))}
        else:
            cert_pem, key_pem = devcerts.to_pem(certificate, key, password)
            values = {"certificate_file": base64.b64encode(cert_pem), "key_file": base64.b64encode(key_pem)}
        wizard = cls.env["l10n_pl_ksef.certificate.upload"].sudo().create({
            "company_id": (company or cls.company).id,
            "name": name,
            "file_format": file_format,
            "password": password or ("secret" if file_format == "pkcs12" else False),
            "use_as_offline": use_as_offline,
            **values,
        })
        wizard.action_upload()
        return wizard.certificate_id, certificate, key

    @classmethod
    def _ksef_setup_offline_issuing(cls, fallback="auto"):
        """The company on the simulator issues offline: an uploaded Offline certificate
        (``cls.certificate``), the fallback policy, the simulator's Latarnia; and invoices print
        at once: wkhtmltopdf would fetch the CSS from this very server, whose requests wait on the
        test transaction, so it is pointed at a closed port (the codes are styled inline)."""
        cls.certificate, cls.x509, cls.key = cls._ksef_upload_certificate()
        cls.env["ir.config_parameter"].sudo().set_param("report.url", "http://127.0.0.1:9")
        cls.company.sudo().write({"l10n_pl_ksef_offline_fallback": fallback,
                                  "l10n_pl_ksef_latarnia_url": cls.ksef_url})

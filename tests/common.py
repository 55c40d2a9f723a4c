import base64
import os
import shutil
import subprocess
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import requests
from lxml import etree

from odoo import Command
from odoo.addons.account.tests.common import AccountTestInvoicingCommon

from ..ksef import devcerts, fa3
from ..ksef import qr as ksef_qr
from ..ksef.simulator import start_subprocess, stop_subprocess
from ..ksef.simulator.testing import SimClient, warsaw_today

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
            "invoice_date": values.pop("invoice_date", warsaw_today()),
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

    def _ksef_sim_client(self):
        """A reference client logged in to the simulator as the company: another system (or an
        earlier sending) acting in its name."""
        sim = SimClient(self.ksef_url)
        sim.login(self.ksef_nip, self.ksef_token)
        return sim

    def _ksef_sent_elsewhere(self, xml):
        """``xml`` sent to KSeF in the company's name by another system; accepted, its KSeF number."""
        sim = self._ksef_sim_client()
        reference = sim.open_online().json()["referenceNumber"]
        sent = sim.send(reference, xml).json()["referenceNumber"]
        status = sim.wait_invoice(reference, sent)
        self.assertEqual(status["status"]["code"], 200, status)
        return status["ksefNumber"]


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


class KsefPrintedPdfMixin:
    """The printed invoice read back as a person and a phone would: its text (pdftotext) and its
    QR codes (rasterised at 200 dpi, decoded with zbarimg)."""

    def _render(self, move):
        pdf, _type = self.env["ir.actions.report"].with_context(force_report_rendering=True)._render_qweb_pdf(
            "account.account_invoices", move.ids)
        self.assertTrue(pdf.startswith(b"%PDF"))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "invoice.pdf"
            path.write_bytes(pdf)
            text = subprocess.run(["pdftotext", "-raw", str(path), "-"], capture_output=True, check=True).stdout.decode()
            text = " ".join(text.split())  # words as printed, whatever the line breaks
            subprocess.run(["pdftoppm", "-r", "200", "-png", str(path), str(Path(tmp) / "page")], check=True)
            codes = []
            for page in sorted(Path(tmp).glob("page*.png")):
                run = subprocess.run(["/usr/bin/zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(page)],
                                     capture_output=True)
                self.assertIn(run.returncode, (0, 4), run.stderr)  # 4 = no code on this page
                codes += [line for line in run.stdout.decode().splitlines() if line]
        return text, codes

    def _kod1(self, move):
        return ksef_qr.invoice_url_from_hash("test", KSEF_TEST_NIP, move.invoice_date, move.l10n_pl_ksef_xml_hash)


COMPANY_SETTINGS = (
    "l10n_pl_ksef_environment", "l10n_pl_ksef_base_url", "l10n_pl_ksef_latarnia_url", "l10n_pl_ksef_auth_method",
    "l10n_pl_ksef_token", "l10n_pl_ksef_offline_certificate_id", "l10n_pl_ksef_latarnia_status",
)


class KsefDrillTestMixin:
    """The drill's own simulator subprocess, a KSeF manager who runs drills and the helpers of a
    drill flow (shared by the drill tests and the Polish interface tests)."""

    @classmethod
    def _ksef_setup_drill(cls, **manager_values):
        cls.drill_state_dir = tempfile.mkdtemp(prefix="ksef-drill-")
        cls.addClassCleanup(shutil.rmtree, cls.drill_state_dir, True)
        cls.drill_process, cls.drill_url = start_subprocess(
            Path(cls.drill_state_dir) / "drill.db", rate_limits="off", processing_delay=0.05,
            xsd_dir=shared_dir() / "ksef" / "xsd" / "FA3")
        cls.addClassCleanup(stop_subprocess, cls.drill_process)
        # A KSeF manager (accounting administrator) without Settings rights runs the drill.
        cls.manager = cls.env["res.users"].sudo().create({
            "name": "Kierownik Księgowości", "login": "ksef-drill-manager",
            "company_id": cls.company.id, "company_ids": [Command.set(cls.company.ids)],
            "groups_id": [Command.set([cls.env.ref("account.group_account_manager").id,
                                       cls.env.ref("base.group_user").id])],
            **manager_values,
        }).sudo(False)
        cls.real_journal = cls.company_data["default_journal_sale"]

    def setUp(self):
        super().setUp()
        self._reset_drill_simulator()   # each test starts on an empty drill simulator

    def _settings(self):
        company = self.company.sudo()
        return {name: company[name] for name in COMPANY_SETTINGS}

    def _reset_drill_simulator(self):
        requests.post(self.drill_url + "/_control/reset", json={}, timeout=10).raise_for_status()

    def _drill(self, offsets=(0, 10, 10, 20)):
        drill = self.env["l10n_pl_ksef.drill"].with_user(self.manager).create(
            {"name": "Ćwiczenia awaria", "company_id": self.company.id, "simulator_url": self.drill_url})
        self.assertEqual(drill.step_ids.mapped("action"), [
            "connection_lost", "connection_restored", "latarnia:failure_start", "latarnia:failure_end"])
        for step, offset in zip(drill.step_ids, offsets):
            step.offset_minutes = offset
        return drill

    def _user_invoice(self, journal=None, post=True):
        """An invoice the accountant issues as usual (the journal chosen by Odoo unless given)."""
        values = {
            "move_type": "out_invoice", "partner_id": self.buyer_pl.id, "invoice_date": warsaw_today(),
            "invoice_line_ids": [Command.create({"product_id": self.product.id, "name": "Usługa", "quantity": 1,
                                                 "price_unit": 100.0, "tax_ids": [Command.set(self.tax_23.ids)]})],
        }
        if journal:
            values["journal_id"] = journal.id
        move = self.env["account.move"].with_user(self.user).create(values)
        if post:
            move.action_post()
        return move

    def _counters(self, url):
        return requests.get(url + "/_control/counters", timeout=10).json()

    def _wait_script(self, count):
        """The step at minute 0 is played by the simulator's own clock (within about a second)."""
        for _attempt in range(50):
            script = requests.get(self.drill_url + "/_control/script", timeout=10).json()
            if sum(1 for step in script["steps"] if step.get("appliedAt")) >= count:
                return script
            time.sleep(0.1)
        self.fail("the simulator did not play the first step")

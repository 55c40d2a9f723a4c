"""Issue 11, finding 11: bad inputs get a clear, translated message and leave nothing half-written."""
import datetime

import pytz
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from odoo import Command
from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from ..ksef import devcerts
from ..ksef.ksef_number import make_ksef_number
from .common import KSEF_TEST_NIP, KsefOfflineTestMixin, KsefSimulatorCommon
from ..ksef.simulator.testing import warsaw_today


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefBadInputs(KsefOfflineTestMixin, KsefSimulatorCommon):

    def test_offline_certificate_with_a_weak_key_is_refused(self):
        for key, label in ((rsa.generate_private_key(public_exponent=65537, key_size=1024), "RSA 1024"),
                           (ec.generate_private_key(ec.SECP384R1()), "secp384r1")):
            certificate, key = devcerts.make_certificate(devcerts.OFFLINE, KSEF_TEST_NIP, private_key=key)
            with self.assertRaisesRegex(UserError, "2048.*P-256") as caught:
                self._ksef_upload_certificate(certificate, key)
            self.assertIn(label, str(caught.exception))
        self.assertFalse(self.company.sudo().l10n_pl_ksef_offline_certificate_id)
        self.assertFalse(self.env["certificate.certificate"].sudo().search([("scope", "=", "l10n_pl_ksef")]))
        # RSA 2048 and EC P-256 pass.
        for key_type in ("rsa", "ec"):
            stored, _x509, _key = self._ksef_upload_certificate(key_type=key_type)
            self.assertTrue(stored)

    def test_timeout_must_be_a_waiting_time(self):
        company = self.company.sudo()
        for timeout in (-1.0, 0.0):
            with self.assertRaisesRegex(ValidationError, "KSeF timeout"):
                with self.env.cr.savepoint():
                    company.l10n_pl_ksef_timeout = timeout
        with self.assertRaisesRegex(ValidationError, "KSeF timeout"):
            with self.env.cr.savepoint():
                self.env["res.config.settings"].sudo().create({"l10n_pl_ksef_timeout": -3.0}).execute()
        self.assertEqual(company.l10n_pl_ksef_timeout, 10.0)

    def test_ksef_address_must_be_a_web_address(self):
        company = self.company.sudo()
        for field in ("l10n_pl_ksef_base_url", "l10n_pl_ksef_latarnia_url"):
            for url in ("file:///etc/passwd", "ftp://ksef.mf.gov.pl", "http://admin:haslo@127.0.0.1:8765"):
                with self.assertRaisesRegex(ValidationError, "not a web address"), self.env.cr.savepoint():
                    company.write({field: url})
        self.assertEqual(company.l10n_pl_ksef_base_url, self.ksef_url)
        # ... so Post to KSeF never takes such an address for an outage: it still reaches the real one.
        move = self._ksef_invoice()
        move.action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")

    def test_a_ksef_number_another_invoice_holds_is_explained(self):
        """KSeF numbers the first online invoice of the (fresh) simulator predictably; an invoice of
        this database already carries that number (e.g. a restored copy)."""
        today = datetime.datetime.now(pytz.timezone("Europe/Warsaw")).date()
        taken = make_ksef_number(KSEF_TEST_NIP, today, "%02X%010X" % (1, 1))
        holder = self._ksef_invoice()
        holder.action_l10n_pl_ksef_freeze()
        # accepted by this very KSeF environment: numbers are unique per environment
        holder._l10n_pl_ksef_write({"l10n_pl_ksef_state": "accepted", "l10n_pl_ksef_number": taken,
                                    "l10n_pl_ksef_number_environment": holder._l10n_pl_ksef_number_environment_key()})
        move = self._ksef_invoice()
        with mute_logger("odoo.sql_db"):
            move.action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "sending", "no number it cannot hold")
        self.assertFalse(move.l10n_pl_ksef_number)
        self.assertIn(holder.name, move.l10n_pl_ksef_error)
        self.assertIn(taken, move.l10n_pl_ksef_error)
        self.assertEqual(holder.l10n_pl_ksef_number, taken)
        # Asking KSeF again gives the same clear answer, never a database error.
        with mute_logger("odoo.sql_db"):
            move.action_l10n_pl_ksef_refresh_status()
        self.assertIn(holder.name, move.l10n_pl_ksef_error)

    def test_an_invoice_over_one_megabyte_is_said_to_be_too_large(self):
        long_name = "Usługa doradcza - " + "opis szczegółowy zakresu prac " * 16
        move = self.env["account.move"].create({
            "move_type": "out_invoice", "partner_id": self.buyer_pl.id, "invoice_date": warsaw_today(),
            "invoice_line_ids": [Command.create({"product_id": self.product.id, "name": long_name[:500], "quantity": 1,
                                                 "price_unit": 10.0, "tax_ids": [Command.set(self.tax_23.ids)]})
                                 for _index in range(1500)],
        })
        move.action_post()
        with self.assertRaisesRegex(UserError, r"(?s)%s.*bytes.*1000000" % move.name.replace("/", ".")) as caught:
            move.action_l10n_pl_ksef_post()
        self.assertNotIn("schema", str(caught.exception))
        self.assertFalse(move.l10n_pl_ksef_xml_id)
        self.assertFalse(move.l10n_pl_ksef_state)

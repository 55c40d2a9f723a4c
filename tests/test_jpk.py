import csv
import datetime
import io
import zipfile

from freezegun import freeze_time
from lxml import etree

from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from ..ksef import evidence as ksef_evidence
from ..models.account_move_ksef_evidence import _safe
from .common import KsefOfflineTestMixin, KsefSimulatorCommon
from ..ksef.simulator.testing import warsaw_today

D = datetime.date
OCTOBER = (D(2026, 10, 1), D(2026, 10, 31))
BEFORE_FLUSH = D(2026, 11, 20)


@tagged("post_install_l10n", "post_install", "-at_install")
class TestJpkRegister(KsefOfflineTestMixin, KsefSimulatorCommon):
    """October 2026 of a Polish company: an invoice sent online, one issued offline24, one in
    emergency mode, one in a total failure, one to a consumer outside KSeF and a receipt. The
    JPK_VAT is filed on 20 November, before the offline ones reach KSeF; after the flush the
    offline24 invoice (filed as DI) asks for a correction, the emergency one (OFF) does not."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._ksef_setup_offline_issuing(fallback="auto")

    def _event(self, category, notice):
        now = datetime.datetime.now().replace(microsecond=0)
        return self.env["l10n_pl_ksef.event"].sudo().create({
            "source": "bip", "category": category, "date_start": now - datetime.timedelta(hours=1),
            "published": now - datetime.timedelta(hours=1), "notice_ref": notice, "title": notice})

    def _month(self):
        user = self.user
        online = self._ksef_invoice(invoice_date=D(2026, 10, 5)).with_user(user)
        # KSeF numbered it on 15 November (the simulator's clock said so).
        self.ksef_control("config", {"clock_offset": -15 * 86400})
        online.action_l10n_pl_ksef_post()
        self.ksef_control("config", {"clock_offset": 0})
        self.assertEqual(online.l10n_pl_ksef_state, "accepted")

        offline24 = self._ksef_invoice(invoice_date=D(2026, 10, 8), lines=[(200.0, self.tax_8, {})]).with_user(user)
        self.ksef_control("faults", {"down": True})
        offline24.action_l10n_pl_ksef_post()
        self.assertEqual(offline24.l10n_pl_ksef_offline_mode, "offline24")

        self._event("FAILURE", "K/2026/AWR/07")
        emergency = self._ksef_invoice(invoice_date=D(2026, 10, 12)).with_user(user)
        emergency._l10n_pl_ksef_issue_offline("emergency")
        self.assertEqual(emergency.l10n_pl_ksef_state, "offline")

        self._event("TOTAL_FAILURE", "K/2026/AWR/08")
        total = self._ksef_invoice(invoice_date=D(2026, 10, 14)).with_user(user)
        total._l10n_pl_ksef_issue_offline("total_failure")
        self.assertEqual(total.l10n_pl_ksef_state, "outside")

        b2c = self._ksef_invoice(partner=self.buyer_consumer, invoice_date=D(2026, 10, 20),
                                 lines=[(50.0, self.tax_5, {})]).with_user(user)
        receipt = self._ksef_invoice(move_type="out_receipt", partner=self.buyer_consumer,
                                     invoice_date=D(2026, 10, 21)).with_user(user)
        return online, offline24, emergency, total, b2c, receipt

    def test_register_before_and_after_the_flush(self):
        online, offline24, emergency, total, b2c, receipt = self._month()
        Period = self.env["l10n_pl_ksef.jpk.period"].with_user(self.user)
        period = Period.create({"date_from": OCTOBER[0], "date_to": OCTOBER[1]})
        self.assertEqual(period.name, "2026-10")
        by_move = {line.move_id: line for line in period.line_ids}
        self.assertEqual(set(by_move), {online, offline24, emergency, total, b2c, receipt})
        self.assertEqual(by_move[online].value, online.l10n_pl_ksef_number)
        self.assertEqual(online.l10n_pl_ksef_jpk_value, online.l10n_pl_ksef_number)
        self.assertEqual(offline24.l10n_pl_ksef_jpk_marker, "DI")
        self.assertEqual(emergency.l10n_pl_ksef_jpk_marker, "OFF")

        # Filed on 20 November: before the flush, after the online invoice's number (15 November).
        wizard = self.env["l10n_pl_ksef.jpk.filing"].with_user(self.user).create(
            {"period_id": period.id, "filing_date": BEFORE_FLUSH})
        wizard.action_confirm()
        self.assertEqual((period.state, period.filing_date), ("filed", BEFORE_FLUSH))
        expected = {online: online.l10n_pl_ksef_number, offline24: "DI", emergency: "OFF", total: "BFK",
                    b2c: "BFK", receipt: "DI"}
        self.assertEqual({line.move_id: line.value for line in period.line_ids}, expected)
        by_move = {line.move_id: line for line in period.line_ids}
        self.assertTrue(by_move[offline24].will_need_correction)
        self.assertFalse(by_move[emergency].will_need_correction)
        self.assertFalse(period.needs_correction)
        # Amounts per rate, in the books' currency.
        self.assertAlmostEqual(by_move[offline24].net_8, 200.0)
        self.assertAlmostEqual(by_move[offline24].vat_8, 16.0)
        self.assertAlmostEqual(by_move[online].vat_23, 23.0)
        self.assertAlmostEqual(by_move[b2c].vat_5, 2.5)
        self.assertEqual(by_move[online].partner_vat, "PL7251801126")

        # KSeF is back: the offline invoices are flushed.
        self.ksef_control("faults/clear")
        for move in (offline24, emergency):
            move.action_l10n_pl_ksef_post()
            self.assertEqual(move.l10n_pl_ksef_state, "accepted")
        today = warsaw_today()
        self.assertEqual(offline24._l10n_pl_ksef_jpk_marking(today).ksef_number, offline24.l10n_pl_ksef_number)
        self.assertEqual(offline24._l10n_pl_ksef_jpk_marking(BEFORE_FLUSH).marker, "DI")
        self.assertEqual(emergency._l10n_pl_ksef_jpk_marking(today).ksef_number, emergency.l10n_pl_ksef_number)

        # The filed register stays as filed; only the DI line of the offline24 invoice needs a correction.
        period.invalidate_recordset()
        self.assertEqual({line.move_id: line.value for line in period.line_ids}, expected)
        self.assertEqual(period.line_ids.filtered("needs_correction").move_id, offline24)
        self.assertTrue(period.needs_correction)
        action = Period.action_l10n_pl_ksef_periods_to_correct()
        self.assertEqual(Period.search(action["domain"]), period)
        self.assertEqual(Period.search([("needs_correction", "=", True)]), period)

        # Exports carry the same values.
        content = period._l10n_pl_ksef_export_csv().decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(content), delimiter=";"))
        self.assertEqual(len(rows), 7)
        self.assertIn("DI", [cell for row in rows for cell in row])
        self.assertIn(online.l10n_pl_ksef_number, content)
        xlsx = period._l10n_pl_ksef_export_xlsx()
        with zipfile.ZipFile(io.BytesIO(xlsx)) as book:
            strings = etree.fromstring(book.read("xl/sharedStrings.xml"))
        texts = {node.text for node in strings.iter("{*}t")}
        self.assertTrue({"OFF", "BFK", "DI", online.l10n_pl_ksef_number, offline24.name} <= texts, texts)
        action = period.action_l10n_pl_ksef_export_xlsx()
        self.assertTrue(action["url"].startswith("/web/content/"))

        # An invoice posted into October after the filing: added, flagged; the filed lines stay.
        late = self._ksef_invoice(partner=self.buyer_consumer, invoice_date=D(2026, 10, 30)).with_user(self.user)
        period.action_l10n_pl_ksef_refresh()
        late_line = period.line_ids.filtered(lambda line: line.move_id == late)
        self.assertTrue(late_line.added_after_filing and late_line.needs_correction)
        self.assertEqual({line.move_id: line.value for line in period.line_ids if line.move_id != late}, expected)
        self.assertEqual(period.correction_count, 2)

        # The evidence pack of the period's offline invoices: one folder each.
        data = period.line_ids.move_id.filtered("l10n_pl_ksef_offline_mode")._l10n_pl_ksef_evidence_pack()
        self.assertEqual(ksef_evidence.verify_zip(data), [])
        with zipfile.ZipFile(io.BytesIO(data)) as pack:
            folders = {name.split("/")[0] for name in pack.namelist() if "/" in name}
        self.assertTrue({_safe(offline24.name), _safe(emergency.name), _safe(total.name)} <= folders, folders)
        self.assertTrue(period.action_l10n_pl_ksef_evidence_pack()["url"].startswith("/web/content/"))

    def test_filing_date_proposed_is_warsaw_day(self):
        """At 00:30 in Warsaw (23:30 UTC) the filing wizard proposes Warsaw's day, whatever the
        user's time zone."""
        period = self.env["l10n_pl_ksef.jpk.period"].with_user(self.user).create(
            {"date_from": OCTOBER[0], "date_to": OCTOBER[1]})
        for tz in (False, "America/New_York"):
            self.user.tz = tz
            with freeze_time("2026-11-30 23:30:00"):
                wizard = self.env["l10n_pl_ksef.jpk.filing"].with_user(self.user).create({"period_id": period.id})
            self.assertEqual(wizard.filing_date, D(2026, 12, 1), tz)

    def test_filing_is_forge_proof_and_checked(self):
        self._ksef_invoice(invoice_date=D(2026, 10, 5))
        Period = self.env["l10n_pl_ksef.jpk.period"].with_user(self.user)
        period = Period.create({"date_from": OCTOBER[0], "date_to": OCTOBER[1]})
        # Over RPC, as the accountant: the filing facts and the lines cannot be written.
        with self.assertRaises(AccessError):
            period.write({"filing_date": BEFORE_FLUSH, "state": "filed"})
        with self.assertRaises(AccessError):
            Period.create({"date_from": D(2026, 9, 1), "date_to": D(2026, 9, 30), "state": "filed"})
        with self.assertRaises(AccessError):
            period.line_ids[:1].write({"marker": "OFF"})
        with self.assertRaises(AccessError):
            self.env["l10n_pl_ksef.jpk.line"].with_user(self.user).create({"period_id": period.id, "marker": "OFF"})
        # Bad filing dates: before the end of the period, in the future.
        with self.assertRaisesRegex(UserError, "2026-10.*must be after the end of the period"):
            period._l10n_pl_ksef_record_filing(D(2026, 10, 31))
        with self.assertRaisesRegex(UserError, "2026-10.*in the future"):
            period._l10n_pl_ksef_record_filing(warsaw_today() + datetime.timedelta(days=1))
        self.assertEqual(period.state, "open")
        period._l10n_pl_ksef_record_filing(BEFORE_FLUSH)
        with self.assertRaisesRegex(UserError, "kept as evidence"):
            period.unlink()

import io
import json
import subprocess
import tempfile
import zipfile
from pathlib import Path

from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from ..ksef import evidence as ksef_evidence
from ..ksef import qr as ksef_qr
from .common import KsefOfflineTestMixin, KsefSimulatorCommon


def pdf_text(pdf):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "summary.pdf"
        path.write_bytes(pdf)
        text = subprocess.run(["pdftotext", "-raw", str(path), "-"], capture_output=True, check=True).stdout.decode()
    return " ".join(text.split())


@tagged("post_install_l10n", "post_install", "-at_install")
class TestEvidencePack(KsefOfflineTestMixin, KsefSimulatorCommon):
    """An invoice issued offline24 while KSeF is down; Latarnia announces a failure (its deadline
    moves) and its end; KSeF is back and the invoice is sent. The accountant downloads the
    evidence pack: the ZIP and its PDF are read back."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._ksef_setup_offline_issuing(fallback="auto")

    def _latarnia(self, action, **values):
        return self.ksef_control("latarnia", {"action": action, **values})

    def test_pack_holds_everything_an_inspector_asks_for(self):
        move = self._ksef_invoice().with_user(self.user)
        self.ksef_control("faults", {"down": True})
        move.action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_offline_mode, "offline24")
        offline24_deadline = move.l10n_pl_ksef_deadline
        self.ksef_control("faults/clear")

        started = self._latarnia("failure_start", title="Awaria KSeF", text="Trwa awaria systemu KSeF.")
        self.company._l10n_pl_ksef_poll_latarnia()
        self.assertNotEqual(move.l10n_pl_ksef_deadline, offline24_deadline, "the failure moved the deadline")
        ended = self._latarnia("failure_end", eventId=started["eventId"], text="Awaria usunięta.")
        self.company._l10n_pl_ksef_poll_latarnia()
        self.company._l10n_pl_ksef_poll_latarnia()  # the same notices again: archived once
        events = move.sudo().l10n_pl_ksef_evidence_event_ids
        self.assertTrue(events, "the notice that moved the deadline is linked to the invoice")

        move.action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")

        action = move.action_l10n_pl_ksef_evidence_pack()
        self.assertTrue(action["url"].startswith("/web/content/"))
        data = move.with_context(force_report_rendering=True)._l10n_pl_ksef_evidence_pack()
        self.assertEqual(ksef_evidence.verify_zip(data), [], "every file matches SHA256SUMS")
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
        xml_name = next(n for n in names if n.startswith("FA3_") and n.endswith(".xml"))
        self.assertEqual(archive.read(xml_name), move.sudo().l10n_pl_ksef_xml_id.raw, "the frozen bytes, unchanged")
        hashes = archive.read(xml_name[:-4] + ".sha256.txt").decode()
        self.assertIn(move.l10n_pl_ksef_xml_hash, hashes)
        # Printed codes: KOD I OFFLINE and KOD II as printed while offline, KOD I with the number now.
        kod1 = ksef_qr.invoice_url_from_hash("test", self.ksef_nip, move.invoice_date, move.l10n_pl_ksef_xml_hash)
        self.assertEqual(archive.read("codes/KOD_I_offline.txt").decode().split("\n")[1:3], ["OFFLINE", kod1])
        self.assertIn(move.l10n_pl_ksef_qr_certificate_url, archive.read("codes/KOD_II.txt").decode())
        self.assertIn(move.l10n_pl_ksef_number, archive.read("codes/KOD_I_now.txt").decode())
        self.assertTrue(archive.read("codes/KOD_II.png").startswith(b"\x89PNG"))
        # Mode, why and the deadline.
        mode = json.loads(archive.read("mode_and_deadline.json"))
        self.assertEqual((mode["offline_mode"], mode["ksef_number"]), ("offline24", move.l10n_pl_ksef_number))
        self.assertIn("Offline24", mode["mode_and_why"])
        # Every notice verbatim, with when and where it was fetched.
        notices = sorted(n for n in names if n.startswith("notices/") and n.endswith(".json"))
        raws = [json.loads(archive.read(n)) for n in notices]
        self.assertEqual(sorted({r["type"] for r in raws}), ["FAILURE_END", "FAILURE_START"])
        self.assertIn("Trwa awaria systemu KSeF.", [r.get("text") for r in raws])
        self.assertIn(ended["id"], [r["id"] for r in raws])
        fetched = archive.read(notices[0][:-5] + ".fetched.txt").decode()
        self.assertIn("%s/" % self.ksef_url, fetched)
        self.assertEqual(len(notices), len({archive.read(n) for n in notices}), "each version once")
        # Every attempt with KSeF's answers, and the UPO.
        attempts = json.loads(archive.read("submissions.json"))
        self.assertEqual(attempts[-1]["ksef_number"], move.l10n_pl_ksef_number)
        self.assertTrue(attempts[-1]["offline_mode"])
        self.assertEqual(attempts[-1]["status_code"], 200)
        upo = [n for n in names if n.startswith("UPO/")]
        self.assertEqual(len(upo), 1)
        self.assertIn(move.l10n_pl_ksef_number.encode(), archive.read(upo[0]))
        # The PDF summary, read back.
        self.assertTrue(archive.read("summary.pdf").startswith(b"%PDF"))
        text = pdf_text(archive.read("summary.pdf"))
        for expected in (move.name, move.l10n_pl_ksef_xml_hash, move.l10n_pl_ksef_number, "offlineMode=true",
                         "OFFLINE", "CERTYFIKAT", "Trwa awaria systemu KSeF.", "Offline24"):
            self.assertIn(expected, text)

    def test_notices_are_never_deleted_and_evidence_cannot_be_forged(self):
        event = self.env["l10n_pl_ksef.event"].sudo().create({
            "source": "bip", "category": "FAILURE", "notice_ref": "K/2026/AWR/11", "title": "Awaria",
            "text": "Komunikat BIP."})
        self.assertEqual(len(event.notice_ids), 1)
        self.assertIn("Komunikat BIP.", event.notice_ids.raw)
        event.write({"text": "Komunikat BIP (zmieniony)."})
        self.assertEqual(len(event.notice_ids), 2, "each version is kept")
        with self.assertRaisesRegex(UserError, "never deleted"):
            event.unlink()
        with self.assertRaisesRegex(UserError, "cannot be deleted"):
            event.notice_ids.unlink()
        with self.assertRaisesRegex(UserError, "cannot be changed"):
            event.notice_ids[:1].write({"raw": "forged"})
        event.action_archive()
        self.assertFalse(event.active)
        move = self._ksef_invoice().with_user(self.user)
        with self.assertRaises(AccessError):
            move.write({"l10n_pl_ksef_evidence_event_ids": [(4, event.id)]})
        with self.assertRaises(AccessError):
            self.env["l10n_pl_ksef.event.notice"].with_user(self.user).create(
                {"event_id": event.id, "raw": "x", "fetched_at": "2026-11-30 10:00:00"})
        with self.assertRaisesRegex(UserError, "no KSeF e-invoice"):
            move._l10n_pl_ksef_evidence_pack()

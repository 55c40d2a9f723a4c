import datetime
import os

from odoo.tests import tagged

from .common import KsefOfflineTestMixin, KsefTestCommon
from .pdf_common import StyledPdfMixin

KOD1_HEADER = "Sprawdź, czy Twoja faktura znajduje się w KSeF!"
KOD2_HEADER = "Zweryfikuj dostawcę faktury"


@tagged("post_install_l10n", "post_install", "-at_install")
class TestPrintLayout(StyledPdfMixin, KsefOfflineTestMixin, KsefTestCommon):
    """The invoice a buyer holds during an outage, as wkhtmltopdf prints it: a one-line offline
    invoice to a Polish customer (Polish language) keeps both codes, their labels and both official
    headers on page 1; a long one moves the block whole to a later page, below the letterhead. Read
    back page by page: pdftotext for the text layer, zbarimg for the codes. The Offline certificate
    is an ECDSA P-256 one, as the Ministry's portal issues."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certificate, cls.x509, cls.key = cls._ksef_upload_certificate(
            key_type="ec", not_before=datetime.datetime(2025, 1, 1), valid_days=3650)
        cls.env["ir.config_parameter"].sudo().set_param("report.url", "http://127.0.0.1:9")
        cls.env["res.lang"].sudo()._activate_lang("pl_PL")
        cls.env["ir.module.module"].sudo()._load_module_terms(["account", "l10n_pl_ksef"], ["pl_PL"], overwrite=True)
        cls.buyer_pl.sudo().lang = "pl_PL"

    def _print(self, move):
        """The PDF, [(text, codes)] and [[words with their boxes]] per page."""
        pdf = self._styled_pdf("account.account_invoices", move)
        return pdf, self._pdf_pages(pdf, keep=os.environ.get("KSEF_KEEP_PDF")), self._pdf_words(pdf)

    def _find(self, words, phrase):
        """The box (x_min, y_min, x_max, y_max) of ``phrase`` (consecutive words) on a page."""
        parts = phrase.split()
        texts = [word[0] for word in words]
        for start in range(len(texts) - len(parts) + 1):
            if texts[start:start + len(parts)] == parts:
                boxes = words[start:start + len(parts)]
                return (min(b[1] for b in boxes), min(b[2] for b in boxes), max(b[3] for b in boxes), max(b[4] for b in boxes))
        self.fail("%r is not printed on this page: %s" % (phrase, " ".join(texts)))

    def _assert_block_whole(self, pdf, number, page, words, move):
        text, codes = page
        codes_expected = move._l10n_pl_ksef_qr_codes()
        self.assertEqual([code["kind"] for code in codes_expected], ["kod1", "kod2"])
        self.assertEqual(sorted(codes), sorted(code["url"] for code in codes_expected))
        kod1_header, kod2_header = self._find(words, KOD1_HEADER), self._find(words, KOD2_HEADER)
        kod1_label, kod2_label = self._find(words, "OFFLINE"), self._find(words, "CERTYFIKAT")
        # each label under its own header, KOD I on the left, KOD II on the right
        self.assertGreater(kod1_label[1], kod1_header[3] + 50)  # a code between them
        self.assertGreater(kod2_label[1], kod2_header[3] + 50)
        self.assertLess(kod1_header[2], kod2_header[0])
        self.assertLess(kod1_label[2], kod2_label[0])
        # printed whole: neither cut at the page body's edge nor covered by the letterhead
        for box in (kod1_header, kod2_header, kod1_label, kod2_label):
            self.assertLess(self._ink_starts_at(pdf, number, box), 0.35, "the top of a header or label is cut off")
        # the code carries the link: no printed 200-400 character link
        flat = " ".join(text.split())
        self.assertNotIn("/certificate/", flat)
        self.assertNotIn("https://", flat)

    def test_one_line_offline_invoice_prints_on_one_page(self):
        # as the demo company prints: its bank account on the sales journal, 14 days to pay
        bank = self.env["res.partner.bank"].sudo().create({
            "acc_number": "PL61 1090 1014 0000 0712 1981 2874", "partner_id": self.company.partner_id.id})
        self.company_data["default_journal_sale"].sudo().bank_account_id = bank
        term = self.env.ref("account.account_payment_term_15days")
        move = self._ksef_invoice(lines=[(1000.0, self.tax_23, {"name": "Usługa serwisowa"})],
                                  invoice_payment_term_id=term.id)
        self.assertEqual(move.partner_bank_id, bank)
        move.action_l10n_pl_ksef_issue_offline24()
        pdf, pages, words = self._print(move)
        self.assertEqual(len(pages), 1, [text[:200] for text, _codes in pages])
        self._assert_block_whole(pdf, 1, pages[0], words[0], move)
        self.assertIn("Faktura", pages[0][0])  # printed in Polish for a Polish customer
        self.assertIn("Usługa serwisowa", pages[0][0])

    def test_block_that_does_not_fit_moves_whole_below_the_next_letterhead(self):
        # Three lines: the totals still end page 1, the KSeF block does not fit under them and opens page 2.
        lines = [(10.0 + i, self.tax_23, {"name": "Pozycja %02d" % i}) for i in range(3)]
        move = self._ksef_invoice(lines=lines)
        move.action_l10n_pl_ksef_issue_offline24()
        pdf, pages, words = self._print(move)
        self.assertEqual(len(pages), 2, [text[:200] for text, _codes in pages])
        self.assertIn("Suma", pages[0][0])
        self.assertEqual(pages[0][1], [], "no code on page 1")
        self._assert_block_whole(pdf, 2, pages[1], words[1], move)
        # the block is the first thing of page 2's body
        self.assertEqual(words[1][0][0], KOD1_HEADER.split()[0])

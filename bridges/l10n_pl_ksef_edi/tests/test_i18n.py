"""The bridge speaks Polish: its .pot matches the code, pl.po covers it, and a refusal reads in
Polish for a Polish user."""
import re
from pathlib import Path

import polib

from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tools.translate import TranslationModuleReader

from odoo.addons.l10n_pl_ksef.tests.common import KsefSimulatorCommon

I18N = Path(__file__).resolve().parents[1] / "i18n"


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefEdiBridgeI18n(KsefSimulatorCommon):

    def test_pot_matches_the_code_and_pl_po_covers_it(self):
        exported = {row[4] for row in TranslationModuleReader(self.env.cr, modules=["l10n_pl_ksef_edi"]) if row[4]}
        pot = {entry.msgid for entry in polib.pofile(str(I18N / "l10n_pl_ksef_edi.pot"))}
        self.assertEqual(sorted(exported ^ pot), [], "i18n/l10n_pl_ksef_edi.pot differs from the code")
        po = {entry.msgid: entry for entry in polib.pofile(str(I18N / "pl.po"))}
        self.assertFalse(pot - set(po), "not in pl.po")
        for msgid, entry in po.items():
            self.assertTrue(entry.msgstr.strip() and "fuzzy" not in entry.flags, msgid)
            wanted = sorted(re.findall(r"%\([a-z_]+\)s|%s|%d", msgid))
            self.assertEqual(sorted(re.findall(r"%\([a-z_]+\)s|%s|%d", entry.msgstr)), wanted, msgid)

    def test_refusal_in_polish(self):
        self.env["res.lang"].sudo()._activate_lang("pl_PL")
        self.env["ir.module.module"].sudo()._load_module_terms(["l10n_pl_ksef_edi"], ["pl_PL"], overwrite=True)
        company = self.company.with_context(lang="pl_PL")
        with self.assertRaisesRegex(UserError, "zna jedno środowisko KSeF"):
            company._l10n_pl_ksef_edi_check_mode()

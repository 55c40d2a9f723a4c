"""KSeF numbers are unique per company and KSeF environment, not per database (issue 15, 1):
a drill's simulator starts its own numbering and may hand out a number a real invoice holds."""
import psycopg2

from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import KsefDrillTestMixin, KsefOfflineTestMixin, KsefSimulatorCommon


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefNumberEnvironment(KsefDrillTestMixin, KsefOfflineTestMixin, KsefSimulatorCommon):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._ksef_setup_offline_issuing(fallback="auto")
        cls._ksef_setup_drill()

    def test_drill_on_a_database_with_real_accepted_invoices(self):
        before = self._settings()
        real = self._user_invoice(journal=self.real_journal)
        real.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(real.l10n_pl_ksef_state, "accepted")
        self.assertEqual(real.l10n_pl_ksef_number_environment, "simulator:%s/v2" % self.ksef_url)

        # The script's first step is ten minutes away: KSeF answers, the drill invoice goes online
        # and the drill's fresh simulator gives it the very number the real invoice holds.
        drill = self._drill(offsets=(10, 20, 20, 30))
        drill.with_user(self.manager).action_l10n_pl_ksef_drill_start()
        # The drill's two-day certificate is nobody's to renew in KSeF: no warning on drill invoices.
        self.company.invalidate_recordset(["l10n_pl_ksef_certificate_warning"])
        self.assertFalse(self.company.l10n_pl_ksef_certificate_warning)
        practice = self._user_invoice()
        self.assertEqual(practice.l10n_pl_ksef_drill_id, drill)
        practice.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(practice.l10n_pl_ksef_state, "accepted", practice.l10n_pl_ksef_error)
        self.assertEqual(practice.l10n_pl_ksef_number, real.l10n_pl_ksef_number,
                         "the two simulators number alike: the case under test")
        self.assertEqual(practice.l10n_pl_ksef_number_environment, "drill:%s" % drill.id)

        # A second drill invoice issued offline and sent at the end: its number is the drill
        # simulator's next one, still no clash with the real books.
        drill.with_user(self.manager).action_l10n_pl_ksef_drill_next_step()   # connection lost
        second = self._user_invoice()
        second.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(second.l10n_pl_ksef_state, "offline")
        drill.with_user(self.manager).action_l10n_pl_ksef_drill_next_step()   # connection back
        drill.with_user(self.manager).action_l10n_pl_ksef_drill_end()
        self.assertEqual(drill.state, "done")
        self.assertEqual(self._counters(self.drill_url)["invoicesAccepted"], 2)
        self.assertEqual(self._settings(), before, "the company works with its real KSeF again")
        self.assertFalse(self.company.sudo().l10n_pl_ksef_running_drill_id)
        self.assertEqual(real.l10n_pl_ksef_number, practice.l10n_pl_ksef_document_ids.filtered(
            lambda d: d.state == "accepted").ksef_number)
        self.assertEqual(real.l10n_pl_ksef_state, "accepted")

        # The real KSeF goes on numbering the real books.
        after = self._user_invoice()
        after.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(after.l10n_pl_ksef_state, "accepted")
        self.assertNotEqual(after.l10n_pl_ksef_number, real.l10n_pl_ksef_number)

    def test_one_number_twice_in_one_environment_is_refused(self):
        first = self._user_invoice()
        first.with_user(self.user).action_l10n_pl_ksef_post()
        second = self._user_invoice()
        values = {"l10n_pl_ksef_number": first.l10n_pl_ksef_number,
                  "l10n_pl_ksef_number_environment": first.l10n_pl_ksef_number_environment}
        with mute_logger("odoo.sql_db"), self.assertRaises(psycopg2.IntegrityError), self.cr.savepoint():
            second.sudo().write(values)
            second.flush_recordset()
        # The same number from another environment is another invoice's number.
        with self.cr.savepoint():
            second.sudo().write({**values, "l10n_pl_ksef_number_environment": "production"})
            second.flush_recordset()

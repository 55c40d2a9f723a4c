import ast
import datetime

from freezegun import freeze_time
from lxml import etree

from odoo import Command
from odoo.tests import tagged

from .common import KsefTestCommon

# Wednesday 11 March 2026: no Polish holiday that week or the next.
WED = datetime.date(2026, 3, 11)
TUE_BEFORE, THU, FRI, MON_NEXT = (WED - datetime.timedelta(days=1), WED + datetime.timedelta(days=1),
                                  WED + datetime.timedelta(days=2), WED + datetime.timedelta(days=5))


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefCockpit(KsefTestCommon):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager = cls.env["res.users"].sudo().create({
            "name": "Główna Księgowa", "login": "ksef-manager", "email": "ksiegowa@firma-testowa.pl",
            "company_id": cls.company.id, "company_ids": [Command.set(cls.company.ids)],
            "groups_id": [Command.set([cls.env.ref("account.group_account_manager").id,
                                       cls.env.ref("base.group_user").id])],
        })
        cls.company.sudo().l10n_pl_ksef_responsible_id = cls.user
        with freeze_time("2026-03-06 10:00:00"):
            cls.moves = {key: cls._waiting_invoice(state, deadline) for key, state, deadline in [
                ("overdue", "offline", TUE_BEFORE),
                ("today", "offline", WED),
                ("thursday", "offline", THU),
                ("friday", "offline", FRI),
                ("later", "offline", MON_NEXT),
                ("rejected", "rejected", TUE_BEFORE),
                ("accepted", "accepted", TUE_BEFORE),
                ("sending", "sending", WED),
            ]}
            original = cls.moves["later"]
            credit_note = original._reverse_moves([{"invoice_date": original.invoice_date}])
            credit_note.action_post()
            credit_note._l10n_pl_ksef_hold()
            cls.moves["credit_note"] = credit_note

    @classmethod
    def _waiting_invoice(cls, state, deadline):
        move = cls._ksef_invoice()
        move._l10n_pl_ksef_write({"l10n_pl_ksef_state": state, "l10n_pl_ksef_offline_mode": "offline24",
                                  "l10n_pl_ksef_deadline": deadline})
        return move

    def _keys(self, moves):
        return {key for key, move in self.moves.items() if move in moves}

    def _search_view_filter(self, name):
        """The domain of a filter of the customer invoice search view, as the user gets it."""
        arch = self.env["account.move"].with_user(self.user).get_view(
            self.env.ref("account.view_account_invoice_filter").id, "search")["arch"]
        [node] = etree.fromstring(arch).xpath("//filter[@name='%s']" % name)
        return ast.literal_eval(node.get("domain"))

    def _filtered(self, filter_name):
        domain = self._search_view_filter(filter_name)
        return self._keys(self.env["account.move"].with_user(self.user).search(domain))

    # ---- filters ---------------------------------------------------------------------------

    def test_filters_on_a_wednesday(self):
        with freeze_time("2026-03-11 09:00:00"):
            self.assertEqual(self._filtered("l10n_pl_ksef_filter_overdue"), {"overdue", "rejected"})
            self.assertEqual(self._filtered("l10n_pl_ksef_filter_due_today"), {"today"})
            # Wednesday + 2 business days = Friday
            self.assertEqual(self._filtered("l10n_pl_ksef_filter_due_soon"), {"today", "thursday", "friday"})
            self.assertEqual(self._filtered("l10n_pl_ksef_filter_rejected"), {"rejected"})
            self.assertEqual(self._filtered("l10n_pl_ksef_filter_waiting_original"), {"credit_note"})
            self.assertEqual(self._filtered("l10n_pl_ksef_filter_to_send"), set())
            urgency = {key: move.l10n_pl_ksef_urgency for key, move in self.moves.items()}
            self.assertEqual(urgency, {
                "overdue": "overdue", "today": "today", "thursday": "soon", "friday": "soon", "later": "later",
                "rejected": "overdue", "accepted": False, "sending": False, "credit_note": False,
            })
            negated = self._keys(self.env["account.move"].search([("l10n_pl_ksef_urgency", "!=", "overdue")]))
            self.assertEqual(negated, set(self.moves) - {"overdue", "rejected"})

    def test_filters_on_a_friday_span_the_weekend(self):
        with freeze_time("2026-03-13 09:00:00"):
            self.assertEqual(self._filtered("l10n_pl_ksef_filter_overdue"),
                             {"overdue", "rejected", "today", "thursday"})
            self.assertEqual(self._filtered("l10n_pl_ksef_filter_due_today"), {"friday"})
            # Friday + 2 business days = Tuesday: Monday's deadline is due soon.
            self.assertEqual(self._filtered("l10n_pl_ksef_filter_due_soon"), {"friday", "later"})

    def test_polish_day_not_utc(self):
        # 23:30 UTC on Tuesday is already Wednesday in Warsaw.
        with freeze_time("2026-03-10 23:30:00"):
            self.assertEqual(self._filtered("l10n_pl_ksef_filter_due_today"), {"today"})

    def test_group_by_offline_mode_and_deadline(self):
        groups = self.env["account.move"].with_user(self.user).read_group(
            [("id", "in", [m.id for m in self.moves.values()])], ["l10n_pl_ksef_offline_mode"],
            ["l10n_pl_ksef_offline_mode"])
        counts = {g["l10n_pl_ksef_offline_mode"]: g["l10n_pl_ksef_offline_mode_count"] for g in groups}
        self.assertEqual(counts.get("offline24"), 8)
        by_day = self.env["account.move"].with_user(self.user).read_group(
            [("id", "in", [m.id for m in self.moves.values()])], ["l10n_pl_ksef_deadline"],
            ["l10n_pl_ksef_deadline:day"])
        self.assertEqual(len([g for g in by_day if g["l10n_pl_ksef_deadline:day"]]), 5)

    # ---- reminders -------------------------------------------------------------------------

    def _deadline_activities(self, move):
        activity_type = self.env.ref("l10n_pl_ksef.mail_activity_type_l10n_pl_ksef_deadline")
        return self.env["mail.activity"].search([
            ("res_model", "=", "account.move"), ("res_id", "=", move.id), ("activity_type_id", "=", activity_type.id)])

    def _run_cron(self, when):
        with freeze_time(when):
            return self.env["account.move"]._cron_l10n_pl_ksef_deadline_reminders()

    def test_reminders_before_on_and_after_the_deadline_once_each(self):
        friday = self.moves["friday"]
        # Wednesday: Friday's deadline is 2 business days away, nothing yet.
        self._run_cron("2026-03-11 06:00:00")
        self.assertFalse(self._deadline_activities(friday))
        # Thursday: one business day before -> the responsible gets an activity, once.
        given = self._run_cron("2026-03-12 06:00:00")
        self.assertIn(friday, given["before"])
        self._run_cron("2026-03-12 18:00:00")
        [activity] = self._deadline_activities(friday)
        self.assertEqual(activity.user_id, self.user)
        self.assertEqual(activity.date_deadline, FRI)
        # Friday: the deadline day -> the same activity says so (still one).
        given = self._run_cron("2026-03-13 06:00:00")
        self.assertIn(friday, given["due"])
        [activity] = self._deadline_activities(friday)
        self.assertIn("today", activity.summary)
        self.assertEqual(friday.l10n_pl_ksef_alert_level, "due")
        # Monday: passed -> escalation to the responsible and the managers, and a chatter note.
        notes_before = len(friday.message_ids)
        given = self._run_cron("2026-03-16 06:00:00")
        self.assertIn(friday, given["overdue"])
        activities = self._deadline_activities(friday)
        managers = self.env.ref("l10n_pl_ksef.group_l10n_pl_ksef_manager").sudo().users.filtered(
            lambda u: self.company in u.company_ids and not u.share)
        self.assertIn(self.manager, managers)
        self.assertNotIn(self.user, managers, "the accountant is a KSeF user, not a KSeF manager")
        self.assertEqual(activities.user_id, self.user | managers)
        self.assertEqual(len(activities), len(self.user | managers), "one activity per person")
        self.assertEqual(len(friday.message_ids), notes_before + 1)
        self.assertIn("escalated", friday.message_ids[0].body)
        # Idempotent: another run the same day and the next day adds nothing.
        self._run_cron("2026-03-16 12:00:00")
        self._run_cron("2026-03-17 06:00:00")
        self.assertEqual(len(self._deadline_activities(friday)), len(activities))
        self.assertEqual(len(friday.message_ids), notes_before + 1)
        # Once KSeF accepts it, the reminders are closed.
        friday._l10n_pl_ksef_move_to("sending")
        self.assertFalse(self._deadline_activities(friday))

    def test_reminders_skip_invoices_not_waiting(self):
        given = self._run_cron("2026-03-11 06:00:00")
        self.assertEqual(self._keys(given["overdue"]), {"overdue", "rejected"})
        self.assertEqual(self._keys(given["due"]), {"today"})
        self.assertEqual(self._keys(given["before"]), {"thursday"})
        for key in ("accepted", "sending", "later", "credit_note"):
            self.assertFalse(self._deadline_activities(self.moves[key]), key)

    def test_new_deadline_restarts_reminders(self):
        move = self.moves["thursday"]
        self._run_cron("2026-03-11 06:00:00")
        self.assertEqual(move.l10n_pl_ksef_alert_level, "before")
        # An announced failure moves the deadline; the reminders start again for the new one.
        move._l10n_pl_ksef_write({"l10n_pl_ksef_deadline": MON_NEXT})
        given = self._run_cron("2026-03-13 06:00:00")
        self.assertIn(move, given["before"])
        self.assertEqual(move.l10n_pl_ksef_alert_deadline, MON_NEXT)
        self.assertEqual(len(self._deadline_activities(move)), 1)

    # ---- overview --------------------------------------------------------------------------

    def test_overview_counts_and_tiles_open_the_filtered_list(self):
        with freeze_time("2026-03-11 09:00:00"):
            Dashboard = self.env["l10n_pl_ksef.dashboard"].with_user(self.user)
            action = Dashboard.action_l10n_pl_ksef_open_overview()
            tiles = Dashboard.search(action["domain"])
            # Only our invoices exist in this company: the counts are exact.
            by_kind = {tile.kind: tile for tile in tiles}
            self.assertEqual(by_kind["overdue"].count, 2)
            self.assertEqual(by_kind["overdue"].next_deadline, TUE_BEFORE)
            self.assertTrue(by_kind["overdue"].alert)
            self.assertEqual(by_kind["due_today"].count, 1)
            self.assertEqual(by_kind["due_soon"].count, 3)
            self.assertEqual(by_kind["rejected"].count, 1)
            self.assertEqual(by_kind["offline"].count, 5)
            self.assertEqual(by_kind["offline"].next_deadline, TUE_BEFORE)
            self.assertEqual(by_kind["waiting_original"].count, 1)
            self.assertEqual(by_kind["sending"].count, 1)
            self.assertEqual(by_kind["to_send"].count, 0)
            # A second opening (through the menu's server action) replaces the user's tiles.
            again = self.env.ref("l10n_pl_ksef.action_l10n_pl_ksef_overview").with_user(self.user).run()
            self.assertEqual((again["res_model"], again["view_mode"]), ("l10n_pl_ksef.dashboard", "kanban"))
            self.assertFalse(tiles.exists())
            self.assertEqual(len(Dashboard.search(again["domain"])), len(tiles))
            # Click on a tile: the invoice list with the tile's filter on, which finds its invoices.
            tile = Dashboard.search(again["domain"]).filtered(lambda t: t.kind == "overdue")
            list_action = tile.action_l10n_pl_ksef_open_invoices()
            self.assertEqual(list_action["res_model"], "account.move")
            [filter_name] = [key[len("search_default_"):] for key in list_action["context"]
                             if key.startswith("search_default_l10n_pl_ksef")]
            domain = list_action["domain"] + self._search_view_filter(filter_name)
            found = self.env["account.move"].with_user(self.user).search(domain)
            self.assertEqual(self._keys(found), {"overdue", "rejected"})

"""The KSeF life of an invoice, in one place: its states, their named groups, the transitions
between them (``TRANSITIONS``) and what follows each move.

    (none)          ── queue, Post to KSeF ──────────▶ to_send
    (none), to_send ── issue offline ──────────────────▶ offline   (KOD I + KOD II printed)
    (none), to_send ── total failure ──────────────────▶ outside   (never sent to KSeF)
    to_send, offline ── sent (journaled first) ────────▶ sending
    sending ── KSeF's verdict ─────────────────────────▶ accepted (final) | rejected
    sending ── KSeF did not process it (405, 5xx) ─────▶ to_send | offline (sent again)
    rejected ── technical correction, Post again ──────▶ to_send | sending
    reset to draft (not once KSeF may hold the file) ──▶ (none)

Every move of ``l10n_pl_ksef_state`` goes through ``_l10n_pl_ksef_move_to`` (one invoice or the
engine's thousands at once): it checks the transition against ``TRANSITIONS`` (an impossible one
is a programming error), writes through ``_l10n_pl_ksef_write`` (access check, then superuser)
and runs the reactions, in one visible list (``_l10n_pl_ksef_react``): arm the submission engine,
close the deadline activities, release the invoices that waited for these numbers, say it in the
chatter. KSeF's verdicts land here through ``account_move_ksef_verdict``.

"Waits for references": an invoice whose e-invoice names other invoices by their KSeF number (a
credit note its original, a settlement its advance invoices) is held — marked to send, not frozen
— while one of them will get a number but has none yet (issued offline), and released when the
last number arrives.
"""
import datetime

from markupsafe import Markup

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from .ksef_sql import sql_update

KSEF_STATES = [
    ("to_send", "To send"),
    ("sending", "Sent, awaiting KSeF"),
    ("offline", "Issued offline, to submit"),
    ("accepted", "Accepted by KSeF"),
    ("rejected", "Rejected by KSeF"),
    ("outside", "Outside KSeF (total failure)"),
]

# ---- named groups ------------------------------------------------------------------------------
# Post to KSeF may send (again): never sent, waiting, rejected, or issued offline (an offline
# invoice is submitted later with the same frozen file).
POSTABLE_STATES = (False, "to_send", "rejected", "offline")
# The submission engine's queue: frozen invoices waiting to be sent.
ENGINE_QUEUE_STATES = ("to_send", "offline")
# May still be issued offline: KSeF surely has nothing of the invoice yet.
OFFLINE_FROM_STATES = (False, "to_send")
# Issued offline and printed with their QR codes: the e-invoice stays as printed.
FROZEN_OFFLINE_STATES = ("offline", "outside")
# KSeF has, or may already have, the frozen XML: the invoice may no longer be reset to draft.
LOCKED_STATES = ("sending", "offline", "accepted", "outside")
# Still owe KSeF an accepted file before their deadline (a rejected one too): the cockpit's.
DEADLINE_STATES = ("to_send", "offline", "rejected")
# On the way to KSeF: will get a KSeF number (an e-invoice naming it cannot be built yet).
ON_THE_WAY_STATES = ("to_send", "sending", "offline")
# A referenced invoice (the original of a credit note, an advance invoice) that will get a KSeF
# number but has none yet (a rejected one too, once corrected): whoever names it waits.
REFERENCE_PENDING_STATES = ON_THE_WAY_STATES + ("rejected",)

# ---- transitions -------------------------------------------------------------------------------
# from-state -> the states it may move to. Staying in the same state is always allowed (values
# written again, e.g. Post to KSeF's reservation). ``False``: no KSeF status yet (a draft, or posted
# but not queued).
TRANSITIONS = {
    False: {
        "to_send",      # queued, Post to KSeF's reservation, or held for its references
        "offline",      # issued offline (tryby-offline.md: offline24, unavailability, emergency)
        "outside",      # total failure: issued outside KSeF, never sent (tryby-offline.md)
        "accepted", "rejected",  # KSeF's verdict on a file another sender sent (l10n_pl_edi's, adopted)
    },
    "to_send": {
        "sending",      # handed to KSeF (the session is journaled first: never sent twice)
        "offline", "outside",   # KSeF unreachable: issued offline, as the law allows
        "accepted", "rejected",  # KSeF's verdict (a refusal on arrival, a 440 of our own file)
        False,          # reset to draft: KSeF has nothing of it
    },
    "offline": {
        "sending",      # submitted later with the same frozen file (tryby-offline.md)
        "accepted", "rejected",  # KSeF's verdict
        False,          # reset to draft: drill invoices only (see _check_draftable)
    },
    "sending": {
        "accepted", "rejected",  # KSeF's verdict
        "to_send", "offline",    # KSeF did not process it (405/5xx): send again, in its own mode
        False,          # reset to draft: drill invoices only (see _check_draftable)
    },
    "rejected": {
        "to_send",      # technical correction prepared (offline/korekta-techniczna.md), or sent again
        "sending",      # Post to KSeF again once the problem is fixed
        "offline",      # a new sending of an offline invoice KSeF did not process: waits again
        "accepted",     # KSeF's verdict on that new sending
        False,          # reset to draft to fix it: KSeF holds nothing of a rejected file
    },
    # Final: KSeF holds it; only a drill's own invoices are reset at the drill's end.
    "accepted": {False},
    # Never sent to KSeF (tryby-offline.md, total failure); only a drill resets it.
    "outside": {False},
}

# An invoice joining the queue is picked up this many seconds later (several join at once).
ARM_DELAY = datetime.timedelta(seconds=10)
# How long after Post to KSeF left an invoice awaiting KSeF the cron asks about it.
FOLLOW_UP_DELAY = datetime.timedelta(minutes=1)


class AccountMove(models.Model):
    _inherit = "account.move"

    l10n_pl_ksef_state = fields.Selection(
        KSEF_STATES, string="KSeF status", copy=False, index=True, tracking=True, readonly=True,
    )

    # ---- the one method that moves invoices -------------------------------------------------

    def _l10n_pl_ksef_move_to(self, state, values=None, message=None, attachment_ids=None):
        """Move these invoices to KSeF ``state``: check each transition, write ``state`` with the
        common ``values`` in one go, then run the reactions once for the whole recordset.
        ``message``: a chatter line for every moved invoice, or {move id: line}; ``attachment_ids``:
        {move id: attachment ids} to attach to it. Private: not callable over RPC."""
        return self._l10n_pl_ksef_move_batch({state: self}, values=values, message=message,
                                             attachment_ids=attachment_ids)

    @api.model
    def _l10n_pl_ksef_move_batch(self, targets, values=None, rows=None, message=None, attachment_ids=None, bulk=False):
        """The engine's bulk verdicts: ``targets`` is {state: moves}. Every transition is checked
        in memory first (nothing is written if one is impossible), each state is written in one
        go, ``rows`` ({move id: {field: value}}, plain per-invoice values, which may also name
        invoices whose state does not move) set-based, then the reactions run once per state and
        ``message`` ({move id: line}) is logged, as one batch of notes when ``bulk``."""
        targets = {state: moves for state, moves in targets.items() if moves}
        befores = {state: moves._l10n_pl_ksef_check_transitions(state) for state, moves in targets.items()}
        for state, moves in targets.items():
            moves._l10n_pl_ksef_write({**(values or {}), "l10n_pl_ksef_state": state})
        if rows:
            self._l10n_pl_ksef_write_rows(rows)
        numbered = self.browse([move_id for move_id, vals in (rows or {}).items() if vals.get("l10n_pl_ksef_number")])
        for state, moves in targets.items():
            moves._l10n_pl_ksef_react(befores[state], state)
            if state == "accepted":
                numbered |= moves
        # 3. (after every value is written) the invoices that waited for these KSeF numbers go.
        if numbered:
            numbered._l10n_pl_ksef_release_waiting()
        moved = self.browse([move.id for moves in targets.values() for move in moves])
        moved._l10n_pl_ksef_say(message, attachment_ids=attachment_ids, bulk=bulk)
        return True

    def _l10n_pl_ksef_check_transitions(self, state):
        """{move id: state before}; raises on a move the transition table does not allow."""
        if state not in TRANSITIONS:
            raise ValueError("unknown KSeF state %r" % (state,))
        before = {}
        for move in self:
            current = move.l10n_pl_ksef_state or False
            if current != state and state not in TRANSITIONS[current]:
                raise ValueError("KSeF state of invoice %s (id %s) cannot move from %r to %r" % (
                    move.name, move.id, current, state))
            before[move.id] = current
        return before

    def _l10n_pl_ksef_write_rows(self, rows):
        """Per-invoice plain values, set-based (thousands of verdicts): same access rule as
        ``_l10n_pl_ksef_write``."""
        moves = self.browse(list(rows))
        if not self.env.su:
            moves.check_access("write")
        sql_update(self.sudo(), rows)

    def _l10n_pl_ksef_react(self, before, state):
        """What follows a move of these invoices to ``state`` (``before``: {move id: former state}),
        once per batch. The release of invoices waiting for KSeF numbers (3.) and the chatter (4.)
        follow in ``_l10n_pl_ksef_move_batch``, once every value is written."""
        # 1. The submission engine: an invoice joining its queue is picked up within seconds; one
        #    left awaiting KSeF by Post to KSeF is asked about a little later. The engine's own
        #    moves do not arm it (it is running).
        if self and not self.env.context.get("l10n_pl_ksef_engine"):
            if state in ENGINE_QUEUE_STATES:
                self._l10n_pl_ksef_engine_arm(fields.Datetime.now() + ARM_DELAY)
            elif state == "sending":
                self._l10n_pl_ksef_engine_arm(fields.Datetime.now() + FOLLOW_UP_DELAY)
        # 2. Deadline activities: an invoice that no longer owes KSeF a file gets them closed.
        if state not in DEADLINE_STATES:
            done = self.filtered(lambda m: before.get(m.id) in DEADLINE_STATES and m.l10n_pl_ksef_alert_level)
            if done:
                labels = dict(self._fields["l10n_pl_ksef_state"]._description_selection(self.env))
                done._l10n_pl_ksef_close_deadline_activities(
                    _("KSeF status is now '%s'.", labels.get(state, state)) if state else
                    _("The invoice no longer has a KSeF status."))

    def _l10n_pl_ksef_say(self, message, attachment_ids=None, bulk=False):
        """4. The chatter: ``message`` on every invoice of ``self``, or {move id: message}."""
        if not message:
            return
        bodies = message if isinstance(message, dict) else dict.fromkeys(self.ids, message)
        if bulk:
            self.browse(list(bodies)).with_context(no_new_invoice=True)._message_log_batch(bodies=bodies)
            return
        for move in self.browse(list(bodies)):
            move._l10n_pl_ksef_log(bodies[move.id], (attachment_ids or {}).get(move.id))

    # ---- waits for references ---------------------------------------------------------------

    def _l10n_pl_ksef_referenced_invoices(self):
        """The invoices this one's e-invoice names by their KSeF number: a credit note its original
        (offline/korekta-techniczna.md: a correction refers to the KSeF number), the reversal of a
        credit note that credit note. Kinds with other references extend this (settlements)."""
        self.ensure_one()
        original = self.reversed_entry_id
        if self.move_type == "out_refund" or (self.move_type == "out_invoice" and original.move_type == "out_refund"):
            return original
        return self.browse()

    def _l10n_pl_ksef_awaited_references(self):
        """The referenced invoices that will get a KSeF number but have none yet."""
        self.ensure_one()
        return self._l10n_pl_ksef_referenced_invoices().filtered(
            lambda m: not m.l10n_pl_ksef_number and m.l10n_pl_ksef_state in REFERENCE_PENDING_STATES)

    @api.model
    def _l10n_pl_ksef_referencing_domain(self, references):
        """Moves that may name ``references`` (the inverse of ``_l10n_pl_ksef_referenced_invoices``)."""
        return [("reversed_entry_id", "in", references.ids)]

    def _l10n_pl_ksef_ready_to_send(self):
        """False while this invoice waits for its references: the submission engine and Post to
        KSeF skip it."""
        self.ensure_one()
        return not self._l10n_pl_ksef_awaited_references()

    def _l10n_pl_ksef_held(self):
        """Those of these invoices Post to KSeF, the queue and offline issuing must hold."""
        return self.filtered(lambda m: m._l10n_pl_ksef_is_applicable() and m.l10n_pl_ksef_state in OFFLINE_FROM_STATES
                             and m._l10n_pl_ksef_awaited_references())

    def _l10n_pl_ksef_hold(self):
        """Keep these invoices until their references have a KSeF number: marked to send, not
        frozen (their e-invoice names those numbers), said once in the chatter."""
        for move in self:
            awaited = move._l10n_pl_ksef_awaited_references()
            if not awaited:
                continue
            message = None if move.l10n_pl_ksef_waiting_original else _(
                "Held: %(move)s names invoice(s) %(references)s, which have no KSeF number yet (issued offline). "
                "KSeF takes it only once they have one; it will be sent as soon as they are accepted.",
                move=move.name, references=", ".join(awaited.mapped("name")))
            if move.l10n_pl_ksef_state != "to_send":
                move._l10n_pl_ksef_move_to("to_send", message=message)
            elif message:
                move._l10n_pl_ksef_log(message)
        return True

    def _l10n_pl_ksef_held_notification(self):
        """What Post to KSeF shows for invoices it held back: a sticky warning, then the dialog closes."""
        if all(move._l10n_pl_ksef_referenced_invoices() == move.reversed_entry_id for move in self):
            title = _("Held until the original has its KSeF number")
        else:
            title = _("Held until the advance invoices have their KSeF numbers")
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "warning",
                "sticky": True,
                "title": title,
                "message": _("%(moves)s: an invoice it refers to (%(references)s) was issued offline and has no KSeF "
                             "number yet. It will be sent to KSeF as soon as that invoice is accepted.",
                             moves=", ".join(self.mapped("name")),
                             references=", ".join(self.mapped(lambda m: ", ".join(
                                 m._l10n_pl_ksef_awaited_references().mapped("name"))))),
                "next": {"type": "ir.actions.act_window_close"},
            },
        }

    def _l10n_pl_ksef_release_waiting(self):
        """The invoices in ``self`` may have got their KSeF number: release those that waited for
        it (frozen now, naming the numbers; a problem is said once) and wake the engine up."""
        numbered = self.filtered("l10n_pl_ksef_number")
        if not numbered:
            return self.browse()
        released = self.sudo().search(self._l10n_pl_ksef_referencing_domain(numbered) + [
            ("l10n_pl_ksef_state", "=", "to_send"), ("l10n_pl_ksef_xml_id", "=", False),
        ]).filtered(lambda m: not m._l10n_pl_ksef_awaited_references()).sudo(False)
        for move in released:
            problem = None
            try:
                with self.env.cr.savepoint():
                    move.action_l10n_pl_ksef_freeze()
            except UserError as error:
                problem = error.args[0]
            body = _("Released: the invoices %(references)s named by this e-invoice now have their KSeF numbers; it "
                     "can go to KSeF.", references=", ".join((numbered & move._l10n_pl_ksef_referenced_invoices()).mapped("name")))
            if problem:
                if problem == move.l10n_pl_ksef_error:
                    continue  # said before: a safety-net run does not repeat it
                body = Markup("%s<br/>%s") % (body, _("Its e-invoice cannot be built yet: %s", problem))
                move._l10n_pl_ksef_write({"l10n_pl_ksef_error": problem})
            move._l10n_pl_ksef_log(body)
        if released:
            self._l10n_pl_ksef_engine_arm(fields.Datetime.now())
        return released

    @api.model
    def _l10n_pl_ksef_release_numbered_originals(self):
        """Safety net: release every held invoice whose references have meanwhile got their KSeF
        numbers, however the numbers were stored."""
        pending = self.sudo().search([("l10n_pl_ksef_state", "=", "to_send"), ("l10n_pl_ksef_xml_id", "=", False),
                                      ("state", "=", "posted")])
        references = self.browse()
        for move in pending:
            references |= move._l10n_pl_ksef_referenced_invoices().filtered("l10n_pl_ksef_number")
        return references.sudo(False)._l10n_pl_ksef_release_waiting()

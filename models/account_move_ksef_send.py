"""Post to KSeF (online): the buttons, and every attempt kept as an ``l10n_pl_ksef.document``.

Never send twice, never lose: the invoice is frozen and reserved (``to_send``, committed) before
any network call; the sending itself is the engine's (``l10n_pl_ksef_engine_post``: its
Submitter on a one-invoice plan, its journal records the submission before the send); an
invoice in ``sending`` is only ever asked about, never sent again; a KSeF duplicate (440) of our
own file is adopted as the success it is (the Submitter's rule).
"""
import datetime
import logging

import psycopg2
import requests

from odoo import _, api, fields, models
from odoo.tools import SQL
from odoo.exceptions import UserError

from ..ksef import client as ksef_client
from ..ksef import errors as ksef_errors
from . import ksef_messages

_logger = logging.getLogger(__name__)

# "offline": an invoice issued offline is submitted later with the same frozen file.
POSTABLE_STATES = (False, "to_send", "rejected", "offline")
UNREACHABLE_ERRORS = (ksef_errors.KsefUnavailable, requests.RequestException, ConnectionError, TimeoutError)


def _naive(moment):
    """A KSeF date-time (aware, or ISO text) as the naive UTC value Odoo stores."""
    if not moment:
        return False
    return ksef_client.parse_datetime(moment).astimezone(datetime.timezone.utc).replace(tzinfo=None)


def _sql_update(model, rows, chunk=1000):
    """Set-based UPDATE of plain stored columns: ``rows`` maps record id -> {field: value}.
    Rows are grouped by their set of fields; the cache is invalidated and dependants marked."""
    groups = {}
    for record_id, values in rows.items():
        groups.setdefault(tuple(sorted(values)), []).append(record_id)
    for names, ids in groups.items():
        columns = []
        for name in names:
            field = model._fields[name]
            value_type = field.column_type[1] if field.type != "many2one" else "int4"
            columns.append((name, value_type))
        for start in range(0, len(ids), chunk):
            part = ids[start:start + chunk]
            values = SQL(", ").join(
                SQL("(%s, %s)", record_id, SQL(", ").join(
                    SQL("%s::" + value_type, _db_value(model._fields[name], rows[record_id][name]))
                    for name, value_type in columns))
                for record_id in part)
            model.env.cr.execute(SQL(
                "UPDATE %s AS t SET %s FROM (VALUES %s) AS v(%s) WHERE t.id = v.id",
                SQL.identifier(model._table),
                SQL(", ").join(SQL("%s = v.%s", SQL.identifier(name), SQL.identifier(name)) for name, _type in columns),
                values,
                SQL(", ").join(SQL.identifier(n) for n in ["id"] + [name for name, _type in columns]),
            ))
        records = model.browse(ids)
        records.invalidate_recordset(list(names))
        records.modified(list(names))


def _db_value(field, value):
    if value is False or value is None:
        return None
    if field.type == "many2one":
        return value.id if hasattr(value, "id") else value
    return value


class AccountMove(models.Model):
    _inherit = "account.move"

    l10n_pl_ksef_acquisition_date = fields.Datetime(
        string="Received by KSeF on", copy=False, readonly=True,
        help="When KSeF accepted the invoice for processing (the date in its KSeF number).")
    l10n_pl_ksef_upo_id = fields.Many2one(
        "ir.attachment", string="KSeF UPO", copy=False, readonly=True,
        help="The official receipt (UPO) KSeF issued for this invoice.")
    l10n_pl_ksef_error = fields.Text(string="KSeF error", copy=False, readonly=True)
    l10n_pl_ksef_document_ids = fields.One2many(
        "l10n_pl_ksef.document", "move_id", string="KSeF submissions", readonly=True)
    l10n_pl_ksef_document_count = fields.Integer(compute="_compute_l10n_pl_ksef_document_count")
    l10n_pl_ksef_show_post = fields.Boolean(compute="_compute_l10n_pl_ksef_show_post")

    @api.depends("l10n_pl_ksef_document_ids")
    def _compute_l10n_pl_ksef_document_count(self):
        for move in self:
            move.l10n_pl_ksef_document_count = len(move.l10n_pl_ksef_document_ids)

    @api.depends("state", "move_type", "country_code", "l10n_pl_ksef_state")
    def _compute_l10n_pl_ksef_show_post(self):
        for move in self:
            move.l10n_pl_ksef_show_post = move._l10n_pl_ksef_is_applicable() and move.l10n_pl_ksef_state in POSTABLE_STATES

    # ---- hooks for other flows -------------------------------------------------------------

    def _l10n_pl_ksef_is_offline(self):
        """True when the invoice was issued offline (sent with ``offlineMode``); see the offline flow."""
        self.ensure_one()
        return False

    def _l10n_pl_ksef_hash_of_corrected_invoice(self):
        """Hash of the rejected original when this sending is a technical correction."""
        self.ensure_one()
        return False

    def _l10n_pl_ksef_handle_unreachable(self, error):
        """KSeF could not be reached (or did not answer): nothing was accepted, the invoice stays
        frozen and ready to send. The offline flow overrides this to issue the invoice offline."""
        self.ensure_one()
        self._l10n_pl_ksef_retry_soon()
        raise UserError(_(
            "KSeF cannot be reached right now, so invoice %(invoice)s was not sent. Its e-invoice stays "
            "frozen and is sent to KSeF automatically as soon as KSeF answers.%(offline)s\n\nDetails: %(error)s",
            invoice=self.display_name, error=self._l10n_pl_ksef_error_text(error),
            offline=self.env.context.get("l10n_pl_ksef_offline_off") or ""))

    # ---- buttons ---------------------------------------------------------------------------

    def action_l10n_pl_ksef_post(self):
        # A flow may answer with an action for the user (e.g. confirming an offline issue).
        actions = [result for result in (move._l10n_pl_ksef_post() for move in self) if isinstance(result, dict)]
        if not actions and len(self) == 1:
            return self._l10n_pl_ksef_post_notification()   # the KSeF number, or the offline deadline
        return actions[0] if actions else True

    def action_l10n_pl_ksef_post_selected(self):
        """List action: post the selected invoices that can go to KSeF (e.g. the overdue ones
        issued offline), leave the others alone and say how many KSeF accepted."""
        moves = self.filtered("l10n_pl_ksef_show_post")
        if not moves:
            raise UserError(_("None of the selected entries can be posted to KSeF: only posted customer invoices "
                              "and credit notes that KSeF has not accepted yet can."))
        action = moves.action_l10n_pl_ksef_post()
        if isinstance(action, dict):
            return action
        accepted = moves.filtered(lambda move: move.l10n_pl_ksef_state == "accepted")
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success" if accepted == moves else "warning",
                "message": _("KSeF accepted %(accepted)s of the %(count)s invoices sent.",
                             accepted=len(accepted), count=len(moves)),
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def action_l10n_pl_ksef_refresh_status(self):
        self._l10n_pl_ksef_update_status()
        return True

    def action_l10n_pl_ksef_open_documents(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": _("KSeF submissions"),
            "res_model": "l10n_pl_ksef.document",
            "view_mode": "list,form",
            "domain": [("move_id", "=", self.id)],
            "context": {"create": False},
        }

    # ---- the flow --------------------------------------------------------------------------

    @api.model
    def _l10n_pl_ksef_can_commit(self):
        return self.env["account.move.send"]._can_commit()

    def _l10n_pl_ksef_commit(self):
        if self._l10n_pl_ksef_can_commit():
            self.env.cr.commit()  # pylint: disable=invalid-commit  # the frozen file must outlive a lost answer

    def _l10n_pl_ksef_lock(self):
        """Only one worker sends a given invoice at a time."""
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute("SELECT id FROM account_move WHERE id = %s FOR UPDATE NOWAIT", [self.id])
        except psycopg2.errors.LockNotAvailable:
            raise UserError(_("Invoice %s is being sent to KSeF by another user right now.", self.display_name)) from None

    def _l10n_pl_ksef_log(self, body, attachment_ids=None):
        # no_new_invoice: our XML attachments must not be read back as incoming invoices.
        return self.with_context(no_new_invoice=True).message_post(body=body, attachment_ids=attachment_ids or [])

    def _l10n_pl_ksef_error_text(self, error):
        """What an accountant reads about an error met on the way to KSeF (translated)."""
        return ksef_messages.ksef_error_text(self.env, error)

    def _l10n_pl_ksef_post(self):
        """Send this invoice to KSeF (or, when it was already sent, ask KSeF about it)."""
        self.ensure_one()
        if not self._l10n_pl_ksef_is_applicable():
            raise UserError(_("Only posted customer invoices and credit notes of a Polish company can be sent to "
                              "KSeF (%s).", self.display_name))
        if self.l10n_pl_ksef_state == "sending":
            # Sent before: its fate is KSeF's to tell, a second sending could create a duplicate.
            return self._l10n_pl_ksef_update_status()
        if self.l10n_pl_ksef_state not in POSTABLE_STATES:
            state = dict(self._fields["l10n_pl_ksef_state"]._description_selection(self.env))[self.l10n_pl_ksef_state]
            raise UserError(_("Invoice %(invoice)s cannot be posted to KSeF: its KSeF status is '%(state)s'.",
                              invoice=self.display_name, state=state))
        self._l10n_pl_ksef_lock()
        self.action_l10n_pl_ksef_freeze()
        # Reserved for this sending: the submission engine leaves the invoice alone meanwhile
        # (and picks it up after the reservation when this sending does not get through).
        self._l10n_pl_ksef_write({
            "l10n_pl_ksef_state": self.l10n_pl_ksef_state or "to_send",
            "l10n_pl_ksef_next_try": fields.Datetime.now() + datetime.timedelta(minutes=5),
        })
        self._l10n_pl_ksef_commit()

        # One road to KSeF: the engine's Submitter on a one-invoice plan (see l10n_pl_ksef_engine_post).
        return self._l10n_pl_ksef_post_send()

    def _l10n_pl_ksef_own_ksef_numbers(self):
        """KSeF numbers under which this invoice is known to be in KSeF (a 440 naming one is ours)."""
        return set(self.l10n_pl_ksef_document_ids.mapped("ksef_number")) - {False, None}

    def _l10n_pl_ksef_own_hashes(self):
        """Hashes of files of this very invoice that KSeF may hold (a 440 whose original has one is ours)."""
        return {self.l10n_pl_ksef_xml_hash} - {False, None}

    def _l10n_pl_ksef_set_accepted(self, document, ksef_number, acquisition_date, upo_xml, common, adopted=False,
                                   invoicing_mode=None):
        self.ensure_one()
        return self._l10n_pl_ksef_apply_results([{
            "move": self, "document": document, "verdict": "adopted" if adopted else "accepted",
            "ksef_number": ksef_number, "acquisition_date": acquisition_date, "upo_xml": upo_xml,
            "document_values": common, "invoicing_mode": invoicing_mode,
        }])

    def _l10n_pl_ksef_set_rejected(self, code, description, details, document=None, common=None):
        self.ensure_one()
        return self._l10n_pl_ksef_apply_results([{
            "move": self, "document": document, "verdict": "rejected", "code": code,
            "description": description, "details": details, "document_values": common or {},
        }])

    @api.model
    def _l10n_pl_ksef_rejection_text(self, code, description, details):
        details = [str(d) for d in details or []]
        text = _("KSeF rejected the invoice: code %(code)s - %(description)s", code=code, description=description or "")
        if details:
            text += "\n" + "\n".join("- %s" % d for d in details[:20])
        return text

    # ---- the one place where a KSeF verdict lands on an invoice -----------------------------

    @api.model
    def _l10n_pl_ksef_apply_results(self, results, bulk=False):
        """Apply KSeF verdicts to invoices and their submission records. Used by the Post button
        (one invoice, tracked writes, one chatter message with the UPO attached) and by the
        submission engine (``bulk=True``: thousands at once, set-based SQL for the per-invoice
        values, one chatter note per invoice logged in batch).

        Each result is a dict: ``move``, ``document`` (may be empty), ``verdict`` (accepted,
        adopted = a 440 duplicate of our own file, rejected, retry = KSeF does not hold it, send
        again, pending = still undecided), ``ksef_number``, ``acquisition_date``, ``upo`` (an
        ir.attachment, e.g. a shared session UPO) or ``upo_xml`` (bytes: a per-invoice UPO),
        ``code``/``description``/``details``, ``error``, ``retry_state`` (to_send/offline),
        ``document_values`` and ``move_values`` (extra values). Returns True when every result
        was an acceptance."""
        now = fields.Datetime.now()
        new_upos = [r for r in results if r["verdict"] in ("accepted", "adopted") and r.get("upo_xml") and not r.get("upo")]
        if new_upos:
            attachments = self.env["ir.attachment"].create([{
                "name": "UPO_%s.xml" % r["ksef_number"],
                "raw": r["upo_xml"],
                "mimetype": "application/xml",
                "res_model": "account.move",
                "res_id": r["move"].id,
                "description": self.env._("KSeF official receipt (UPO) for KSeF number %s", r["ksef_number"]),
            } for r in new_upos])
            for result, attachment in zip(new_upos, attachments):
                result["upo"] = attachment
        planned = []   # (result, document values, move values, chatter body)
        for result in results:
            move, verdict = result["move"], result["verdict"]
            details = [str(d) for d in result.get("details") or []]
            doc_vals = {"checked_at": now, **(result.get("document_values") or {})}
            if result.get("code") is not None:
                doc_vals.setdefault("status_code", result["code"] or 0)
            if result.get("description") is not None:
                doc_vals.setdefault("status_description", result["description"])
            if details:
                doc_vals.setdefault("status_details", "\n".join(details))
            move_vals = dict(result.get("move_values") or {})
            body = None
            if verdict in ("accepted", "adopted"):
                number = result["ksef_number"]
                acquisition = _naive(result.get("acquisition_date")) if result.get("acquisition_date") else False
                upo = result.get("upo") or self.env["ir.attachment"]
                doc_vals.update(state="accepted", ksef_number=number, acquisition_date=acquisition,
                                upo_id=upo.id or False, error=False)
                doc_vals.setdefault("status_code", 440 if verdict == "adopted" else 200)
                move_vals.update(l10n_pl_ksef_state="accepted", l10n_pl_ksef_number=number,
                                 l10n_pl_ksef_number_environment=move._l10n_pl_ksef_number_environment_key(),
                                 l10n_pl_ksef_acquisition_date=acquisition,
                                 l10n_pl_ksef_upo_id=upo.id or move.l10n_pl_ksef_upo_id.id or False,
                                 l10n_pl_ksef_error=False)
                if verdict == "adopted":
                    body = _("KSeF already held this very invoice from an earlier sending: KSeF number %(number)s "
                             "adopted.", number=number)
                else:
                    body = _("Accepted by KSeF: KSeF number %(number)s.", number=number)
            elif verdict == "rejected":
                text = self._l10n_pl_ksef_rejection_text(result.get("code"), result.get("description"), details)
                doc_vals.update(state="rejected", error=result.get("error") or text)
                move_vals.update(l10n_pl_ksef_state="rejected", l10n_pl_ksef_error=text)
                body = text
            elif verdict == "retry":
                error = result.get("error") or result.get("description") or ""
                doc_vals.update(state="failed", error=error)
                move_vals.update(l10n_pl_ksef_state=result.get("retry_state") or "to_send", l10n_pl_ksef_error=error)
                if not bulk:
                    body = _("KSeF did not process the invoice (code %(code)s: %(description)s). It can be posted to "
                             "KSeF again.", code=result.get("code"), description=result.get("description") or "")
            elif verdict != "pending":
                raise ValueError("unknown KSeF verdict %r" % verdict)
            planned.append((result, doc_vals, move_vals, body))
        try:
            with self.env.cr.savepoint():
                self._l10n_pl_ksef_apply_planned(planned, bulk)
        except psycopg2.errors.UniqueViolation:
            # A KSeF number another invoice of this database already holds: one by one, so that
            # only the colliding invoices stay as they were, with the reason.
            for item in planned:
                try:
                    with self.env.cr.savepoint():
                        self._l10n_pl_ksef_apply_planned([item], bulk)
                except psycopg2.errors.UniqueViolation:
                    self._l10n_pl_ksef_apply_planned([self._l10n_pl_ksef_number_taken(*item)], bulk)
                    results = [r for r in results if r is not item[0]] + [dict(item[0], verdict="collision")]
        return all(r["verdict"] in ("accepted", "adopted") for r in results)

    def _l10n_pl_ksef_apply_planned(self, planned, bulk):
        if bulk:
            self._l10n_pl_ksef_apply_bulk(planned)
            return
        for result, doc_vals, move_vals, body in planned:
            if result.get("document"):
                result["document"].sudo().write(doc_vals)
            if move_vals:
                result["move"]._l10n_pl_ksef_write(move_vals)
            if body:
                upo = result.get("upo")
                result["move"]._l10n_pl_ksef_log(body, upo.ids if upo and upo.res_model == "account.move" else None)

    def _l10n_pl_ksef_number_taken(self, result, doc_vals, move_vals, body):
        """The planned verdict of an invoice whose KSeF number another invoice holds: KSeF's answer
        stays on the submission, the invoice keeps its state and says why."""
        number = move_vals.get("l10n_pl_ksef_number")
        holder = self.sudo().with_context(active_test=False).search(
            [("l10n_pl_ksef_number", "=", number), ("id", "!=", result["move"].id),
             ("company_id", "=", result["move"].company_id.id),
             ("l10n_pl_ksef_number_environment", "=", move_vals.get("l10n_pl_ksef_number_environment"))], limit=1)
        text = _("KSeF gave invoice %(invoice)s the number %(number)s, which invoice %(other)s of this database "
                 "already holds. The invoice stays as it was; an administrator must check which of the two KSeF "
                 "really holds (e.g. in the KSeF application).",
                 invoice=result["move"].display_name, number=number, other=holder.display_name or "?")
        return (result, dict(doc_vals, error=text), {"l10n_pl_ksef_error": text}, text)

    @api.model
    def _l10n_pl_ksef_apply_bulk(self, planned):
        """Thousands of verdicts: the state goes through the ORM (one write per state, so its
        dependants are recomputed), the per-invoice values through set-based UPDATEs, the
        chatter through one batch of notes (no tracking message per invoice)."""
        Document = self.env["l10n_pl_ksef.document"]
        doc_rows = {}
        move_rows = {}
        by_state = {}
        bodies = {}
        for result, doc_vals, move_vals, body in planned:
            if result.get("document"):
                doc_rows[result["document"].id] = doc_vals
            move = result["move"]
            vals = dict(move_vals)
            state = vals.pop("l10n_pl_ksef_state", None)
            if state:
                by_state.setdefault(state, []).append(move.id)
            if vals:
                move_rows[move.id] = vals
            if body:
                bodies[move.id] = body
        Moves = self.with_context(tracking_disable=True, mail_notrack=True)
        for state, ids in by_state.items():
            Moves.browse(ids)._l10n_pl_ksef_write({"l10n_pl_ksef_state": state})
        _sql_update(Document, doc_rows)
        _sql_update(self.env["account.move"], move_rows)
        # Set-based writes bypass write(): let credit notes held for these originals go.
        numbered = [move_id for move_id, vals in move_rows.items() if vals.get("l10n_pl_ksef_number")]
        if numbered:
            self.env["account.move"].browse(numbered)._l10n_pl_ksef_release_held_credit_notes()
        if bodies:
            self.env["account.move"].browse(list(bodies)).with_context(no_new_invoice=True)._message_log_batch(
                bodies={move_id: body for move_id, body in bodies.items()})

    def _l10n_pl_ksef_update_status(self):
        """Ask KSeF about invoices in 'sending' (their last sending) with the Submitter's
        reconcile, the engine's rule; apply what it says. Nothing is sent."""
        for move in self.filtered(lambda m: m.l10n_pl_ksef_state == "sending"):
            document = move.l10n_pl_ksef_document_ids.filtered(
                lambda d: d.state == "sending" and d.session_reference)[:1]
            if not document:
                continue
            try:
                client = move.company_id._l10n_pl_ksef_client()
                move._l10n_pl_ksef_reconcile_sent(document, client)
            except UNREACHABLE_ERRORS + (ksef_errors.KsefError,) as error:
                raise UserError(_("KSeF status of invoice %(invoice)s cannot be checked now: %(error)s",
                                  invoice=move.display_name, error=self._l10n_pl_ksef_error_text(error))) from error
        return True

"""Where KSeF's verdict lands on invoices: the Post button's (one invoice, tracked writes, one
chatter message with the UPO attached) and the submission engine's (thousands at once). Every
state change goes through the lifecycle's ``_l10n_pl_ksef_move_to`` / ``_l10n_pl_ksef_move_batch``
(``account_move_ksef_lifecycle``), which checks the transition and runs its reactions."""
import datetime

import psycopg2

from odoo import _, api, fields, models

from ..ksef import client as ksef_client
from .ksef_sql import sql_update


def _naive(moment):
    """A KSeF date-time (aware, or ISO text) as the naive UTC value Odoo stores."""
    if not moment:
        return False
    return ksef_client.parse_datetime(moment).astimezone(datetime.timezone.utc).replace(tzinfo=None)


class AccountMove(models.Model):
    _inherit = "account.move"

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
            move, vals = result["move"], dict(move_vals)
            upo = result.get("upo")
            attachments = {move.id: upo.ids} if upo and upo.res_model == "account.move" else None
            if "l10n_pl_ksef_state" in vals:
                move._l10n_pl_ksef_move_to(vals.pop("l10n_pl_ksef_state"), vals, message=body, attachment_ids=attachments)
                continue
            if vals:
                move._l10n_pl_ksef_write(vals)
            if body:
                move._l10n_pl_ksef_log(body, (attachments or {}).get(move.id))

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
        """Thousands of verdicts in one move of the lifecycle: the state goes through the ORM (one
        write per state, so its dependants are recomputed), the per-invoice values through
        set-based UPDATEs, the chatter through one batch of notes (no tracking message per invoice)."""
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
        sql_update(Document, doc_rows)
        Moves = self.env["account.move"].with_context(tracking_disable=True, mail_notrack=True)
        Moves._l10n_pl_ksef_move_batch({state: Moves.browse(ids) for state, ids in by_state.items()},
                                       rows=move_rows, message=bodies, bulk=True)

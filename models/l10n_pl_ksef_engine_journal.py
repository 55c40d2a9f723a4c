"""The submission engine's journal: what KSeF may hold from us, written before KSeF is asked.

``EngineJournal`` is the ``ksef.submission.Journal`` of the Odoo side. It records every session in
``l10n_pl_ksef.session`` and every invoice it may hold in ``l10n_pl_ksef.document``, marks the
invoices ``sending`` and commits, all BEFORE any upload or send (outside tests); KSeF's outcomes
come back through ``outcomes`` and land on the invoices through the lifecycle
(``_l10n_pl_ksef_apply_results``). ``PostJournal`` (Post to KSeF) extends it for one invoice.
"""
import json
import logging

from odoo import _, fields

from ..ksef import errors as ksef_errors
from ..ksef import submission
from . import ksef_messages

_logger = logging.getLogger(__name__)

# A worker holds a PostgreSQL session-level advisory lock (ADVISORY_CLASS, session id) on every
# session it is working on: it survives the journal's commits and dies with the worker, so
# another worker reconciles a session only once its worker is gone. Threads of one process
# (which may share a connection) also see the sessions in flight here.
ADVISORY_CLASS = 0x4B534546 & 0x7FFFFFFF   # "KSEF"
_IN_FLIGHT = set()


class EngineJournal(submission.Journal):
    """``ksef.submission.Journal`` on ``l10n_pl_ksef.session``/``l10n_pl_ksef.document``: progress
    is committed before each network effect the engine announces (outside tests)."""

    bulk = True     # verdicts land set-based (thousands at once); Post to KSeF lands one by one

    def __init__(self, env, company):
        self.env = env(context=dict(env.context, l10n_pl_ksef_engine=True))
        self.company = company
        self.Move = self.env["account.move"].sudo().with_company(company)
        self.sessions = {}      # reference -> l10n_pl_ksef.session
        self.upos = {}          # (session reference, UPO page reference) -> ir.attachment
        self.held = []          # sessions this run holds (advisory lock)

    def _commit(self):
        self.Move._l10n_pl_ksef_engine_commit()

    def _hold(self, session):
        """Mark ``session`` as ours while this run works on it (see ADVISORY_CLASS)."""
        self.env.cr.execute("SELECT pg_advisory_lock(%s, %s)", [ADVISORY_CLASS, session.id])
        self.held.append(session)
        _IN_FLIGHT.add(session.reference_number)

    def take_over(self, session):
        """True when no live worker is working on ``session``; it is then ours."""
        if session.reference_number in _IN_FLIGHT:
            return False
        self.env.cr.execute("SELECT pg_try_advisory_lock(%s, %s)", [ADVISORY_CLASS, session.id])
        if not self.env.cr.fetchone()[0]:
            return False
        self.env.cr.execute("SELECT pg_advisory_unlock(%s, %s)", [ADVISORY_CLASS, session.id])
        self._hold(session)
        return True

    def release(self):
        for session in self.held:
            _IN_FLIGHT.discard(session.reference_number)
            try:
                self.env.cr.execute("SELECT pg_advisory_unlock(%s, %s)", [ADVISORY_CLASS, session.id])
            except Exception:  # noqa: BLE001 - the connection is gone: so is the lock
                _logger.info("KSeF: advisory lock of session %s not released", session.reference_number)
        self.held = []

    def remember(self, sessions):
        for session in sessions:
            self.sessions[session.reference_number] = session

    def flush(self):
        self.env.flush_all()
        self._commit()

    def session_opened(self, record):
        Session = self.env["l10n_pl_ksef.session"].sudo()
        moves = self.Move.browse(sorted(int(key) for key in record.hashes.values()))
        session = Session.create({
            "company_id": self.company.id,
            "reference_number": record.reference,
            "state": "closed",          # never reused by the Post button
            "engine": True,
            "kind": "batch" if record.kind == submission.BATCH else "online",
            "offline_mode": record.offline_mode,
            "invoice_hashes": json.dumps(record.hashes),
            "invoice_count": len(record.hashes),
            "journal_state": "opened",
            "api_url": self.company.sudo()._l10n_pl_ksef_api_url(),
        })
        self.sessions[record.reference] = session
        self._hold(session)
        self._journal_sending(moves, record)
        moves.with_context(tracking_disable=True)._l10n_pl_ksef_move_to("sending", {"l10n_pl_ksef_error": False})
        self.flush()

    def _journal_sending(self, moves, record):
        """One submission (``sending``) per invoice the session may hold, before anything is sent."""
        now = fields.Datetime.now()
        return self.env["l10n_pl_ksef.document"].sudo().create([{
            "move_id": move.id,
            "company_id": self.company.id,
            "session_reference": record.reference,
            "invoice_hash": move.l10n_pl_ksef_xml_hash,
            "offline_mode": record.offline_mode,
            "hash_of_corrected_invoice": move._l10n_pl_ksef_hash_of_corrected_invoice() or False,
            "state": "sending",
            "sent_at": now,
        } for move in moves])

    def session_closed(self, session_reference):
        session = self.sessions.get(session_reference)
        if session and session.journal_state == "opened":
            session.journal_state = "closed"
        self.flush()

    def session_settled(self, session_reference):
        session = self.sessions.get(session_reference) or self.env["l10n_pl_ksef.session"].sudo().search(
            [("reference_number", "=", session_reference), ("engine", "=", True)], limit=1)
        if session:
            session.journal_state = "settled"
        self.flush()

    def _outcome_error_text(self, outcome):
        """What the invoice shows about a non-accepted outcome: KSeF's own description of the
        invoice status when KSeF gave one, else a translated account of the error met."""
        error = outcome.error
        if error is not None and (not outcome.description or outcome.description == str(error)):
            return ksef_messages.ksef_error_text(self.env, error)
        return outcome.description or ""

    @staticmethod
    def _outcome_description(outcome):
        """KSeF's own words: a refusal on arrival (HTTP 400) carries them in the error."""
        error = outcome.error
        if isinstance(error, ksef_errors.Rejected) and error.description and outcome.description == str(error):
            return error.description
        return outcome.description

    def _session_upo(self, shared):
        key = (shared.session_reference, shared.upo_reference)
        if key not in self.upos:
            session = self.sessions.get(shared.session_reference) or self.env["l10n_pl_ksef.session"].sudo().search(
                [("reference_number", "=", shared.session_reference)], limit=1)
            attachment = self.env["ir.attachment"].sudo().create({
                "name": "UPO_%s_%s.xml" % (shared.session_reference, shared.upo_reference),
                "raw": shared.xml,
                "mimetype": "application/xml",
                "res_model": "l10n_pl_ksef.session" if session else False,
                "res_id": session.id if session else 0,
                "description": _("KSeF collective UPO of session %s", shared.session_reference),
            })
            if session:
                session.upo_ids = [(4, attachment.id)]
            self.upos[key] = attachment
        return self.upos[key]

    def outcomes(self, outcomes):
        moves = self.Move.browse([o.key for o in outcomes]).exists()
        by_id = {move.id: move for move in moves}
        documents = self.env["l10n_pl_ksef.document"].sudo().search(
            [("move_id", "in", moves.ids), ("state", "=", "sending")], order="id")
        document_of = {document.move_id.id: document for document in documents}   # latest wins
        results = []
        for outcome in outcomes:
            move = by_id.get(outcome.key)
            if move is None:
                continue
            document = document_of.get(move.id, self.env["l10n_pl_ksef.document"])
            document_values = {}
            if outcome.invoice_reference:
                document_values["invoice_reference"] = outcome.invoice_reference
            if outcome.session_reference and outcome.status != submission.DUPLICATE_ADOPTED:
                document_values["session_reference"] = outcome.session_reference
            result = {"move": move, "document": document, "code": outcome.code,
                      "description": self._outcome_description(outcome), "details": outcome.details,
                      "document_values": document_values}
            if outcome.status in (submission.ACCEPTED, submission.DUPLICATE_ADOPTED):
                result.update(verdict="adopted" if outcome.status == submission.DUPLICATE_ADOPTED else "accepted",
                              ksef_number=outcome.ksef_number, acquisition_date=outcome.acquisition_date,
                              upo_xml=outcome.upo_xml, invoicing_mode=outcome.invoicing_mode,
                              move_values={"l10n_pl_ksef_next_try": False, "l10n_pl_ksef_attempts": 0})
                if outcome.session_upo is not None:
                    result["upo"] = self._session_upo(outcome.session_upo)
                if outcome.status == submission.ACCEPTED:
                    result["code"] = 200
            elif outcome.status == submission.REJECTED:
                result.update(verdict="rejected", error=self._outcome_error_text(outcome))
            elif outcome.status == submission.RETRY:
                offline = bool(document.offline_mode) if document else (
                    move.l10n_pl_ksef_state == "offline" or bool(move._l10n_pl_ksef_is_offline()))
                next_try = self.Move._l10n_pl_ksef_engine_next_try(move, outcome.retry_after)
                result.update(verdict="retry", retry_state="offline" if offline else "to_send",
                              error=self._outcome_error_text(outcome),
                              move_values={"l10n_pl_ksef_next_try": next_try,
                                           "l10n_pl_ksef_attempts": move.l10n_pl_ksef_attempts + 1})
                if not document:
                    result["document"] = document
            else:   # pending: stays "sending"; its session stays unsettled and is reconciled later
                result.update(verdict="pending")
            results.append(result)
        self.Move._l10n_pl_ksef_apply_results(results, bulk=self.bulk)
        self.flush()

"""Evidence pack of invoices issued offline: what a tax inspector asks to prove an invoice was
issued offline lawfully and sent in time (VAT act art. 106nda-106nh; the Ministry's
``tryby-offline.md``). One ZIP: a PDF summary, and per invoice the frozen FA(3) file and its hash,
the printed codes, the mode and why, every KSeF notice that set or moved its deadline verbatim
(with when and from where it was fetched), every submission attempt with KSeF's answers, the UPO."""
import base64
import hashlib
import json
import re

from odoo import Command, _, api, fields, models
from odoo.exceptions import UserError

from ..ksef import crypto
from ..ksef import evidence as ksef_evidence
from ..ksef import qr as ksef_qr
from .account_move_ksef_offline import KOD1_HEADER, KOD2_HEADER, MODES_TO_SEND

EVENT_FIELDS_OF_EVIDENCE = ("l10n_pl_ksef_offline_event_id", "l10n_pl_ksef_deadline_event_id")


def _safe(name):
    return re.sub(r"[^0-9A-Za-z._-]+", "_", name or "").strip("_") or "document"


class AccountMove(models.Model):
    _inherit = "account.move"

    l10n_pl_ksef_evidence_event_ids = fields.Many2many(
        "l10n_pl_ksef.event", "l10n_pl_ksef_move_evidence_event_rel", "move_id", "event_id",
        string="KSeF notices of this invoice", copy=False, readonly=True,
        help="Every KSeF notice that justified the offline mode or set or moved the deadline of this invoice.")

    def _l10n_pl_ksef_write(self, vals):
        # The notice that justified the offline mode or set the deadline joins the evidence, in the
        # same write (these fields are written through here only: see account_move_ksef_guard.py).
        linked = [vals[name] for name in EVENT_FIELDS_OF_EVIDENCE if vals.get(name)]
        if linked:
            vals = {**vals, "l10n_pl_ksef_evidence_event_ids": [Command.link(event_id) for event_id in linked]}
        return super()._l10n_pl_ksef_write(vals)

    # ---- what goes into the pack --------------------------------------------------------------

    def _l10n_pl_ksef_evidence_notices(self):
        """The notice records (all versions, as received) of every event behind this invoice,
        with the other notices of the same events (start and end of a failure)."""
        self.ensure_one()
        Event = self.env["l10n_pl_ksef.event"].sudo().with_context(active_test=False)
        events = self.sudo().l10n_pl_ksef_evidence_event_ids | self.sudo().l10n_pl_ksef_offline_event_id \
            | self.sudo().l10n_pl_ksef_deadline_event_id
        related = Event.browse()
        for event in events:
            related |= event
            if event.event_ref:
                related |= Event.search([("source", "=", event.source), ("environment", "=", event.environment),
                                         ("event_ref", "=", event.event_ref)])
        return related.sorted(lambda e: (e.published, e.id))

    def _l10n_pl_ksef_evidence_codes(self):
        """The codes as printed while the invoice waited offline (KOD I "OFFLINE", KOD II) and as
        printed now. Each {"kind", "label", "url", "png"}."""
        self.ensure_one()
        company = self.company_id
        codes = []
        if self.l10n_pl_ksef_offline_mode in MODES_TO_SEND and self.l10n_pl_ksef_xml_hash and company._l10n_pl_ksef_nip():
            url = ksef_qr.invoice_url_from_hash(company._l10n_pl_ksef_qr_environment(), company._l10n_pl_ksef_nip(),
                                                self.invoice_date, self._l10n_pl_ksef_printed_hash())
            codes.append({"kind": "KOD_I_offline", "label": ksef_qr.KOD1_LABEL_OFFLINE, "url": url,
                          "header": KOD1_HEADER})
            if self.l10n_pl_ksef_qr_certificate_url:
                codes.append({"kind": "KOD_II", "label": ksef_qr.KOD2_LABEL,
                              "url": self.l10n_pl_ksef_qr_certificate_url, "header": KOD2_HEADER})
        for code in self._l10n_pl_ksef_qr_codes():
            if not any(known["url"] == code["url"] and known["label"] == code["label"] for known in codes):
                codes.append({"kind": "%s_now" % {"kod1": "KOD_I", "kod2": "KOD_II"}.get(code["kind"], code["kind"]),
                              "label": code["label"],
                              "url": code["url"], "header": code["header"]})
        for code in codes:
            code["png"] = ksef_qr.qr_png(code["url"])
            code["image"] = "data:image/png;base64,%s" % base64.b64encode(code["png"]).decode()
        return codes

    def _l10n_pl_ksef_evidence_mode_text(self):
        self.ensure_one()
        if not self.l10n_pl_ksef_offline_mode:
            return _("Sent to KSeF online.")
        mode = dict(self._fields["l10n_pl_ksef_offline_mode"]._description_selection(self.env))[
            self.l10n_pl_ksef_offline_mode]
        text = _("Issued offline in mode: %(mode)s, on %(when)s (UTC).", mode=mode,
                 when=self.l10n_pl_ksef_offline_issued_at or "")
        justification = self.sudo().l10n_pl_ksef_offline_event_id
        if justification:
            text += " " + _("Justification: %(notice)s.", notice=justification.display_title)
        return text

    def _l10n_pl_ksef_evidence_attempts(self):
        self.ensure_one()
        attempts = []
        for document in self.sudo().l10n_pl_ksef_document_ids.sorted("id"):
            attempts.append({
                "id": document.id,
                "sent_at": fields.Datetime.to_string(document.sent_at) if document.sent_at else None,
                "checked_at": fields.Datetime.to_string(document.checked_at) if document.checked_at else None,
                "session_reference": document.session_reference or None,
                "invoice_reference": document.invoice_reference or None,
                "invoice_hash": document.invoice_hash or None,
                "offline_mode": document.offline_mode,
                "hash_of_corrected_invoice": document.hash_of_corrected_invoice or None,
                "state": document.state,
                "status_code": document.status_code,
                "status_description": document.status_description or None,
                "status_details": document.status_details or None,
                "error": document.error or None,
                "ksef_number": document.ksef_number or None,
                "acquisition_date": fields.Datetime.to_string(document.acquisition_date)
                if document.acquisition_date else None,
                "upo": document.upo_id.name or None,
            })
        return attempts

    def _l10n_pl_ksef_evidence_files(self, folder=""):
        """(path, bytes) of this invoice's evidence, under ``folder``."""
        self.ensure_one()
        move = self.sudo()
        files = []
        xml = move.l10n_pl_ksef_xml_id.raw
        if xml:
            files.append((folder + "FA3_%s.xml" % _safe(move.name), xml))
            files.append((folder + "FA3_%s.sha256.txt" % _safe(move.name), (
                "SHA-256 (Base64, API): %s\nSHA-256 (Base64URL, QR codes): %s\nSHA-256 (hex): %s\n"
                "Hash printed in KOD I (Base64): %s\nFrozen on (UTC): %s\n" % (
                    crypto.sha256_b64(xml), crypto.b64_to_b64url(crypto.sha256_b64(xml)),
                    hashlib.sha256(xml).hexdigest(), move._l10n_pl_ksef_printed_hash(),
                    move.l10n_pl_ksef_frozen_at or "")).encode()))
        for code in self._l10n_pl_ksef_evidence_codes():
            files.append((folder + "codes/%s.png" % code["kind"], code["png"]))
            files.append((folder + "codes/%s.txt" % code["kind"], ("%s\n%s\n%s\n" % (
                code["header"], code["label"], code["url"])).encode()))
        deadline = {
            "invoice": move.name, "issue_date": fields.Date.to_string(move.invoice_date),
            "ksef_state": move.l10n_pl_ksef_state or None, "offline_mode": move.l10n_pl_ksef_offline_mode or None,
            "mode_and_why": self._l10n_pl_ksef_evidence_mode_text(),
            "deadline": fields.Date.to_string(move.l10n_pl_ksef_deadline) if move.l10n_pl_ksef_deadline else None,
            "deadline_reason": move.l10n_pl_ksef_deadline_reason or None,
            "ksef_number": move.l10n_pl_ksef_number or None,
            "acquisition_date": fields.Datetime.to_string(move.l10n_pl_ksef_acquisition_date)
            if move.l10n_pl_ksef_acquisition_date else None,
        }
        files.append((folder + "mode_and_deadline.json", _json(deadline)))
        for event in self._l10n_pl_ksef_evidence_notices():
            for notice in event.notice_ids:
                name = "notices/%s_v%s_%s.json" % (_safe(notice.notice_ref or "event%s" % event.id), notice.version or 1,
                                                   notice.id)
                files.append((folder + name, notice.raw.encode("utf-8")))
                files.append((folder + name[:-5] + ".fetched.txt", (
                    "Fetched on (UTC): %s\nFetched from: %s\nSHA-256: %s\n" % (
                        notice.fetched_at, notice.fetched_from or "", notice.raw_sha256)).encode()))
        files.append((folder + "submissions.json", _json(self._l10n_pl_ksef_evidence_attempts())))
        upos = move.l10n_pl_ksef_document_ids.upo_id | move.l10n_pl_ksef_upo_id
        for upo in upos:
            files.append((folder + "UPO/%s_%s" % (upo.id, _safe(upo.name)), upo.raw or b""))
        return files

    # ---- the pack ---------------------------------------------------------------------------

    def _l10n_pl_ksef_evidence_pack(self):
        """ZIP bytes of the evidence of these invoices (one folder per invoice when several)."""
        if not self:
            raise UserError(_("Select at least one invoice for a KSeF evidence pack."))
        self.check_access("read")
        wrong = self.filtered(lambda m: not m.l10n_pl_ksef_xml_id and m.l10n_pl_ksef_state != "outside")
        if wrong:
            raise UserError(_("Invoice %(invoice)s has no KSeF e-invoice (it was never issued to KSeF nor offline): "
                              "there is no KSeF evidence to pack.", invoice=", ".join(wrong.mapped("display_name"))))
        files = [("summary.pdf", self._l10n_pl_ksef_evidence_pdf())]
        for move in self:
            files += move._l10n_pl_ksef_evidence_files("%s/" % _safe(move.name) if len(self) > 1 else "")
        return ksef_evidence.build_zip(files)

    def _l10n_pl_ksef_evidence_pdf(self):
        pdf, _type = self.env["ir.actions.report"].sudo()._render_qweb_pdf(
            "l10n_pl_ksef.action_report_l10n_pl_ksef_evidence", self.ids)
        return pdf

    def action_l10n_pl_ksef_evidence_pack(self):
        content = self._l10n_pl_ksef_evidence_pack()
        name = "%s_%s.zip" % (_("KSeF_evidence"), _safe(self.name if len(self) == 1 else
                                                          "%s_invoices" % len(self)))
        attachment = self.env["ir.attachment"].sudo().create({
            "name": name, "raw": content, "mimetype": "application/zip",
            "res_model": self._name if len(self) == 1 else False, "res_id": self.id if len(self) == 1 else False,
        })
        return {"type": "ir.actions.act_url", "url": "/web/content/%s?download=true" % attachment.id, "target": "self"}

    @api.model
    def _l10n_pl_ksef_evidence_report_values(self, move):
        """What the PDF summary prints of ``move`` (the report reads it through this)."""
        return {
            "mode": move._l10n_pl_ksef_evidence_mode_text(),
            "codes": move._l10n_pl_ksef_evidence_codes(),
            "notices": [notice for event in move._l10n_pl_ksef_evidence_notices() for notice in event.sudo().notice_ids],
            "attempts": move._l10n_pl_ksef_evidence_attempts(),
        }


def _json(value):
    return json.dumps(value, ensure_ascii=False, indent=2, default=str).encode("utf-8")

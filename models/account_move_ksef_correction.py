"""Corrections around invoices issued offline (the Ministry's ``offline/korekta-techniczna.md``;
FA(3) XSD, ``DaneFaKorygowanej``).

Technical correction ("korekta techniczna"): an offline invoice KSeF rejected for a technical
reason (XSD/size 430, duplicate 440, semantic validation 450) is rebuilt from the unchanged
invoice once the technical problem is fixed (e.g. master data), frozen as the invoice's new file
and sent in an interactive session with ``offlineMode=true`` and ``hashOfCorrectedInvoice`` = the
hash of the rejected original. The rejected file stays attached and protected: its hash is
printed in KOD I, and KSeF leads that code to the corrected invoice. Only one accepted technical
correction per original; never for permission rejections (410, 415).

Credit notes of offline originals: a credit note whose original has no KSeF number yet refers
to a number that does not exist; it is HELD (state ``to_send``, ``l10n_pl_ksef_waiting_original``)
and not frozen nor sent until the original has its number, then released: the lifecycle's
"waits for references" rule (``account_move_ksef_lifecycle``).
"""
import re

from lxml import etree
from markupsafe import Markup

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from ..ksef import crypto

# Per-invoice KSeF status codes a technical correction can cure (``offline/korekta-techniczna.md``;
# OpenAPI ``SessionInvoiceStatusResponse.status``).
TECHNICAL_REJECTION_CODES = (430, 440, 450)
# Rejections for missing permissions: KSeF refuses a technical correction for them
# (``offline/korekta-techniczna.md``).
PERMISSION_REJECTION_CODES = (410, 415)
# Synchronous KSeF answers to a technical correction (OpenAPI ``SendInvoiceRequest``: 21166, 21167).
CORRECTION_UNAVAILABLE = 21166
CORRECTION_NOT_ALLOWED = 21167

# Business content of an FA(3) file: what a technical correction must leave unchanged.
_HEADER_ELEMENTS = ("KodWaluty", "P_1", "P_2", "P_6", "RodzajFaktury", "P_15")
_TOTAL_PREFIXES = ("P_13_", "P_14_")
_LINE_ELEMENTS = ("P_8B", "P_9A", "P_9B", "P_10", "P_11", "P_11A", "P_11Vat", "P_12")


def _local(node):
    return etree.QName(node).localname


def _letters_and_digits(text):
    """A line name as compared: letters and digits only, so that a technical fix of its
    punctuation, spacing or a forbidden character passes, but another product does not."""
    return re.sub(r"[\W_]+", "", text or "").casefold()


def fa3_business_content(xml):
    """The business content of FA(3) bytes as a flat dict (path -> text): dates, number, kind,
    currency, parties' tax identifiers, every total and every line's amounts, rate and name.
    Addresses, contact data, creation time and free texts are left out: those are what a
    technical correction may fix. Works on files that fail the schema, as long as they parse."""
    try:
        root = etree.fromstring(xml)
    except etree.XMLSyntaxError:
        # A rejected file may not even be well-formed (e.g. a control character in a name):
        # read what can be read; the comparison still needs every business element.
        root = etree.fromstring(xml, etree.XMLParser(recover=True))
        if root is None:
            raise ValueError("not an XML document") from None
    content = {}
    fa = next((child for child in root if _local(child) == "Fa"), None)
    if fa is None:
        raise ValueError("no Fa element")
    for party in ("Podmiot1", "Podmiot2"):
        node = next((child for child in root if _local(child) == party), None)
        ident = next((child for child in node if _local(child) == "DaneIdentyfikacyjne"), None) if node is not None else None
        for child in (ident if ident is not None else []):
            if _local(child) != "Nazwa":
                content["%s/%s" % (party, _local(child))] = (child.text or "").strip()
    line_number = 0
    counters = {}
    for child in fa:
        name = _local(child)
        if name in _HEADER_ELEMENTS or name.startswith(_TOTAL_PREFIXES):
            content["Fa/%s" % name] = (child.text or "").strip()
        elif name == "DaneFaKorygowanej":
            for sub in child:
                content["Fa/DaneFaKorygowanej/%s" % _local(sub)] = (sub.text or "").strip()
        elif name in ("FakturaZaliczkowa", "Zamowienie"):
            # the advance invoices a settlement names, the order of an advance: business content too
            counters[name] = counters.get(name, 0) + 1
            for node in child.iter():
                if node is not child and not len(node) and _local(node) != "P_7Z":
                    content["Fa/%s[%d]/%s/%s" % (name, counters[name], _local(node.getparent()), _local(node))] = (node.text or "").strip()
        elif name == "FaWiersz":
            line_number += 1
            for sub in child:
                sub_name = _local(sub)
                if sub_name in _LINE_ELEMENTS:
                    content["Fa/FaWiersz[%d]/%s" % (line_number, sub_name)] = (sub.text or "").strip()
                elif sub_name == "P_7":
                    content["Fa/FaWiersz[%d]/P_7" % line_number] = _letters_and_digits(sub.text)
    content["Fa/FaWiersz count"] = str(line_number)
    return content


def business_differences(old_xml, new_xml):
    """Paths whose business content differs between two FA(3) files, as (path, old, new)."""
    old, new = fa3_business_content(old_xml), fa3_business_content(new_xml)
    return [(path, old.get(path), new.get(path)) for path in sorted(set(old) | set(new)) if old.get(path) != new.get(path)]


class AccountMove(models.Model):
    _inherit = "account.move"

    # ---- technical correction --------------------------------------------------------------

    l10n_pl_ksef_corrected_hash = fields.Char(
        string="Hash of the corrected (rejected) file", copy=False, readonly=True, index=True,
        help="Technical correction: SHA-256 (Base64) of the rejected original FA(3) file. It is sent as "
             "hashOfCorrectedInvoice, and it is the hash printed in KOD I of the original.")
    l10n_pl_ksef_rejected_xml_id = fields.Many2one(
        "ir.attachment", string="Rejected KSeF XML", copy=False, readonly=True,
        help="The original FA(3) file KSeF rejected, kept unchanged: its hash is printed on the invoice.")
    l10n_pl_ksef_technical_correction_at = fields.Datetime(
        string="Technical correction prepared on", copy=False, readonly=True)
    l10n_pl_ksef_show_technical_correction = fields.Boolean(
        compute="_compute_l10n_pl_ksef_show_technical_correction")

    # ---- credit notes of offline originals -------------------------------------------------

    l10n_pl_ksef_waiting_original = fields.Boolean(
        string="Waiting for the original's KSeF number", compute="_compute_l10n_pl_ksef_waiting_original",
        store=True, index=True, readonly=True,
        help="A credit note held back: the invoice it corrects has no KSeF number yet (it was issued "
             "offline). It goes to KSeF as soon as the original has one.")

    @api.depends("l10n_pl_ksef_state", "l10n_pl_ksef_offline_mode")
    def _compute_l10n_pl_ksef_show_technical_correction(self):
        for move in self:
            move.l10n_pl_ksef_show_technical_correction = (
                move.l10n_pl_ksef_state == "rejected" and bool(move.l10n_pl_ksef_offline_mode))

    @api.depends("move_type", "l10n_pl_ksef_state", "reversed_entry_id.l10n_pl_ksef_state",
                 "reversed_entry_id.l10n_pl_ksef_number")
    def _compute_l10n_pl_ksef_waiting_original(self):
        for move in self:
            move.l10n_pl_ksef_waiting_original = (
                move.l10n_pl_ksef_state == "to_send" and bool(move._l10n_pl_ksef_awaited_references()))

    # ---- hooks of the online flow and the submission engine ------------------------------

    def _l10n_pl_ksef_hash_of_corrected_invoice(self):
        self.ensure_one()
        return self.l10n_pl_ksef_corrected_hash or super()._l10n_pl_ksef_hash_of_corrected_invoice()

    def _l10n_pl_ksef_printed_hash(self):
        """The hash printed in KOD I (Base64, API form): a technically corrected invoice keeps the
        code of its original file (KSeF leads it to the correction); otherwise the frozen file's."""
        self.ensure_one()
        return self.l10n_pl_ksef_corrected_hash or self.l10n_pl_ksef_xml_hash

    def _l10n_pl_ksef_printed_hash_url(self):
        """The same hash in the Base64URL form of QR links."""
        self.ensure_one()
        if self.l10n_pl_ksef_corrected_hash:
            return crypto.b64_to_b64url(self.l10n_pl_ksef_corrected_hash)
        return self.l10n_pl_ksef_xml_hash_url

    # ---- technical correction --------------------------------------------------------------

    def _l10n_pl_ksef_last_rejection(self):
        self.ensure_one()
        return self.l10n_pl_ksef_document_ids.filtered(lambda d: d.state == "rejected").sorted("id", reverse=True)[:1]

    def _l10n_pl_ksef_technical_correction_problem(self):
        """Why this invoice cannot be technically corrected now (a sentence), or None."""
        self.ensure_one()
        name = self.display_name
        if self.l10n_pl_ksef_corrected_hash and self.l10n_pl_ksef_state in ("sending", "accepted"):
            if self.l10n_pl_ksef_state == "accepted":
                return _("Invoice %(invoice)s was already technically corrected: KSeF accepted the corrected e-invoice "
                         "(KSeF number %(number)s). KSeF allows only one technical correction per invoice.",
                         invoice=name, number=self.l10n_pl_ksef_number)
            return _("The technical correction of invoice %s is with KSeF, awaiting its verdict: refresh its KSeF "
                     "status instead.", name)
        if self.l10n_pl_ksef_state != "rejected":
            return _("Invoice %s was not rejected by KSeF: a technical correction only replaces the e-invoice of a "
                     "rejected invoice.", name)
        if not self.l10n_pl_ksef_offline_mode:
            return _("Invoice %s was not issued offline: no QR code of it was handed out, so it needs no technical "
                     "correction. Fix the problem and post it to KSeF again (or issue a credit note).", name)
        rejection = self._l10n_pl_ksef_last_rejection()
        code = rejection.status_code
        if code in PERMISSION_REJECTION_CODES:
            return _("KSeF rejected invoice %(invoice)s for lack of permissions (code %(code)s: %(description)s). "
                     "KSeF does not allow a technical correction for such rejections: have the permissions granted "
                     "in KSeF (e.g. the right to invoice for this seller in this context), then post the same "
                     "e-invoice to KSeF again.", invoice=name, code=code, description=rejection.status_description or "")
        if code == CORRECTION_UNAVAILABLE:
            return _("KSeF refuses another technical correction of invoice %s (code 21166): it already accepted "
                     "one for this invoice.", name)
        if code not in TECHNICAL_REJECTION_CODES and code != CORRECTION_NOT_ALLOWED:
            return _("KSeF did not reject invoice %(invoice)s for a technical reason of its file (code %(code)s: "
                     "%(description)s): a technical correction does not apply. Post it to KSeF again.",
                     invoice=name, code=code or "-", description=rejection.status_description or "")
        return None

    def action_l10n_pl_ksef_technical_correction(self):
        """Rebuild the e-invoice of this rejected offline invoice, check that its business content
        is unchanged, freeze it as the new file (the rejected one stays linked) and send it to KSeF
        as a technical correction."""
        for move in self:
            move._l10n_pl_ksef_prepare_technical_correction()
            move._l10n_pl_ksef_post()
        return True

    def _l10n_pl_ksef_prepare_technical_correction(self):
        self.ensure_one()
        problem = self._l10n_pl_ksef_technical_correction_problem()
        if problem:
            raise UserError(problem)
        self._l10n_pl_ksef_lock()
        rejected_xml = self._l10n_pl_ksef_frozen_xml()
        original_attachment = self.l10n_pl_ksef_rejected_xml_id or self.l10n_pl_ksef_xml_id
        original_xml = original_attachment.sudo().raw
        original_hash = self.l10n_pl_ksef_corrected_hash or self.l10n_pl_ksef_xml_hash
        if crypto.sha256_b64(original_xml) != original_hash:
            raise UserError(_("The stored original KSeF XML of invoice %s no longer matches its hash.", self.display_name))
        now = fields.Datetime.now()
        new_xml = self._l10n_pl_ksef_build_xml(created_at=now)
        new_hash = crypto.sha256_b64(new_xml)
        if new_hash in (crypto.sha256_b64(rejected_xml), original_hash):
            raise UserError(_("The e-invoice of %s rebuilt now is identical to the rejected one: fix the technical "
                              "problem KSeF reported first (see the KSeF error).", self.display_name))
        try:
            differences = business_differences(original_xml, new_xml)
        except ValueError as error:
            raise UserError(_("The rejected e-invoice of %(invoice)s cannot be read to compare it with the corrected "
                              "one (%(error)s): a technical correction needs the same business content.",
                              invoice=self.display_name, error=error)) from error
        if differences:
            raise UserError(_(
                "A technical correction must not change the content of invoice %(invoice)s, but the rebuilt "
                "e-invoice differs from the rejected one in:\n%(differences)s\nUndo these changes, or issue a "
                "credit note and a new invoice instead.",
                invoice=self.display_name,
                differences="\n".join("- %s: %s -> %s" % (path, old or "-", new or "-")
                                      for path, old, new in differences[:15])))
        attachment = self._l10n_pl_ksef_store_frozen_xml(
            new_xml, now, "FA3_technical_correction",
            _("FA(3) e-invoice frozen for KSeF as technical correction (SHA-256 %(hash)s) of the "
              "rejected file (SHA-256 %(original)s)", hash=new_hash, original=original_hash),
            extra_values={
                "l10n_pl_ksef_rejected_xml_id": original_attachment.id,
                "l10n_pl_ksef_corrected_hash": original_hash,
                "l10n_pl_ksef_technical_correction_at": now,
            })
        self._l10n_pl_ksef_move_to("to_send", {"l10n_pl_ksef_error": False})
        self._l10n_pl_ksef_log(Markup("%s<br/>%s") % (
            _("Technical correction prepared: the e-invoice was rebuilt with the same content (SHA-256 %s).", new_hash),
            _("It replaces the rejected file (SHA-256 %s), which stays attached; the printed QR code keeps leading to "
              "this invoice.", original_hash)), attachment.ids)
        self._l10n_pl_ksef_commit()
        return attachment

    def _l10n_pl_ksef_handle_unreachable(self, error):
        # A prepared technical correction KSeF could not take now stays prepared: back among the
        # invoices issued offline, sent later (with its hashOfCorrectedInvoice) by the engine.
        # It is not "issued offline" again: its mode, justification and KOD II stay as issued.
        self.ensure_one()
        if self.l10n_pl_ksef_corrected_hash and self.l10n_pl_ksef_offline_mode and self.l10n_pl_ksef_state == "to_send":
            self._l10n_pl_ksef_move_to("offline", {"l10n_pl_ksef_error": self._l10n_pl_ksef_error_text(error)})
            self._l10n_pl_ksef_log(_(
                "KSeF cannot be reached right now: the technical correction is prepared and waits with the "
                "invoices issued offline; it will be sent to KSeF later. (%s)", self._l10n_pl_ksef_error_text(error)))
            self._l10n_pl_ksef_commit()
            return False
        return super()._l10n_pl_ksef_handle_unreachable(error)

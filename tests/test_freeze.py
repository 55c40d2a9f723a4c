from odoo.exceptions import UserError
from odoo.tests import tagged

from ..ksef import crypto
from .common import KsefTestCommon


@tagged("post_install_l10n", "post_install", "-at_install")
class TestFreeze(KsefTestCommon):

    def test_freeze_stores_exact_bytes_and_both_hash_forms(self):
        move = self._ksef_invoice()
        move.with_user(self.user).action_l10n_pl_ksef_freeze()
        xml = move.l10n_pl_ksef_xml_id.raw
        self.assertTrue(xml.startswith(b"<?xml"))
        self.assertEqual(move.l10n_pl_ksef_xml_hash, crypto.sha256_b64(xml))
        self.assertEqual(len(move.l10n_pl_ksef_xml_hash), 44)
        self.assertEqual(move.l10n_pl_ksef_xml_hash_url, crypto.sha256_b64url(xml))
        self.assertNotIn("=", move.l10n_pl_ksef_xml_hash_url)
        self.assertEqual(move._l10n_pl_ksef_frozen_xml(), xml)

    def test_freeze_is_idempotent_never_rerendered(self):
        move = self._ksef_invoice()
        move.action_l10n_pl_ksef_freeze()
        attachment, digest = move.l10n_pl_ksef_xml_id, move.l10n_pl_ksef_xml_hash
        move.partner_id.name = "Renamed Buyer"  # would change the XML if it were rebuilt
        move.action_l10n_pl_ksef_freeze()
        self.assertEqual((move.l10n_pl_ksef_xml_id, move.l10n_pl_ksef_xml_hash), (attachment, digest))

    def test_frozen_attachment_cannot_be_altered_or_deleted(self):
        move = self._ksef_invoice()
        move.action_l10n_pl_ksef_freeze()
        attachment = move.l10n_pl_ksef_xml_id
        for change in ({"raw": b"<x/>"}, {"name": "other.xml"}, {"res_id": self.partner_a.id, "res_model": "res.partner"}):
            with self.assertRaises(UserError, msg=str(change)):
                attachment.sudo().write(change)
        with self.assertRaises(UserError):
            attachment.sudo().unlink()
        self.assertEqual(crypto.sha256_b64(attachment.raw), move.l10n_pl_ksef_xml_hash)
        # Linking it to a chatter message (same record) stays possible.
        attachment.sudo().write({"res_model": "account.move", "res_id": move.id})

    def test_reset_to_draft_refused_while_awaiting_ksef(self):
        move = self._ksef_invoice()
        move.action_l10n_pl_ksef_freeze()
        for state in ("sending", "offline", "accepted"):
            move.sudo().l10n_pl_ksef_state = state
            with self.assertRaises(UserError, msg=state):
                move.with_user(self.user).button_draft()
            self.assertEqual(move.state, "posted")

    def test_reset_to_draft_allowed_after_online_rejection(self):
        move = self._ksef_invoice()
        move.action_l10n_pl_ksef_freeze()
        move.sudo().l10n_pl_ksef_state = "rejected"
        old_attachment = move.l10n_pl_ksef_xml_id
        move.button_draft()
        self.assertEqual(move.state, "draft")
        self.assertFalse(move.l10n_pl_ksef_xml_id)
        self.assertTrue(old_attachment.exists(), "the rejected file is kept as history")

    def test_schema_from_stored_attachments(self):
        """Without the folder parameter, the schema comes from the official files stored as
        attachments (as downloaded once from crd.gov.pl)."""
        from .common import shared_dir
        folder = shared_dir() / "ksef" / "xsd" / "FA3"
        files = {"schemat_FA(3)_v1-0E.xsd": folder / "schemat_FA(3)_v1-0E.xsd"}
        for name in ("StrukturyDanych_v10-0E.xsd", "ElementarneTypyDanych_v10-0E.xsd", "KodyKrajow_v10-0E.xsd"):
            files[name] = folder / "bazowe" / name
        for name, path in files.items():
            self.env["ir.attachment"].create({"name": "l10n_pl_ksef." + name, "raw": path.read_bytes(), "public": True})
        self.env["ir.config_parameter"].sudo().set_param("l10n_pl_ksef.xsd_path", False)
        move = self._ksef_invoice()
        self.assertTrue(move._l10n_pl_ksef_build_xml().startswith(b"<?xml"))

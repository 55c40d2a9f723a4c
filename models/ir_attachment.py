import logging

from odoo import _, api, models
from odoo.exceptions import UserError
from odoo.tools import xml_utils

from ..ksef import fa3

_logger = logging.getLogger(__name__)

# The official FA(3) schema and the base types it imports (``schemat_FA(3)_v1-0E.xsd``).
FA3_XSD_PREFIX = "l10n_pl_ksef"
FA3_MAIN_XSD = "schemat_FA(3)_v1-0E.xsd"
FA3_XSD_URLS = {
    FA3_MAIN_XSD: "https://crd.gov.pl/wzor/2025/06/25/13775/schemat.xsd",
    "StrukturyDanych_v10-0E.xsd": "http://crd.gov.pl/xml/schematy/dziedzinowe/mf/2022/01/05/eD/DefinicjeTypy/StrukturyDanych_v10-0E.xsd",
    "ElementarneTypyDanych_v10-0E.xsd": "http://crd.gov.pl/xml/schematy/dziedzinowe/mf/2022/01/05/eD/DefinicjeTypy/ElementarneTypyDanych_v10-0E.xsd",
    "KodyKrajow_v10-0E.xsd": "http://crd.gov.pl/xml/schematy/dziedzinowe/mf/2022/01/05/eD/DefinicjeTypy/KodyKrajow_v10-0E.xsd",
}
XSD_PATH_PARAM = "l10n_pl_ksef.xsd_path"

# Fields whose change would alter what an attachment holds.
_CONTENT_FIELDS = {"datas", "raw", "db_datas", "store_fname", "url", "type", "mimetype", "checksum", "file_size", "name"}


class IrAttachment(models.Model):
    _inherit = "ir.attachment"

    # ---- frozen invoice XML: never altered, never deleted -------------------------------

    def _l10n_pl_ksef_frozen_moves(self):
        if not self.ids:
            return self.env["account.move"]
        return self.env["account.move"].sudo().search([("l10n_pl_ksef_xml_id", "in", self.ids)])

    def _l10n_pl_ksef_check_not_frozen(self, vals=None):
        if vals is not None:
            relinks = {"res_model", "res_id"} & set(vals)
            if not (_CONTENT_FIELDS & set(vals)) and not any(
                attachment[field] != vals[field] for attachment in self for field in relinks
            ):
                return
        moves = self._l10n_pl_ksef_frozen_moves()
        if moves:
            raise UserError(_(
                "The KSeF XML of invoice %(invoice)s is frozen: its SHA-256 hash may already be "
                "printed in a QR code or known to KSeF, so the file can be neither changed nor deleted.",
                invoice=", ".join(moves.mapped("name")),
            ))

    def write(self, vals):
        self._l10n_pl_ksef_check_not_frozen(vals)
        return super().write(vals)

    def unlink(self):
        self._l10n_pl_ksef_check_not_frozen()
        return super().unlink()

    # ---- FA(3) schema: a local folder, or the official files stored in the database -----

    @api.model
    def _l10n_pl_ksef_download_fa3_xsd(self):
        """Download the official FA(3) schema files once and keep them as attachments."""
        # Imports are resolved by file name when compiling (ksef.fa3), so the files are kept as they are.
        for name, url in FA3_XSD_URLS.items():
            if not xml_utils.load_xsd_files_from_url(self.env, url, file_name=name, xsd_name_prefix=FA3_XSD_PREFIX):
                return False
        return True

    @api.model
    def _l10n_pl_ksef_fa3_schema(self):
        """The compiled FA(3) schema: from the folder named by the system parameter
        ``l10n_pl_ksef.xsd_path`` (servers without internet, tests), otherwise from the
        official files stored in the database, downloaded on first use."""
        folder = self.env["ir.config_parameter"].sudo().get_param(XSD_PATH_PARAM)
        if folder:
            try:
                return fa3.load_schema(folder)
            except (OSError, fa3.Fa3Error) as error:
                raise UserError(_(
                    "The FA(3) schema cannot be loaded from the folder %(folder)s set in the system "
                    "parameter %(param)s: %(error)s", folder=folder, param=XSD_PATH_PARAM, error=error,
                )) from error
        stored = self._l10n_pl_ksef_stored_fa3_xsd()
        if len(stored) < len(FA3_XSD_URLS) and self._l10n_pl_ksef_download_fa3_xsd():
            stored = self._l10n_pl_ksef_stored_fa3_xsd()
        if len(stored) < len(FA3_XSD_URLS):
            raise UserError(_(
                "The FA(3) schema is not available: it could not be downloaded from crd.gov.pl. "
                "Copy the official schema files to a folder on the server and name that folder in "
                "the system parameter %(param)s.", param=XSD_PATH_PARAM,
            ))
        # Compiled schemas are cached by content in ksef.fa3.
        return fa3.load_schema_from_bytes({name: att.raw for name, att in stored.items()}, FA3_MAIN_XSD)

    @api.model
    def _l10n_pl_ksef_stored_fa3_xsd(self):
        names = {"%s.%s" % (FA3_XSD_PREFIX, name): name for name in FA3_XSD_URLS}
        attachments = self.sudo().search([("name", "in", list(names)), ("res_model", "=", False)])
        return {names[att.name]: att for att in attachments}

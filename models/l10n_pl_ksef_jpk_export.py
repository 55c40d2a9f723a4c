"""KSeF register of a JPK_VAT period exported to XLSX (xlsxwriter, Odoo's own) and CSV."""
import csv
import datetime
import io

import xlsxwriter

from odoo import _, models

from .l10n_pl_ksef_jpk_period import AMOUNT_FIELDS


class L10nPlKsefJpkPeriod(models.Model):
    _inherit = "l10n_pl_ksef.jpk.period"

    def _l10n_pl_ksef_export_columns(self):
        Line = self.env["l10n_pl_ksef.jpk.line"]
        names = ["document", "date", "partner_name", "partner_vat", *AMOUNT_FIELDS, "value", "needs_correction",
                 "will_need_correction", "added_after_filing"]
        return [(name, Line._fields[name].get_description(self.env)["string"]) for name in names]

    def _l10n_pl_ksef_export_rows(self):
        """Header and rows (Python values) of the register, in the order of the lines."""
        self.ensure_one()
        columns = self._l10n_pl_ksef_export_columns()
        yes, no = _("yes"), _("no")
        rows = []
        for line in self.line_ids:
            row = []
            for name, _label in columns:
                value = line[name]
                if name in ("needs_correction", "will_need_correction", "added_after_filing"):
                    value = yes if value else no
                elif name == "value" and line.problem:
                    value = _("NO KSeF NUMBER")
                row.append(value if value is not False else "")
            rows.append(row)
        return [label for _name, label in columns], rows

    def _l10n_pl_ksef_export_csv(self):
        header, rows = self._l10n_pl_ksef_export_rows()
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=";")
        writer.writerow(header)
        for row in rows:
            writer.writerow([("%.2f" % value) if isinstance(value, float) else value for value in row])
        # BOM: spreadsheet programs open Polish characters right.
        return ("\ufeff" + buffer.getvalue()).encode("utf-8")

    def _l10n_pl_ksef_export_xlsx(self):
        header, rows = self._l10n_pl_ksef_export_rows()
        buffer = io.BytesIO()
        workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
        sheet = workbook.add_worksheet(_("KSeF register")[:31])
        bold = workbook.add_format({"bold": True})
        money = workbook.add_format({"num_format": "#,##0.00"})
        day = workbook.add_format({"num_format": "yyyy-mm-dd"})
        sheet.write_row(0, 0, header, bold)
        for index, row in enumerate(rows, start=1):
            for column, value in enumerate(row):
                if isinstance(value, float):
                    sheet.write_number(index, column, value, money)
                elif hasattr(value, "isoformat"):
                    sheet.write_datetime(index, column, _as_datetime(value), day)
                else:
                    sheet.write_string(index, column, str(value))
        sheet.freeze_panes(1, 0)
        workbook.close()
        return buffer.getvalue()

    def _l10n_pl_ksef_download(self, content, extension, mimetype):
        self.ensure_one()
        attachment = self.env["ir.attachment"].create({
            "name": "%s_%s_%s.%s" % (_("KSeF_register"), self.company_id.vat or self.company_id.id, self.name, extension),
            "raw": content,
            "mimetype": mimetype,
            "res_model": self._name,
            "res_id": self.id,
        })
        return {"type": "ir.actions.act_url", "url": "/web/content/%s?download=true" % attachment.id, "target": "self"}

    def action_l10n_pl_ksef_export_xlsx(self):
        return self._l10n_pl_ksef_download(
            self._l10n_pl_ksef_export_xlsx(), "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")

    def action_l10n_pl_ksef_export_csv(self):
        return self._l10n_pl_ksef_download(self._l10n_pl_ksef_export_csv(), "csv", "text/csv")


def _as_datetime(value):
    return datetime.datetime(value.year, value.month, value.day)

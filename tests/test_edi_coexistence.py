"""Living beside Odoo's own l10n_pl_edi, seen from the main add-on's suite: without it
everything works as before (a second Polish company included); with it on the addons path the
bridge add-on (bridges/l10n_pl_ksef_edi) is installed with it and carries its own tests."""
from odoo.modules.module import check_manifest_dependencies, get_manifest, get_module_path
from odoo.tests import tagged

from .common import KsefTestCommon


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefEdiCoexistence(KsefTestCommon):

    def test_bridge_installed_with_l10n_pl_edi_or_skipped_saying_why(self):
        if not get_module_path("l10n_pl_edi", display_warning=False):
            self.skipTest("Odoo's l10n_pl_edi is not on the addons path: the tests of the bridge "
                          "bridges/l10n_pl_ksef_edi were skipped (give KSEF_EXTRA_ADDONS a folder holding it)")
        Module = self.env["ir.module.module"].sudo()
        edi = Module.search([("name", "=", "l10n_pl_edi")])
        bridge = Module.search([("name", "=", "l10n_pl_ksef_edi")])
        if edi.state != "installed":
            self.skipTest("l10n_pl_edi is on the addons path but not installed in this database: the bridge's tests "
                          "run in a database where it is (scripts/test.sh does so)")
        self.assertEqual(bridge.state, "installed", "the bridge must auto-install when both KSeF modules are there")
        self.assertTrue(bridge.auto_install)

    def test_second_polish_company_can_be_created(self):
        """A second Polish company makes Odoo install the modules of its country (e.g.
        account_peppol, which needs the Python library phonenumbers): all must be installable."""
        company = self.env["res.company"].sudo().create({
            "name": "Druga Spółka Sp. z o.o.", "country_id": self.env.ref("base.pl").id, "vat": "PL7251801126",
        })
        self.assertEqual(company.country_id.code, "PL")
        to_install = company.uninstalled_l10n_module_ids
        for module in to_install | to_install.dependencies_id.depend_id.filtered(lambda m: m.state == "uninstalled"):
            try:
                check_manifest_dependencies(get_manifest(module.name))
            except Exception as error:  # noqa: BLE001  # Odoo raises a bare Exception, shown as an error dialog
                self.fail("Creating a Polish company would fail installing %s: %s" % (module.name, error))

/** @odoo-module */
/* An administrator obtains the company's KSeF certificates from Settings (no file), then revokes
 * the Offline one from the list KSeF keeps. Driven by tests/test_tour_certificates.py against the
 * KSeF simulator. No sleeps: every step waits on what the user would see. */

import { registry } from "@web/core/registry";
import { screenshot } from "@l10n_pl_ksef/../tests/tours/tour_utils";

registry.category("web_tour.tours").add("l10n_pl_ksef_tour_certificate_request", {
    steps: () => [
        {
            content: "Open the Invoicing settings",
            trigger: ".settings_tab a.tab[data-key='account']",
            run: "click",
        },
        {
            content: "Request KSeF certificates (KSeF section)",
            trigger: ".app_settings_block[data-key='account'] .o_setting_box:contains('KSeF certificates') button:contains('Request KSeF certificates')",
            run: "click",
        },
        {
            content: "Both certificates are proposed, with an EC P-256 key",
            trigger: ".modal .o_field_widget[name='key_algorithm'] input[data-value='ec_p256']:checked",
        },
        {
            content: "Request them from KSeF",
            trigger: ".modal .modal-footer button[name='action_request']",
            run: "click",
        },
        {
            content: "Two certificates received",
            trigger: ".o_list_view .o_data_row:nth-child(2) td[name='state']:contains('Certificate received')",
            timeout: 60000,
        },
        {
            content: "The first one too",
            trigger: ".o_list_view .o_data_row:nth-child(1) td[name='state']:contains('Certificate received')",
        },
        ...screenshot("certificates_requested"),
    ],
});

registry.category("web_tour.tours").add("l10n_pl_ksef_tour_certificate_revoke", {
    steps: () => [
        {
            content: "Open the KSeF offline tab of the company",
            trigger: ".o_notebook .nav-link:contains('KSeF offline')",
            run: "click",
        },
        {
            content: "The Offline certificate is active in KSeF",
            trigger: ".o_field_widget[name='l10n_pl_ksef_offline_status_text']:contains('Active')",
        },
        {
            content: "Open the certificates KSeF lists",
            trigger: "button[name='action_l10n_pl_ksef_certificates_open']",
            run: "click",
        },
        {
            content: "Revoke the Offline certificate",
            trigger: ".o_list_view .o_data_row:has(td[name='certificate_type']:contains('Offline')) button[name='action_l10n_pl_ksef_revoke']:first",
            run: "click",
        },
        {
            content: "Confirm: revocation is final",
            trigger: ".modal .modal-footer button.btn-primary",
            run: "click",
        },
        {
            content: "KSeF lists it as revoked",
            trigger: ".o_list_view .o_data_row:has(td[name='certificate_type']:contains('Offline')) td[name='status']:contains('Revoked')",
            timeout: 30000,
        },
        ...screenshot("certificate_revoked"),
    ],
});

/** @odoo-module */
/* The user journeys of l10n_pl_ksef, driven by tests/test_tours.py against the KSeF simulator.
 * No sleeps: every step waits on what the user would see. */

import { registry } from "@web/core/registry";
import { chooseAttachmentFile, screenshot } from "@l10n_pl_ksef/../tests/tours/tour_utils";
import { download } from "@web/core/network/download";

function openKsefTab() {
    return [
        {
            content: "Open the KSeF tab of the invoice",
            trigger: ".o_notebook .nav-link[name='l10n_pl_ksef']",
            run: "click",
        },
    ];
}

function confirmDraftInvoice() {
    return [
        {
            content: "Confirm the draft invoice",
            trigger: ".o_form_view .o_statusbar_buttons button[name='action_post']",
            run: "click",
        },
        {
            content: "The invoice is posted",
            trigger: ".o_form_view .o_statusbar_status .o_arrow_button_current:contains('Posted')",
        },
    ];
}

// 1. The accountant posts an invoice to KSeF and sees its KSeF number.
registry.category("web_tour.tours").add("l10n_pl_ksef_tour_post_online", {
    steps: () => [
        ...confirmDraftInvoice(),
        {
            content: "Post the invoice to KSeF",
            trigger: ".o_form_view .o_statusbar_buttons button[name='action_l10n_pl_ksef_post']",
            run: "click",
        },
        {
            content: "Once KSeF has it, the button is gone",
            trigger: ".o_form_view .o_statusbar_buttons:not(:has(button[name='action_l10n_pl_ksef_post']))",
            timeout: 30000,
        },
        ...openKsefTab(),
        {
            content: "KSeF accepted the invoice",
            trigger: ".o_field_widget[name='l10n_pl_ksef_state']:contains('Accepted by KSeF')",
        },
        {
            content: "The KSeF number is on the form (NIP-date-…)",
            trigger: ".o_field_widget[name='l10n_pl_ksef_number'] span:contains('5265877635-')",
        },
        ...screenshot("01_ksef_number"),
    ],
});

// 2. KSeF is down: Post to KSeF offers to issue offline, the accountant accepts and prints.
registry.category("web_tour.tours").add("l10n_pl_ksef_tour_offline_print", {
    steps: () => [
        ...confirmDraftInvoice(),
        {
            content: "Post the invoice to KSeF (KSeF is down)",
            trigger: ".o_form_view .o_statusbar_buttons button[name='action_l10n_pl_ksef_post']",
            run: "click",
        },
        {
            content: "KSeF cannot be reached: the confirmation says why and offers offline24",
            trigger: ".modal .o_field_widget[name='mode']:contains('Offline24')",
            timeout: 30000,
        },
        {
            content: "Issue the invoice offline",
            trigger: ".modal button[name='action_confirm']",
            run: "click",
        },
        {
            content: "The banner gives the mode and the deadline",
            trigger: ".o_form_view .alert-warning:contains('Issued offline'):has(.o_field_widget[name='l10n_pl_ksef_deadline'])",
        },
        ...screenshot("02_offline_invoice"),
        {
            content: "Print the invoice",
            trigger: ".o_form_view .o_statusbar_buttons button[name='action_print_pdf']",
            run(helpers) {
                // Mark the page once the PDF has come back from the server (the browser itself
                // refuses the file: Odoo's test browser denies downloads).
                const realDownload = download._download;
                download._download = async (options) => {
                    try {
                        return await realDownload(options);
                    } finally {
                        download._download = realDownload;
                        document.body.dataset.ksefPrinted = options.url;
                    }
                };
                return helpers.click();
            },
        },
        {
            content: "The printed invoice has been delivered",
            trigger: "body[data-ksef-printed='/report/download']",
            timeout: 60000,
        },
    ],
});

// 3. A finance user sends the overdue offline invoices from the cockpit filter.
registry.category("web_tour.tours").add("l10n_pl_ksef_tour_send_overdue", {
    steps: () => [
        {
            content: "Open the search options",
            trigger: ".o_control_panel .o_searchview_dropdown_toggler",
            run: "click",
        },
        {
            content: "Filter the overdue offline invoices",
            trigger: ".o_filter_menu .o-dropdown-item:contains('KSeF: offline - overdue')",
            run: "click",
        },
        {
            content: "The filter is on",
            trigger: ".o_searchview_facet:contains('KSeF: offline - overdue')",
        },
        {
            content: "Close the search options",
            trigger: ".o_control_panel .o_searchview_dropdown_toggler",
            run: "click",
        },
        {
            content: "Only the overdue invoices are listed",
            trigger: ".o_list_table:has(.o_data_row:contains('Hurtownia')):not(:has(.o_data_row:contains('Kowalski')))",
        },
        ...screenshot("04_overdue_list"),
        {
            content: "Select all of them",
            trigger: ".o_list_table thead .o_list_record_selector input",
            run: "click",
        },
        {
            content: "Open the actions",
            trigger: ".o_control_panel .o_cp_action_menus button:contains('Actions')",
            run: "click",
        },
        {
            content: "Post them to KSeF",
            trigger: ".o-dropdown--menu .o_menu_item:contains('Post to KSeF')",
            run: "click",
        },
        {
            content: "KSeF accepted all of them",
            trigger: ".o_notification:contains('KSeF accepted 2 of the 2 invoices sent')",
            timeout: 60000,
        },
        {
            content: "Nothing is overdue any more",
            trigger: ".o_searchview_facet:contains('KSeF: offline - overdue')",
        },
        {
            content: "The list is empty",
            trigger: ".o_content:not(:has(.o_data_row))",
        },
        {
            content: "Remove the overdue filter",
            trigger: ".o_searchview_facet:contains('KSeF: offline - overdue') .o_facet_remove",
            run: "click",
        },
        {
            content: "The invoices are accepted by KSeF",
            trigger: ".o_data_row:contains('Hurtownia') .o_field_widget[name='l10n_pl_ksef_state']:contains('Accepted by KSeF')",
        },
        ...screenshot("05_overdue_sent"),
    ],
});

// 4. An administrator uploads the company's KSeF Offline certificate in Settings.
// tests/test_tours.py leaves the two files as attachments with these names.
const CERTIFICATE_FILES = {
    certificate_file: "l10n_pl_ksef_tour_offline.crt",
    key_file: "l10n_pl_ksef_tour_offline.key",
};

registry.category("web_tour.tours").add("l10n_pl_ksef_tour_certificate_settings", {
    steps: () => [
        {
            content: "Open the Invoicing settings",
            trigger: ".settings_tab a.tab[data-key='account']",
            run: "click",
        },
        {
            content: "Upload a KSeF certificate (KSeF section)",
            trigger: ".app_settings_block[data-key='account'] .o_setting_box:contains('KSeF certificates') button:contains('Upload a KSeF certificate')",
            run: "click",
        },
        {
            content: "Name it",
            trigger: ".modal .o_field_widget[name='name'] input",
            run: "edit KSeF Offline 2026",
        },
        {
            content: "Choose the certificate file",
            trigger: ".modal .o_field_widget[name='certificate_file'] .o_select_file_button",
            async run() {
                await chooseAttachmentFile(CERTIFICATE_FILES.certificate_file, this.anchor);
            },
        },
        {
            content: "The certificate file is chosen",
            trigger: ".modal .o_field_widget[name='certificate_file'] .o_clear_file_button",
        },
        {
            content: "Choose the private key file",
            trigger: ".modal .o_field_widget[name='key_file'] .o_select_file_button",
            async run() {
                await chooseAttachmentFile(CERTIFICATE_FILES.key_file, this.anchor);
            },
        },
        {
            content: "The key file is chosen",
            trigger: ".modal .o_field_widget[name='key_file'] .o_clear_file_button",
        },
        {
            content: "Upload",
            trigger: ".modal .modal-footer button[name='action_upload']",
            run: "click",
        },
        {
            content: "The certificate is stored, and the administrator is told so where he was",
            trigger: ".o_notification:contains('KSeF Offline 2026')",
        },
        {
            content: "Open the Invoicing settings again",
            trigger: ".settings_tab a.tab[data-key='account']",
            run: "click",
        },
        {
            content: "Open the list of KSeF certificates",
            trigger: ".app_settings_block[data-key='account'] .o_setting_box:contains('KSeF certificates') button:contains('KSeF certificates'):not(:contains('Upload'))",
            run: "click",
        },
        {
            content: "The new certificate is listed",
            trigger: ".o_list_view .o_data_row:contains('KSeF Offline 2026'):contains('Offline')",
        },
        ...screenshot("06_settings_certificate"),
    ],
});

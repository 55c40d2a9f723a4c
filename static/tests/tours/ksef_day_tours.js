/** @odoo-module */
/* The accountant's day in Polish (issue 15), driven by tests/test_tours_day.py against the KSeF
 * simulator. The users work in Polish: elements are found by their name= attributes, never by
 * English labels; texts checked are Polish. No sleeps: every step waits on what the user sees. */

import { registry } from "@web/core/registry";
import { rpc } from "@web/core/network/rpc";
import { chooseAttachmentFile, searchRead } from "@l10n_pl_ksef/../tests/tours/tour_utils";

// A date as a Polish user reads it (dd.mm.rrrr).
const POLISH_DATE = /\b\d\d\.\d\d\.\d{4}\b/;

function check(condition, message) {
    if (!condition) {
        throw new Error(message);
    }
}

async function openInvoiceByRef(ref) {
    const [move] = await searchRead("account.move", [["ref", "=", ref]], ["id"]);
    window.location.href = `/odoo/action-account.action_move_out_invoice_type/${move.id}`;
}

function postDownAndIssueOffline() {
    return [
        {
            content: "Wyślij do KSeF (KSeF nie odpowiada)",
            trigger: ".o_form_view .o_statusbar_buttons button[name='action_l10n_pl_ksef_post']",
            run: "click",
        },
        {
            content: "Okno potwierdzenia: tryb offline24 i termin jako data w polskim formacie",
            trigger: ".modal .o_field_widget[name='explanation']",
            timeout: 30000,
            run() {
                const text = this.anchor.textContent;
                check(/termin przesłania do KSeF/i.test(text), `no deadline in the dialog: ${text}`);
                check(POLISH_DATE.test(text), `no dd.mm.yyyy date in the dialog: ${text}`);
                check(text.includes("automatycznie"), `the dialog does not say it is sent automatically: ${text}`);
            },
        },
        {
            content: "Wystaw offline",
            trigger: ".modal button[name='action_confirm']",
            run: "click",
        },
        {
            content: "Baner podaje termin przesłania jako datę",
            trigger: ".o_form_view .alert-warning .o_field_widget[name='l10n_pl_ksef_deadline']:not(:empty)",
            run() {
                const text = this.anchor.closest(".alert").textContent;
                check(POLISH_DATE.test(this.anchor.textContent), `deadline ${this.anchor.textContent}`);
                check(/termin przesłania do KSeF/i.test(text), `banner: ${text}`);
                check(!/\d{4}-\d\d-\d\d/.test(text), `one date format only: ${text}`);
            },
        },
    ];
}

// 1. Post to KSeF with KSeF down on a set-up like the fresh demo: the dialog gives the date.
registry.category("web_tour.tours").add("l10n_pl_ksef_tour_day_post_down", {
    steps: () => [...postDownAndIssueOffline()],
});

// 2. An administrator uploads an Offline certificate with a 20-byte serial, then issues offline.
const CERTIFICATE_FILES = {
    certificate_file: "l10n_pl_ksef_day_20b.crt",
    key_file: "l10n_pl_ksef_day_20b.key",
};

registry.category("web_tour.tours").add("l10n_pl_ksef_tour_day_certificate_20b", {
    steps: () => [
        {
            content: "Ustawienia fakturowania",
            trigger: ".settings_tab a.tab[data-key='account']",
            run: "click",
        },
        {
            content: "Wgraj certyfikat KSeF",
            trigger: "#l10n_pl_ksef_certificates_setting button:has(.fa-upload)",
            run: "click",
        },
        {
            content: "Nazwa",
            trigger: ".modal .o_field_widget[name='name'] input",
            run: "edit KSeF Offline 20 bajtów",
        },
        {
            content: "Plik certyfikatu",
            trigger: ".modal .o_field_widget[name='certificate_file'] .o_select_file_button",
            async run() {
                await chooseAttachmentFile(CERTIFICATE_FILES.certificate_file, this.anchor);
            },
        },
        {
            content: "Certyfikat wybrany",
            trigger: ".modal .o_field_widget[name='certificate_file'] .o_clear_file_button",
        },
        {
            content: "Plik klucza prywatnego",
            trigger: ".modal .o_field_widget[name='key_file'] .o_select_file_button",
            async run() {
                await chooseAttachmentFile(CERTIFICATE_FILES.key_file, this.anchor);
            },
        },
        {
            content: "Klucz wybrany",
            trigger: ".modal .o_field_widget[name='key_file'] .o_clear_file_button",
        },
        {
            content: "Wgraj",
            trigger: ".modal .modal-footer button[name='action_upload']",
            run: "click",
        },
        {
            content: "Powiadomienie: zapisano certyfikat z jego 20-bajtowym numerem seryjnym",
            trigger: ".o_notification:contains('Zapisano certyfikat')",
            run() {
                check(/[0-9A-F]{40}/.test(this.anchor.textContent), `serial: ${this.anchor.textContent}`);
            },
        },
        {
            content: "Otwórz fakturę",
            trigger: "body",
            async run() {
                await openInvoiceByRef("TOUR-DAY-20B");
            },
        },
        ...postDownAndIssueOffline(),
    ],
});

// 3. A drill started and ended on a database that already has real accepted invoices.
registry.category("web_tour.tours").add("l10n_pl_ksef_tour_day_drill", {
    steps: () => [
        {
            content: "Rozpocznij ćwiczenia",
            trigger: ".o_form_view .o_statusbar_buttons button[name='action_l10n_pl_ksef_drill_start']",
            run: "click",
        },
        {
            content: "Potwierdź: firma przechodzi na symulator KSeF",
            trigger: ".modal .modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "Ćwiczenia trwają (można je zakończyć)",
            trigger: ".o_form_view .o_statusbar_buttons button[name='action_l10n_pl_ksef_drill_end']",
            timeout: 30000,
        },
        {
            content: "Nowa faktura",
            trigger: "body",
            run() {
                window.location.href = "/odoo/action-account.action_move_out_invoice_type/new";
            },
        },
        {
            content: "To faktura ćwiczeniowa",
            trigger: ".o_form_view div[name='l10n_pl_ksef_drill_banner']",
        },
        {
            content: "Nabywca",
            trigger: ".o_form_view .o_field_widget[name='partner_id'] input",
            run: "edit Hurtownia",
        },
        {
            content: "Hurtownia Łódzka",
            trigger: ".o-autocomplete--dropdown-menu .o-autocomplete--dropdown-item:contains('Hurtownia Łódzka')",
            run: "click",
        },
        {
            content: "Dodaj pozycję",
            trigger: ".o_field_widget[name='invoice_line_ids'] .o_field_x2many_list_row_add a",
            run: "click",
        },
        {
            content: "Produkt",
            trigger: ".o_field_widget[name='invoice_line_ids'] .o_data_row .o_field_widget[name='product_id'] input",
            run: "edit Szkolenie z procedury",
        },
        {
            content: "Szkolenie",
            trigger: ".o-autocomplete--dropdown-menu .o-autocomplete--dropdown-item:contains('Szkolenie z procedury awaryjnej')",
            run: "click",
        },
        {
            content: "Pozycja ma swój podatek VAT",
            trigger: ".o_field_widget[name='invoice_line_ids'] .o_data_row [name='tax_ids'] .o_tag",
        },
        {
            content: "Zatwierdź fakturę",
            trigger: ".o_form_view .o_statusbar_buttons button[name='action_post']",
            run: "click",
        },
        {
            content: "Zaksięgowana w dzienniku ćwiczeń",
            trigger: ".o_form_view .o_field_widget[name='name']:contains('CWKS/')",
        },
        {
            content: "Wyślij do KSeF (symulator ćwiczeń odpowiada)",
            trigger: ".o_form_view .o_statusbar_buttons button[name='action_l10n_pl_ksef_post']",
            run: "click",
        },
        {
            content: "Powiadomienie z numerem KSeF symulatora",
            trigger: ".o_notification:contains('5265877635-')",
            timeout: 30000,
        },
        {
            content: "Z powrotem do ćwiczeń",
            trigger: "body",
            async run() {
                const [drill] = await searchRead("l10n_pl_ksef.drill", [["state", "=", "running"]], ["id"]);
                window.location.href = `/odoo/action-l10n_pl_ksef.action_l10n_pl_ksef_drill/${drill.id}`;
            },
        },
        {
            content: "Zakończ ćwiczenia",
            trigger: ".o_form_view .o_statusbar_buttons button[name='action_l10n_pl_ksef_drill_end']",
            run: "click",
        },
        {
            content: "Potwierdź zakończenie",
            trigger: ".modal .modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "Ćwiczenia zakończone: przycisku zakończenia już nie ma",
            trigger: ".o_form_view .o_statusbar_buttons:not(:has(button[name='action_l10n_pl_ksef_drill_end'])):not(:has(button[name='action_l10n_pl_ksef_drill_start']))",
            timeout: 60000,
        },
        {
            content: "Raport",
            trigger: ".o_form_view .o_notebook .nav-link[name='report']",
            run: "click",
        },
        {
            content: "Podsumowanie raportu",
            trigger: ".o_form_view .o_field_widget[name='report_summary']:not(:empty)",
        },
    ],
});

// 4. Recovery: from /_control/faults/clear to the KSeF number of an invoice issued offline.
registry.category("web_tour.tours").add("l10n_pl_ksef_tour_day_recovery", {
    steps: () => [
        {
            content: "Faktura czeka offline; baner podaje następną automatyczną próbę",
            trigger: ".o_form_view .alert-warning .o_field_widget[name='l10n_pl_ksef_next_try_note']:not(:empty)",
        },
        {
            content: "KSeF znów odpowiada: /_control/faults/clear, potem uruchomienie wysyłki, jak robi to cron",
            trigger: "body",
            async run() {
                const [company] = await searchRead("res.company", [["l10n_pl_ksef_base_url", "!=", false]],
                                                   ["l10n_pl_ksef_base_url"]);
                const [cron] = await searchRead("ir.cron", [["code", "ilike", "_cron_l10n_pl_ksef_submit"]], ["id"]);
                await fetch(`${company.l10n_pl_ksef_base_url}/_control/faults/clear`, { method: "POST", mode: "no-cors" });
                sessionStorage.setItem("ksefClearedAt", String(Date.now()));
                await rpc("/web/dataset/call_kw/ir.cron/method_direct_trigger", {
                    model: "ir.cron", method: "method_direct_trigger", args: [[cron.id]], kwargs: {},
                });
                window.location.reload();
            },
        },
        {
            content: "Zakładka KSeF",
            trigger: ".o_notebook .nav-link[name='l10n_pl_ksef']",
            run: "click",
        },
        {
            content: "Faktura ma numer KSeF",
            trigger: ".o_field_widget[name='l10n_pl_ksef_number'] span:contains('5265877635-')",
            timeout: 60000,
            run() {
                const seconds = (Date.now() - Number(sessionStorage.getItem("ksefClearedAt"))) / 1000;
                console.log(`l10n_pl_ksef recovery in the browser: faults/clear -> KSeF number shown in ${seconds.toFixed(1)} s`);
                check(seconds <= 60, `recovery took ${seconds} s`);
            },
        },
    ],
});

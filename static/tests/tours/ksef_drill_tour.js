/** @odoo-module */
/* A KSeF manager (no Settings administrator) runs a drill from the menus, issues an invoice
 * while the simulator has "lost the connection", plays the rest of the script, ends the drill
 * and reads its report. Driven by tests/test_tour_drill.py; no sleeps, every step waits on what
 * the manager would see. */

import { registry } from "@web/core/registry";
import { screenshot } from "@l10n_pl_ksef/../tests/tours/tour_utils";
import { parseDate, serializeDate } from "@web/core/l10n/dates";

function openDrillsMenu() {
    return [
        {
            content: "Open the Configuration menu of Invoicing",
            trigger: ".o_main_navbar button[data-menu-xmlid='account.menu_finance_configuration']",
            run: "click",
        },
        {
            content: "KSeF > Drills",
            trigger: ".o-dropdown--menu .dropdown-item[data-menu-xmlid='l10n_pl_ksef.menu_l10n_pl_ksef_drill']",
            run: "click",
        },
        {
            content: "The list of KSeF drills",
            trigger: ".o_breadcrumb:contains('KSeF drills')",
        },
    ];
}

// The trainer's short script: nothing plays by the simulator's own clock during the tour, every
// step is played with "Play next step now".
const SHORT_OFFSETS = [
    ["Company loses its connection (offline24)", "10"],
    ["Connection restored", "20"],
    ["MF announces a KSeF failure (emergency mode)", "20"],
    ["Failure ends", "30"],
];

function setOffset(label, minutes, index) {
    // By position: a row being edited shows every action in its select, so no :contains().
    const row = `.o_field_widget[name='step_ids'] tbody tr.o_data_row:nth-child(${index + 1})`;
    return [
        {
            content: `Step "${label}": ${minutes} minutes after the start`,
            trigger: `${row} td[name='offset_minutes']`,
            run: "click",
        },
        {
            content: `Type ${minutes} minutes`,
            trigger: `${row} td[name='offset_minutes'] input`,
            run: `edit ${minutes}`,
        },
    ];
}

function playNextStep(pendingAfter) {
    return [
        {
            content: `Play next step now (${pendingAfter} left after it)`,
            trigger: ".o_form_view .o_statusbar_buttons button[name='action_l10n_pl_ksef_drill_next_step']",
            run: "click",
        },
        pendingAfter
            ? {
                  content: `${pendingAfter} step(s) still to play`,
                  trigger: `.o_form_view .o_field_widget[name='pending_step_count']:contains('${pendingAfter}')`,
                  timeout: 30000,
              }
            : {
                  content: "Every step is played: the button is gone",
                  trigger:
                      ".o_form_view .o_statusbar_buttons:not(:has(button[name='action_l10n_pl_ksef_drill_next_step'])):has(button[name='action_l10n_pl_ksef_drill_end'])",
                  timeout: 30000,
              },
    ];
}

// What the manager reads on the invoice (number, deadline when issued, deadline once the
// failure has ended), compared later with the report.
const issued = { number: null, deadline: null, movedDeadline: null };

registry.category("web_tour.tours").add("l10n_pl_ksef_tour_drill", {
    steps: () => [
        // ---- plan and start the drill -----------------------------------------------------
        {
            content: "Open the apps menu",
            trigger: ".o_navbar_apps_menu button:enabled",
            run: "click",
        },
        {
            content: "Open Invoicing",
            trigger: ".o-dropdown--menu .dropdown-item[data-menu-xmlid='account.menu_finance']",
            run: "click",
        },
        ...openDrillsMenu(),
        {
            content: "Plan a new drill",
            trigger: ".o_control_panel .o_list_button_add",
            run: "click",
        },
        {
            content: "Name the drill",
            trigger: ".o_form_view .oe_title .o_field_widget[name='name'] input",
            run: "edit Ćwiczenia: awaria KSeF",
        },
        {
            content: "The default outage script is there",
            trigger: ".o_field_widget[name='step_ids'] .o_data_row:contains('Failure ends')",
        },
        ...SHORT_OFFSETS.flatMap(([label, minutes], index) => setOffset(label, minutes, index)),
        {
            content: "Save the drill",
            trigger: ".o_form_view .o_form_button_save",
            run: "click",
        },
        {
            content: "Saved, planned",
            trigger: ".o_form_view .o_form_saved .o_statusbar_status .o_arrow_button_current:contains('Planned')",
        },
        ...SHORT_OFFSETS.map(([label, minutes]) => ({
            content: `Saved: "${label}" ${minutes} minutes after the start`,
            trigger: `.o_field_widget[name='step_ids'] .o_data_row:contains('${label}') td[name='offset_minutes']:contains('${minutes}')`,
        })),
        {
            content: "Start the drill",
            trigger: ".o_form_view .o_statusbar_buttons button[name='action_l10n_pl_ksef_drill_start']",
            run: "click",
        },
        {
            content: "Confirm: the company switches to the KSeF simulator",
            trigger: ".modal:contains('KSeF simulator') .modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "The drill runs; the banner says so",
            trigger: ".o_form_view:has(.o_arrow_button_current:contains('Running')) .alert-warning:contains('A KSeF drill is running')",
            timeout: 30000,
        },
        {
            content: "The drill journal is set",
            trigger: ".o_form_view .o_field_widget[name='journal_id']:contains('KSeF drill')",
        },
        {
            content: "Four steps to play",
            trigger: ".o_form_view .o_field_widget[name='pending_step_count']:contains('4')",
        },
        // The first step: the company loses its connection.
        ...playNextStep(3),
        {
            content: "The simulator played it",
            trigger: ".o_field_widget[name='step_ids'] .o_data_row:contains('Company loses its connection') td[name='applied_at']:not(:empty)",
        },
        // ---- the invoice, issued as usual -------------------------------------------------
        {
            content: "Open the Customers menu",
            trigger: ".o_main_navbar button[data-menu-xmlid='account.menu_finance_receivables']",
            run: "click",
        },
        {
            content: "Customers > Invoices",
            trigger: ".o-dropdown--menu .dropdown-item[data-menu-xmlid='account.menu_action_move_out_invoice_type']",
            run: "click",
        },
        {
            content: "New invoice",
            trigger: ".o_control_panel .o_list_button_add",
            run: "click",
        },
        {
            content: "The new invoice is marked as a drill invoice",
            trigger: ".o_form_view div[name='l10n_pl_ksef_drill_banner']:contains('ĆWICZENIA / DRILL')",
        },
        {
            content: "Customer",
            trigger: ".o_form_view .o_field_widget[name='partner_id'] input",
            run: "edit Hurtownia",
        },
        {
            content: "Choose Hurtownia Łódzka",
            trigger: ".o-autocomplete--dropdown-menu .o-autocomplete--dropdown-item:contains('Hurtownia Łódzka')",
            run: "click",
        },
        {
            content: "Add a line",
            trigger: ".o_field_widget[name='invoice_line_ids'] .o_field_x2many_list_row_add a",
            run: "click",
        },
        {
            content: "Product",
            trigger: ".o_field_widget[name='invoice_line_ids'] .o_data_row .o_field_widget[name='product_id'] input",
            run: "edit Szkolenie z procedury",
        },
        {
            content: "Choose the training",
            trigger: ".o-autocomplete--dropdown-menu .o-autocomplete--dropdown-item:contains('Szkolenie z procedury awaryjnej')",
            run: "click",
        },
        {
            content: "The line has its price and the 23% tax",
            // The row may still be in edit mode (the product is then an input's value, not text).
            trigger: ".o_field_widget[name='invoice_line_ids'] .o_data_row [name='tax_ids'] .o_tag:contains('23%')",
        },
        {
            content: "Confirm the invoice",
            trigger: ".o_form_view .o_statusbar_buttons button[name='action_post']",
            run: "click",
        },
        {
            content: "The invoice is posted in the drill journal",
            trigger: ".o_form_view:has(.o_arrow_button_current:contains('Posted')) .o_field_widget[name='name']:contains('CWKS/')",
        },
        {
            content: "Post the invoice to KSeF (the connection is lost)",
            trigger: ".o_form_view .o_statusbar_buttons button[name='action_l10n_pl_ksef_post']",
            run: "click",
        },
        {
            content: "KSeF cannot be reached: the confirmation offers offline24",
            trigger: ".modal .o_field_widget[name='mode']:contains('Offline24')",
            timeout: 30000,
        },
        {
            content: "Issue the invoice offline",
            trigger: ".modal button[name='action_confirm']",
            run: "click",
        },
        {
            content: "Issued offline, with its deadline",
            trigger: ".o_form_view .alert-warning:contains('Issued offline') .o_field_widget[name='l10n_pl_ksef_deadline']:not(:empty)",
            run() {
                issued.deadline = serializeDate(parseDate(this.anchor.textContent.trim()));
                issued.number = document
                    .querySelector(".o_form_view .o_field_widget[name='name']")
                    .textContent.trim();
                if (!issued.number.startsWith("CWKS/") || !/^\d{4}-\d\d-\d\d$/.test(issued.deadline)) {
                    throw new Error(`unexpected invoice ${issued.number} / deadline ${issued.deadline}`);
                }
            },
        },
        // ---- back to the drill: the rest of the script --------------------------------------
        ...openDrillsMenu(),
        {
            content: "Open the running drill",
            trigger: ".o_list_view .o_data_row:contains('Ćwiczenia: awaria KSeF') td[name='name']",
            run: "click",
        },
        {
            content: "One drill invoice so far",
            trigger: ".o_form_view button.oe_stat_button[name='action_l10n_pl_ksef_drill_open_invoices']:contains('1')",
        },
        ...playNextStep(2),
        ...playNextStep(1),
        ...playNextStep(0),
        // The announced failure moved the deadline of the waiting offline24 invoice (7 business
        // days after the failure's end): the manager sees it on the invoice.
        {
            content: "Open the drill invoices",
            trigger: ".o_form_view button.oe_stat_button[name='action_l10n_pl_ksef_drill_open_invoices']",
            run: "click",
        },
        {
            content: "Open the invoice",
            trigger: ".o_list_view .o_data_row:contains('CWKS/') td[name='name']",
            run: "click",
        },
        {
            content: "Still waiting offline, its deadline moved by the failure",
            trigger: ".o_form_view .alert-warning:contains('Issued offline') .o_field_widget[name='l10n_pl_ksef_deadline']:not(:empty)",
            run() {
                issued.movedDeadline = serializeDate(parseDate(this.anchor.textContent.trim()));
                if (!(issued.movedDeadline > issued.deadline)) {
                    throw new Error(`deadline ${issued.movedDeadline} not moved after ${issued.deadline} by the failure`);
                }
            },
        },
        {
            content: "Back to the drill",
            trigger: ".o_breadcrumb .breadcrumb-item a:contains('Ćwiczenia: awaria KSeF')",
            run: "click",
        },
        {
            content: "End the drill",
            trigger: ".o_form_view .o_statusbar_buttons button[name='action_l10n_pl_ksef_drill_end']",
            run: "click",
        },
        {
            content: "Confirm: report, real connection back, drill invoices cancelled",
            trigger: ".modal:contains('writes the report') .modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "The drill is done",
            trigger: ".o_form_view .o_statusbar_status .o_arrow_button_current:contains('Done')",
            timeout: 60000,
        },
        {
            content: "Open the report",
            trigger: ".o_form_view .o_notebook .nav-link[name='report']",
            run: "click",
        },
        {
            content: "The summary: one invoice, issued offline, submitted in time",
            trigger: ".o_form_view .o_field_widget[name='report_summary']:contains('1 invoice(s), 1 issued offline, all submitted in time')",
        },
        {
            content: "The report lists the invoice: offline24, its deadline, submitted in time",
            trigger: ".o_form_view .o_l10n_pl_ksef_drill_report tbody tr:contains('CWKS/')",
            run() {
                const cells = [...this.anchor.querySelectorAll("td")].map((td) => td.textContent.trim());
                const expected = [issued.number, "Offline: Offline24", issued.movedDeadline, "Yes"];
                const problems = [];
                if (cells[0] !== issued.number) {
                    problems.push(`invoice ${cells[0]} instead of ${issued.number}`);
                }
                if (!cells[5].startsWith("Offline: Offline24")) {
                    problems.push(`issued "${cells[5]}" instead of offline`);
                }
                if (cells[6] !== issued.movedDeadline) {
                    problems.push(`deadline ${cells[6]} instead of ${issued.movedDeadline}`);
                }
                if (!cells[7]) {
                    problems.push("no reason given for the deadline");
                }
                if (cells[11] !== "Yes") {
                    problems.push(`in time "${cells[11]}"`);
                }
                if (problems.length) {
                    throw new Error(`drill report row [${cells.join(" | ")}], expected ${expected.join(", ")}: ${problems.join("; ")}`);
                }
            },
        },
        {
            content: "Scroll the report into view for the picture",
            trigger: ".o_form_view .o_notebook .nav-link[name='report']",
            run() {
                this.anchor.scrollIntoView({ block: "start" });
            },
        },
        ...screenshot("07_drill_report"),
    ],
});

/** @odoo-module */
/* What the l10n_pl_ksef tours share. */

// tests/tour_common.py answers this console marker with a screenshot (when asked for), then sets
// body[data-ksef-shot] to the name: the tour goes on only once the picture is taken.
const SCREENSHOT_MARKER = "l10n_pl_ksef:screenshot:";

export function screenshot(name) {
    return [
        {
            content: `Screenshot ${name}`,
            trigger: "body",
            run() {
                delete document.body.dataset.ksefShot;
                console.log(SCREENSHOT_MARKER + name);
            },
        },
        {
            content: `Screenshot ${name} taken`,
            trigger: `body[data-ksef-shot='${name}']`,
        },
    ];
}

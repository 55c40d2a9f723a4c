/** @odoo-module */
/* What the l10n_pl_ksef tours share. */

import { rpc } from "@web/core/network/rpc";

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

export async function searchRead(model, domain, fields) {
    return rpc(`/web/dataset/call_kw/${model}/search_read`, {
        model, method: "search_read", args: [domain, fields], kwargs: {},
    });
}

// Put the attachment named `name` (left by the Python test) into the file input of the field
// widget around `anchor`, as if the user had chosen that file.
export async function chooseAttachmentFile(name, anchor) {
    const [attachment] = await searchRead("ir.attachment", [["name", "=", name]], ["name", "datas", "mimetype"]);
    const bytes = Uint8Array.from(atob(attachment.datas), (c) => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], attachment.name, { type: attachment.mimetype }));
    const input = anchor.closest(".o_field_widget").querySelector("input[type='file']");
    input.files = transfer.files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
}

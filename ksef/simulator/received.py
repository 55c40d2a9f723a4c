"""Invoices as their buyer sees them: ``POST /invoices/query/metadata`` (KSeF 2.0 OpenAPI,
``InvoiceQueryFilters`` / ``QueryInvoicesMetadataResponse``) and, in ``invoices_api.py``,
``GET /invoices/ksef/{n}`` for the seller *or the buyer* of the invoice. A company downloads
its purchase invoices (vendor bills) with them."""
import datetime
import zoneinfo

from lxml import etree

from .wire import json_response, validation_error

WARSAW = zoneinfo.ZoneInfo("Europe/Warsaw")
SUBJECT_TYPES = ("Subject1", "Subject2", "Subject3", "SubjectAuthorized")
DATE_COLUMNS = {"Issue": "issue_date", "Invoicing": "invoicing_date", "PermanentStorage": "permanent_storage_date"}
MAX_PAGE_SIZE = 250          # OpenAPI: pageSize 10..250
MAX_RESULTS = 10000          # OpenAPI: isTruncated when the query reaches 10 000 results
MAX_RANGE_DAYS = 92          # OpenAPI: "Maksymalny dozwolony okres wynosi 3 miesiące"


def _text(root, path):
    found = root.find(path, {"fa": root.tag[1:].split("}")[0]} if root.tag.startswith("{") else {})
    return found.text.strip() if found is not None and found.text else None


def invoice_parties(xml_bytes):
    """What the metadata shows of one FA(3) file: seller, buyer identifier, amounts, currency."""
    try:
        root = etree.fromstring(bytes(xml_bytes), etree.XMLParser(resolve_entities=False, no_network=True))
    except (etree.XMLSyntaxError, TypeError, ValueError):
        return {}
    buyer_nip = _text(root, "fa:Podmiot2/fa:DaneIdentyfikacyjne/fa:NIP")
    eu_code = _text(root, "fa:Podmiot2/fa:DaneIdentyfikacyjne/fa:KodUE")
    other = _text(root, "fa:Podmiot2/fa:DaneIdentyfikacyjne/fa:NrID")
    if buyer_nip:
        identifier = {"type": "Nip", "value": buyer_nip}
    elif eu_code:
        identifier = {"type": "VatUe", "value": eu_code + (_text(root, "fa:Podmiot2/fa:DaneIdentyfikacyjne/fa:NrVatUE") or "")}
    elif other:
        identifier = {"type": "Other", "value": other}
    else:
        identifier = {"type": "None"}
    gross = float(_text(root, "fa:Fa/fa:P_15") or 0)
    vat = sum(float(_text(root, "fa:Fa/fa:%s" % name) or 0) for name in ("P_14_1", "P_14_2", "P_14_3", "P_14_4", "P_14_5"))
    return {
        "buyer_nip": buyer_nip,
        "seller": {"nip": _text(root, "fa:Podmiot1/fa:DaneIdentyfikacyjne/fa:NIP"),
                   "name": _text(root, "fa:Podmiot1/fa:DaneIdentyfikacyjne/fa:Nazwa")},
        "buyer": {"identifier": identifier, "name": _text(root, "fa:Podmiot2/fa:DaneIdentyfikacyjne/fa:Nazwa")},
        "grossAmount": round(gross, 2),
        "vatAmount": round(vat, 2),
        "netAmount": round(gross - vat, 2),
        "currency": _text(root, "fa:Fa/fa:KodWaluty") or "PLN",
    }


def _parse_moment(value, name):
    """An ISO 8601 moment; without an offset it is Warsaw time (as the OpenAPI says)."""
    if not isinstance(value, str):
        raise validation_error("dateRange.%s: oczekiwano daty w formacie ISO 8601." % name)
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise validation_error("dateRange.%s: nieprawidłowa data %s." % (name, value)) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=WARSAW)
    return moment.astimezone(datetime.timezone.utc)


class ReceivedInvoicesMixin:
    """Mixed into ``SimulatorApp`` (which gives ``store``, ``now`` and the request helpers)."""

    def _received_routes(self):
        return [("POST", r"/v2/invoices/query/metadata", self.invoices_query_metadata, "access")]

    def invoices_query_metadata(self, request):
        data = request.json() or {}
        subject = data.get("subjectType")
        if subject not in SUBJECT_TYPES:
            raise validation_error("subjectType: oczekiwano jednej z wartości %s." % ", ".join(SUBJECT_TYPES))
        date_range = data.get("dateRange") or {}
        date_type = date_range.get("dateType")
        if date_type not in DATE_COLUMNS:
            raise validation_error("dateRange.dateType: oczekiwano Issue, Invoicing lub PermanentStorage.")
        start = _parse_moment(date_range.get("from"), "from")
        end = (_parse_moment(date_range["to"], "to") if date_range.get("to")
               else datetime.datetime.fromtimestamp(self.now(), datetime.timezone.utc))
        if end < start or end - start > datetime.timedelta(days=MAX_RANGE_DAYS):
            raise validation_error("dateRange: zakres dat musi być niepusty i nie dłuższy niż 3 miesiące.")
        size, offset = request.arg("pageSize", "10"), request.arg("pageOffset", "0")
        if not size.isdigit() or not 10 <= int(size) <= MAX_PAGE_SIZE:
            raise validation_error("pageSize musi mieścić się w zakresie 10..%d." % MAX_PAGE_SIZE)
        if not offset.isdigit():
            raise validation_error("pageOffset musi być liczbą nieujemną.")
        size, offset = int(size), int(offset)
        context_nip = request.auth["ctx"]["value"]
        found = []
        rows = self.store.visible_accepted_invoices(self.now(), DATE_COLUMNS[date_type])
        for row in rows:
            if not self._received_in_range(row, date_type, start, end):
                continue
            parties = invoice_parties(row["xml"])
            if subject == "Subject1" and row["seller_nip"] != context_nip:
                continue
            if subject == "Subject2" and parties.get("buyer_nip") != context_nip:
                continue
            if subject in ("Subject3", "SubjectAuthorized"):
                continue  # third parties and authorised subjects are not simulated
            found.append(self._received_view(row, parties))
        truncated = len(found) > MAX_RESULTS
        found = found[:MAX_RESULTS]
        if data.get("sortOrder") == "Desc" or request.arg("sortOrder", "Asc") == "Desc":
            found.reverse()
        page = found[offset * size:(offset + 1) * size]
        return json_response(200, {"hasMore": (offset + 1) * size < len(found), "isTruncated": truncated,
                                   "permanentStorageHwmDate": None, "invoices": page})

    @staticmethod
    def _received_in_range(row, date_type, start, end):
        value = row[DATE_COLUMNS[date_type]]
        if not value:
            return False
        if date_type == "Issue":
            day = datetime.date.fromisoformat(value)
            return start.astimezone(WARSAW).date() <= day <= end.astimezone(WARSAW).date()
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return start <= moment <= end

    @staticmethod
    def _received_view(row, parties):
        return {
            "ksefNumber": row["ksef_number"],
            "invoiceNumber": row["invoice_number"],
            "issueDate": row["issue_date"],
            "invoicingDate": row["invoicing_date"],
            "acquisitionDate": row["acquisition_date"],
            "permanentStorageDate": row["permanent_storage_date"],
            "seller": parties.get("seller") or {"nip": row["seller_nip"]},
            "buyer": parties.get("buyer") or {"identifier": {"type": "None"}},
            "netAmount": parties.get("netAmount", 0.0),
            "grossAmount": parties.get("grossAmount", 0.0),
            "vatAmount": parties.get("vatAmount", 0.0),
            "currency": parties.get("currency", "PLN"),
            "invoicingMode": row["invoicing_mode"],
            "invoiceType": row["invoice_kind"],
            "formCode": {"systemCode": "FA (3)", "schemaVersion": "1-0E", "value": "FA"},
            "isSelfInvoicing": False,
            "hasAttachment": False,
            "invoiceHash": row["invoice_hash"],
        }

"""Collective identifiers (IZ) of the simulated KSeF, as in open-api-2.7:
``POST /collective-identifiers``, ``POST /collective-identifiers/query``,
``GET /collective-identifiers/{number}/invoices`` and ``GET /collective-identifiers/ksef/{ksefNumber}``.

An IZ groups 1 to 500 accepted invoices of one seller; one invoice belongs to at most 132 IZ
of one context. The requesting context must be the seller or the buyer of each invoice (the
spec asks for InvoiceRead / InvoiceWrite), else 71001. Rate limit of the creation: 10/s, 60/min,
120/h (group ``collectiveIdentifier``, ``ratelimit.py``)."""
import datetime
import json
import secrets
import zoneinfo

from lxml import etree

from ..ksef_number import crc8, is_valid_ksef_number
from .wire import ApiError, json_response, utc_iso, validation_error

MAX_INVOICES = 500
MAX_PER_INVOICE = 132
MAX_QUERY_DAYS = 100
WARSAW = zoneinfo.ZoneInfo("Europe/Warsaw")
FA_NS = "http://crd.gov.pl/wzor/2025/06/25/13775/"


def _page_size(request):
    raw = request.arg("pageSize", "10")
    if not str(raw).isdigit() or not 10 <= int(raw) <= 200:
        raise validation_error("Parametr pageSize musi mieścić się w zakresie 10-200.")
    return int(raw)


def _page(request, items):
    size = _page_size(request)
    token = request.header("x-continuation-token")
    start = int(token) if token and token.isdigit() else 0
    chunk = items[start:start + size]
    following = start + size if start + size < len(items) else None
    return chunk, (str(following) if following is not None else None)


def _buyer_nip(xml):
    try:
        root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    except (etree.XMLSyntaxError, ValueError, TypeError):
        return None
    return root.findtext("{%s}Podmiot2/{%s}DaneIdentyfikacyjne/{%s}NIP" % (FA_NS, FA_NS, FA_NS))


class CollectiveIdentifiersMixin:
    """Handlers and routes; ``SimulatorApp`` provides ``store``, ``now()`` and the routing."""

    def collective_routes(self):
        return [
            ("POST", r"/v2/collective-identifiers", self.collective_create, "access"),
            ("POST", r"/v2/collective-identifiers/query", self.collective_query, "access"),
            ("GET", r"/v2/collective-identifiers/ksef/(?P<ksef>[^/]+)", self.collective_by_ksef, "access"),
            ("GET", r"/v2/collective-identifiers/(?P<number>[^/]+)/invoices", self.collective_invoices, "access"),
        ]

    @staticmethod
    def _collective_context(request):
        return request.auth["ctx"]["value"].split("-")[0]

    def collective_create(self, request):
        data = request.json()
        invoices = data.get("invoices")
        if not isinstance(invoices, list) or not invoices:
            raise validation_error("Pole invoices jest wymagane i nie może być puste.")
        if len(invoices) > MAX_INVOICES:
            raise validation_error("Maksymalna liczba faktur w identyfikatorze zbiorczym wynosi %s (podano %s)."
                                   % (MAX_INVOICES, len(invoices)))
        context = self._collective_context(request)
        numbers, sellers = [], set()
        for item in invoices:
            number = item.get("ksefNumber") if isinstance(item, dict) else None
            if not isinstance(number, str) or not is_valid_ksef_number(number):
                raise validation_error("Nieprawidłowy numer KSeF: %r." % (number,))
            if number in numbers:
                raise validation_error("Numer KSeF %s podano więcej niż raz." % number)
            payment = item.get("payment")
            if payment is not None and (not isinstance(payment, dict) or not isinstance(payment.get("amount"), (int, float))
                                        or not isinstance(payment.get("currency"), str) or len(payment["currency"]) != 3):
                raise validation_error("Faktura %s: payment wymaga amount i currency." % number)
            if len(item.get("description") or "") > 512:
                raise validation_error("Faktura %s: description może mieć najwyżej 512 znaków." % number)
            row = self.store.accepted_invoice(number, "seller_nip, xml")
            if row is None or context not in (row["seller_nip"], _buyer_nip(row["xml"])):
                raise ApiError(400, 71001, "Faktura nie może zostac przypisana do Identyfikatora Zbiorczego.",
                               ["Faktura o numerze KSeF %s nie może zostac przypisana do Identyfikatora Zbiorczego."
                                % number])
            used = self.store.collective_uses(number, context)
            if used >= MAX_PER_INVOICE:
                raise ApiError(400, 71002, "Faktura jest już przypisana do maksymalnej liczby Identyfikatorów "
                               "Zbiorczych.", ["Faktura o numerze KSeF %s jest już przypisana do maksymalnej liczby "
                                               "Identyfikatorów Zbiorczych." % number])
            numbers.append(number)
            sellers.add(row["seller_nip"])
        if len(sellers) > 1:
            raise validation_error("Identyfikator zbiorczy obejmuje faktury jednego sprzedawcy (podano: %s)."
                                   % ", ".join(sorted(sellers)))
        seller = sellers.pop()
        now = self.now()
        month = datetime.datetime.fromtimestamp(now, WARSAW).strftime("%Y%m")
        body = "%s-IZ%s-%s" % (seller, month, secrets.token_hex(6).upper())
        number = "%s-%02X" % (body, crc8(body))
        self.store.add_collective_identifier(number, context, seller, now, invoices, numbers)
        return json_response(201, {"collectiveIdentifierNumber": number})

    def _collective_visible(self, row, context):
        if row["context_nip"] == context or row["seller_nip"] == context:
            return True
        return any(context in self._collective_parties(item["ksefNumber"]) for item in json.loads(row["invoices"]))

    def _collective_parties(self, ksef_number):
        row = self.store.invoice_by_ksef_number(ksef_number, "seller_nip, xml")
        return (row["seller_nip"], _buyer_nip(row["xml"])) if row else ()

    def collective_invoices(self, request, number):
        context = self._collective_context(request)
        row = self.store.collective_identifier(number)
        if row is None or not self._collective_visible(row, context):
            raise validation_error("Identyfikator zbiorczy %s nie istnieje." % number)
        creator = row["context_nip"] == context
        items = []
        for item in sorted(json.loads(row["invoices"]), key=lambda i: i["ksefNumber"], reverse=True):
            hidden = not creator and context not in self._collective_parties(item["ksefNumber"])
            entry = {"ksefNumber": item["ksefNumber"], "description": item.get("description"),
                     "detailsHidden": bool(hidden and item.get("payment"))}
            if item.get("payment") and not hidden:
                entry["payment"] = item["payment"]
            items.append(entry)
        chunk, token = _page(request, items)
        return json_response(200, {"invoices": chunk, "continuationToken": token})

    def collective_by_ksef(self, request, ksef):
        context = self._collective_context(request)
        if not is_valid_ksef_number(ksef):
            raise validation_error("Nieprawidłowy numer KSeF: %s." % ksef)
        rows = self.store.collective_identifiers_of(ksef)
        items = [{"collectiveIdentifierNumber": row["number"], "createdInCurrentContext": row["context_nip"] == context,
                  "dateCreated": utc_iso(row["created_ts"])}
                 for row in rows if self._collective_visible(row, context)]
        chunk, token = _page(request, items)
        return json_response(200, {"collectiveIdentifiers": chunk, "continuationToken": token})

    def collective_query(self, request):
        data = request.json()
        try:
            start = datetime.datetime.fromisoformat(str(data.get("dateCreatedFrom")).replace("Z", "+00:00"))
            end = datetime.datetime.fromisoformat(str(data.get("dateCreatedTo")).replace("Z", "+00:00"))
        except ValueError:
            raise validation_error("Pola dateCreatedFrom i dateCreatedTo są wymagane (ISO 8601).") from None
        start, end = (moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc) for moment in (start, end))
        if end < start or end - start > datetime.timedelta(days=MAX_QUERY_DAYS):
            raise validation_error("Maksymalny przedział czasu to %s dni." % MAX_QUERY_DAYS)
        context = self._collective_context(request)
        rows = self.store.collective_identifiers_between(start.timestamp(), end.timestamp())
        items = []
        for row in rows:
            count = len(json.loads(row["invoices"]))
            mine = row["context_nip"] == context
            if not (mine or (context and row["seller_nip"] == context)):
                continue
            if data.get("collectiveIdentifierNumber") and row["number"] != data["collectiveIdentifierNumber"]:
                continue
            if data.get("invoiceCountFrom") is not None and count < data["invoiceCountFrom"]:
                continue
            if data.get("invoiceCountTo") is not None and count > data["invoiceCountTo"]:
                continue
            if data.get("createdInCurrentContext") is not None and mine != data["createdInCurrentContext"]:
                continue
            items.append({"collectiveIdentifierNumber": row["number"], "dateCreated": utc_iso(row["created_ts"]),
                          "invoiceCount": count, "createdInCurrentContext": mine})
        chunk, token = _page(request, items)
        return json_response(200, {"collectiveIdentifiers": chunk, "continuationToken": token})

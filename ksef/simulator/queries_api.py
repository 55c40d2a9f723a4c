"""Session queries (KSeF OpenAPI ``GET /sessions``: filters, ``statuses`` groups, paging with
``x-continuation-token``) and the paging both session and invoice lists use. A mixin of
``SimulatorApp``; the received-invoice query is ``received.py``, collective identifiers ``collective.py``."""
import base64
import json

from .common import parse_time
from .statuses import SESSION_STATUS_GROUPS
from .wire import ApiError, json_response, validation_error

DATE_FILTERS = (("dateCreatedFrom", "created", ">="), ("dateCreatedTo", "created", "<="),
                ("dateClosedFrom", "closed", ">="), ("dateClosedTo", "closed", "<="),
                ("dateModifiedFrom", "updated", ">="), ("dateModifiedTo", "updated", "<="))


def read_page(request):
    """(pageSize, offset) of a list request: ``pageSize`` 10..1000, ``x-continuation-token``."""
    size = request.arg("pageSize", "10")
    if not size.isdigit() or not 10 <= int(size) <= 1000:
        raise validation_error("pageSize musi mieścić się w zakresie 10..1000.")
    token = request.header("x-continuation-token")
    offset = 0
    if token:
        try:
            offset = int(json.loads(base64.b64decode(token))["offset"])
        except (ValueError, KeyError, TypeError):
            raise ApiError(400, 21418, "Przekazany token kontynuacji ma nieprawidłowy format.")
    return int(size), offset


def page_response(key, items, offset, more):
    """The list answer: ``{continuationToken, key: items}``, the token also as a header."""
    token = base64.b64encode(json.dumps({"offset": offset + len(items)}).encode()).decode("ascii") if more else None
    return json_response(200, {"continuationToken": token, key: items},
                         {"x-continuation-token": token} if token else None)


class QueriesApiMixin:
    """Handler of ``GET /v2/sessions``."""

    def query_routes(self):
        return [("GET", r"/v2/sessions", self.session_list, "access")]

    def session_list(self, request):
        kind = request.arg("sessionType")
        if kind not in ("Online", "Batch"):
            raise validation_error("Parametr sessionType (Online|Batch) jest wymagany.")
        size, offset = read_page(request)
        rows = [self._refresh_session(row) for row in self.store.sessions_of(
            request.auth["ctx"]["value"], kind, request.arg("referenceNumber"))]
        filters = {}
        for name, column, bound in DATE_FILTERS:
            if request.arg(name):
                filters[(column, bound)] = parse_time(request.arg(name), name)
        wanted = set()
        for status in request.query.get("statuses", []):
            if status not in SESSION_STATUS_GROUPS:
                raise validation_error("statuses: dozwolone %s." % ", ".join(SESSION_STATUS_GROUPS))
            wanted.update(SESSION_STATUS_GROUPS[status])

        def keep(row):
            if wanted and row["status_code"] not in wanted:
                return False
            for (column, bound), limit in filters.items():
                if row[column] is None:
                    return False
                value = parse_time(row[column], column)
                if (bound == ">=" and value < limit) or (bound == "<=" and value > limit):
                    return False
            return True

        rows = [row for row in rows if keep(row)]
        chunk = rows[offset:offset + size]
        sessions = []
        for row in chunk:
            ok, failed = self.store.invoice_counts(row["reference"], self.now())
            sessions.append({"referenceNumber": row["reference"], "status": self._session_status_obj(row),
                             "dateCreated": row["created"], "dateUpdated": row["updated"],
                             "validUntil": row["valid_until"], "totalInvoiceCount": row["invoice_count"],
                             "successfulInvoiceCount": ok, "failedInvoiceCount": failed})
        return page_response("sessions", sessions, offset, offset + len(chunk) < len(rows))

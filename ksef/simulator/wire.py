"""Transport-neutral request/response objects and the KSeF error formats (KSeF OpenAPI: the
``exception`` body of 400 and Problem Details of 401/403 and of ``X-Error-Format: problem-details``;
``limity/limity-api.md``: 429 with ``Retry-After``)."""
import datetime
import json
import secrets


def utc_iso(ts=None):
    moment = (datetime.datetime.now(datetime.timezone.utc) if ts is None
              else datetime.datetime.fromtimestamp(ts, datetime.timezone.utc))
    return moment.isoformat(timespec="microseconds")


class Request:
    def __init__(self, method, path, query, headers, body, client_ip, base_url):
        self.method = method
        self.path = path          # without the query string
        self.query = query        # dict name -> list of values
        self.headers = headers    # case-insensitive mapping (http.client.HTTPMessage)
        self.body = body
        self.client_ip = client_ip
        self.base_url = base_url  # e.g. http://127.0.0.1:8123, as the client called us
        self.auth = None          # filled by the router for protected endpoints

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def arg(self, name, default=None):
        values = self.query.get(name)
        return values[0] if values else default

    def json(self):
        try:
            data = json.loads(self.body.decode("utf-8") or "null")
        except (UnicodeDecodeError, ValueError) as exc:
            raise ApiError(400, 21405, "Błąd walidacji danych wejściowych.", ["Nieprawidłowy JSON: %s" % exc])
        if not isinstance(data, dict):
            raise ApiError(400, 21405, "Błąd walidacji danych wejściowych.", ["Oczekiwano obiektu JSON."])
        return data

    @property
    def wants_problem_details(self):
        return (self.header("X-Error-Format") or "").lower() == "problem-details"


class Response:
    def __init__(self, status, body=b"", content_type=None, headers=None):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        if content_type:
            self.headers["Content-Type"] = content_type
        self.stall_seconds = 0.0      # "timeout after accepting": sleep before answering
        self.drop_connection = False  # close the socket without any answer


def json_response(status, data, headers=None, content_type="application/json"):
    return Response(status, json.dumps(data, ensure_ascii=False).encode("utf-8"),
                    content_type, headers)


def xml_response(body, headers=None):
    return Response(200, body, "application/xml", headers)


def trace_id():
    return secrets.token_hex(16)


class ApiError(Exception):
    """A 400 (or other) error in the KSeF exception-list form (or Problem Details on request)."""

    def __init__(self, http_status, code, description, details=None, reference=None):
        super().__init__("%s %s" % (code, description))
        self.http_status = http_status
        self.code = code
        self.description = description
        self.details = list(details or [])
        self.reference = reference

    def to_response(self, request):
        if request is not None and request.wants_problem_details:
            return json_response(self.http_status, {
                "title": "Bad Request",
                "status": self.http_status,
                "instance": request.path,
                "detail": self.description,
                "errors": [{"code": self.code, "description": self.description, "details": self.details}],
                "timestamp": utc_iso(),
                "traceId": trace_id(),
            }, content_type="application/problem+json")
        return json_response(self.http_status, {"exception": {
            "exceptionDetailList": [{
                "exceptionCode": self.code,
                "exceptionDescription": self.description,
                "details": self.details,
            }],
            "referenceNumber": self.reference,
            "serviceCode": trace_id(),
            "serviceCtx": "srvKSEFSIM",
            "serviceName": "KSeF simulator",
            "timestamp": utc_iso(),
        }})


def validation_error(*details):
    return ApiError(400, 21405, "Błąd walidacji danych wejściowych.", list(details))


class ProblemError(Exception):
    """401/403/404/410 and friends: always Problem Details (application/problem+json)."""

    TITLES = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
              410: "Gone", 413: "Payload Too Large"}

    def __init__(self, status, detail, extra=None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extra = extra or {}

    def to_response(self, request):
        body = {
            "title": self.TITLES.get(self.status, "Error"),
            "status": self.status,
            "detail": self.detail,
            "instance": request.path if request is not None else None,
            "traceId": trace_id(),
            "timestamp": utc_iso(),
        }
        body.update(self.extra)
        return json_response(self.status, body, content_type="application/problem+json")


def too_many_requests(request, retry_after, message):
    headers = {"Retry-After": str(retry_after)}
    if request.wants_problem_details:
        return json_response(429, {
            "title": "Too Many Requests", "status": 429, "instance": request.path,
            "detail": message, "timestamp": utc_iso(), "traceId": trace_id(),
        }, headers, content_type="application/problem+json")
    return json_response(429, {"status": {"code": 429, "description": "Too Many Requests",
                                          "details": [message]}}, headers)

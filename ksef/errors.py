"""Typed KSeF errors and the parsing of KSeF error answers (KSeF 2.0 OpenAPI: ``ExceptionResponse``,
``ProblemDetails``, the status tables of ``ksef.codes``, ``x-rate-limits``).

KSeF answers errors in two shapes:

- the default (deprecated) exception list:
  ``{"exception": {"exceptionDetailList": [{"exceptionCode", "exceptionDescription",
  "details"}], "referenceNumber", "serviceCode", ...}}``;
- Problem Details (``application/problem+json``), always for 401/403/410 and for 400/429 when
  asked with ``X-Error-Format: problem-details``:
  ``{title, status, detail, errors: [{code, description, details}], instance, traceId, ...}``.

The hierarchy lets callers decide what to do without reading codes:

- ``KsefUnavailable`` (connection refused, 5xx) and its child ``KsefTimeout``: KSeF could not
  be reached or did not answer; the request may be retried later, and in the ERP this is the
  signal that can justify offline invoicing.
- ``RateLimited``: wait ``retry_after`` seconds.
- ``Unauthorized`` / ``Forbidden``: credentials or permissions.
- ``Rejected``: KSeF understood and refused (400 codes, invoice status 4xx); its child
  ``Duplicate`` carries the original KSeF number, and ``PublicKeyUnknown`` (21470) means the
  MF encryption keys must be reloaded.

No message built here contains a token, key or password: only what KSeF sent back.
"""
import dataclasses
import datetime
import email.utils
import json

from . import codes

PUBLIC_KEY_UNKNOWN = 21470
SESSION_NOT_FOUND = 21173
SESSION_STATUS_FORBIDS = 21180
AUTHORIZATION_FAILED = 21301

INVOICE_DUPLICATE = codes.INVOICE_DUPLICATE


class KsefError(Exception):
    """Any error reported by (or on the way to) KSeF.

    ``code`` is the KSeF code (exception code, ``errors[0].code`` or a status code),
    ``description`` its text, ``details`` a list of strings, ``errors`` the full list of
    ``ApiError`` entries, ``http_status`` the HTTP status when there was an answer, and
    ``reference_number`` the KSeF reference of the failed operation when known.
    """

    def __init__(self, message=None, code=None, description=None, details=None, http_status=None,
                 reference_number=None, errors=None):
        self.code = code
        self.description = description
        self.details = list(details or [])
        self.http_status = http_status
        self.reference_number = reference_number
        self.errors = list(errors or [])
        super().__init__(message or self._default_message())

    def _default_message(self):
        parts = []
        if self.http_status:
            parts.append("HTTP %s" % self.http_status)
        if self.code is not None:
            parts.append("code %s" % self.code)
        text = ": ".join(filter(None, [", ".join(parts), self.description]))
        if self.details:
            text += " (%s)" % "; ".join(str(d) for d in self.details)
        return text or self.__class__.__name__


class KsefUnavailable(KsefError):
    """KSeF could not be reached or answered with a server error (5xx)."""


class KsefTimeout(KsefUnavailable):
    """KSeF did not answer within the client's timeout."""


class RateLimited(KsefError):
    """HTTP 429. ``retry_after`` is the number of seconds to wait (None if KSeF gave none)."""

    def __init__(self, message=None, retry_after=None, **kwargs):
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class Unauthorized(KsefError):
    """HTTP 401, or a token/refresh that KSeF does not accept."""


class Forbidden(KsefError):
    """HTTP 403; ``reason_code`` is e.g. ``missing-permissions`` or ``ip-not-allowed``."""

    def __init__(self, message=None, reason_code=None, **kwargs):
        self.reason_code = reason_code
        super().__init__(message, **kwargs)


class Gone(KsefError):
    """HTTP 410: an asynchronous status that is no longer kept (e.g. auth after 7 days)."""


class Rejected(KsefError):
    """KSeF refused the request or the document (HTTP 400 codes, invoice status 4xx)."""


class PublicKeyUnknown(Rejected):
    """21470: the MF public key used is unknown or withdrawn; reload the keys and retry."""


class SessionNotFound(Rejected):
    """21173: no session with this reference number."""


class SessionClosed(Rejected):
    """21180: the session status does not allow the operation (closed, expired, cancelled)."""


class Duplicate(Rejected):
    """Invoice status 440: KSeF already holds this invoice (seller NIP + type + number)."""

    def __init__(self, message=None, original_ksef_number=None, original_session_reference_number=None,
                 **kwargs):
        self.original_ksef_number = original_ksef_number
        self.original_session_reference_number = original_session_reference_number
        super().__init__(message, **kwargs)


class AuthenticationFailed(Unauthorized):
    """The authentication operation ended with a failure status (415, 425, 450, 460, 470, 480),
    e.g. 450 for a wrong KSeF token or 415 for a context without permissions."""


class SessionFailed(KsefError):
    """A session ended with a failure status (e.g. 415 key decryption, 435 part decryption)."""


class IntegrityError(KsefError):
    """A downloaded document does not match the hash KSeF announced for it."""


@dataclasses.dataclass(frozen=True)
class ApiError:
    """One ``{code, description, details}`` entry of an error answer."""

    code: int = None
    description: str = None
    details: tuple = ()


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_retry_after(value, now=None):
    """``Retry-After`` as seconds: an integer, or an HTTP date turned into seconds from now."""
    if value is None:
        return None
    value = str(value).strip()
    if value.isdigit():
        return int(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return max(0, int((when - now).total_seconds() + 0.999))


def parse_error_body(body):
    """Read either error format; return ``(errors, description, reference_number, extra)``.

    ``errors`` is a list of ``ApiError``; ``description`` the general text (problem ``detail``
    or ``status.description``); ``extra`` the remaining useful fields (``reasonCode``...).
    """
    errors, description, reference_number, extra = [], None, None, {}
    if not isinstance(body, dict):
        return errors, description, reference_number, extra
    exception = body.get("exception")
    if isinstance(exception, dict):
        for item in exception.get("exceptionDetailList") or []:
            errors.append(ApiError(_int_or_none(item.get("exceptionCode")),
                                   item.get("exceptionDescription"), tuple(item.get("details") or ())))
        reference_number = exception.get("referenceNumber")
        extra["serviceCode"] = exception.get("serviceCode")
    status = body.get("status")
    if isinstance(status, dict):  # legacy 429 body {"status": {code, description, details}}
        description = status.get("description")
        extra["details"] = status.get("details") or []
    if "title" in body or "detail" in body or "errors" in body:
        for item in body.get("errors") or []:
            errors.append(ApiError(_int_or_none(item.get("code")), item.get("description"),
                                   tuple(item.get("details") or ())))
        description = body.get("detail") or body.get("title") or description
        for key in ("reasonCode", "traceId", "instance", "security"):
            if body.get(key) is not None:
                extra[key] = body[key]
    return errors, description, reference_number, extra


def _classify_400(errors):
    codes = {error.code for error in errors}
    if PUBLIC_KEY_UNKNOWN in codes:
        return PublicKeyUnknown
    if SESSION_NOT_FOUND in codes:
        return SessionNotFound
    if SESSION_STATUS_FORBIDS in codes:
        return SessionClosed
    if AUTHORIZATION_FAILED in codes:
        return Unauthorized
    return Rejected


def error_from_response(response, now=None):
    """Build the right ``KsefError`` for a non-success ``requests.Response``."""
    status = response.status_code
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        body = None
    errors, description, reference_number, extra = parse_error_body(body)
    first = errors[0] if errors else None
    code = first.code if first else None
    details = list(first.details) if first else extra.get("details") or []
    if first and not description:
        description = first.description
    elif first and first.description and first.description != description:
        description = "%s %s" % (description, first.description) if description else first.description
    common = dict(code=code, description=description, details=details, http_status=status,
                  reference_number=reference_number, errors=errors)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=now)
        message = "KSeF rate limit exceeded; retry after %s s" % (retry_after if retry_after is not None else "?")
        if description:
            message += ": %s" % description
        return RateLimited(message, retry_after=retry_after, **common)
    if status == 401:
        return Unauthorized(**common)
    if status == 403:
        return Forbidden(reason_code=extra.get("reasonCode"), **common)
    if status == 410:
        return Gone(**common)
    if status >= 500:
        return KsefUnavailable(**common)
    if status == 400:
        return _classify_400(errors)(**common)
    if not description and body is None:
        text = (response.text or "").strip()
        common["description"] = text[:200] or None
    return KsefError(**common)


def error_from_invoice_status(status, reference_number=None):
    """The error for a failed per-invoice status ``{code, description, details, extensions}``.

    Returns None for pending (100/150) and success (200) statuses.
    """
    code = status.get("code")
    if code is None or code in codes.INVOICE_PENDING or code == codes.INVOICE_SUCCESS:
        return None
    common = dict(code=code, description=status.get("description"), details=status.get("details"),
                  reference_number=reference_number)
    if code == INVOICE_DUPLICATE:
        extensions = status.get("extensions") or {}
        return Duplicate(original_ksef_number=extensions.get("originalKsefNumber"),
                         original_session_reference_number=extensions.get("originalSessionReferenceNumber"),
                         **common)
    if codes.invoice_group(code) == codes.TECHNICAL:
        # KSeF's own trouble (405 included, see ksef.codes): retry later, not a verdict on the document
        return KsefUnavailable(**common)
    return Rejected(**common)

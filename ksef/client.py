"""KSeF 2.0 API client (the KSeF 2.0 OpenAPI, ``open-api.json``): authentication, MF keys,
online and batch sessions, session listings, pre-signed transfers, UPO.

Everything the wire needs is computed here: token encryption (RSA-OAEP SHA-256), the
XAdES-signed ``AuthTokenRequest``, per-session AES-256-CBC keys wrapped with the MF key,
invoice hashes and sizes, batch packages.

Behaviour worth knowing:

- the access token is sent on protected calls; it is refreshed (once) with the refresh token
  when it has expired or when KSeF answers 401, and a second 401 raises ``Unauthorized``;
- MF public keys are cached; a ``21470`` answer reloads them and the call is retried once;
- errors are typed (``ksef.errors``); 429 raises ``RateLimited`` with ``retry_after``;
- ``X-System-Warning`` headers are logged as warnings;
- tokens, keys and passwords never reach a log line, an exception message or a ``repr``.

Sessions are plain dataclasses (``ksef.client_types``, importable from here too) that can be
stored and reused later, in another process (``OnlineSession.to_dict()`` / ``from_dict()``);
their AES key is a secret the caller keeps.
"""
import datetime
import logging
import threading

import requests
from lxml import etree

from . import batch as batch_package
from . import codes, crypto, environments, polling, safehttp, xades
from .errors import (
    AuthenticationFailed, IntegrityError, KsefError, KsefTimeout, KsefUnavailable, PublicKeyUnknown,
    SessionFailed, Unauthorized, error_from_response,
)
from .client_types import (  # noqa: F401 - the wire types are part of this module's API
    FORM_CODES, AuthOperation, AuthStatus, AuthTokens, BatchSession, Challenge, FormCode, InvoicePage, InvoiceStatus,
    OnlineSession, PartUploadRequest, PublicKeyCertificate, SessionStatus, Status, TokenInfo, UpoPage, _form_code,
    _now, _reference, parse_datetime,
)

_logger = logging.getLogger(__name__)

ENVIRONMENTS = environments.KSEF_API

KSEF_TOKEN_ENCRYPTION = "KsefTokenEncryption"
SYMMETRIC_KEY_ENCRYPTION = "SymmetricKeyEncryption"

AUTH_NAMESPACE_20 = "http://ksef.mf.gov.pl/auth/token/2.0"
AUTH_NAMESPACE_21 = "http://ksef.mf.gov.pl/auth/token/2.1"
CONTEXT_TYPES = ("Nip", "InternalId", "NipVatUe", "PeppolId")

# The names this module always offered; their home is ``ksef.codes``.
PENDING_INVOICE_CODES = codes.INVOICE_PENDING
PENDING_AUTH_CODES = codes.AUTH_PENDING
FINAL_SESSION_CODES = codes.FINAL_SESSION_CODES
# The largest page of a session's invoice list (OpenAPI ``pageSize`` maximum of
# ``GET /sessions/{referenceNumber}/invoices``).
MAX_PAGE_SIZE = 1000


# --- the client ---------------------------------------------------------------------------

class KsefClient:
    """One KSeF environment and one authenticated context.

    ``environment`` is ``test``, ``demo`` or ``production``; ``base_url`` overrides it (e.g. a
    simulator). ``timeout`` is the per-request timeout in seconds; ``poll_interval`` the pause
    between status polls. ``problem_details`` asks KSeF for Problem Details error bodies.
    """

    def __init__(self, environment="test", base_url=None, timeout=30.0, session=None,
                 poll_interval=1.0, problem_details=True, access_token=None, refresh_token=None):
        self.base_url = environments.service_url(ENVIRONMENTS, environment, base_url)
        self.timeout = safehttp.check_timeout(timeout)
        self.poll_interval = poll_interval
        self.problem_details = problem_details
        self.http = session or requests.Session()
        self.access_token = access_token if access_token is None or isinstance(access_token, TokenInfo) \
            else TokenInfo(access_token)
        self.refresh_token = refresh_token if refresh_token is None or isinstance(refresh_token, TokenInfo) \
            else TokenInfo(refresh_token)
        self._public_keys = None
        self._transfer_sessions = threading.local()   # pre-signed transfers may run in threads

    def __repr__(self):
        return "<KsefClient %s authenticated=%s>" % (self.base_url, self.access_token is not None)

    # --- HTTP core ---------------------------------------------------------------------

    def _send(self, method, url, headers, **kwargs):
        try:
            # A total deadline and a size cap for the whole answer, not only for each socket read.
            # An upload gets its time on top (at 1 MB/s at least): a 100 MB batch part is no slow answer.
            data = kwargs.get("data")
            total = self.timeout + (len(data) / 1_000_000 if isinstance(data, (bytes, bytearray)) else 0)
            return safehttp.bounded_request(self.http, method, url, total, headers=headers, **kwargs)
        except safehttp.ResponseTooLarge as exc:
            raise KsefError("KSeF's answer to %s %s is too large: %s" % (method, _path_of(url), exc)) from exc
        except requests.Timeout as exc:
            raise KsefTimeout("KSeF did not answer %s %s within %s s" % (method, _path_of(url), self.timeout)) from exc
        except requests.ConnectionError as exc:
            raise KsefUnavailable("cannot connect to KSeF (%s %s): %s"
                                  % (method, _path_of(url), type(exc).__name__)) from exc

    def _request(self, method, path, auth="access", json=None, data=None, params=None, headers=None,
                 expect=(200,)):
        """One API call. ``auth`` is ``access`` (access token, refreshed when needed), ``None``,
        or a ``TokenInfo`` to send as is (authentication or refresh token)."""
        url = self.base_url + path
        all_headers = {"Accept": "application/json"}
        if self.problem_details:
            all_headers["X-Error-Format"] = "problem-details"
        all_headers.update(headers or {})
        refreshed = False
        if auth == "access":
            self._ensure_access_token()
            if self.access_token.expired(margin_seconds=10) and self.refresh_token is not None:
                self.refresh()
                refreshed = True
        while True:
            if auth == "access":
                all_headers["Authorization"] = "Bearer " + self.access_token.token
            elif isinstance(auth, TokenInfo):
                all_headers["Authorization"] = "Bearer " + auth.token
            response = self._send(method, url, all_headers, json=json, data=data, params=params)
            _logger.debug("KSeF %s %s -> %s", method, path, response.status_code)
            self._log_system_warning(response, path)
            if response.status_code in expect:
                return response
            if response.status_code == 401 and auth == "access" and not refreshed and self.refresh_token is not None:
                _logger.info("KSeF answered 401 on %s; refreshing the access token once", path)
                refreshed = True
                self.refresh()
                continue
            error = error_from_response(response)
            if isinstance(error, Unauthorized) and auth == "access":
                error.args = ("KSeF refused the access token on %s%s: %s"
                              % (path, " even after a refresh" if refreshed else "", error.args[0]),)
            raise error

    def call_api(self, method, path, json=None, params=None, expect=(200,)):
        """One authenticated call of an API area without a method here (certificates: see
        ``ksef.enrollment``; collective identifiers: ``ksef.payments``): the parsed JSON answer,
        None when it has no body (204)."""
        response = self._request(method, path, json=json, params=params, expect=expect)
        return response.json() if response.content else None

    def _ensure_access_token(self):
        if self.access_token is None:
            raise Unauthorized("not authenticated: call authenticate_with_token() or "
                               "authenticate_with_certificate() first")

    @staticmethod
    def _log_system_warning(response, path):
        warning = response.headers.get("X-System-Warning")
        if warning:
            _logger.warning("KSeF system warning on %s: %s", path, warning)

    # --- MF public keys ----------------------------------------------------------------

    def public_key_certificates(self, force_reload=False):
        """The MF encryption certificates (``GET /security/public-key-certificates``), cached."""
        if self._public_keys is None or force_reload:
            response = self._request("GET", "/security/public-key-certificates", auth=None)
            self._public_keys = [
                PublicKeyCertificate(
                    certificate_b64=item["certificate"], certificate_id=item.get("certificateId"),
                    public_key_id=item.get("publicKeyId"), valid_from=parse_datetime(item.get("validFrom")),
                    valid_to=parse_datetime(item.get("validTo")), usage=list(item.get("usage") or []))
                for item in response.json()
            ]
        return list(self._public_keys)

    def public_key_for(self, usage):
        """The certificate for ``usage`` valid now; the latest ``validFrom`` wins
        (`bezpieczenstwo/klucze-publiczne-do-szyfrowania.md`)."""
        now = _now()
        candidates = [c for c in self.public_key_certificates() if usage in c.usage and c.valid_at(now)]
        if not candidates:
            raise KsefError("KSeF lists no valid MF public key for %s" % usage)
        return max(candidates, key=lambda c: c.valid_from or datetime.datetime.min.replace(tzinfo=datetime.timezone.utc))

    def _with_public_key(self, usage, call):
        """Run ``call(certificate)``; on 21470 reload the keys and run it once more."""
        try:
            return call(self.public_key_for(usage))
        except PublicKeyUnknown:
            _logger.info("KSeF does not know the MF key used (21470); reloading the public keys")
            self.public_key_certificates(force_reload=True)
            return call(self.public_key_for(usage))

    # --- authentication ----------------------------------------------------------------

    def challenge(self):
        data = self._request("POST", "/auth/challenge", auth=None).json()
        return Challenge(data["challenge"], data.get("timestamp"), int(data["timestampMs"]), data.get("clientIp"))

    @staticmethod
    def _context(context_type, context_value):
        if context_type not in CONTEXT_TYPES:
            raise ValueError("context_type must be one of %s" % ", ".join(CONTEXT_TYPES))
        return {"type": context_type, "value": str(context_value)}

    def start_token_authentication(self, context_type, context_value, ksef_token, authorization_policy=None):
        """``POST /auth/ksef-token`` with ``token|timestampMs`` RSA-OAEP encrypted; returns the operation."""
        context = self._context(context_type, context_value)

        def call(certificate):
            challenge = self.challenge()
            plaintext = ("%s|%d" % (ksef_token, challenge.timestamp_ms)).encode("utf-8")
            body = {
                "challenge": challenge.challenge,
                "contextIdentifier": context,
                "encryptedToken": crypto.b64(crypto.rsa_oaep_encrypt(certificate.public_key(), plaintext)),
                "publicKeyId": certificate.public_key_id,
            }
            if authorization_policy:
                body["authorizationPolicy"] = authorization_policy
            return self._request("POST", "/auth/ksef-token", auth=None, json=body, expect=(202,)).json()

        return self._auth_operation(self._with_public_key(KSEF_TOKEN_ENCRYPTION, call))

    @staticmethod
    def _auth_operation(data):
        return AuthOperation(data["referenceNumber"], TokenInfo.from_json(data["authenticationToken"]))

    @staticmethod
    def auth_token_request_xml(challenge, context_type, context_value,
                               subject_identifier_type="certificateSubject", namespace=AUTH_NAMESPACE_21):
        """The unsigned ``AuthTokenRequest`` document (schemat_auth_v2-1.xsd / v2-0)."""
        if context_type not in CONTEXT_TYPES:
            raise ValueError("context_type must be one of %s" % ", ".join(CONTEXT_TYPES))
        root = etree.Element("{%s}AuthTokenRequest" % namespace, nsmap={None: namespace})
        etree.SubElement(root, "{%s}Challenge" % namespace).text = challenge
        context = etree.SubElement(root, "{%s}ContextIdentifier" % namespace)
        etree.SubElement(context, "{%s}%s" % (namespace, context_type)).text = str(context_value)
        etree.SubElement(root, "{%s}SubjectIdentifierType" % namespace).text = subject_identifier_type
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    def start_certificate_authentication(self, context_type, context_value, certificate, private_key,
                                         subject_identifier_type="certificateSubject",
                                         verify_certificate_chain=None, namespace=AUTH_NAMESPACE_21):
        """``POST /auth/xades-signature`` with a XAdES-signed ``AuthTokenRequest``."""
        challenge = self.challenge()
        document = self.auth_token_request_xml(challenge.challenge, context_type, context_value,
                                               subject_identifier_type, namespace)
        signed = xades.sign_auth_token_request(document, certificate, private_key)
        params = None
        if verify_certificate_chain is not None:
            params = {"verifyCertificateChain": "true" if verify_certificate_chain else "false"}
        response = self._request("POST", "/auth/xades-signature", auth=None, data=signed, params=params,
                                 headers={"Content-Type": "application/xml"}, expect=(202,))
        return self._auth_operation(response.json())

    def auth_status(self, operation):
        data = self._request("GET", "/auth/%s" % operation.reference_number,
                             auth=operation.authentication_token).json()
        return AuthStatus(Status.from_json(data.get("status")), parse_datetime(data.get("startDate")),
                          data.get("authenticationMethod"), raw=data)

    def wait_for_authentication(self, operation, timeout=120.0):
        """Poll until the operation leaves status 100; raise ``AuthenticationFailed`` unless 200."""
        polled = self._poll(lambda: self.auth_status(operation),
                            lambda status: status.status.code not in codes.AUTH_PENDING, timeout)
        status = polled.value
        if not polled.done:
            raise KsefTimeout("authentication %s still in progress after %s s"
                                  % (operation.reference_number, timeout),
                              reference_number=operation.reference_number)
        if status.status.code != codes.AUTH_SUCCESS:
            raise AuthenticationFailed(code=status.status.code, description=status.status.description,
                                       details=status.status.details,
                                       reference_number=operation.reference_number)
        return status

    def redeem(self, operation):
        """``POST /auth/token/redeem`` (works once); stores and returns the tokens."""
        data = self._request("POST", "/auth/token/redeem", auth=operation.authentication_token).json()
        self.access_token = TokenInfo.from_json(data["accessToken"])
        self.refresh_token = TokenInfo.from_json(data["refreshToken"])
        return AuthTokens(self.access_token, self.refresh_token)

    def refresh(self):
        """``POST /auth/token/refresh``: a new access token from the refresh token."""
        if self.refresh_token is None:
            raise Unauthorized("no refresh token: authenticate first")
        data = self._request("POST", "/auth/token/refresh", auth=self.refresh_token).json()
        self.access_token = TokenInfo.from_json(data["accessToken"])
        return self.access_token

    def authenticate_with_token(self, context_type, context_value, ksef_token, timeout=120.0):
        """Full KSeF-token login: challenge, encrypted token, status polling, redeem."""
        operation = self.start_token_authentication(context_type, context_value, ksef_token)
        self.wait_for_authentication(operation, timeout=timeout)
        return self.redeem(operation)

    def authenticate_with_certificate(self, context_type, context_value, certificate, private_key,
                                      subject_identifier_type="certificateSubject",
                                      verify_certificate_chain=None, timeout=120.0):
        """Full XAdES login with a certificate (e.g. a KSeF Authentication certificate)."""
        operation = self.start_certificate_authentication(
            context_type, context_value, certificate, private_key,
            subject_identifier_type=subject_identifier_type, verify_certificate_chain=verify_certificate_chain)
        self.wait_for_authentication(operation, timeout=timeout)
        return self.redeem(operation)

    # --- sessions ----------------------------------------------------------------------

    def _encryption(self, certificate, key, iv):
        return {
            "encryptedSymmetricKey": crypto.b64(crypto.rsa_oaep_encrypt(certificate.public_key(), key)),
            "initializationVector": crypto.b64(iv),
            "publicKeyId": certificate.public_key_id,
        }

    def open_online_session(self, form_code="FA (3)"):
        """``POST /sessions/online`` with a fresh AES key and IV wrapped with the MF key."""
        form = _form_code(form_code)
        key, iv = crypto.new_symmetric_key()

        def call(certificate):
            body = {"formCode": form.to_json(), "encryption": self._encryption(certificate, key, iv)}
            data = self._request("POST", "/sessions/online", json=body, expect=(201,)).json()
            return data, certificate.public_key_id

        data, key_id = self._with_public_key(SYMMETRIC_KEY_ENCRYPTION, call)
        return OnlineSession(data["referenceNumber"], key, iv, parse_datetime(data.get("validUntil")), form, key_id)

    @staticmethod
    def invoice_payload(session, xml_bytes, offline_mode=False, hash_of_corrected_invoice=None):
        """The ``SendInvoiceRequest`` body for ``xml_bytes`` in ``session``."""
        xml_bytes = bytes(xml_bytes)
        encrypted = crypto.aes_encrypt(xml_bytes, session.symmetric_key, session.iv)
        body = {
            "invoiceHash": crypto.sha256_b64(xml_bytes),
            "invoiceSize": len(xml_bytes),
            "encryptedInvoiceHash": crypto.sha256_b64(encrypted),
            "encryptedInvoiceSize": len(encrypted),
            "encryptedInvoiceContent": crypto.b64(encrypted),
            "offlineMode": bool(offline_mode),
        }
        if hash_of_corrected_invoice:
            body["hashOfCorrectedInvoice"] = hash_of_corrected_invoice
        return body

    def send_invoice(self, session, xml_bytes, offline_mode=False, hash_of_corrected_invoice=None):
        """Send one invoice; return its KSeF reference number (processing is asynchronous).

        ``hash_of_corrected_invoice`` (Base64 SHA-256 of the rejected original) makes it a
        technical correction; KSeF then requires ``offline_mode=True``
        (`offline/korekta-techniczna.md`; OpenAPI ``SendInvoiceRequest``).
        """
        body = self.invoice_payload(session, xml_bytes, offline_mode, hash_of_corrected_invoice)
        response = self._request("POST", "/sessions/online/%s/invoices" % session.reference_number,
                                 json=body, expect=(202,))
        return response.json()["referenceNumber"]

    def close_online_session(self, session):
        self._request("POST", "/sessions/online/%s/close" % _reference(session), expect=(204, 200))

    def open_batch_session(self, invoices, form_code="FA (3)", offline_mode=False,
                           max_part_size=batch_package.MAX_PART_SIZE):
        """Package ``invoices`` (XML bytes or ``(file_name, xml)`` pairs) and open a batch session.

        Upload the parts with ``upload_batch_parts`` then ``close_batch_session``.
        """
        form = _form_code(form_code)
        key, iv = crypto.new_symmetric_key()
        package = batch_package.build_package(invoices, key, iv, max_part_size=max_part_size)

        def call(certificate):
            body = {
                "formCode": form.to_json(),
                "batchFile": package.batch_file(),
                "encryption": self._encryption(certificate, key, iv),
                "offlineMode": bool(offline_mode),
            }
            return self._request("POST", "/sessions/batch", json=body, expect=(201,)).json(), certificate.public_key_id

        data, key_id = self._with_public_key(SYMMETRIC_KEY_ENCRYPTION, call)
        uploads = [PartUploadRequest(item["ordinalNumber"], item.get("method") or "PUT", item["url"],
                                     dict(item.get("headers") or {}))
                   for item in data.get("partUploadRequests") or []]
        return BatchSession(data["referenceNumber"], key, iv, package, uploads, form, bool(offline_mode), key_id)

    @staticmethod
    def batch_part_uploads(batch_session):
        """``[(PartUploadRequest, part bytes)]`` in ordinal order; ``KsefError`` when KSeF gave no
        address for a part."""
        parts = {part.ordinal_number: part for part in batch_session.package.parts}
        requests_by_ordinal = {request.ordinal_number: request for request in batch_session.part_upload_requests}
        missing = set(parts) - set(requests_by_ordinal)
        if missing:
            raise KsefError("KSeF gave no upload address for part(s) %s" % sorted(missing),
                            reference_number=batch_session.reference_number)
        return [(requests_by_ordinal[ordinal], parts[ordinal].content) for ordinal in sorted(parts)]

    def upload_batch_part(self, request, content, reference_number=None):
        """Send one encrypted part to its pre-signed URL (``PartUploadRequest``), without the access
        token. Safe to call from several threads at once (one HTTP session per thread)."""
        headers = {k: v for k, v in request.headers.items() if v is not None}
        try:
            self.transfer(request.method.upper(), request.url, headers=headers, data=content)
        except KsefError as error:
            error.reference_number = error.reference_number or reference_number
            error.args = ("upload of batch part %s failed: %s" % (request.ordinal_number, error.args[0]),)
            raise
        _logger.debug("KSeF batch part %s uploaded", request.ordinal_number)

    def upload_batch_parts(self, batch_session):
        """Send every encrypted part to its pre-signed URL, one after the other."""
        for request, content in self.batch_part_uploads(batch_session):
            self.upload_batch_part(request, content, batch_session.reference_number)

    def close_batch_session(self, batch_session):
        self._request("POST", "/sessions/batch/%s/close" % _reference(batch_session), expect=(204, 200))

    def send_batch(self, invoices, form_code="FA (3)", offline_mode=False,
                   max_part_size=batch_package.MAX_PART_SIZE):
        """Open, upload and close a batch session in one go; return the ``BatchSession``."""
        batch_session = self.open_batch_session(invoices, form_code, offline_mode, max_part_size)
        self.upload_batch_parts(batch_session)
        self.close_batch_session(batch_session)
        return batch_session

    # --- statuses ----------------------------------------------------------------------

    def session_status(self, session):
        data = self._request("GET", "/sessions/%s" % _reference(session)).json()
        return SessionStatus.from_json(data)

    def wait_for_session(self, session, timeout=300.0, raise_on_failure=True):
        """Poll the session until its status is final; failed statuses raise ``SessionFailed``."""
        polled = self._poll(lambda: self.session_status(session), lambda status: status.is_final, timeout)
        status = polled.value
        if not polled.done:
            raise KsefTimeout("session %s not processed after %s s (status %s)"
                              % (_reference(session), timeout, status.code),
                              reference_number=_reference(session))
        if raise_on_failure and status.code != codes.SESSION_SUCCESS:
            raise SessionFailed(code=status.code, description=status.status.description,
                                details=status.status.details, reference_number=_reference(session))
        return status

    def invoice_status(self, session, invoice_reference):
        data = self._request("GET", "/sessions/%s/invoices/%s" % (_reference(session), invoice_reference)).json()
        return InvoiceStatus.from_json(data)

    def wait_for_invoice(self, session, invoice_reference, timeout=120.0, raise_on_error=True):
        """Poll an invoice until its status is final; failures raise ``Rejected``/``Duplicate``."""
        polled = self._poll(lambda: self.invoice_status(session, invoice_reference),
                            lambda status: not status.is_pending, timeout)
        status = polled.value
        if not polled.done:
            raise KsefTimeout("invoice %s still processing after %s s" % (invoice_reference, timeout),
                              reference_number=invoice_reference)
        return status.raise_for_status() if raise_on_error else status

    def _poll(self, fetch, done, timeout):
        """Every ``wait_for_*``: a pause of ``poll_interval``, a last look at the deadline."""
        return polling.until(fetch, done, timeout=timeout, interval=self.poll_interval, last_look=True)

    def session_invoices_page(self, session, page_size=100, continuation_token=None, failed=False):
        """One page of ``GET /sessions/{ref}/invoices`` (``failed=True``: ``.../invoices/failed``,
        the failed ones only); pass the page's ``continuation_token`` back for the next page."""
        if not 10 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError("page_size must be 10..%d" % MAX_PAGE_SIZE)
        path = "/sessions/%s/invoices%s" % (_reference(session), "/failed" if failed else "")
        headers = {"x-continuation-token": continuation_token} if continuation_token else None
        data = self._request("GET", path, params={"pageSize": page_size}, headers=headers).json()
        return InvoicePage([InvoiceStatus.from_json(item) for item in data.get("invoices") or []],
                           data.get("continuationToken") or None)

    def continued(self, path, key, page_size):
        """Every entry under ``key`` of a GET listing paged with ``x-continuation-token`` (all pages)."""
        token = None
        while True:
            headers = {"x-continuation-token": token} if token else None
            data = self._request("GET", path, params={"pageSize": page_size}, headers=headers).json()
            yield from data.get(key) or []
            token = data.get("continuationToken")
            if not token:
                return

    def _paged_invoices(self, session, page_size, failed):
        token = None
        while True:
            page = self.session_invoices_page(session, page_size, token, failed=failed)
            yield from page.invoices
            token = page.continuation_token
            if not token:
                return

    def session_invoices(self, session, page_size=100):
        """Every invoice of the session, all pages (``x-continuation-token``)."""
        return self._paged_invoices(session, page_size, failed=False)

    def failed_session_invoices(self, session, page_size=100):
        return self._paged_invoices(session, page_size, failed=True)

    # --- UPO ---------------------------------------------------------------------------

    @staticmethod
    def _checked_content(response, what):
        announced = response.headers.get("x-ms-meta-hash")
        if announced and announced != crypto.sha256_b64(response.content):
            raise IntegrityError("%s does not match its x-ms-meta-hash" % what)
        return response.content

    def _get_xml(self, path, what):
        response = self._request("GET", path, headers={"Accept": "application/xml"})
        return self._checked_content(response, what)

    def invoice_upo(self, session, invoice_reference=None, ksef_number=None):
        """The UPO XML of one invoice, by invoice reference or by KSeF number."""
        if bool(invoice_reference) == bool(ksef_number):
            raise ValueError("give exactly one of invoice_reference or ksef_number")
        if ksef_number:
            path = "/sessions/%s/invoices/ksef/%s/upo" % (_reference(session), ksef_number)
        else:
            path = "/sessions/%s/invoices/%s/upo" % (_reference(session), invoice_reference)
        return self._get_xml(path, "invoice UPO")

    def session_upo_page(self, session, upo_reference):
        return self._get_xml("/sessions/%s/upo/%s" % (_reference(session), upo_reference), "session UPO")

    def session_upo(self, session):
        """All pages of the collective session UPO (after closing), as a list of XML bytes."""
        status = self.session_status(session)
        if not status.upo_pages:
            raise KsefError("session %s has no UPO yet (status %s)" % (_reference(session), status.code),
                            reference_number=_reference(session))
        return [self.session_upo_page(session, page.reference_number) for page in status.upo_pages]

    def download(self, url):
        """GET a pre-signed URL (``upoDownloadUrl``, a session UPO page's ``downloadUrl``) without
        the access token; ``IntegrityError`` when the bytes do not match ``x-ms-meta-hash``.
        Safe to call from several threads at once."""
        return self._checked_content(self.transfer("GET", url), "downloaded document")

    def transfer(self, method, url, headers=None, data=None):
        """One call to a pre-signed URL (not the API: no access token, no rate limit), with the
        total deadline and size cap of every KSeF call (``safehttp.bounded_request``; an upload
        gets its time on top, at 1 MB/s at least). Any failure on the way is ``KsefUnavailable``
        (``KsefTimeout`` for the deadline); an error answer is the typed error. Returns the
        response, its body read."""
        session = getattr(self._transfer_sessions, "http", None)
        if session is None:
            session = self._transfer_sessions.http = requests.Session()
            session.hooks = self.http.hooks     # the client's hooks (logging, a test's recorder) see them too
        total = self.timeout + (len(data) / 1_000_000 if isinstance(data, (bytes, bytearray)) else 0)
        try:
            response = safehttp.bounded_request(session, method, url, total, headers=headers or {}, data=data)
        except requests.Timeout as exc:
            raise KsefTimeout("pre-signed %s %s: no answer within %s s" % (method, _path_of(url), total)) from exc
        except (requests.RequestException, ValueError) as exc:
            raise KsefUnavailable("pre-signed %s failed: %s" % (method, type(exc).__name__)) from exc
        if response.status_code not in (200, 201):
            raise error_from_response(response)
        return response

    # --- invoices received (the company as buyer) -------------------------------------

    def query_invoice_metadata(self, filters, page_size=100, page_offset=0):
        """One page of ``POST /invoices/query/metadata``: ``filters`` is the OpenAPI
        ``InvoiceQueryFilters`` (``subjectType``, ``dateRange``...); returns the JSON answer
        (``invoices``, ``hasMore``, ``isTruncated``)."""
        return self._request("POST", "/invoices/query/metadata", json=filters,
                             params={"pageSize": page_size, "pageOffset": page_offset}).json()

    def invoice_xml(self, ksef_number):
        """The FA(3) file of an invoice by its KSeF number (as its seller or its buyer)."""
        return self._get_xml("/invoices/ksef/%s" % ksef_number, "invoice %s" % ksef_number)


def _path_of(url):
    """The URL without its query string: pre-signed URLs carry credentials there."""
    return url.split("?", 1)[0]

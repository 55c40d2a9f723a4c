"""The simulated KSeF 2.0 service: ``SimulatorApp`` composes the API areas, each a mixin with its
handlers and its own route list (``auth_api``, ``sessions_api``, ``batch_api``, ``invoices_api``,
``queries_api``, ``received``, ``collective``, ``certificates_api``, ``latarnia_api``,
``control_api``, ``script_api``), and owns what they share: the clock, references, signed
addresses, JWTs and the routing with its checks (faults, control secret, tokens, rate limits).
All SQL is in ``store.py``. Transport-neutral: ``SimulatorApp.handle(Request) -> Response``; the
HTTP server in ``server.py`` only moves bytes."""
import base64
import datetime
import hashlib
import hmac
import json
import logging
import random
import re
import secrets
import threading
import time

from lxml import etree

from .. import crypto
from ..ksef_number import crc8
from . import control_secret
from . import keys as mf_keys
from .acceptance import InvoiceAcceptanceMixin
from .auth_api import AUTH_NAMESPACES, AuthApiMixin
from .batch_api import BatchApiMixin
from .certificates_api import CertificatesApiMixin
from .collective import CollectiveIdentifiersMixin
from .common import MAX_INVOICES_PER_SESSION
from .control_api import DEFAULT_FAULTS, ControlApiMixin
from .invoices import InvoiceInspector, default_shared_dir
from .invoices_api import InvoicesApiMixin
from .latarnia_api import LatarniaApiMixin
from .queries_api import QueriesApiMixin
from .ratelimit import RateLimiter
from .received import ReceivedInvoicesMixin
from .script_api import ScriptApiMixin
from .sessions_api import SessionsApiMixin
from .wire import ApiError, ProblemError, json_response, too_many_requests

_logger = logging.getLogger("ksef.simulator")


class SimulatorApp(AuthApiMixin, SessionsApiMixin, BatchApiMixin, InvoiceAcceptanceMixin, InvoicesApiMixin,
                   QueriesApiMixin, LatarniaApiMixin, ControlApiMixin, ScriptApiMixin,
                   CollectiveIdentifiersMixin, CertificatesApiMixin, ReceivedInvoicesMixin):
    def __init__(self, store, xsd_dir=None, tokens=(), rate_limits="production",
                 processing_delay=0.2, access_token_ttl=900.0, seed=0):
        self.store = store
        self.inspector = InvoiceInspector(xsd_dir)
        self.auth_schemas = self._load_auth_schemas()
        self.limiter = RateLimiter(enabled=rate_limits != "off")
        self.startup_tokens = list(tokens)
        self.config = {"processing_delay": float(processing_delay),
                       "access_token_ttl": float(access_token_ttl),
                       "clock_offset": 0.0,
                       "max_invoices_per_session": MAX_INVOICES_PER_SESSION}
        self.faults = dict(DEFAULT_FAULTS, seed=seed)
        self.fault_rng = random.Random(seed)
        self.fault_lock = threading.Lock()
        self.workers = []
        self.secret = self._secret()
        self.control_secret = control_secret.from_environment()
        self._ensure_keys()
        self._certificates_setup()
        for nip, token in self.startup_tokens:
            self.register_token(nip, token)
        self._resume_batches()
        self._init_script()
        self.routes = self._build_routes()

    # ------------------------------------------------------------------ setup
    def _secret(self):
        secret = self.store.get_meta("secret")
        if not secret:
            secret = secrets.token_hex(32)
            self.store.set_meta("secret", secret)
        return secret.encode("ascii")

    def _ensure_keys(self):
        for usage in mf_keys.USAGES:
            if not self.store.active_keys(usage):
                self.store.add_key(mf_keys.new_key(usage))

    @staticmethod
    def _load_auth_schemas():
        schemas = {}
        auth_dir = default_shared_dir() / "ksef" / "xsd" / "auth"
        for namespace, name in AUTH_NAMESPACES.items():
            path = auth_dir / name
            if path.is_file():
                try:
                    schemas[namespace] = etree.XMLSchema(etree.parse(str(path)))
                except etree.XMLSchemaParseError:
                    pass  # auth v2-0 has regexes libxml2 rejects (the reason for 2.1): not validated
        return schemas

    def now(self):
        return time.time() + self.config["clock_offset"]

    # ------------------------------------------------------------------ references, signatures, tokens
    def reference(self, kind, ts=None):
        stamp = datetime.datetime.fromtimestamp(ts or self.now(), datetime.timezone.utc).strftime("%Y%m%d")
        body = "%s-%s-%s-%s" % (stamp, kind, secrets.token_hex(5).upper(), secrets.token_hex(5).upper())
        return "%s-%02X" % (body, crc8(body))

    def sign(self, text):
        return base64.urlsafe_b64encode(hmac.new(self.secret, text.encode("utf-8"), hashlib.sha256)
                                        .digest()).rstrip(b"=").decode("ascii")

    def signed_url(self, request, path, lifetime):
        expires = int(self.now() + lifetime)
        return "%s%s?se=%d&sig=%s" % (request.base_url, path, expires, self.sign("%s|%d" % (path, expires))), expires

    def check_signed(self, request):
        expires = request.arg("se")
        signature = request.arg("sig")
        if not expires or not signature or not expires.isdigit():
            raise ProblemError(403, "Brak podpisu adresu.")
        if not hmac.compare_digest(signature, self.sign("%s|%s" % (request.path, expires))):
            raise ProblemError(403, "Nieprawidłowy podpis adresu.")
        if int(expires) < self.now():
            raise ProblemError(403, "Adres wygasł.")

    def make_jwt(self, kind, auth_reference, context_type, context_value, lifetime):
        now = self.now()
        header = {"alg": "HS256", "typ": "JWT"}
        payload = {"iss": "ksef-simulator", "typ": kind, "sub": auth_reference,
                   "ctx": {"type": context_type, "value": context_value},
                   "iat": int(now), "iat_ms": int(now * 1000), "exp": int(now + lifetime),
                   "jti": secrets.token_hex(8)}
        signing_input = "%s.%s" % (crypto.b64url(json.dumps(header).encode()),
                                   crypto.b64url(json.dumps(payload).encode()))
        return "%s.%s" % (signing_input, self.sign(signing_input)), now + lifetime

    def read_jwt(self, request, kind):
        authorization = request.header("Authorization") or ""
        if not authorization.startswith("Bearer "):
            raise ProblemError(401, "Wymagane jest uwierzytelnienie.")
        token = authorization[7:].strip()
        parts = token.split(".")
        if len(parts) != 3 or not hmac.compare_digest(parts[2], self.sign("%s.%s" % (parts[0], parts[1]))):
            raise ProblemError(401, "Nieprawidłowy token.")
        payload = json.loads(crypto.b64url_decode(parts[1]))
        if payload.get("typ") != kind:
            raise ProblemError(401, "Nieprawidłowy rodzaj tokenu (oczekiwano %s)." % kind)
        if payload["exp"] <= self.now():
            raise ProblemError(401, "Token wygasł.")
        if kind == "access":
            not_before = self.store.get_meta("access_tokens_not_before", 0)
            if payload.get("iat_ms", 0) < not_before * 1000:
                raise ProblemError(401, "Token został unieważniony.")
        payload["token"] = token
        return payload

    # ------------------------------------------------------------------ routing
    def _build_routes(self):
        # (method, pattern, handler, auth: None | "auth" | "access" | "refresh" | "signed" | "latarnia"
        # | "control"); the first route of the method matching the path wins, so the order counts
        table = (self.auth_routes() + self.session_routes() + self.batch_routes() + self.query_routes()
                 + self.session_status_routes()
                 + self.invoice_routes() + self.upload_routes() + self.storage_routes() + self.latarnia_routes()
                 + self.control_routes() + self.script_routes() + self.collective_routes()
                 + self.certificate_routes() + self._received_routes())
        return [(method, re.compile("^%s$" % pattern), handler, auth) for method, pattern, handler, auth in table]

    def handle(self, request):
        # steps due now play first, so a connection_lost due now already fails this request
        try:
            self.play_due_script_steps()
        except Exception:
            _logger.exception("outage script step failed")
        try:
            return self._dispatch(request)
        except (ApiError, ProblemError) as exc:
            return exc.to_response(request)

    def _dispatch(self, request):
        match = None
        path_known = False
        for method, pattern, handler, auth in self.routes:
            found = pattern.match(request.path)
            if found:
                path_known = True
                if method == request.method:
                    match = (handler, auth, found.groupdict())
                    break
        if match is None:
            raise ProblemError(405 if path_known else 404,
                               "Nieobsługiwane żądanie %s %s." % (request.method, request.path))
        handler, auth, params = match
        is_ksef = auth not in ("control", "latarnia")
        if is_ksef:
            fault = self._apply_faults(request, auth)
            if fault is not None:
                return fault
        elif auth == "latarnia" and self.faults["latarnia_down"]:
            return json_response(502, {"title": "Bad Gateway", "status": 502})
        elif auth == "control":
            denied = control_secret.refusal(self.control_secret, request)
            if denied is not None:
                return denied
        context = None
        if auth == "auth":
            request.auth = self._auth_operation_from_token(request)
            context = request.auth["context_value"]
        elif auth in ("access", "refresh"):
            request.auth = self.read_jwt(request, auth)
            context = request.auth["ctx"]["value"]
        elif auth == "signed":
            self.check_signed(request)
        if auth in (None, "auth", "access", "refresh"):
            limited = self.limiter.check(request.method, request.path[3:], context, request.client_ip)
            if limited:
                return too_many_requests(request, *limited)
        return handler(request, **params)

"""The simulated KSeF 2.0 service: routing, authentication, sessions, invoices, UPO, Latarnia
and the control API. Transport-neutral: ``SimulatorApp.handle(Request) -> Response``; the HTTP
server in ``server.py`` only moves bytes."""
import base64
import datetime
import hashlib
import hmac
import io
import json
import logging
import random
import re
import secrets
import tarfile
import threading
import time
import zipfile
import zoneinfo

from lxml import etree

from .. import crypto, safehttp
from .. import upo as upo_xml
from ..ksef_number import crc8, make_ksef_number
from . import control_secret
from . import keys as mf_keys
from . import script as outage_script
from .collective import CollectiveIdentifiersMixin
from .certificates_api import CertificatesApiMixin
from .invoices import InvoiceInspector, default_shared_dir
from .ratelimit import RateLimiter
from .received import ReceivedInvoicesMixin, invoice_parties
from .wire import (ApiError, ProblemError, Response, json_response, too_many_requests, utc_iso,
                   validation_error, xml_response)

WARSAW = zoneinfo.ZoneInfo("Europe/Warsaw")
_logger = logging.getLogger("ksef.simulator")

FA3_FORM = {"systemCode": "FA (3)", "schemaVersion": "1-0E", "value": "FA"}
MAX_INVOICES_PER_SESSION = 10000
MAX_INVOICE_SIZE = 1000000
MAX_INVOICE_WITH_ATTACHMENT_SIZE = 3000000
MAX_BATCH_PARTS = 50
MAX_BATCH_PART_SIZE = 100000000          # before encryption; PKCS#7 adds at most one block
MAX_BATCH_PACKAGE_SIZE = 5 * 1000 ** 3
CHALLENGE_LIFETIME = 600.0
ONLINE_SESSION_LIFETIME = 12 * 3600.0
BATCH_UPLOAD_TIME_PER_PART = 20 * 60.0
AUTH_TOKEN_LIFETIME = 30 * 60.0
REFRESH_TOKEN_LIFETIME = 7 * 24 * 3600.0
DOWNLOAD_URL_LIFETIME = 3 * 24 * 3600.0
UPO_PAGE_SIZE = upo_xml.MAX_DOCUMENTS_PER_PAGE

CONTEXT_TYPES = ("Nip", "InternalId", "NipVatUe", "PeppolId")
SESSION_STATUS_GROUPS = {
    "InProgress": (100, 150, 170),
    "Succeeded": (200,),
    "Failed": (405, 415, 420, 430, 435, 445, 500),
    "Cancelled": (440,),
}
INVOICE_STATUS = {
    100: "Faktura przyjęta do dalszego przetwarzania",
    150: "Trwa przetwarzanie",
    200: "Sukces",
    405: "Przetwarzanie anulowane z powodu błędu sesji",
    410: "Nieprawidłowy zakres uprawnień",
    415: "Brak możliwości wysyłania faktury z załącznikiem",
    430: "Błąd weryfikacji pliku faktury",
    435: "Błąd odszyfrowania pliku",
    440: "Duplikat faktury",
    450: "Błąd weryfikacji semantyki dokumentu faktury",
}
ONLINE_STATUS = {
    100: "Sesja interaktywna otwarta",
    170: "Sesja interaktywna zamknięta",
    200: "Sesja interaktywna przetworzona pomyślnie",
    415: "Błąd odszyfrowania dostarczonego klucza",
    440: "Sesja anulowana",
    445: "Błąd weryfikacji, brak poprawnych faktur",
}
BATCH_STATUS = {
    100: "Sesja wsadowa rozpoczęta",
    150: "Trwa przetwarzanie",
    200: "Sesja wsadowa przetworzona pomyślnie",
    405: "Błąd weryfikacji poprawności dostarczonych elementów paczki",
    415: "Błąd odszyfrowania dostarczonego klucza",
    420: "Przekroczony limit faktur w sesji",
    430: "Błąd dekompresji pierwotnego archiwum",
    435: "Błąd odszyfrowania zaszyfrowanych części archiwum",
    440: "Sesja anulowana",
    445: "Błąd weryfikacji, brak poprawnych faktur",
    500: "Nieznany błąd",
}
AUTH_STATUS = {
    100: "Uwierzytelnianie w toku",
    200: "Uwierzytelnianie zakończone sukcesem",
    415: "Uwierzytelnianie zakończone niepowodzeniem",
    450: "Uwierzytelnianie zakończone niepowodzeniem z powodu błędnego tokenu",
    460: "Uwierzytelnianie zakończone niepowodzeniem z powodu błędu certyfikatu",
}
LATARNIA_TYPES = ("FAILURE_START", "FAILURE_END", "MAINTENANCE_ANNOUNCEMENT")
LATARNIA_CATEGORIES = ("FAILURE", "TOTAL_FAILURE", "MAINTENANCE")

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
AUTH_NAMESPACES = {"http://ksef.mf.gov.pl/auth/token/2.0": "schemat_auth_v2-0.xsd",
                   "http://ksef.mf.gov.pl/auth/token/2.1": "schemat_auth_v2-1.xsd"}
OID_ORGANIZATION_IDENTIFIER = "2.5.4.97"

DEFAULT_FAULTS = {
    "down": False,              # every /v2 call (and uploads/downloads) fails
    "down_mode": "503",         # "503" or "close" (drop the connection without an answer)
    "error_ratio": 0.0,         # share of /v2 calls answered with a 5xx before any processing
    "error_statuses": [500, 502, 503],
    "seed": 0,
    "delay": 0.0,               # seconds added to every /v2 answer
    "stall_after_accept_seconds": 0.0,  # invoice send / batch close: store, then stall this long
    "stall_after_accept_count": 0,      # ... for this many requests
    "latarnia_down": False,     # /status and /messages answer 502
}


def _b64decode(value, field):
    if not isinstance(value, str):
        raise validation_error("Pole %s jest wymagane." % field)
    try:
        return base64.b64decode(value, validate=True)
    except (ValueError, TypeError):
        raise validation_error("Pole %s nie jest poprawnym Base64." % field)


def _require(data, field, kind=str):
    value = data.get(field)
    if value is None or not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise validation_error("Pole %s jest wymagane (%s)." % (field, kind.__name__))
    return value


def _parse_time(value, name):
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise validation_error("Parametr %s nie jest datą ISO 8601." % name)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def _warsaw_date(ts):
    return datetime.datetime.fromtimestamp(ts, WARSAW).date()


def _context_nip(context_type, context_value):
    """The NIP a context belongs to (``InternalId``/``NipVatUe`` start with it)."""
    if context_type in ("Nip", "InternalId", "NipVatUe"):
        return context_value.split("-")[0]
    return None


class SimulatorApp(CollectiveIdentifiersMixin, CertificatesApiMixin, ReceivedInvoicesMixin):
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
            if not self.store.one("SELECT id FROM mf_keys WHERE usage = ? AND active = 1", (usage,)):
                self._insert_key(mf_keys.new_key(usage))

    def _insert_key(self, row):
        self.store.run(
            "INSERT INTO mf_keys (private_key_pem, certificate_der, certificate_id, public_key_id, usage,"
            " valid_from, valid_to) VALUES (:private_key_pem, :certificate_der, :certificate_id,"
            " :public_key_id, :usage, :valid_from, :valid_to)", row)

    def _load_auth_schemas(self):
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

    def _resume_batches(self):
        """A batch closed just before a restart is processed again (its parts are stored)."""
        for row in self.store.all("SELECT reference FROM sessions WHERE kind = 'Batch' AND status_code = 150"):
            self._start_batch_worker(row["reference"])

    def now(self):
        return time.time() + self.config["clock_offset"]

    # ------------------------------------------------------------------ helpers
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

    def _keys(self, usage, public_key_id=None):
        """Active keys of ``usage``; with ``public_key_id``, that key or ApiError 21470."""
        rows = self.store.all("SELECT * FROM mf_keys WHERE active = 1 AND usage = ? ORDER BY id DESC", (usage,))
        if public_key_id is None:
            return rows
        chosen = [row for row in rows if row["public_key_id"] == public_key_id]
        if not chosen:
            raise ApiError(400, 21470,
                           "Przesłany identyfikator klucza jest nieznany lub wskazuje na wycofany klucz.",
                           ["Klucz o identyfikatorze %s nie jest wspierany." % public_key_id])
        return chosen

    def _rsa_decrypt(self, usage, public_key_id, ciphertext):
        for row in self._keys(usage, public_key_id):
            try:
                return crypto.rsa_oaep_decrypt(mf_keys.load_private_key(row["private_key_pem"]), ciphertext)
            except ValueError:
                continue
        return None

    def register_token(self, nip, token):
        existing = self.store.one("SELECT reference FROM ksef_tokens WHERE token = ?", (token,))
        if existing:
            self.store.run("UPDATE ksef_tokens SET nip = ?, revoked = 0 WHERE token = ?", (nip, token))
            return existing["reference"]
        reference = self.reference("EC")
        self.store.run("INSERT INTO ksef_tokens (token, nip, reference) VALUES (?, ?, ?)", (token, nip, reference))
        return reference

    # ------------------------------------------------------------------ routing
    def _build_routes(self):
        table = [
            # method, pattern, handler, auth: None | "auth" | "access" | "refresh" | "signed" | "control"
            ("POST", r"/v2/auth/challenge", self.auth_challenge, None),
            ("POST", r"/v2/auth/ksef-token", self.auth_ksef_token, None),
            ("POST", r"/v2/auth/xades-signature", self.auth_xades, None),
            ("POST", r"/v2/auth/token/redeem", self.auth_redeem, "auth"),
            ("POST", r"/v2/auth/token/refresh", self.auth_refresh, "refresh"),
            ("GET", r"/v2/auth/(?P<ref>[^/]+)", self.auth_status, "auth"),
            ("GET", r"/v2/security/public-key-certificates", self.public_keys, None),
            ("POST", r"/v2/sessions/online", self.online_open, "access"),
            ("POST", r"/v2/sessions/online/(?P<ref>[^/]+)/invoices", self.online_send, "access"),
            ("POST", r"/v2/sessions/online/(?P<ref>[^/]+)/close", self.online_close, "access"),
            ("POST", r"/v2/sessions/batch", self.batch_open, "access"),
            ("POST", r"/v2/sessions/batch/(?P<ref>[^/]+)/close", self.batch_close, "access"),
            ("GET", r"/v2/sessions", self.session_list, "access"),
            ("GET", r"/v2/sessions/(?P<ref>[^/]+)", self.session_status, "access"),
            ("GET", r"/v2/sessions/(?P<ref>[^/]+)/invoices", self.session_invoices, "access"),
            ("GET", r"/v2/sessions/(?P<ref>[^/]+)/invoices/failed", self.session_failed_invoices, "access"),
            ("GET", r"/v2/sessions/(?P<ref>[^/]+)/invoices/ksef/(?P<ksef>[^/]+)/upo", self.invoice_upo_by_ksef, "access"),
            ("GET", r"/v2/sessions/(?P<ref>[^/]+)/invoices/(?P<inv>[^/]+)/upo", self.invoice_upo, "access"),
            ("GET", r"/v2/sessions/(?P<ref>[^/]+)/invoices/(?P<inv>[^/]+)", self.invoice_status, "access"),
            ("GET", r"/v2/sessions/(?P<ref>[^/]+)/upo/(?P<upo>[^/]+)", self.session_upo, "access"),
            ("GET", r"/v2/invoices/ksef/(?P<ksef>[^/]+)", self.invoice_download, "access"),
            ("PUT", r"/upload/(?P<ref>[^/]+)/(?P<part>\d+)", self.batch_upload, "signed"),
            ("GET", r"/storage/invoice-upo/(?P<ref>[^/]+)/(?P<inv>[^/]+)", self.storage_invoice_upo, "signed"),
            ("GET", r"/storage/session-upo/(?P<ref>[^/]+)/(?P<upo>[^/]+)", self.storage_session_upo, "signed"),
            ("GET", r"/status", self.latarnia_status, "latarnia"),
            ("GET", r"/messages", self.latarnia_messages, "latarnia"),
            ("GET", r"/_control/health", self.control_health, "control"),
            ("GET", r"/_control/counters", self.control_counters, "control"),
            ("GET", r"/_control/faults", self.control_get_faults, "control"),
            ("POST", r"/_control/faults", self.control_faults, "control"),
            ("POST", r"/_control/faults/clear", self.control_faults_clear, "control"),
            ("POST", r"/_control/reset", self.control_reset, "control"),
            ("POST", r"/_control/tokens", self.control_tokens, "control"),
            ("POST", r"/_control/rate-limits", self.control_rate_limits, "control"),
            ("POST", r"/_control/expire", self.control_expire, "control"),
            ("POST", r"/_control/keys/rotate", self.control_rotate_keys, "control"),
            ("GET", r"/_control/config", self.control_get_config, "control"),
            ("POST", r"/_control/config", self.control_config, "control"),
            ("POST", r"/_control/latarnia", self.control_latarnia, "control"),
            ("POST", r"/_control/latarnia/clear", self.control_latarnia_clear, "control"),
            ("GET", r"/_control/script", self.control_get_script, "control"),
            ("POST", r"/_control/script", self.control_set_script, "control"),
            ("POST", r"/_control/script/advance", self.control_advance_script, "control"),
            ("POST", r"/_control/script/clear", self.control_clear_script, "control"),
            *self.collective_routes(),
        ] + self.certificate_routes()
        table += self._received_routes()
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
        elif auth == "access":
            request.auth = self.read_jwt(request, "access")
            context = request.auth["ctx"]["value"]
        elif auth == "refresh":
            request.auth = self.read_jwt(request, "refresh")
            context = request.auth["ctx"]["value"]
        elif auth == "signed":
            self.check_signed(request)
        if auth in (None, "auth", "access", "refresh"):
            limited = self.limiter.check(request.method, request.path[3:], context, request.client_ip)
            if limited:
                return too_many_requests(request, *limited)
        return handler(request, **params)

    def _apply_faults(self, request, auth):
        with self.fault_lock:
            faults = dict(self.faults)
            failing = (request.path.startswith("/v2/") and faults["error_ratio"] > 0
                       and self.fault_rng.random() < faults["error_ratio"])
            error_status = self.fault_rng.choice(faults["error_statuses"]) if failing else None
        if faults["down"]:
            if faults["down_mode"] == "close":
                response = Response(503)
                response.drop_connection = True
                return response
            return json_response(503, {"status": {"code": 503, "description": "Service Unavailable",
                                                  "details": ["KSeF jest niedostępny (symulacja)."]}},
                                 {"Retry-After": "30"})
        if faults["delay"] and request.path.startswith("/v2/"):
            time.sleep(faults["delay"])
        if error_status:
            return json_response(error_status, {"status": {"code": error_status, "description": "Server Error",
                                                           "details": ["Błąd serwera (symulacja)."]}})
        return None

    def _take_stall(self):
        with self.fault_lock:
            if self.faults["stall_after_accept_count"] > 0 and self.faults["stall_after_accept_seconds"] > 0:
                self.faults["stall_after_accept_count"] -= 1
                return self.faults["stall_after_accept_seconds"]
        return 0.0

    # ------------------------------------------------------------------ authentication
    def auth_challenge(self, request):
        now = self.now()
        challenge = self.reference("CR", now)
        timestamp_ms = int(now * 1000)
        self.store.run("INSERT INTO challenges (challenge, timestamp_ms, client_ip) VALUES (?, ?, ?)",
                       (challenge, timestamp_ms, request.client_ip))
        return json_response(200, {"challenge": challenge, "timestamp": utc_iso(timestamp_ms / 1000.0),
                                   "timestampMs": timestamp_ms, "clientIp": request.client_ip})

    def _take_challenge(self, challenge):
        with self.store.lock:
            row = self.store.one("SELECT * FROM challenges WHERE challenge = ?", (challenge,))
            if row is None:
                raise ApiError(400, 21111, "Nieprawidłowe wyzwanie autoryzacyjne.",
                               ["Wyzwanie %s nie istnieje lub zostało już użyte." % challenge])
            self.store.run("DELETE FROM challenges WHERE challenge = ?", (challenge,))
        return row

    def _new_auth_operation(self, context_type, context_value, method, method_info, outcome,
                            token_reference=None, document_hash=None):
        now = self.now()
        reference = self.reference("AU", now)
        token, valid_until = self.make_jwt("auth", reference, context_type, context_value, AUTH_TOKEN_LIFETIME)
        code, details = outcome
        self.store.run(
            "INSERT INTO auth_operations (reference, authentication_token, authentication_token_valid_until,"
            " context_type, context_value, method, method_info, start_date, ready_at, status_code,"
            " status_description, status_details, token_reference, document_hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (reference, token, valid_until, context_type, context_value, method, json.dumps(method_info),
             utc_iso(now), now + self.config["processing_delay"], code, AUTH_STATUS[code],
             json.dumps(details) if details else None, token_reference, document_hash))
        return json_response(202, {"referenceNumber": reference,
                                   "authenticationToken": {"token": token, "validUntil": utc_iso(valid_until)}})

    def _read_context_identifier(self, value):
        if not isinstance(value, dict) or value.get("type") not in CONTEXT_TYPES or not isinstance(value.get("value"), str):
            raise validation_error("contextIdentifier: wymagane type (%s) i value." % "|".join(CONTEXT_TYPES))
        return value["type"], value["value"]

    def auth_ksef_token(self, request):
        data = request.json()
        challenge = _require(data, "challenge")
        context_type, context_value = self._read_context_identifier(data.get("contextIdentifier"))
        encrypted = _b64decode(data.get("encryptedToken"), "encryptedToken")
        public_key_id = data.get("publicKeyId")
        self._keys(mf_keys.KSEF_TOKEN_ENCRYPTION, public_key_id)  # 21470 before anything else
        row = self._take_challenge(challenge)
        outcome = (200, None)
        token_reference = None
        plain = self._rsa_decrypt(mf_keys.KSEF_TOKEN_ENCRYPTION, public_key_id, encrypted)
        if self.now() * 1000 - row["timestamp_ms"] > CHALLENGE_LIFETIME * 1000:
            outcome = (450, ["Nieprawidłowe wyzwanie autoryzacyjne."])
        elif plain is None or b"|" not in plain:
            outcome = (450, ["Nieprawidłowy token."])
        else:
            token, _, timestamp = plain.decode("utf-8", "replace").rpartition("|")
            registered = self.store.one("SELECT * FROM ksef_tokens WHERE token = ?", (token,))
            if timestamp != str(row["timestamp_ms"]):
                outcome = (450, ["Nieprawidłowy czas tokena."])
            elif registered is None:
                outcome = (450, ["Nieprawidłowy token."])
            elif registered["revoked"]:
                outcome = (450, ["Token unieważniony."])
            elif registered["nip"] != _context_nip(context_type, context_value):
                outcome = (415, ["Brak przypisanych uprawnień."])
            else:
                token_reference = registered["reference"]
        return self._new_auth_operation(
            context_type, context_value, "Token",
            {"category": "Token", "code": "token.ksef", "displayName": "Token KSeF"},
            outcome, token_reference=token_reference or self.reference("EC"))

    def auth_xades(self, request):
        body = request.body
        try:
            root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.XMLSyntaxError as exc:
            raise ApiError(400, 21001, "Nieczytelna treść.", [str(exc)])
        signatures = root.findall(".//{%s}Signature" % DS_NS)
        if not signatures:
            raise ApiError(400, 9102, "Brak podpisu.")
        if len(signatures) > 1:
            raise ApiError(400, 9103, "Przekroczona liczba dozwolonych podpisów.")
        namespace = root.tag[1:].split("}")[0] if root.tag.startswith("{") else ""
        if etree.QName(root).localname != "AuthTokenRequest" or namespace not in AUTH_NAMESPACES:
            raise ApiError(400, 9101, "Nieprawidłowy dokument.", ["Oczekiwano AuthTokenRequest (%s)."
                                                                  % ", ".join(AUTH_NAMESPACES)])
        schema = self.auth_schemas.get(namespace)
        if schema is not None:
            unsigned = etree.fromstring(body, safehttp.xml_parser())   # entities off: never echo a local file
            for signature in unsigned.findall(".//{%s}Signature" % DS_NS):
                signature.getparent().remove(signature)
            if not schema.validate(unsigned):
                raise ApiError(400, 21401, "Dokument nie jest zgodny ze schemą (xsd).",
                               [str(error) for error in list(schema.error_log)[:10]])
        try:
            from .. import xades
        except ImportError:
            raise ApiError(400, 9105, "Nieprawidłowy podpis.", ["ksef.xades is not available in this build."])
        try:
            certificate = xades.verify_signed_xml(body)
        except xades.XadesError as exc:
            raise ApiError(400, 9105, "Nieprawidłowy podpis.", [str(exc)])
        ns = {"a": namespace}
        challenge = root.findtext("a:Challenge", namespaces=ns)
        context = root.find("a:ContextIdentifier", ns)
        context_node = context[0] if context is not None and len(context) else None
        if context_node is None:
            raise ApiError(400, 21117, "Nieprawidłowy identyfikator podmiotu dla wskazanego typu kontekstu.")
        context_type = etree.QName(context_node).localname
        context_value = (context_node.text or "").strip()
        row = self._take_challenge(challenge)
        self.remember_auth_certificate(crypto.sha256_b64(body), certificate)
        return self._new_auth_operation(
            context_type, context_value, *self._xades_method(certificate),
            self._xades_outcome(certificate, row, context_type, context_value),
            document_hash=crypto.sha256_b64(body))

    @staticmethod
    def _subject_attributes(certificate):
        values = {}
        for attribute in certificate.subject:
            values.setdefault(attribute.oid.dotted_string, attribute.value)
        return values

    def _xades_method(self, certificate):
        subject = self._subject_attributes(certificate)
        common_name = subject.get("2.5.4.3", "")
        if common_name.endswith("(uwierzytelnienie)") or common_name.endswith("(offline)"):
            return "InternalCertificate", {"category": "XadesSignature", "code": "cert.internal",
                                           "displayName": "Certyfikat KSeF"}
        if OID_ORGANIZATION_IDENTIFIER in subject:
            return "QualifiedSeal", {"category": "XadesSignature", "code": "seal.qualified",
                                     "displayName": "Pieczęć kwalifikowana"}
        return "QualifiedSignature", {"category": "XadesSignature", "code": "sig.qualified",
                                      "displayName": "Podpis kwalifikowany"}

    def _xades_outcome(self, certificate, challenge_row, context_type, context_value):
        from cryptography import x509
        now = datetime.datetime.utcfromtimestamp(self.now())
        if self.now() * 1000 - challenge_row["timestamp_ms"] > CHALLENGE_LIFETIME * 1000:
            return 450, ["Nieprawidłowe wyzwanie autoryzacyjne."]
        if not certificate.not_valid_before <= now <= certificate.not_valid_after:
            return 460, ["Nieważny certyfikat."]
        try:
            usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
            if usage.content_commitment and not usage.digital_signature:
                return 460, ["Niepoprawny certyfikat.",
                             "Certyfikat typu Offline (niezaprzeczalność) nie służy do uwierzytelnienia."]
        except x509.ExtensionNotFound:
            pass
        refusal = self.ksef_certificate_login_refusal(certificate)
        if refusal:
            return 460, refusal
        subject = self._subject_attributes(certificate)
        nips = set()
        for oid, prefix in ((OID_ORGANIZATION_IDENTIFIER, "VATPL-"), ("2.5.4.5", "TINPL-")):
            value = subject.get(oid, "")
            if value.startswith(prefix):
                nips.add(value[len(prefix):])
        if _context_nip(context_type, context_value) not in nips:
            return 415, ["Brak przypisanych uprawnień."]
        return 200, None

    def _auth_operation_from_token(self, request):
        authorization = request.header("Authorization") or ""
        token = authorization[7:].strip() if authorization.startswith("Bearer ") else ""
        if not token:
            raise ProblemError(401, "Wymagane jest uwierzytelnienie.")
        row = self.store.one("SELECT * FROM auth_operations WHERE authentication_token = ?", (token,))
        if row is None:
            raise ProblemError(401, "Nieprawidłowy token uwierzytelniania.")
        if row["authentication_token_valid_until"] <= self.now():
            raise ProblemError(401, "Token uwierzytelniania wygasł.")
        return dict(row)

    def _auth_view(self, row):
        if self.now() < row["ready_at"]:
            code, details = 100, None
        else:
            code, details = row["status_code"], json.loads(row["status_details"]) if row["status_details"] else None
        return code, details

    def auth_status(self, request, ref):
        row = request.auth
        if row["reference"] != ref:
            raise ApiError(400, 21304, "Brak uwierzytelnienia.",
                           ["Operacja uwierzytelniania o numerze referencyjnym %s nie została znaleziona." % ref])
        code, details = self._auth_view(row)
        status = {"code": code, "description": AUTH_STATUS[code]}
        if details:
            status["details"] = details
        return json_response(200, {
            "startDate": row["start_date"],
            "authenticationMethod": row["method"],
            "authenticationMethodInfo": json.loads(row["method_info"]),
            "status": status,
            "isTokenRedeemed": bool(row["redeemed"]),
            "lastTokenRefreshDate": row["last_refresh"],
            "refreshTokenValidUntil": utc_iso(row["refresh_valid_until"]) if row["refresh_valid_until"] else None,
        })

    def auth_redeem(self, request):
        row = request.auth
        code, _ = self._auth_view(row)
        with self.store.lock:
            current = self.store.one("SELECT redeemed FROM auth_operations WHERE reference = ?", (row["reference"],))
            if current["redeemed"]:
                raise ApiError(400, 21301, "Brak autoryzacji.",
                               ["Tokeny dla operacji uwierzytelniania %s zostały już pobrane." % row["reference"]])
            if code != 200:
                raise ApiError(400, 21301, "Brak autoryzacji.",
                               ["Status uwierzytelniania (%d) nie pozwala na pobranie tokenów." % code])
            access, access_until = self.make_jwt("access", row["reference"], row["context_type"],
                                                 row["context_value"], self.config["access_token_ttl"])
            refresh, refresh_until = self.make_jwt("refresh", row["reference"], row["context_type"],
                                                   row["context_value"], REFRESH_TOKEN_LIFETIME)
            self.store.run("UPDATE auth_operations SET redeemed = 1, refresh_token = ?, refresh_valid_until = ?"
                           " WHERE reference = ?", (refresh, refresh_until, row["reference"]))
        return json_response(200, {"accessToken": {"token": access, "validUntil": utc_iso(access_until)},
                                   "refreshToken": {"token": refresh, "validUntil": utc_iso(refresh_until)}})

    def auth_refresh(self, request):
        row = self.store.one("SELECT * FROM auth_operations WHERE refresh_token = ?", (request.auth["token"],))
        if row is None:
            raise ApiError(400, 21304, "Brak uwierzytelnienia.",
                           ["Operacja uwierzytelniania dla tego tokenu nie została znaleziona."])
        access, access_until = self.make_jwt("access", row["reference"], row["context_type"],
                                             row["context_value"], self.config["access_token_ttl"])
        self.store.run("UPDATE auth_operations SET last_refresh = ? WHERE reference = ?",
                       (utc_iso(self.now()), row["reference"]))
        return json_response(200, {"accessToken": {"token": access, "validUntil": utc_iso(access_until)}})

    def public_keys(self, request):
        rows = self.store.all("SELECT * FROM mf_keys WHERE active = 1 ORDER BY id")
        return json_response(200, [{
            "certificate": crypto.b64(bytes(row["certificate_der"])),
            "certificateId": row["certificate_id"],
            "publicKeyId": row["public_key_id"],
            "validFrom": row["valid_from"],
            "validTo": row["valid_to"],
            "usage": [row["usage"]],
        } for row in rows])

    # ------------------------------------------------------------------ sessions: common
    def _read_form_code(self, data):
        form = data.get("formCode")
        if not isinstance(form, dict) or any(not isinstance(form.get(k), str) for k in FA3_FORM):
            raise validation_error("formCode: wymagane systemCode, schemaVersion i value.")
        if {k: form[k] for k in FA3_FORM} != FA3_FORM:
            raise validation_error("Symulator obsługuje tylko formularz FA (3) 1-0E FA, otrzymano %s %s %s."
                                   % (form["systemCode"], form["schemaVersion"], form["value"]))
        return form

    def _unwrap_session_key(self, data):
        """(aes_key, iv, key_error) from ``encryption``; 21470 on an unknown publicKeyId."""
        encryption = data.get("encryption")
        if not isinstance(encryption, dict):
            raise validation_error("Pole encryption jest wymagane.")
        wrapped = _b64decode(encryption.get("encryptedSymmetricKey"), "encryption.encryptedSymmetricKey")
        iv = _b64decode(encryption.get("initializationVector"), "encryption.initializationVector")
        if len(iv) != 16:
            raise validation_error("initializationVector musi mieć 16 bajtów.")
        key = self._rsa_decrypt(mf_keys.SYMMETRIC_KEY_ENCRYPTION, encryption.get("publicKeyId"), wrapped)
        if key is None or len(key) != 32:
            return None, iv, 1
        return key, iv, 0

    def _session(self, request, ref, kind=None):
        row = self.store.one("SELECT * FROM sessions WHERE reference = ?", (ref,))
        if row is None or row["context_value"] != request.auth["ctx"]["value"] or (kind and row["kind"] != kind):
            raise ApiError(400, 21173, "Brak sesji o wskazanym numerze referencyjnym.",
                           ["Sesja o numerze referencyjnym %s nie została znaleziona." % ref])
        return self._refresh_session(row)

    def _set_session_status(self, db, ref, code, details=None, **fields):
        kind = db.execute("SELECT kind FROM sessions WHERE reference = ?", (ref,)).fetchone()["kind"]
        description = (ONLINE_STATUS if kind == "Online" else BATCH_STATUS)[code]
        assignments = ["status_code = ?", "status_description = ?", "status_details = ?", "updated = ?"]
        values = [code, description, json.dumps(details) if details else None, utc_iso(self.now())]
        for name, value in fields.items():
            assignments.append("%s = ?" % name)
            values.append(value)
        db.execute("UPDATE sessions SET %s WHERE reference = ?" % ", ".join(assignments), values + [ref])

    def _refresh_session(self, row):
        """Apply what time alone changes: expiry, and the end of an online session's processing."""
        now = self.now()
        ref = row["reference"]
        changed = False
        with self.store.transaction() as db:
            row = db.execute("SELECT * FROM sessions WHERE reference = ?", (ref,)).fetchone()
            if row["status_code"] == 100 and now >= row["valid_until_ts"]:
                if row["kind"] == "Online":
                    self._close_online(db, row)
                else:
                    self._set_session_status(db, ref, 440, ["Przekroczono czas wysyłki"], closed=utc_iso(now))
                changed = True
                row = db.execute("SELECT * FROM sessions WHERE reference = ?", (ref,)).fetchone()
            if row["kind"] == "Online" and row["status_code"] == 170 and now >= row["final_at"]:
                self._finish_session(db, ref, row["invoice_count"], online=True)
                changed = True
            if changed:
                row = db.execute("SELECT * FROM sessions WHERE reference = ?", (ref,)).fetchone()
        return row

    def _close_online(self, db, row):
        latest = db.execute("SELECT MAX(ready_at) AS r FROM invoices WHERE session_reference = ?",
                            (row["reference"],)).fetchone()["r"] or 0
        now = self.now()
        self._set_session_status(db, row["reference"], 170, closed=utc_iso(now),
                                 final_at=max(now, latest) + self.config["processing_delay"])

    def _finish_session(self, db, ref, invoice_count, online):
        successful = db.execute("SELECT COUNT(*) AS n FROM invoices WHERE session_reference = ? AND status_code = 200",
                                (ref,)).fetchone()["n"]
        if invoice_count == 0:
            self._set_session_status(db, ref, 440, ["Nie przesłano faktur"])
        elif successful == 0:
            self._set_session_status(db, ref, 445)
        else:
            self._set_session_status(db, ref, 200)
            for page in upo_xml.page_ranges(successful, UPO_PAGE_SIZE):
                db.execute("INSERT INTO session_upo_pages (reference, session_reference, page) VALUES (?, ?, ?)",
                           (self.reference("EU"), ref, page.page))

    # ------------------------------------------------------------------ online sessions
    def online_open(self, request):
        data = request.json()
        form = self._read_form_code(data)
        key, iv, key_error = self._unwrap_session_key(data)
        now = self.now()
        ref = self.reference("SO", now)
        valid_until = now + ONLINE_SESSION_LIFETIME
        ctx = request.auth["ctx"]
        code = 415 if key_error else 100
        self.store.run(
            "INSERT INTO sessions (reference, kind, context_type, context_value, auth_reference, form_code, created,"
            " created_ts, updated, valid_until, valid_until_ts, status_code, status_description, aes_key, iv,"
            " key_error) VALUES (?, 'Online', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ref, ctx["type"], ctx["value"], request.auth["sub"], json.dumps(form), utc_iso(now), now, utc_iso(now),
             utc_iso(valid_until), valid_until, code, ONLINE_STATUS[code], key, iv, key_error))
        return json_response(201, {"referenceNumber": ref, "validUntil": utc_iso(valid_until)})

    def online_send(self, request, ref):
        session = self._session(request, ref, "Online")
        data = request.json()
        invoice_hash = _require(data, "invoiceHash")
        invoice_size = _require(data, "invoiceSize", int)
        encrypted_hash = _require(data, "encryptedInvoiceHash")
        encrypted_size = _require(data, "encryptedInvoiceSize", int)
        content = _b64decode(data.get("encryptedInvoiceContent"), "encryptedInvoiceContent")
        offline_mode = data.get("offlineMode", False)
        corrected = data.get("hashOfCorrectedInvoice")
        if not isinstance(offline_mode, bool):
            raise validation_error("offlineMode musi być wartością logiczną.")
        for field, value in (("invoiceHash", invoice_hash), ("encryptedInvoiceHash", encrypted_hash),
                             ("hashOfCorrectedInvoice", corrected)):
            if value is not None and (not isinstance(value, str) or len(value) != 44):
                raise validation_error("%s: oczekiwano SHA-256 w Base64 (44 znaki)." % field)
        if corrected is not None and not offline_mode:
            raise validation_error("Korekta techniczna (hashOfCorrectedInvoice) wymaga offlineMode = true.")
        if session["status_code"] != 100:
            raise ApiError(400, 21180, "Status sesji nie pozwala na wykonanie operacji.",
                           ["Status sesji %d uniemożliwia wysyłkę faktur." % session["status_code"]])
        limit = int(self.config["max_invoices_per_session"])
        if session["invoice_count"] >= limit:
            raise ApiError(400, 21155, "Przekroczono dozwoloną liczbę faktur w sesji.",
                           ["Sesja o numerze referencyjnym %s osiągnęła dozwolony limit liczby faktur %d."
                            % (ref, limit)])
        if encrypted_size != len(content):
            raise ApiError(400, 21402, "Nieprawidłowy rozmiar pliku.",
                           ["Długość treści nie zgadza się z rozmiarem pliku (zaszyfrowana faktura)."])
        if encrypted_hash != crypto.sha256_b64(content):
            raise ApiError(400, 21403, "Nieprawidłowy skrót pliku.",
                           ["Skrót treści nie zgadza się ze skrótem pliku (zaszyfrowana faktura)."])
        try:
            plaintext = crypto.aes_decrypt(content, bytes(session["aes_key"]), bytes(session["iv"]))
        except ValueError:
            plaintext = None
        if plaintext is not None:
            if invoice_size != len(plaintext):
                raise ApiError(400, 21402, "Nieprawidłowy rozmiar pliku.",
                               ["Długość treści nie zgadza się z rozmiarem pliku (faktura)."])
            if invoice_hash != crypto.sha256_b64(plaintext):
                raise ApiError(400, 21403, "Nieprawidłowy skrót pliku.",
                               ["Skrót treści nie zgadza się ze skrótem pliku (faktura)."])
        facts = self.inspector.inspect(plaintext) if plaintext is not None else None
        now = self.now()
        with self.store.transaction() as db:
            if corrected is not None:
                seller = (facts.seller_nip if facts and facts.seller_nip
                          else _context_nip(session["context_type"], session["context_value"]))
                self._check_technical_correction(db, corrected, seller)
            count = db.execute("SELECT invoice_count FROM sessions WHERE reference = ?", (ref,)).fetchone()[0]
            if count >= limit:
                raise ApiError(400, 21155, "Przekroczono dozwoloną liczbę faktur w sesji.",
                               ["Sesja o numerze referencyjnym %s osiągnęła dozwolony limit liczby faktur %d."
                                % (ref, limit)])
            invoice_ref = self.reference("EE", now)
            if plaintext is None:
                result = self._rejected(435, ["Nie udało się odszyfrować faktury kluczem sesji."])
            else:
                result = self._evaluate(db, session, facts, len(plaintext), offline_mode, now, online=True,
                                        corrected=corrected, pending={})
            row = self._invoice_row(invoice_ref, ref, count + 1, invoice_hash, invoice_size, None, plaintext,
                                    now, now + self.config["processing_delay"], offline_mode, corrected, result)
            self._insert_invoices(db, [row])
            db.execute("UPDATE sessions SET invoice_count = invoice_count + 1, updated = ? WHERE reference = ?",
                       (utc_iso(now), ref))
        response = json_response(202, {"referenceNumber": invoice_ref})
        response.stall_seconds = self._take_stall()
        return response

    def _check_technical_correction(self, db, corrected_hash, seller):
        originals = db.execute("SELECT status_code FROM invoices WHERE invoice_hash = ? AND seller_nip IS ?",
                               (corrected_hash, seller)).fetchall()
        if not originals:
            originals = db.execute(
                "SELECT i.status_code FROM invoices i JOIN sessions s ON s.reference = i.session_reference"
                " WHERE i.invoice_hash = ? AND s.context_value LIKE ?", (corrected_hash, seller + "%")).fetchall()
        codes = [row["status_code"] for row in originals]
        if 200 in codes:
            raise ApiError(400, 21167, "Status faktury nie pozwala na korektę techniczną.",
                           ["Nie można wysłać korekty technicznej do prawidłowo przetworzonej faktury."])
        if not [code for code in codes if code >= 400 and code != 410]:
            raise ApiError(400, 21167, "Status faktury nie pozwala na korektę techniczną.",
                           ["Brak odrzuconej faktury o skrócie %s, którą można skorygować technicznie."
                            % corrected_hash])
        accepted = db.execute("SELECT COUNT(*) FROM invoices WHERE hash_of_corrected = ? AND status_code = 200",
                              (corrected_hash,)).fetchone()[0]
        if accepted:
            raise ApiError(400, 21166, "Korekta techniczna niedostępna.",
                           ["Faktura posiada już przetworzoną prawidłowo korektę techniczną."])

    @staticmethod
    def _rejected(code, details=None, extensions=None):
        return {"status_code": code, "details": details, "extensions": extensions}

    def _evaluate(self, db, session, facts, size, offline_mode, invoicing_ts, online, corrected, pending):
        """Decide the final status of one decrypted invoice; ``pending`` holds the duplicate keys
        accepted earlier in the same batch (not yet in the database)."""
        limit = MAX_INVOICE_WITH_ATTACHMENT_SIZE if facts.has_attachment else MAX_INVOICE_SIZE
        if size > limit:
            return self._rejected(430, ["Przekroczono dopuszczalny rozmiar faktury: %d B (limit %d B)." % (size, limit)])
        if facts.errors:
            return self._rejected(430, facts.errors)
        if facts.has_attachment and online and corrected is None:
            return self._rejected(415, ["Faktury z załącznikami można wysyłać tylko w sesji wsadowej."])
        context_nip = _context_nip(session["context_type"], session["context_value"])
        if facts.seller_nip != context_nip:
            return self._rejected(410, ["Brak uprawnień do wystawienia faktury sprzedawcy %s w kontekście %s."
                                        % (facts.seller_nip, session["context_value"])])
        try:
            issue_date = datetime.date.fromisoformat(facts.issue_date)
        except (TypeError, ValueError):
            return self._rejected(450, ["Nieprawidłowa data wystawienia P_1: %s." % facts.issue_date])
        if issue_date > _warsaw_date(self.now()):
            return self._rejected(450, ["Data wystawienia faktury (P_1 = %s) jest późniejsza niż data jej przyjęcia."
                                        % facts.issue_date])
        key = (facts.seller_nip, facts.invoice_kind, facts.invoice_number)
        original = pending.get(key)
        if original is None:
            found = db.execute("SELECT i.ksef_number, i.session_reference FROM invoices i WHERE seller_nip = ?"
                               " AND invoice_kind = ? AND invoice_number = ? AND status_code = 200 LIMIT 1",
                               key).fetchone()
            original = (found["ksef_number"], found["session_reference"]) if found else None
        if original is not None:
            return self._rejected(440, [
                "Duplikat faktury. Faktura o numerze KSeF: %s została już prawidłowo przesłana do systemu w sesji: %s"
                % original], {"originalSessionReferenceNumber": original[1], "originalKsefNumber": original[0]})
        sequence = self.store.get_meta("ksef_sequence", 0) + 1
        self.store.set_meta("ksef_sequence", sequence)
        ksef_number = make_ksef_number(facts.seller_nip, _warsaw_date(invoicing_ts),
                                       "%02X%010X" % (1 if online else 2, sequence))
        pending[key] = (ksef_number, session["reference"])
        offline = offline_mode or issue_date < _warsaw_date(invoicing_ts)
        return {"status_code": 200, "details": None, "extensions": None, "ksef_number": ksef_number,
                "mode": "Offline" if offline else "Online", "facts": facts}

    def _invoice_row(self, invoice_ref, session_ref, ordinal, invoice_hash, invoice_size, file_name, plaintext,
                     invoicing_ts, ready_at, offline_mode, corrected, result, facts=None):
        code = result["status_code"]
        facts = result.get("facts") or facts
        accepted = code == 200
        acquisition = max(ready_at - 0.001, invoicing_ts) if accepted else None
        return (
            invoice_ref, session_ref, ordinal, invoice_hash, invoice_size, file_name,
            facts.invoice_number if facts else None, facts.seller_nip if facts else None,
            facts.invoice_kind if facts else None, facts.issue_date if facts else None,
            result.get("ksef_number"), utc_iso(invoicing_ts),
            utc_iso(acquisition) if accepted else None, utc_iso(ready_at) if accepted else None,
            result.get("mode") or ("Offline" if offline_mode else "Online"), int(offline_mode), corrected,
            code, INVOICE_STATUS[code], json.dumps(result["details"]) if result["details"] else None,
            json.dumps(result["extensions"]) if result["extensions"] else None, invoicing_ts, ready_at,
            plaintext,
        )

    @staticmethod
    def _insert_invoices(db, rows):
        db.executemany(
            "INSERT INTO invoices (reference, session_reference, ordinal, invoice_hash, invoice_size, file_name,"
            " invoice_number, seller_nip, invoice_kind, issue_date, ksef_number, invoicing_date, acquisition_date,"
            " permanent_storage_date, invoicing_mode, offline_mode, hash_of_corrected, status_code,"
            " status_description, status_details, status_extensions, received_ts, ready_at, xml)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def online_close(self, request, ref):
        session = self._session(request, ref, "Online")
        with self.store.transaction() as db:
            current = db.execute("SELECT * FROM sessions WHERE reference = ?", (ref,)).fetchone()
            if current["status_code"] != 100:
                raise ApiError(400, 21180, "Status sesji nie pozwala na wykonanie operacji.",
                               ["Status sesji %d uniemożliwia jej zamknięcie." % session["status_code"]])
            self._close_online(db, current)
        return Response(204)

    # ------------------------------------------------------------------ batch sessions
    def batch_open(self, request):
        data = request.json()
        form = self._read_form_code(data)
        batch = data.get("batchFile")
        if not isinstance(batch, dict):
            raise validation_error("Pole batchFile jest wymagane.")
        file_size = _require(batch, "fileSize", int)
        file_hash = _require(batch, "fileHash")
        compression = batch.get("compressionType") or "Zip"
        if compression not in ("Zip", "TarGz"):
            raise validation_error("compressionType: dozwolone Zip lub TarGz.")
        if not 0 < file_size <= MAX_BATCH_PACKAGE_SIZE:
            raise validation_error("fileSize paczki musi mieścić się w 1..%d B." % MAX_BATCH_PACKAGE_SIZE)
        parts = batch.get("fileParts")
        if not isinstance(parts, list) or not parts:
            raise validation_error("fileParts: wymagana co najmniej jedna część.")
        if len(parts) > MAX_BATCH_PARTS:
            raise ApiError(400, 21161, "Przekroczono dozwoloną liczbę części pakietu.",
                           ["Zadeklarowano %d części, dozwolone %d." % (len(parts), MAX_BATCH_PARTS)])
        declared = []
        for part in parts:
            if not isinstance(part, dict):
                raise validation_error("fileParts: oczekiwano obiektów.")
            ordinal = _require(part, "ordinalNumber", int)
            size = _require(part, "fileSize", int)
            part_hash = _require(part, "fileHash")
            if not 0 < size <= MAX_BATCH_PART_SIZE + 16:
                raise ApiError(400, 21157, "Nieprawidłowy rozmiar części pakietu.",
                               ["Część %d: %d B, dozwolone do %d B przed zaszyfrowaniem."
                                % (ordinal, size, MAX_BATCH_PART_SIZE)])
            declared.append({"ordinalNumber": ordinal, "fileSize": size, "fileHash": part_hash})
        if sorted(p["ordinalNumber"] for p in declared) != list(range(1, len(declared) + 1)):
            raise validation_error("fileParts: numery części muszą być kolejnymi liczbami od 1.")
        offline_mode = data.get("offlineMode", False)
        if not isinstance(offline_mode, bool):
            raise validation_error("offlineMode musi być wartością logiczną.")
        key, iv, key_error = self._unwrap_session_key(data)
        now = self.now()
        ref = self.reference("SB", now)
        valid_until = now + BATCH_UPLOAD_TIME_PER_PART * len(declared)
        ctx = request.auth["ctx"]
        batch_info = {"fileSize": file_size, "fileHash": file_hash, "compressionType": compression,
                      "fileParts": sorted(declared, key=lambda p: p["ordinalNumber"])}
        self.store.run(
            "INSERT INTO sessions (reference, kind, context_type, context_value, auth_reference, form_code, created,"
            " created_ts, updated, valid_until, valid_until_ts, status_code, status_description, aes_key, iv,"
            " key_error, offline_mode, batch_file) VALUES (?, 'Batch', ?, ?, ?, ?, ?, ?, ?, ?, ?, 100, ?, ?, ?, ?, ?, ?)",
            (ref, ctx["type"], ctx["value"], request.auth["sub"], json.dumps(form), utc_iso(now), now, utc_iso(now),
             utc_iso(valid_until), valid_until, BATCH_STATUS[100], key, iv, key_error, int(offline_mode),
             json.dumps(batch_info)))
        uploads = []
        for part in batch_info["fileParts"]:
            url, _ = self.signed_url(request, "/upload/%s/%d" % (ref, part["ordinalNumber"]),
                                     BATCH_UPLOAD_TIME_PER_PART * len(declared))
            uploads.append({"ordinalNumber": part["ordinalNumber"], "method": "PUT", "url": url,
                            "headers": {"x-ms-blob-type": "BlockBlob"}})
        return json_response(201, {"referenceNumber": ref, "partUploadRequests": uploads})

    def batch_upload(self, request, ref, part):
        row = self.store.one("SELECT * FROM sessions WHERE reference = ? AND kind = 'Batch'", (ref,))
        if row is None:
            raise ProblemError(404, "Nie znaleziono sesji %s." % ref)
        row = self._refresh_session(row)
        if row["status_code"] != 100:
            raise ProblemError(403, "Sesja %s nie przyjmuje już części (status %d)." % (ref, row["status_code"]))
        ordinals = [p["ordinalNumber"] for p in json.loads(row["batch_file"])["fileParts"]]
        if int(part) not in ordinals:
            raise validation_error("Część %s nie została zadeklarowana." % part)
        self.store.run("INSERT INTO batch_parts (session_reference, ordinal, data) VALUES (?, ?, ?)"
                       " ON CONFLICT(session_reference, ordinal) DO UPDATE SET data = excluded.data",
                       (ref, int(part), request.body))
        return Response(201)

    def batch_close(self, request, ref):
        session = self._session(request, ref, "Batch")
        if session["status_code"] == 440:
            raise ApiError(400, 21208, "Czas oczekiwania na requesty upload lub finish został przekroczony.",
                           ["Sesja anulowana, przekroczony czas wysyłki."])
        if session["status_code"] != 100:
            raise ApiError(400, 21180, "Status sesji nie pozwala na wykonanie operacji.",
                           ["Status sesji %d uniemożliwia jej zamknięcie." % session["status_code"]])
        declared = json.loads(session["batch_file"])["fileParts"]
        sizes = {row["ordinal"]: row["size"] for row in self.store.all(
            "SELECT ordinal, LENGTH(data) AS size FROM batch_parts WHERE session_reference = ?", (ref,))}
        for part in declared:
            ordinal = part["ordinalNumber"]
            if ordinal not in sizes:
                raise ApiError(400, 21205, "Pakiet nie może być pusty.",
                               ["Nie przesłano zadeklarowanej '%d' części pliku." % ordinal])
            if sizes[ordinal] != part["fileSize"]:
                raise ApiError(400, 21157, "Nieprawidłowy rozmiar części pakietu.",
                               ["Zadeklarowany rozmiar części '%d' nie zgadza się z rzeczywistym." % ordinal])
        with self.store.transaction() as db:
            self._set_session_status(db, ref, 150, closed=utc_iso(self.now()))
        self._start_batch_worker(ref)
        response = Response(204)
        response.stall_seconds = self._take_stall()
        return response

    def _start_batch_worker(self, ref):
        worker = threading.Thread(target=self._process_batch, args=(ref,), name="batch-" + ref, daemon=True)
        self.workers = [w for w in self.workers if w.is_alive()] + [worker]
        worker.start()

    def _process_batch(self, ref):
        try:
            self._process_batch_inner(ref)
        except Exception as exc:  # the session must not stay "processing" forever
            with self.store.transaction() as db:
                self._set_session_status(db, ref, 500, ["Nieznany błąd (%s): %s" % (type(exc).__name__, exc)])

    def _fail_batch(self, ref, code, details=None):
        with self.store.transaction() as db:
            self._set_session_status(db, ref, code, details)

    def _process_batch_inner(self, ref):
        session = self.store.one("SELECT * FROM sessions WHERE reference = ?", (ref,))
        if session["key_error"]:
            return self._fail_batch(ref, 415)
        info = json.loads(session["batch_file"])
        parts = self.store.all("SELECT ordinal, data FROM batch_parts WHERE session_reference = ? ORDER BY ordinal",
                               (ref,))
        declared = {p["ordinalNumber"]: p for p in info["fileParts"]}
        plain_parts = []
        for part in parts:
            data = bytes(part["data"])
            if crypto.sha256_b64(data) != declared[part["ordinal"]]["fileHash"]:
                return self._fail_batch(ref, 405, ["Skrót części %d nie zgadza się z zadeklarowanym." % part["ordinal"]])
            try:
                plain_parts.append(crypto.aes_decrypt(data, bytes(session["aes_key"]), bytes(session["iv"])))
            except ValueError:
                return self._fail_batch(ref, 435, ["Nie udało się odszyfrować części %d." % part["ordinal"]])
        package = b"".join(plain_parts)
        if len(package) != info["fileSize"] or crypto.sha256_b64(package) != info["fileHash"]:
            return self._fail_batch(ref, 405, ["Rozmiar lub skrót paczki nie zgadza się z zadeklarowanym."])
        try:
            files = self._unpack(package, info["compressionType"])
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
            return self._fail_batch(ref, 430, [str(exc)])
        limit = int(self.config["max_invoices_per_session"])
        if len(files) > limit:
            return self._fail_batch(ref, 420, ["Paczka zawiera %d faktur, limit %d." % (len(files), limit)])
        schema = self.inspector.new_schema()
        inspected = [(name, content, self.inspector.inspect(content, schema)) for name, content in files]
        now = self.now()
        offline_mode = bool(session["offline_mode"])
        invoicing_ts = session["created_ts"]  # FACTS §1.5: batch invoicingDate = session opening
        with self.store.transaction() as db:
            pending = {}
            rows = []
            for ordinal, (name, content, facts) in enumerate(inspected, start=1):
                result = self._evaluate(db, session, facts, len(content), offline_mode, invoicing_ts,
                                        online=False, corrected=None, pending=pending)
                rows.append(self._invoice_row(self.reference("EE", now), ref, ordinal, crypto.sha256_b64(content),
                                              len(content), name[:128], content, invoicing_ts, now, offline_mode,
                                              None, result, facts))
            self._insert_invoices(db, rows)
            db.execute("UPDATE sessions SET invoice_count = ? WHERE reference = ?", (len(rows), ref))
            db.execute("DELETE FROM batch_parts WHERE session_reference = ?", (ref,))
            self._finish_session(db, ref, len(rows), online=False)

    @staticmethod
    def _unpack(package, compression):
        files = []
        if compression == "TarGz":
            with tarfile.open(fileobj=io.BytesIO(package), mode="r:gz") as archive:
                for member in archive.getmembers():
                    if member.isfile():
                        files.append((member.name, archive.extractfile(member).read()))
            return files
        with zipfile.ZipFile(io.BytesIO(package)) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    files.append((info.filename, archive.read(info)))
        return files

    # ------------------------------------------------------------------ session queries
    def _counts(self, ref):
        row = self.store.one(
            "SELECT SUM(CASE WHEN status_code = 200 AND ready_at <= ? THEN 1 ELSE 0 END) AS ok,"
            " SUM(CASE WHEN status_code >= 400 AND ready_at <= ? THEN 1 ELSE 0 END) AS failed"
            " FROM invoices WHERE session_reference = ?", (self.now(), self.now(), ref))
        return row["ok"] or 0, row["failed"] or 0

    def _session_status_obj(self, row):
        status = {"code": row["status_code"], "description": row["status_description"]}
        if row["status_details"]:
            status["details"] = json.loads(row["status_details"])
        return status

    def session_status(self, request, ref):
        row = self._session(request, ref)
        ok, failed = self._counts(ref)
        upo = None
        pages = self.store.all("SELECT reference FROM session_upo_pages WHERE session_reference = ? ORDER BY page",
                               (ref,))
        if pages:
            upo = {"pages": []}
            for page in pages:
                url, expires = self.signed_url(request, "/storage/session-upo/%s/%s" % (ref, page["reference"]),
                                               DOWNLOAD_URL_LIFETIME)
                upo["pages"].append({"referenceNumber": page["reference"], "downloadUrl": url,
                                     "downloadUrlExpirationDate": utc_iso(expires)})
        return json_response(200, {
            "status": self._session_status_obj(row),
            "dateCreated": row["created"],
            "dateUpdated": row["updated"],
            "validUntil": row["valid_until"],
            "upo": upo,
            "invoiceCount": row["invoice_count"],
            "successfulInvoiceCount": ok,
            "failedInvoiceCount": failed,
        })

    def _page(self, request):
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

    @staticmethod
    def _continuation(offset, size, returned, more):
        if not more:
            return None
        return base64.b64encode(json.dumps({"offset": offset + returned}).encode()).decode("ascii")

    def session_list(self, request):
        kind = request.arg("sessionType")
        if kind not in ("Online", "Batch"):
            raise validation_error("Parametr sessionType (Online|Batch) jest wymagany.")
        size, offset = self._page(request)
        sql = "SELECT * FROM sessions WHERE context_value = ? AND kind = ?"
        params = [request.auth["ctx"]["value"], kind]
        if request.arg("referenceNumber"):
            sql += " AND reference = ?"
            params.append(request.arg("referenceNumber"))
        rows = [self._refresh_session(row) for row in self.store.all(sql + " ORDER BY created_ts, reference", params)]
        filters = {}
        for name, column, bound in (("dateCreatedFrom", "created", ">="), ("dateCreatedTo", "created", "<="),
                                    ("dateClosedFrom", "closed", ">="), ("dateClosedTo", "closed", "<="),
                                    ("dateModifiedFrom", "updated", ">="), ("dateModifiedTo", "updated", "<=")):
            if request.arg(name):
                filters[(column, bound)] = _parse_time(request.arg(name), name)
        statuses = request.query.get("statuses", [])
        wanted = set()
        for status in statuses:
            if status not in SESSION_STATUS_GROUPS:
                raise validation_error("statuses: dozwolone %s." % ", ".join(SESSION_STATUS_GROUPS))
            wanted.update(SESSION_STATUS_GROUPS[status])

        def keep(row):
            if wanted and row["status_code"] not in wanted:
                return False
            for (column, bound), limit in filters.items():
                if row[column] is None:
                    return False
                value = _parse_time(row[column], column)
                if (bound == ">=" and value < limit) or (bound == "<=" and value > limit):
                    return False
            return True

        rows = [row for row in rows if keep(row)]
        chunk = rows[offset:offset + size]
        sessions = []
        for row in chunk:
            ok, failed = self._counts(row["reference"])
            sessions.append({"referenceNumber": row["reference"], "status": self._session_status_obj(row),
                             "dateCreated": row["created"], "dateUpdated": row["updated"],
                             "validUntil": row["valid_until"], "totalInvoiceCount": row["invoice_count"],
                             "successfulInvoiceCount": ok, "failedInvoiceCount": failed})
        token = self._continuation(offset, size, len(chunk), offset + len(chunk) < len(rows))
        return json_response(200, {"continuationToken": token, "sessions": sessions},
                             {"x-continuation-token": token} if token else None)

    def _invoice_view(self, request, row, session_ref):
        now = self.now()
        view = {
            "ordinalNumber": row["ordinal"],
            "invoiceNumber": row["invoice_number"],
            "ksefNumber": None,
            "referenceNumber": row["reference"],
            "invoiceHash": row["invoice_hash"],
            "invoiceFileName": row["file_name"],
            "acquisitionDate": None,
            "invoicingDate": row["invoicing_date"],
            "permanentStorageDate": None,
            "upoDownloadUrl": None,
            "upoDownloadUrlExpirationDate": None,
            "invoicingMode": None,
        }
        if now < row["ready_at"]:
            delay = self.config["processing_delay"]
            code = 100 if now < row["received_ts"] + delay / 2 else 150
            view["status"] = {"code": code, "description": INVOICE_STATUS[code]}
            return view
        status = {"code": row["status_code"], "description": row["status_description"]}
        if row["status_details"]:
            status["details"] = json.loads(row["status_details"])
        if row["status_extensions"]:
            status["extensions"] = json.loads(row["status_extensions"])
        view["status"] = status
        view["invoicingMode"] = row["invoicing_mode"]
        if row["status_code"] == 200:
            url, expires = self.signed_url(request, "/storage/invoice-upo/%s/%s" % (session_ref, row["reference"]),
                                           DOWNLOAD_URL_LIFETIME)
            view.update(ksefNumber=row["ksef_number"], acquisitionDate=row["acquisition_date"],
                        permanentStorageDate=row["permanent_storage_date"], upoDownloadUrl=url,
                        upoDownloadUrlExpirationDate=utc_iso(expires))
        return view

    _INVOICE_LIST_COLUMNS = ("reference, ordinal, invoice_number, ksef_number, invoice_hash, file_name, invoicing_date,"
                             " acquisition_date, permanent_storage_date, invoicing_mode, status_code,"
                             " status_description, status_details, status_extensions, received_ts, ready_at")

    def _invoice_list(self, request, ref, failed_only):
        self._session(request, ref)
        size, offset = self._page(request)
        sql = "SELECT %s FROM invoices WHERE session_reference = ?" % self._INVOICE_LIST_COLUMNS
        params = [ref]
        if failed_only:
            sql += " AND status_code >= 400 AND ready_at <= ?"
            params.append(self.now())
        rows = self.store.all(sql + " ORDER BY ordinal LIMIT ? OFFSET ?", params + [size + 1, offset])
        more = len(rows) > size
        rows = rows[:size]
        token = self._continuation(offset, size, len(rows), more)
        return json_response(200, {"continuationToken": token,
                                   "invoices": [self._invoice_view(request, row, ref) for row in rows]},
                             {"x-continuation-token": token} if token else None)

    def session_invoices(self, request, ref):
        return self._invoice_list(request, ref, failed_only=False)

    def session_failed_invoices(self, request, ref):
        return self._invoice_list(request, ref, failed_only=True)

    def _invoice(self, request, ref, invoice_ref):
        self._session(request, ref)
        row = self.store.one("SELECT %s FROM invoices WHERE session_reference = ? AND reference = ?"
                             % self._INVOICE_LIST_COLUMNS, (ref, invoice_ref))
        if row is None:
            raise ApiError(400, 21405, "Błąd walidacji danych wejściowych.",
                           ["Faktura o numerze referencyjnym %s nie istnieje w sesji %s." % (invoice_ref, ref)])
        return row

    def invoice_status(self, request, ref, inv):
        return json_response(200, self._invoice_view(request, self._invoice(request, ref, inv), ref))

    # ------------------------------------------------------------------ UPO
    def _auth_for_upo(self, session):
        auth = self.store.one("SELECT token_reference, document_hash FROM auth_operations WHERE reference = ?",
                              (session["auth_reference"],))
        if auth is None:
            return {"auth_token_reference": session["auth_reference"]}
        if auth["document_hash"]:
            return {"auth_document_hash": auth["document_hash"]}
        return {"auth_token_reference": auth["token_reference"]}

    @staticmethod
    def _upo_document(row):
        return upo_xml.UpoDocument(
            row["seller_nip"], row["ksef_number"], row["invoice_number"], row["issue_date"],
            datetime.datetime.fromisoformat(row["invoicing_date"]).astimezone(WARSAW),
            datetime.datetime.fromisoformat(row["acquisition_date"]).astimezone(WARSAW),
            row["invoice_hash"], row["invoicing_mode"])

    def _invoice_upo_bytes(self, session, row):
        if row is None or row["status_code"] != 200 or row["ready_at"] > self.now():
            return None
        return upo_xml.build_upo(session["reference"], session["context_type"], session["context_value"],
                                 [self._upo_document(row)], **self._auth_for_upo(session))

    @staticmethod
    def _upo_response(body):
        return xml_response(body, {"x-ms-meta-hash": crypto.sha256_b64(body)})

    _UPO_COLUMNS = ("seller_nip, ksef_number, invoice_number, issue_date, invoicing_date, acquisition_date,"
                    " invoice_hash, invoicing_mode, status_code, ready_at")

    def invoice_upo(self, request, ref, inv):
        session = self._session(request, ref)
        row = self.store.one("SELECT %s FROM invoices WHERE session_reference = ? AND reference = ?"
                             % self._UPO_COLUMNS, (ref, inv))
        body = self._invoice_upo_bytes(session, row)
        if body is None:
            raise ApiError(400, 21178, "Nie znaleziono UPO dla podanych kryteriów.",
                           ["UPO faktury %s w sesji %s nie zostało znalezione." % (inv, ref)])
        return self._upo_response(body)

    def invoice_upo_by_ksef(self, request, ref, ksef):
        session = self._session(request, ref)
        row = self.store.one("SELECT %s FROM invoices WHERE session_reference = ? AND ksef_number = ?"
                             % self._UPO_COLUMNS, (ref, ksef))
        body = self._invoice_upo_bytes(session, row)
        if body is None:
            raise ApiError(400, 21178, "Nie znaleziono UPO dla podanych kryteriów.",
                           ["UPO o numerze KSeF %s i numerze referencyjnym sesji %s nie zostało znalezione."
                            % (ksef, ref)])
        return self._upo_response(body)

    def _session_upo_bytes(self, session, upo_ref):
        page = self.store.one("SELECT page FROM session_upo_pages WHERE reference = ? AND session_reference = ?",
                              (upo_ref, session["reference"]))
        if page is None:
            return None
        rows = self.store.all("SELECT %s FROM invoices WHERE session_reference = ? AND status_code = 200"
                              " ORDER BY ordinal" % self._UPO_COLUMNS, (session["reference"],))
        pages = upo_xml.page_ranges(len(rows), UPO_PAGE_SIZE)
        info = pages[page["page"] - 1]
        documents = [self._upo_document(row) for row in rows[info.range_from - 1:info.range_to]]
        return upo_xml.build_upo(session["reference"], session["context_type"], session["context_value"],
                                 documents, page=info, **self._auth_for_upo(session))

    def session_upo(self, request, ref, upo):
        session = self._session(request, ref)
        body = self._session_upo_bytes(session, upo)
        if body is None:
            raise ApiError(400, 21178, "Nie znaleziono UPO dla podanych kryteriów.",
                           ["UPO o numerze referencyjnym %s dla sesji %s nie zostało znalezione." % (upo, ref)])
        return self._upo_response(body)

    def storage_invoice_upo(self, request, ref, inv):
        session = self.store.one("SELECT * FROM sessions WHERE reference = ?", (ref,))
        row = self.store.one("SELECT %s FROM invoices WHERE session_reference = ? AND reference = ?"
                             % self._UPO_COLUMNS, (ref, inv)) if session else None
        body = self._invoice_upo_bytes(session, row) if session else None
        if body is None:
            raise ProblemError(404, "Nie znaleziono UPO.")
        return self._upo_response(body)

    def storage_session_upo(self, request, ref, upo):
        session = self.store.one("SELECT * FROM sessions WHERE reference = ?", (ref,))
        body = self._session_upo_bytes(session, upo) if session else None
        if body is None:
            raise ProblemError(404, "Nie znaleziono UPO.")
        return self._upo_response(body)

    def invoice_download(self, request, ksef):
        row = self.store.one("SELECT xml, seller_nip, ready_at FROM invoices WHERE ksef_number = ? AND status_code = 200",
                             (ksef,))
        context_nip = _context_nip(request.auth["ctx"]["type"], request.auth["ctx"]["value"])
        # the seller or the buyer (Podmiot2) of the invoice may download it
        if row is None or context_nip not in (row["seller_nip"], invoice_parties(row["xml"]).get("buyer_nip")):
            raise ApiError(400, 21164, "Faktura o podanym identyfikatorze nie istnieje.",
                           ["Faktura o numerze KSeF %s nie została znaleziona." % ksef])
        if row["ready_at"] > self.now():
            raise ApiError(400, 21165, "Faktura o podanym numerze KSeF nie jest jeszcze dostępna.",
                           ["Faktura o numerze KSeF %s została przetworzona, ale nie jest jeszcze dostępna do pobrania."
                            " Spróbuj ponownie później." % ksef])
        body = bytes(row["xml"])
        return xml_response(body, {"x-ms-meta-hash": crypto.sha256_b64(body)})

    # ------------------------------------------------------------------ Latarnia
    def _latarnia_rows(self):
        return [dict(row) for row in self.store.all("SELECT * FROM latarnia_messages ORDER BY seq")]

    @staticmethod
    def _latarnia_view(row):
        return {"id": row["id"], "eventId": row["event_id"], "category": row["category"], "type": row["type"],
                "title": row["title"], "text": row["text"], "start": row["start"], "end": row["end_"],
                "version": row["version"], "published": row["published"]}

    def latarnia_status(self, request):
        """Status from the latest message of each event: an unfinished FAILURE_START makes the
        event active; a maintenance announcement is listed until its end and counts from its start."""
        now = self.now()
        rank = {"AVAILABLE": 0, "MAINTENANCE": 1, "FAILURE": 2, "TOTAL_FAILURE": 3}
        latest = {}
        for row in self._latarnia_rows():
            latest[row["event_id"]] = row
        status, listed = "AVAILABLE", []
        for row in latest.values():
            current = None
            if row["type"] == "FAILURE_START":
                listed.append(row)
                current = row["category"]
            elif row["type"] == "MAINTENANCE_ANNOUNCEMENT":
                start = _parse_time(row["start"], "start") if row["start"] else now
                end = _parse_time(row["end_"], "end") if row["end_"] else None
                if end is None or now < end:
                    listed.append(row)
                    if start <= now:
                        current = "MAINTENANCE"
            if current and rank[current] > rank[status]:
                status = current
        listed.sort(key=lambda row: row["seq"])
        return json_response(200, {"status": status, "messages": [self._latarnia_view(row) for row in listed]})

    def latarnia_messages(self, request):
        return json_response(200, [self._latarnia_view(row) for row in reversed(self._latarnia_rows())])

    # ------------------------------------------------------------------ control API
    def control_health(self, request):
        return json_response(200, {"ok": True})

    def control_counters(self, request):
        by_status = {str(row["status_code"]): row["n"] for row in self.store.all(
            "SELECT status_code, COUNT(*) AS n FROM invoices GROUP BY status_code")}
        by_seller = {row["seller_nip"]: row["n"] for row in self.store.all(
            "SELECT seller_nip, COUNT(*) AS n FROM invoices WHERE status_code = 200 GROUP BY seller_nip")}
        by_hash = {row["invoice_hash"]: row["n"] for row in self.store.all(
            "SELECT invoice_hash, COUNT(*) AS n FROM invoices WHERE status_code = 200 GROUP BY invoice_hash")}
        submissions = {row["invoice_hash"]: row["n"] for row in self.store.all(
            "SELECT invoice_hash, COUNT(*) AS n FROM invoices GROUP BY invoice_hash")}
        sessions = {row["kind"]: row["n"] for row in self.store.all(
            "SELECT kind, COUNT(*) AS n FROM sessions GROUP BY kind")}
        return json_response(200, {
            "invoicesTotal": sum(by_status.values()),
            "invoicesAccepted": by_status.get("200", 0),
            "invoicesByStatus": by_status,
            "acceptedBySeller": by_seller,
            "acceptedByHash": by_hash,
            "submissionsByHash": submissions,
            "sessions": sessions,
        })

    def _control_json(self, request):
        try:
            data = json.loads(request.body.decode("utf-8") or "{}")
        except ValueError as exc:
            raise validation_error("Nieprawidłowy JSON: %s" % exc)
        if not isinstance(data, dict):
            raise validation_error("Oczekiwano obiektu JSON.")
        return data

    def control_get_faults(self, request):
        with self.fault_lock:
            return json_response(200, dict(self.faults))

    def control_faults(self, request):
        data = self._control_json(request)
        unknown = set(data) - set(DEFAULT_FAULTS)
        if unknown:
            raise validation_error("Nieznane ustawienia awarii: %s" % ", ".join(sorted(unknown)))
        if data.get("down_mode", "503") not in ("503", "close"):
            raise validation_error("down_mode: 503 albo close.")
        with self.fault_lock:
            self.faults.update(data)
            if "seed" in data:
                self.fault_rng = random.Random(data["seed"])
            return json_response(200, dict(self.faults))

    def control_faults_clear(self, request):
        # a manual "no faults" also ends a connection_lost played by the script, even after a restart
        self.store.set_meta("script_connection", None)
        with self.fault_lock:
            self.faults = dict(DEFAULT_FAULTS, seed=self.faults["seed"])
            self.fault_rng = random.Random(self.faults["seed"])
            return json_response(200, dict(self.faults))

    def control_reset(self, request):
        for worker in list(self.workers):
            worker.join(timeout=30)
        with self.script_lock:
            self.store.reset()  # also the script and what it remembers
            self._script_next_at = None
        self.store.set_meta("access_tokens_not_before", 0)
        with self.fault_lock:
            self.faults = dict(DEFAULT_FAULTS, seed=self.faults["seed"])
            self.fault_rng = random.Random(self.faults["seed"])
        self.limiter.configure(reset=True)
        for nip, token in self.startup_tokens:
            self.register_token(nip, token)
        return json_response(200, {"ok": True})

    def control_tokens(self, request):
        data = self._control_json(request)
        entries = data.get("tokens") if "tokens" in data else [data]
        result = []
        for entry in entries:
            nip, token = entry.get("nip"), entry.get("token")
            if not isinstance(nip, str) or not isinstance(token, str) or not token:
                raise validation_error("Wymagane nip i token.")
            if entry.get("revoked"):
                self.store.run("UPDATE ksef_tokens SET revoked = 1 WHERE token = ?", (token,))
                result.append({"nip": nip, "revoked": True})
            else:
                result.append({"nip": nip, "referenceNumber": self.register_token(nip, token)})
        return json_response(200, {"tokens": result})

    def control_rate_limits(self, request):
        data = self._control_json(request)
        try:
            self.limiter.configure(enabled=data.get("enabled"), scale=data.get("scale"), reset=bool(data.get("reset")))
        except ValueError as exc:
            raise validation_error(str(exc))
        return json_response(200, {"enabled": self.limiter.enabled, "scale": self.limiter.scale})

    def control_expire(self, request):
        data = self._control_json(request)
        now = self.now()
        if data.get("access_tokens"):
            self.store.set_meta("access_tokens_not_before", now + 0.001)
        if data.get("sessions"):
            self.store.run("UPDATE sessions SET valid_until_ts = ?, valid_until = ? WHERE status_code = 100",
                           (now, utc_iso(now)))
        return json_response(200, {"ok": True})

    def control_rotate_keys(self, request):
        data = self._control_json(request)
        mode = data.get("mode", "emergency")
        if mode not in ("emergency", "transition", "retire-old"):
            raise validation_error("mode: emergency, transition albo retire-old.")
        with self.store.lock:
            old = [row["id"] for row in self.store.all("SELECT id FROM mf_keys WHERE active = 1")]
            if mode != "retire-old":
                for usage in mf_keys.USAGES:
                    self._insert_key(mf_keys.new_key(usage))
            if mode in ("emergency", "retire-old"):
                newest = {row["usage"]: row["id"] for row in self.store.all(
                    "SELECT usage, MAX(id) AS id FROM mf_keys WHERE active = 1 GROUP BY usage")}
                for key_id in old:
                    if key_id not in newest.values():
                        self.store.run("UPDATE mf_keys SET active = 0 WHERE id = ?", (key_id,))
        return self.public_keys(request)

    def control_get_config(self, request):
        return json_response(200, dict(self.config, rate_limits={"enabled": self.limiter.enabled,
                                                                   "scale": self.limiter.scale}))

    def control_config(self, request):
        data = self._control_json(request)
        unknown = set(data) - set(self.config)
        if unknown:
            raise validation_error("Nieznane ustawienia: %s" % ", ".join(sorted(unknown)))
        for name, value in data.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise validation_error("%s musi być liczbą." % name)
            self.config[name] = float(value)
        return self.control_get_config(request)

    def control_latarnia(self, request):
        data = self._control_json(request)
        with self.store.transaction() as db:
            row = self._publish_latarnia(db, data)
        return json_response(200, self._latarnia_view(row))

    def _publish_latarnia(self, db, data):
        """Store one Latarnia message for ``data`` (the body of POST /_control/latarnia) inside the
        caller's transaction ``db``; return its row. Shared by the control endpoint and the outage script."""
        action = data.get("action")
        presets = {"maintenance": ("MAINTENANCE", "MAINTENANCE_ANNOUNCEMENT", "PLN", "Planowana niedostępność KSeF"),
                   "failure_start": ("FAILURE", "FAILURE_START", "AWR", "Awaria KSeF"),
                   "failure_end": ("FAILURE", "FAILURE_END", "AWR", "Zakończenie awarii KSeF"),
                   "total_failure": ("TOTAL_FAILURE", "FAILURE_START", "AWC", "Awaria całkowita KSeF"),
                   "total_failure_end": ("TOTAL_FAILURE", "FAILURE_END", "AWC", "Zakończenie awarii całkowitej")}
        if action not in presets:
            raise validation_error("action: %s." % ", ".join(presets))
        category, kind, code, title = presets[action]
        now = self.now()
        seq = (db.execute("SELECT MAX(seq) FROM latarnia_messages").fetchone()[0] or 0) + 1
        event_id = data.get("eventId")
        start, end = data.get("start"), data.get("end")
        if kind == "FAILURE_END":
            started = db.execute("SELECT * FROM latarnia_messages WHERE event_id = ? AND type = 'FAILURE_START'"
                                 " ORDER BY seq DESC", (event_id,)).fetchone() if event_id is not None else None
            if started is None:
                raise validation_error("failure_end wymaga eventId rozpoczętej awarii.")
            category = started["category"]
            start = start or started["start"]
            end = end or utc_iso(now)
        else:
            if event_id is None:
                event_id = (db.execute("SELECT MAX(event_id) FROM latarnia_messages").fetchone()[0] or 0) + 1
            if kind == "FAILURE_START":
                start = start or utc_iso(now)
        message_id = data.get("id") or "K/%d/%s/%02d" % (_warsaw_date(now).year, code, seq)
        row = {"id": message_id, "seq": seq, "event_id": int(event_id), "category": category, "type": kind,
               "title": data.get("title") or title, "text": data.get("text") or title, "start": start,
               "end_": end, "version": int(data.get("version", 1)), "published": utc_iso(now)}
        db.execute("INSERT INTO latarnia_messages (id, seq, event_id, category, type, title, text, start, end_,"
                   " version, published) VALUES (:id, :seq, :event_id, :category, :type, :title, :text, :start,"
                   " :end_, :version, :published)", row)
        return row

    def control_latarnia_clear(self, request):
        self.store.run("DELETE FROM latarnia_messages")
        return json_response(200, {"ok": True})

    # ------------------------------------------------------------------ outage script (drills)
    # The validation and views are in script.py. State: table script_steps (one row a step, in
    # play order, applied_at once played) and meta "script_open_events" ({category: eventId}
    # of failures the script started and has not ended) and "script_connection" ("lost" makes a
    # restarted simulator come back without connection). script_lock serialises players (the
    # request threads and the ticker); it is always taken before store.lock, never inside it.
    def _init_script(self):
        self.script_lock = threading.Lock()
        self._script_next_at = self._script_next_pending_at()
        self._script_ticker = None
        if self.store.get_meta("script_connection") == "lost":
            self._set_connection(lost=True)

    def _script_rows(self):
        return self.store.all("SELECT * FROM script_steps ORDER BY position")

    def _script_next_pending(self):
        return self.store.one("SELECT * FROM script_steps WHERE applied_at IS NULL ORDER BY position LIMIT 1")

    def _script_next_pending_at(self):
        row = self._script_next_pending()
        return row["at"] if row else None

    def _script_response(self):
        return json_response(200, outage_script.script_view(self._script_rows(), self.now()))

    def _set_connection(self, lost):
        with self.fault_lock:
            if lost:
                self.faults.update(down=True, down_mode="close", latarnia_down=True)
            else:
                self.faults.update(down=False, down_mode=DEFAULT_FAULTS["down_mode"], latarnia_down=False)

    def play_due_script_steps(self):
        """Play, in order, every pending step whose time has come; return how many were played."""
        next_at = self._script_next_at  # cheap check first: this runs before every request
        if next_at is None or next_at > self.now():
            return 0
        played = 0
        with self.script_lock:
            while True:
                row = self._script_next_pending()
                if row is None or row["at"] > self.now():
                    break
                self._play_script_step(row)
                played += 1
            self._script_next_at = self._script_next_pending_at()
        return played

    def _play_script_step(self, row):
        """Apply one step and mark it played in the same transaction (caller holds script_lock).
        A step that cannot play (its failure's messages were cleared meanwhile) is marked played
        with a ``note`` instead of blocking the rest of the script."""
        note = None
        with self.store.transaction() as db:
            try:
                self._apply_script_action(db, row["action"])
            except ApiError as exc:
                note = "; ".join(exc.details) or exc.description
                _logger.warning("outage script step %s (%s) not applied: %s", row["step_id"], row["action"], note)
            db.execute("UPDATE script_steps SET applied_at = ?, note = ? WHERE position = ?",
                       (self.now(), note, row["position"]))

    def _apply_script_action(self, db, action):
        if action in (outage_script.CONNECTION_LOST, outage_script.CONNECTION_RESTORED):
            lost = action == outage_script.CONNECTION_LOST
            self._set_connection(lost)
            self.store.set_meta("script_connection", "lost" if lost else "restored")
            return
        latarnia_action = outage_script.LATARNIA_ACTIONS[action]
        data = {"action": latarnia_action}
        open_events = self.store.get_meta("script_open_events") or {}
        category, starts = outage_script.FAILURE_EVENTS.get(latarnia_action, (None, None))
        if starts is False:
            if category not in open_events:
                raise validation_error("%s: skrypt nie rozpoczął takiej awarii." % action)
            data["eventId"] = open_events[category]
        row = self._publish_latarnia(db, data)
        if starts is True:
            open_events[category] = row["event_id"]
        elif starts is False:
            del open_events[category]
        self.store.set_meta("script_open_events", open_events)

    def start_script_ticker(self, interval=1.0):
        """Play due steps every ``interval`` s even when nobody calls (a drill's 10:00 happens anyway)."""
        if self._script_ticker is not None:
            return
        stop = threading.Event()

        def tick():
            while not stop.wait(interval):
                try:
                    self.play_due_script_steps()
                except Exception:
                    _logger.exception("outage script step failed")

        thread = threading.Thread(target=tick, name="ksef-simulator-script", daemon=True)
        self._script_ticker = (stop, thread)
        thread.start()

    def stop_script_ticker(self):
        if self._script_ticker is not None:
            stop, thread = self._script_ticker
            stop.set()
            thread.join(timeout=10)
            self._script_ticker = None

    def control_get_script(self, request):
        return self._script_response()

    def control_set_script(self, request):
        """Replace the script; all-or-nothing: an invalid step leaves the old script in place."""
        data = self._control_json(request)
        with self.script_lock:
            steps = outage_script.parse_script(data, self.store.get_meta("script_open_events") or {})
            with self.store.transaction() as db:
                db.execute("DELETE FROM script_steps")
                db.executemany("INSERT INTO script_steps (position, step_id, at, action) VALUES (?, ?, ?, ?)",
                               [(position, step["id"], step["at"], step["action"])
                                for position, step in enumerate(steps, 1)])
            self._script_next_at = self._script_next_pending_at()
        self.play_due_script_steps()  # steps already in the past play now, so the answer shows them played
        return self._script_response()

    def control_advance_script(self, request):
        """The trainer's "next step now": play the next pending step whatever its time."""
        with self.script_lock:
            row = self._script_next_pending()
            if row is None:
                raise ApiError(409, 21405, "Błąd walidacji danych wejściowych.",
                               ["Scenariusz nie ma kroków do wykonania."])
            self._play_script_step(row)
            self._script_next_at = self._script_next_pending_at()
        return self._script_response()

    def control_clear_script(self, request):
        """Forget the script; what it already did (faults, Latarnia messages) stays."""
        with self.script_lock:
            self.store.run("DELETE FROM script_steps")
            self._script_next_at = None
        return self._script_response()

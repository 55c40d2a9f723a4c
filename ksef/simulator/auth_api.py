"""Authentication (KSeF ``uwierzytelnianie.md``, ``auth/podpis-xades.md``, ``tokeny-ksef.md``):
challenge, KSeF token and XAdES logins, the operation's status, redeem and refresh, and the MF
public keys (``bezpieczenstwo/klucze-publiczne-do-szyfrowania.md``). A mixin of ``SimulatorApp``."""
import datetime
import json

from lxml import etree

from .. import crypto, safehttp
from . import keys as mf_keys
from .common import AUTH_TOKEN_LIFETIME, CHALLENGE_LIFETIME, CONTEXT_TYPES, REFRESH_TOKEN_LIFETIME, \
    b64decode, context_nip, require
from .statuses import AUTH_STATUS
from .wire import ApiError, ProblemError, json_response, utc_iso, validation_error

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
AUTH_NAMESPACES = {"http://ksef.mf.gov.pl/auth/token/2.0": "schemat_auth_v2-0.xsd",
                   "http://ksef.mf.gov.pl/auth/token/2.1": "schemat_auth_v2-1.xsd"}
OID_ORGANIZATION_IDENTIFIER = "2.5.4.97"
INVALID_CHALLENGE = "Nieprawidłowe wyzwanie autoryzacyjne."


class AuthApiMixin:
    """Handlers of ``/v2/auth/*`` and ``/v2/security/public-key-certificates``."""

    def auth_routes(self):
        return [
            ("POST", r"/v2/auth/challenge", self.auth_challenge, None),
            ("POST", r"/v2/auth/ksef-token", self.auth_ksef_token, None),
            ("POST", r"/v2/auth/xades-signature", self.auth_xades, None),
            ("POST", r"/v2/auth/token/redeem", self.auth_redeem, "auth"),
            ("POST", r"/v2/auth/token/refresh", self.auth_refresh, "refresh"),
            ("GET", r"/v2/auth/(?P<ref>[^/]+)", self.auth_status, "auth"),
            ("GET", r"/v2/security/public-key-certificates", self.public_keys, None),
        ]

    # ------------------------------------------------------------------ MF keys and tokens
    def _keys(self, usage, public_key_id=None):
        """Active keys of ``usage``; with ``public_key_id``, that key or ApiError 21470."""
        rows = self.store.active_keys(usage)
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
        return self.store.register_token(nip, token, self.reference("EC"))

    def public_keys(self, request):
        return json_response(200, [{
            "certificate": crypto.b64(bytes(row["certificate_der"])),
            "certificateId": row["certificate_id"],
            "publicKeyId": row["public_key_id"],
            "validFrom": row["valid_from"],
            "validTo": row["valid_to"],
            "usage": [row["usage"]],
        } for row in self.store.active_keys()])

    # ------------------------------------------------------------------ logins
    def auth_challenge(self, request):
        now = self.now()
        challenge = self.reference("CR", now)
        timestamp_ms = int(now * 1000)
        self.store.add_challenge(challenge, timestamp_ms, request.client_ip)
        return json_response(200, {"challenge": challenge, "timestamp": utc_iso(timestamp_ms / 1000.0),
                                   "timestampMs": timestamp_ms, "clientIp": request.client_ip})

    def _take_challenge(self, challenge):
        row = self.store.take_challenge(challenge)
        if row is None:
            raise ApiError(400, 21111, INVALID_CHALLENGE,
                           ["Wyzwanie %s nie istnieje lub zostało już użyte." % challenge])
        return row

    def _challenge_expired(self, challenge_row):
        return self.now() * 1000 - challenge_row["timestamp_ms"] > CHALLENGE_LIFETIME * 1000

    def _new_auth_operation(self, context_type, context_value, method, method_info, outcome,
                            token_reference=None, document_hash=None):
        now = self.now()
        reference = self.reference("AU", now)
        token, valid_until = self.make_jwt("auth", reference, context_type, context_value, AUTH_TOKEN_LIFETIME)
        code, details = outcome
        self.store.add_auth_operation({
            "reference": reference, "authentication_token": token, "authentication_token_valid_until": valid_until,
            "context_type": context_type, "context_value": context_value, "method": method,
            "method_info": json.dumps(method_info), "start_date": utc_iso(now),
            "ready_at": now + self.config["processing_delay"], "status_code": code,
            "status_description": AUTH_STATUS[code], "status_details": json.dumps(details) if details else None,
            "token_reference": token_reference, "document_hash": document_hash})
        return json_response(202, {"referenceNumber": reference,
                                   "authenticationToken": {"token": token, "validUntil": utc_iso(valid_until)}})

    @staticmethod
    def _read_context_identifier(value):
        if not isinstance(value, dict) or value.get("type") not in CONTEXT_TYPES or not isinstance(value.get("value"), str):
            raise validation_error("contextIdentifier: wymagane type (%s) i value." % "|".join(CONTEXT_TYPES))
        return value["type"], value["value"]

    def auth_ksef_token(self, request):
        data = request.json()
        challenge = require(data, "challenge")
        context_type, context_value = self._read_context_identifier(data.get("contextIdentifier"))
        encrypted = b64decode(data.get("encryptedToken"), "encryptedToken")
        public_key_id = data.get("publicKeyId")
        self._keys(mf_keys.KSEF_TOKEN_ENCRYPTION, public_key_id)  # 21470 before anything else
        row = self._take_challenge(challenge)
        outcome = (200, None)
        token_reference = None
        plain = self._rsa_decrypt(mf_keys.KSEF_TOKEN_ENCRYPTION, public_key_id, encrypted)
        if self._challenge_expired(row):
            outcome = (450, [INVALID_CHALLENGE])
        elif plain is None or b"|" not in plain:
            outcome = (450, ["Nieprawidłowy token."])
        else:
            token, _, timestamp = plain.decode("utf-8", "replace").rpartition("|")
            registered = self.store.ksef_token(token)
            if timestamp != str(row["timestamp_ms"]):
                outcome = (450, ["Nieprawidłowy czas tokena."])
            elif registered is None:
                outcome = (450, ["Nieprawidłowy token."])
            elif registered["revoked"]:
                outcome = (450, ["Token unieważniony."])
            elif registered["nip"] != context_nip(context_type, context_value):
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
        if self._challenge_expired(challenge_row):
            return 450, [INVALID_CHALLENGE]
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
        if context_nip(context_type, context_value) not in nips:
            return 415, ["Brak przypisanych uprawnień."]
        return 200, None

    # ------------------------------------------------------------------ the operation and its tokens
    def _auth_operation_from_token(self, request):
        authorization = request.header("Authorization") or ""
        token = authorization[7:].strip() if authorization.startswith("Bearer ") else ""
        if not token:
            raise ProblemError(401, "Wymagane jest uwierzytelnienie.")
        row = self.store.auth_operation_by("authentication_token", token)
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

    def _access_token(self, row):
        return self.make_jwt("access", row["reference"], row["context_type"], row["context_value"],
                             self.config["access_token_ttl"])

    def auth_redeem(self, request):
        row = request.auth
        code, _ = self._auth_view(row)
        with self.store.lock:
            if self.store.auth_operation(row["reference"])["redeemed"]:
                raise ApiError(400, 21301, "Brak autoryzacji.",
                               ["Tokeny dla operacji uwierzytelniania %s zostały już pobrane." % row["reference"]])
            if code != 200:
                raise ApiError(400, 21301, "Brak autoryzacji.",
                               ["Status uwierzytelniania (%d) nie pozwala na pobranie tokenów." % code])
            access, access_until = self._access_token(row)
            refresh, refresh_until = self.make_jwt("refresh", row["reference"], row["context_type"],
                                                   row["context_value"], REFRESH_TOKEN_LIFETIME)
            self.store.update_auth_operation(row["reference"], redeemed=1, refresh_token=refresh,
                                             refresh_valid_until=refresh_until)
        return json_response(200, {"accessToken": {"token": access, "validUntil": utc_iso(access_until)},
                                   "refreshToken": {"token": refresh, "validUntil": utc_iso(refresh_until)}})

    def auth_refresh(self, request):
        row = self.store.auth_operation_by("refresh_token", request.auth["token"])
        if row is None:
            raise ApiError(400, 21304, "Brak uwierzytelnienia.",
                           ["Operacja uwierzytelniania dla tego tokenu nie została znaleziona."])
        access, access_until = self._access_token(row)
        self.store.update_auth_operation(row["reference"], last_refresh=utc_iso(self.now()))
        return json_response(200, {"accessToken": {"token": access, "validUntil": utc_iso(access_until)}})

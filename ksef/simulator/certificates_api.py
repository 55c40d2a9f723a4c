"""The simulator's KSeF certificate service (OpenAPI tag *Certyfikaty*, 2.6 and 2.7): limits,
enrollment data, enrollments and their status, retrieve, query, revoke, and the TEST
environment's ``/testdata`` helpers for certificate limits and validity.

A mixin of ``SimulatorApp``: its routes come from ``certificate_routes()``, its tables are
in ``schema.py``. The simulator acts as the KSeF CA: an EC P-256 key kept in
the state file signs the certificates it issues. Rules followed (KSeF ``certyfikaty-KSeF.md``,
``limity/limity.md``):

- enrollment data and enrollments need a XAdES login (a KSeF token gets 25001 / 25002); the data
  is the subject of the certificate used to log in, and a CSR with any other DN is refused (25003);
- keys RSA 2048 or EC P-256 only (25010), CSR signature checked (25004);
- per subject: NIP 300 requests / 100 active certificates, PESEL or fingerprint 12 / 6
  (25006 / 25007), overridable through ``/testdata/limits/subject/certificate``;
- the issued certificate has one type by key usage (Authentication = Digital Signature, Offline =
  Non-Repudiation), a 16-hex-digit serial, the CSR subject with the common name ending in
  "(uwierzytelnienie)" or "(offline)", and is valid for two years;
- a revoked, blocked or expired KSeF certificate no longer logs in (status 460).
"""
import base64
import datetime
import hashlib
import json
import os

from cryptography import x509
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from .statuses import ENROLLMENT_STATUS
from .wire import ApiError, ProblemError, Response, json_response, utc_iso, validation_error

CERTIFICATE_TABLES = ("auth_certificates", "ksef_certificates", "certificate_enrollments",
                      "certificate_limit_overrides")

# limity/limity.md: requests / active certificates per authenticated subject
DEFAULT_LIMITS = {"Nip": (300, 100), "Pesel": (12, 6), "Fingerprint": (12, 6)}
CERTIFICATE_LIFETIME = 2 * 365 * 24 * 3600.0
ENROLLMENT_RETENTION = 30 * 24 * 3600.0
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_- ąćęłńóśźżĄĆĘŁŃÓŚŹŻ")
STATUSES = ("Active", "Blocked", "Revoked", "Expired")
TYPES = ("Authentication", "Offline")
SUFFIX = {"Authentication": "uwierzytelnienie", "Offline": "offline"}
OID_ORGANIZATION_IDENTIFIER = x509.ObjectIdentifier("2.5.4.97")
OID_UNIQUE_IDENTIFIER = x509.ObjectIdentifier("2.5.4.45")
# CertificateEnrollmentDataResponse field names, in KSeF's order
DATA_FIELDS = (("commonName", NameOID.COMMON_NAME), ("countryName", NameOID.COUNTRY_NAME),
               ("givenName", NameOID.GIVEN_NAME), ("surname", NameOID.SURNAME),
               ("serialNumber", NameOID.SERIAL_NUMBER), ("uniqueIdentifier", OID_UNIQUE_IDENTIFIER),
               ("organizationName", NameOID.ORGANIZATION_NAME),
               ("organizationIdentifier", OID_ORGANIZATION_IDENTIFIER))
SERIAL_CHARS = set("0123456789ABCDEF")


def _ts_datetime(ts):
    return datetime.datetime.utcfromtimestamp(ts)


def _parse_iso(value, field):
    try:
        moment = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise validation_error("%s: nieprawidłowa data." % field)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def _check_serial(serial):
    if len(serial or "") != 16 or not set(serial) <= SERIAL_CHARS:
        raise validation_error("certificateSerialNumber: oczekiwano 16 znaków 0-9A-F.")
    return serial


class CertificatesApiMixin:
    """Handlers of the certificate endpoints; needs SimulatorApp's store, clock, JWT and references."""

    def _certificates_setup(self):
        if not self.store.get_meta("certificate_ca_key"):
            key = ec.generate_private_key(ec.SECP256R1(), default_backend())
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            self.store.set_meta("certificate_ca_key", pem.decode("ascii"))

    def certificate_routes(self):
        return [
            ("GET", r"/v2/certificates/limits", self.certificates_limits, "access"),
            ("GET", r"/v2/certificates/enrollments/data", self.certificates_enrollment_data, "access"),
            ("POST", r"/v2/certificates/enrollments", self.certificates_enroll, "access"),
            ("GET", r"/v2/certificates/enrollments/(?P<ref>[^/]+)", self.certificates_enrollment_status, "access"),
            ("POST", r"/v2/certificates/retrieve", self.certificates_retrieve, "access"),
            ("POST", r"/v2/certificates/query", self.certificates_query, "access"),
            ("POST", r"/v2/certificates/(?P<serial>[^/]+)/revoke", self.certificates_revoke, "access"),
            ("PUT", r"/v2/testdata/certificates/(?P<serial>[^/]+)", self.testdata_certificate, "access"),
            ("POST", r"/v2/testdata/limits/subject/certificate", self.testdata_set_limits, "access"),
            ("DELETE", r"/v2/testdata/limits/subject/certificate", self.testdata_reset_limits, "access"),
            ("POST", r"/_control/certificates/status", self.control_certificate_status, "control"),
        ]

    # ------------------------------------------------------------------ hooks of the login
    def remember_auth_certificate(self, document_hash, certificate):
        """auth_xades: which certificate signed the login (enrollment data are read from it)."""
        self.store.remember_auth_certificate(document_hash, certificate.public_bytes(serialization.Encoding.DER))

    def ksef_certificate_login_refusal(self, certificate):
        """None, or the 460 details when ``certificate`` is a KSeF certificate that is revoked,
        blocked or expired; records its last use otherwise."""
        serial = "%016X" % certificate.serial_number
        row = self.store.ksef_certificate(serial)
        if row is None or bytes(row["certificate_der"]) != certificate.public_bytes(serialization.Encoding.DER):
            return None
        status = self._certificate_status(row)
        if status != "Active":
            words = {"Revoked": "unieważniony", "Blocked": "zablokowany", "Expired": "wygasły"}
            return ["Certyfikat KSeF %s jest %s." % (serial, words[status])]
        self.store.update_ksef_certificate(serial, last_use=self.now())
        return None

    # ------------------------------------------------------------------ helpers
    def _login_row(self, request):
        row = self.store.auth_operation(request.auth["sub"])
        if row is None:
            raise ProblemError(401, "Nieprawidłowy token.")
        return row

    def _login_certificate(self, request, code):
        row = self._login_row(request)
        found = None
        if row["method"] != "Token" and row["document_hash"]:
            found = self.store.auth_certificate(row["document_hash"])
        if found is None:
            descriptions = {
                25001: "Brak możliwości pobrania danych do CSR dla wykorzystanego sposobu uwierzytelnienia.",
                25002: "Brak możliwości złożenia wniosku certyfikacyjnego dla wykorzystanego sposobu uwierzytelnienia.",
            }
            raise ApiError(400, code, descriptions[code])
        return x509.load_der_x509_certificate(found, default_backend())

    def _subject(self, request):
        """(type, value) of the authenticated subject: the NIP (or PESEL) of the login certificate,
        the token's NIP for a token login, else the certificate fingerprint."""
        row = self._login_row(request)
        if row["method"] == "Token":
            token = self.store.ksef_token_by_reference(row["token_reference"])
            return "Nip", token["nip"] if token else row["context_value"]
        found = self.store.auth_certificate(row["document_hash"]) if row["document_hash"] else None
        if found is None:
            return "Nip", row["context_value"]
        certificate = x509.load_der_x509_certificate(found, default_backend())
        return self._certificate_subject(certificate)

    @staticmethod
    def _certificate_subject(certificate):
        values = {}
        for attribute in certificate.subject:
            values.setdefault(attribute.oid, attribute.value)
        for oid, prefixes in ((OID_ORGANIZATION_IDENTIFIER, ("VATPL-",)), (NameOID.SERIAL_NUMBER, ("TINPL-", "NIP-"))):
            value = values.get(oid, "")
            for prefix in prefixes:
                if value.startswith(prefix) and value[len(prefix):].isdigit():
                    return "Nip", value[len(prefix):]
        value = values.get(NameOID.SERIAL_NUMBER, "")
        if value.startswith("PNOPL-"):
            return "Pesel", value[6:]
        return "Fingerprint", hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest().upper()

    def _enrollment_subject_data(self, certificate):
        """The enrollment data: the login certificate's DN, without the type suffix KSeF adds to
        the common name of its own certificates."""
        data = {}
        for name, oid in DATA_FIELDS:
            attributes = certificate.subject.get_attributes_for_oid(oid)
            if attributes:
                data[name] = attributes[0].value
        common = data.get("commonName", "")
        for suffix in SUFFIX.values():
            if common.endswith(" (%s)" % suffix):
                data["commonName"] = common[:-len(suffix) - 3]
        data.setdefault("countryName", "PL")
        data.setdefault("commonName", data.get("organizationName") or "")
        return data

    def _limits_of(self, subject_type, subject_value):
        max_enrollments, max_certificates = DEFAULT_LIMITS.get(subject_type, DEFAULT_LIMITS["Fingerprint"])
        override = self.store.certificate_limit_override(subject_value)
        if override is not None:
            if override["max_enrollments"] is not None:
                max_enrollments = override["max_enrollments"]
            if override["max_certificates"] is not None:
                max_certificates = override["max_certificates"]
        used_enrollments = self.store.enrollment_count(subject_value)
        active = sum(1 for row in self.store.ksef_certificates_of(subject_value)
                     if self._certificate_status(row) == "Active")
        return {
            "enrollment": {"limit": max_enrollments, "remaining": max(0, max_enrollments - used_enrollments)},
            "certificate": {"limit": max_certificates, "remaining": max(0, max_certificates - active)},
        }

    def _certificate_status(self, row):
        if row["status"] in ("Revoked", "Blocked"):
            return row["status"]
        return "Expired" if row["valid_to"] < self.now() else "Active"

    def _issue(self, csr, certificate_type, valid_from):
        ca_key = serialization.load_pem_private_key(self.store.get_meta("certificate_ca_key").encode("ascii"), None,
                                                    default_backend())
        attributes = []
        for attribute in csr.subject:
            if attribute.oid == NameOID.COMMON_NAME:
                attribute = x509.NameAttribute(NameOID.COMMON_NAME,
                                               "%s (%s)" % (attribute.value, SUFFIX[certificate_type]))
            attributes.append(attribute)
        usage = x509.KeyUsage(
            digital_signature=certificate_type == "Authentication", content_commitment=certificate_type == "Offline",
            key_encipherment=False, data_encipherment=False, key_agreement=False, key_cert_sign=False,
            crl_sign=False, encipher_only=False, decipher_only=False)
        serial = int.from_bytes(os.urandom(8), "big") | (1 << 60)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attributes))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "KSeF Simulator CA"),
                                    x509.NameAttribute(NameOID.COUNTRY_NAME, "PL")]))
            .public_key(csr.public_key())
            .serial_number(serial)
            .not_valid_before(_ts_datetime(valid_from))
            .not_valid_after(_ts_datetime(valid_from + CERTIFICATE_LIFETIME))
            .add_extension(usage, critical=True)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256(), default_backend()))
        return "%016X" % serial, certificate

    # ------------------------------------------------------------------ endpoints
    def certificates_limits(self, request):
        subject_type, subject_value = self._subject(request)
        limits = self._limits_of(subject_type, subject_value)
        can = limits["enrollment"]["remaining"] > 0 and limits["certificate"]["remaining"] > 0
        return json_response(200, {"canRequest": can, **limits})

    def certificates_enrollment_data(self, request):
        certificate = self._login_certificate(request, 25001)
        return json_response(200, self._enrollment_subject_data(certificate))

    def certificates_enroll(self, request):
        data = request.json()
        certificate = self._login_certificate(request, 25002)
        name = data.get("certificateName")
        if not isinstance(name, str) or not 5 <= len(name) <= 100 or not set(name) <= NAME_CHARS:
            raise validation_error("certificateName: 5-100 znaków (litery, cyfry, spacja, '-', '_').")
        certificate_type = data.get("certificateType")
        if certificate_type not in TYPES:
            raise validation_error("certificateType: Authentication lub Offline.")
        try:
            csr = x509.load_der_x509_csr(base64.b64decode(data.get("csr") or "", validate=True), default_backend())
            signature_ok = csr.is_signature_valid
        except (ValueError, TypeError):
            raise ApiError(400, 25004, "Niepoprawny format CSR lub niepoprawny podpis CSR.")
        if not signature_ok:
            raise ApiError(400, 25004, "Niepoprawny format CSR lub niepoprawny podpis CSR.")
        public_key = csr.public_key()
        if not ((isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size == 2048)
                or (isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name == "secp256r1")):
            raise ApiError(400, 25010, "Nieprawidłowy typ lub długość klucza.")
        if not isinstance(csr.signature_hash_algorithm, (hashes.SHA1, hashes.SHA256, hashes.SHA384, hashes.SHA512)):
            raise ApiError(400, 25011, "Nieprawidłowy algorytm podpisu CSR.")
        expected = self._enrollment_subject_data(certificate)
        given = {}
        for field, oid in DATA_FIELDS:
            attributes = csr.subject.get_attributes_for_oid(oid)
            if attributes:
                given[field] = attributes[0].value
        if given != expected or len(list(csr.subject)) != len(expected):
            differing = sorted(field for field in set(given) | set(expected) if given.get(field) != expected.get(field))
            raise ApiError(400, 25003, "Dane w CSR nie zgadzają się z danymi w użytym wektorze uwierzytelniającym.",
                           ["Różnice: %s." % ", ".join(differing or ["liczba atrybutów"])])
        valid_from = self.now()
        if data.get("validFrom"):
            valid_from = max(valid_from, _parse_iso(data["validFrom"], "validFrom"))
        subject_type, subject_value = self._certificate_subject(certificate)
        spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        now = self.now()
        with self.store.lock:
            limits = self._limits_of(subject_type, subject_value)
            if limits["enrollment"]["remaining"] <= 0:
                raise ApiError(400, 25006, "Osiągnięto limit możliwych do złożenia wniosków certyfikacyjnych.")
            if limits["certificate"]["remaining"] <= 0:
                raise ApiError(400, 25007, "Osiągnięto limit dopuszczalnej liczby posiadanych certyfikatów.")
            reference = self.reference("EH", now)
            owner = self.store.certificate_key_owner(spki)
            code, details, serial = 200, None, None
            if owner is not None and owner != subject_value:
                code, details = 400, ["Klucz publiczny jest już certyfikowany dla innego podmiotu."]
            else:
                serial, issued = self._issue(csr, certificate_type, valid_from)
                common = issued.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
                self.store.add_ksef_certificate({
                    "serial": serial, "name": name, "type": certificate_type,
                    "common_name": common[0].value if common else "", "subject_type": subject_type,
                    "subject_value": subject_value, "certificate_der": issued.public_bytes(serialization.Encoding.DER),
                    "public_key_der": spki, "valid_from": valid_from,
                    "valid_to": valid_from + CERTIFICATE_LIFETIME, "request_date": now})
            self.store.add_enrollment({
                "reference": reference, "subject_type": subject_type, "subject_value": subject_value,
                "request_date": now, "ready_at": now + self.config["processing_delay"], "status_code": code,
                "status_details": json.dumps(details) if details else None, "serial": serial})
        response = json_response(202, {"referenceNumber": reference, "timestamp": utc_iso(now)})
        response.stall_seconds = self._take_stall()     # stored first: the answer may be lost
        return response

    def certificates_enrollment_status(self, request, ref):
        subject_type, subject_value = self._subject(request)
        row = self.store.enrollment(ref, subject_value)
        if row is None:
            raise ApiError(400, 25005, "Wniosek certyfikacyjny o podanym numerze referencyjnym nie istnieje.")
        if row["request_date"] + ENROLLMENT_RETENTION < self.now():
            raise ProblemError(410, "Operacja wygasła i nie jest już dostępna.")
        code = 100 if self.now() < row["ready_at"] else row["status_code"]
        status = {"code": code, "description": ENROLLMENT_STATUS[code]}
        if code != 100 and row["status_details"]:
            status["details"] = json.loads(row["status_details"])
        answer = {"requestDate": utc_iso(row["request_date"]), "status": status}
        if code == 200:
            answer["certificateSerialNumber"] = row["serial"]
        return json_response(200, answer)

    def certificates_retrieve(self, request):
        data = request.json()
        serials = data.get("certificateSerialNumbers")
        if not isinstance(serials, list) or not 1 <= len(serials) <= 10:
            raise validation_error("certificateSerialNumbers: od 1 do 10 numerów seryjnych.")
        _subject_type, subject_value = self._subject(request)
        found = []
        for serial in serials:
            _check_serial(serial)
            row = self.store.ksef_certificate(serial, subject_value)
            if row is not None:
                found.append({"certificate": base64.b64encode(bytes(row["certificate_der"])).decode("ascii"),
                              "certificateName": row["name"], "certificateSerialNumber": row["serial"],
                              "certificateType": row["type"]})
        return json_response(200, {"certificates": found})

    def certificates_query(self, request):
        data = request.json() if request.body else {}
        size = request.arg("pageSize", "10")
        offset = request.arg("pageOffset", "0")
        if not size.isdigit() or not 10 <= int(size) <= 50 or not offset.isdigit():
            raise validation_error("pageSize 10..50, pageOffset >= 0.")
        if data.get("status") not in (None,) + STATUSES or data.get("type") not in (None,) + TYPES:
            raise validation_error("status: %s; type: %s." % ("|".join(STATUSES), "|".join(TYPES)))
        if data.get("certificateSerialNumber") is not None:
            _check_serial(data["certificateSerialNumber"])
        expires_after = _parse_iso(data["expiresAfter"], "expiresAfter") if data.get("expiresAfter") else None
        _subject_type, subject_value = self._subject(request)
        rows = self.store.ksef_certificates_of(subject_value)
        items = []
        for row in rows:
            status = self._certificate_status(row)
            if (data.get("status") and status != data["status"]) or (data.get("type") and row["type"] != data["type"]) \
                    or (data.get("certificateSerialNumber") and row["serial"] != data["certificateSerialNumber"]) \
                    or (data.get("name") and data["name"].lower() not in row["name"].lower()) \
                    or (expires_after and row["valid_to"] <= expires_after):
                continue
            items.append({
                "certificateSerialNumber": row["serial"], "name": row["name"], "type": row["type"],
                "commonName": row["common_name"], "status": status,
                "subjectIdentifier": {"type": row["subject_type"], "value": row["subject_value"]},
                "validFrom": utc_iso(row["valid_from"]), "validTo": utc_iso(row["valid_to"]),
                "lastUseDate": utc_iso(row["last_use"]) if row["last_use"] else None,
                "requestDate": utc_iso(row["request_date"]),
            })
        size, page = int(size), int(offset)
        chunk = items[page * size:(page + 1) * size]
        return json_response(200, {"certificates": chunk, "hasMore": len(items) > (page + 1) * size})

    def certificates_revoke(self, request, serial):
        _check_serial(serial)
        data = request.json() if request.body else {}
        reason = data.get("revocationReason") or "Unspecified"
        if reason not in ("Unspecified", "Superseded", "KeyCompromise"):
            raise validation_error("revocationReason: Unspecified|Superseded|KeyCompromise.")
        if self._login_row(request)["method"] == "Token":
            raise ProblemError(403, "Operacja nie jest dostępna dla podmiotu uwierzytelnionego tokenem KSeF.")
        _subject_type, subject_value = self._subject(request)
        with self.store.lock:
            row = self.store.ksef_certificate(serial, subject_value)
            if row is None:
                raise ApiError(400, 25008, "Certyfikat o podanym numerze seryjnym nie istnieje.")
            if self._certificate_status(row) != "Active":
                raise ApiError(400, 25009, "Nie można odwołać wskazanego certyfikatu, ponieważ jest już odwołany, "
                                           "zablokowany lub nieważny.")
            self.store.update_ksef_certificate(serial, status="Revoked", revocation_reason=reason)
        return Response(204)

    # ------------------------------------------------------------------ TEST environment helpers
    def testdata_certificate(self, request, serial):
        _check_serial(serial)
        data = request.json()
        if not data.get("validTo"):
            raise validation_error("validTo jest wymagane.")
        valid_to = _parse_iso(data["validTo"], "validTo")
        if not self.store.update_ksef_certificate(serial, valid_to=valid_to):
            raise ApiError(400, 25008, "Certyfikat o podanym numerze seryjnym nie istnieje.")
        return json_response(200, {})

    def testdata_set_limits(self, request):
        data = request.json()
        _subject_type, subject_value = self._subject(request)
        enrollment = (data.get("enrollment") or {}).get("maxEnrollments")
        certificate = (data.get("certificate") or {}).get("maxCertificates")
        for value in (enrollment, certificate):
            if value is not None and (not isinstance(value, int) or value < 0):
                raise validation_error("Limity muszą być liczbami całkowitymi >= 0.")
        self.store.set_certificate_limits(subject_value, enrollment, certificate)
        return json_response(200, {})

    def testdata_reset_limits(self, request):
        _subject_type, subject_value = self._subject(request)
        self.store.drop_certificate_limits(subject_value)
        return json_response(200, {})

    def control_certificate_status(self, request):
        """``{"serial": ..., "status": "Blocked"|"Revoked"|"Active"}``: what KSeF itself does to a
        certificate (a block by the Ministry, a revocation from the KSeF application)."""
        data = self._control_json(request)
        if data.get("status") not in ("Active", "Blocked", "Revoked"):
            raise validation_error("status: Active|Blocked|Revoked.")
        if not self.store.update_ksef_certificate(data.get("serial"), status=data["status"]):
            raise ApiError(400, 25008, "Certyfikat o podanym numerze seryjnym nie istnieje.")
        return json_response(200, {"serial": data["serial"], "status": data["status"]})

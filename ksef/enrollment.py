"""KSeF certificates requested from our side: key pair, CSR and the enrollment API.

The flow (KSeF API ``certyfikaty-KSeF.md``; OpenAPI tag *Certyfikaty*):

1. ``GET /certificates/limits`` - may this subject request one;
2. ``GET /certificates/enrollments/data`` - the DN the CSR must carry, read by KSeF from the
   certificate used to log in (XAdES only: a KSeF-token login gets error 25001);
3. a PKCS#10 request, DER in Base64, on a key generated here: EC NIST P-256 (recommended by the
   Ministry) or RSA 2048 - the private key never leaves the caller;
4. ``POST /certificates/enrollments`` -> reference number; ``GET /certificates/enrollments/{ref}``
   until 200 (issued, with the serial) or a rejection;
5. ``POST /certificates/retrieve`` -> the certificate, DER in Base64.

``/certificates/query`` lists the subject's certificates with their status (Active, Blocked,
Revoked, Expired), ``/certificates/{serial}/revoke`` revokes one for good.

Every call takes a logged-in ``ksef.client.KsefClient`` and goes through its request helper, so
errors are the client's typed ones (``ksef.errors``). Nothing here logs or returns key material.
"""
import base64
import dataclasses
import datetime
import re
import time

from cryptography import x509
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from . import codes, polling
from .client import parse_datetime

KEY_EC_P256 = "ec_p256"
KEY_RSA_2048 = "rsa_2048"
KEY_ALGORITHMS = (KEY_EC_P256, KEY_RSA_2048)

TYPE_AUTHENTICATION = "Authentication"
TYPE_OFFLINE = "Offline"
CERTIFICATE_TYPES = (TYPE_AUTHENTICATION, TYPE_OFFLINE)

STATUS_ACTIVE = "Active"
STATUS_BLOCKED = "Blocked"
STATUS_REVOKED = "Revoked"
STATUS_EXPIRED = "Expired"
STATUSES = (STATUS_ACTIVE, STATUS_BLOCKED, STATUS_REVOKED, STATUS_EXPIRED)
REVOCATION_REASONS = ("Unspecified", "Superseded", "KeyCompromise")

# EnrollCertificateRequest.certificateName: 5-100 characters of this set (OpenAPI 2.6/2.7)
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_\- ąćęłńóśźżĄĆĘŁŃÓŚŹŻ]{5,100}$")
SERIAL_PATTERN = re.compile(r"^[0-9A-F]{16}$")

ENROLLMENT_PENDING = codes.ENROLLMENT_PENDING
ENROLLMENT_ISSUED = codes.ENROLLMENT_ISSUED

# CertificateEnrollmentDataResponse field -> the X.520 attribute it fills in the CSR subject
_DN_ATTRIBUTES = (
    ("commonName", NameOID.COMMON_NAME),
    ("givenName", NameOID.GIVEN_NAME),
    ("surname", NameOID.SURNAME),
    ("organizationName", NameOID.ORGANIZATION_NAME),
    ("organizationIdentifier", x509.ObjectIdentifier("2.5.4.97")),
    ("serialNumber", NameOID.SERIAL_NUMBER),
    ("uniqueIdentifier", x509.ObjectIdentifier("2.5.4.45")),
    ("countryName", NameOID.COUNTRY_NAME),
)
_NIP_IN_IDENTIFIER = re.compile(r"^(?:VATPL-|TINPL-|NIP-?)?(\d{10})$")


class EnrollmentError(ValueError):
    """A request we refuse to send (bad name, unsupported key, data for another NIP)."""

    def __init__(self, code, message, **params):
        super().__init__(message)
        self.code = code
        self.params = params


@dataclasses.dataclass(frozen=True)
class EnrollmentData:
    """What ``/certificates/enrollments/data`` answered: the subject the CSR must carry."""
    attributes: tuple  # (json name, value) pairs, in the order KSeF gave them

    @classmethod
    def from_json(cls, data):
        known = dict(_DN_ATTRIBUTES)
        return cls(tuple((name, str(value)) for name, value in (data or {}).items()
                         if name in known and value not in (None, "")))

    def get(self, name):
        return dict(self.attributes).get(name)

    @property
    def nip(self):
        """The NIP the subject names (organizationIdentifier or serialNumber), or None."""
        for name in ("organizationIdentifier", "serialNumber"):
            found = _NIP_IN_IDENTIFIER.match((self.get(name) or "").strip().upper())
            if found:
                return found.group(1)
        return None

    def subject(self):
        known = dict(_DN_ATTRIBUTES)
        order = [name for name, _oid in _DN_ATTRIBUTES]
        pairs = sorted(self.attributes, key=lambda pair: order.index(pair[0]))
        return x509.Name([x509.NameAttribute(known[name], value) for name, value in pairs])


@dataclasses.dataclass(frozen=True)
class Limits:
    can_request: bool
    enrollment_limit: int
    enrollment_remaining: int
    certificate_limit: int
    certificate_remaining: int

    @classmethod
    def from_json(cls, data):
        def limit_and_remaining(section):
            counts = data.get(section) or {}
            return int(counts.get("limit") or 0), int(counts.get("remaining") or 0)

        return cls(bool(data.get("canRequest")), *limit_and_remaining("enrollment"),
                   *limit_and_remaining("certificate"))


@dataclasses.dataclass(frozen=True)
class EnrollmentStatus:
    code: int
    description: str
    details: tuple
    serial: object
    request_date: object

    @property
    def pending(self):
        return self.code in ENROLLMENT_PENDING

    @property
    def issued(self):
        return self.code == ENROLLMENT_ISSUED and bool(self.serial)


@dataclasses.dataclass(frozen=True)
class RemoteCertificate:
    """One row of ``/certificates/query``."""
    serial: str
    name: str
    certificate_type: str
    common_name: str
    status: str
    subject_type: str
    subject_value: str
    valid_from: object
    valid_to: object
    last_use: object
    request_date: object

    @classmethod
    def from_json(cls, item):
        subject = item.get("subjectIdentifier") or {}
        return cls(item["certificateSerialNumber"], item.get("name") or "", item.get("type") or "",
                   item.get("commonName") or "", item.get("status") or "", subject.get("type") or "",
                   subject.get("value") or "", parse_datetime(item.get("validFrom")),
                   parse_datetime(item.get("validTo")), parse_datetime(item.get("lastUseDate")),
                   parse_datetime(item.get("requestDate")))


# ---------------------------------------------------------------------------------------------
# keys and CSR

def generate_private_key(algorithm=KEY_EC_P256):
    """A new key pair: EC NIST P-256 (default, recommended by KSeF) or RSA 2048."""
    if algorithm == KEY_EC_P256:
        return ec.generate_private_key(ec.SECP256R1(), default_backend())
    if algorithm == KEY_RSA_2048:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048, backend=default_backend())
    raise EnrollmentError("unsupported_key", "KSeF certificates use EC P-256 or RSA 2048 keys, not %r" % (algorithm,),
                          algorithm=algorithm)


def private_key_pem(private_key):
    """Unencrypted PKCS#8 PEM (Odoo's ``certificate.key`` stores it; only administrators read it)."""
    return private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())


def build_csr(enrollment_data, private_key):
    """A PKCS#10 request, DER bytes, whose subject is exactly the enrollment data (KSeF refuses
    any other DN with 25003), signed with SHA-256 (ECDSA or RSA PKCS#1 v1.5)."""
    if not enrollment_data.attributes:
        raise EnrollmentError("no_data", "KSeF returned no subject data for the certificate request")
    builder = x509.CertificateSigningRequestBuilder().subject_name(enrollment_data.subject())
    request = builder.sign(private_key, hashes.SHA256(), default_backend())
    return request.public_bytes(serialization.Encoding.DER)


def check_name(name):
    name = (name or "").strip()
    if not NAME_PATTERN.match(name):
        raise EnrollmentError("bad_name", "a KSeF certificate name has 5 to 100 letters, digits, spaces, '-' or '_'",
                              name=name)
    return name


def self_signed_seal(nip, name, valid_days=30):
    """A self-signed company seal for the KSeF *test* environment and the simulator, which accept
    self-signed certificates for a XAdES login (KSeF ``srodowiska.md``): the first login that lets
    a company request its KSeF certificates there. Production needs a qualified seal instead.
    Returns ``(certificate, private_key)``; nothing is stored."""
    key = ec.generate_private_key(ec.SECP256R1(), default_backend())
    now = datetime.datetime.utcnow() - datetime.timedelta(minutes=5)
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, name[:64] or nip),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, name[:64] or nip),
        x509.NameAttribute(x509.ObjectIdentifier("2.5.4.97"), "VATPL-%s" % nip),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "PL"),
    ])
    usage = x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                          encipher_only=False, decipher_only=False)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=valid_days))
                   .add_extension(usage, critical=True)
                   .sign(key, hashes.SHA256(), default_backend()))
    return certificate, key


# ---------------------------------------------------------------------------------------------
# API calls (a logged-in KsefClient)

def limits(client):
    return Limits.from_json(client.call_api("GET", "/certificates/limits"))


def enrollment_data(client):
    return EnrollmentData.from_json(client.call_api("GET", "/certificates/enrollments/data"))


def enroll(client, name, certificate_type, csr_der, valid_from=None):
    """``POST /certificates/enrollments``; returns the reference number."""
    if certificate_type not in CERTIFICATE_TYPES:
        raise EnrollmentError("bad_type", "certificateType must be Authentication or Offline")
    body = {"certificateName": check_name(name), "certificateType": certificate_type,
            "csr": base64.b64encode(csr_der).decode("ascii")}
    if valid_from:
        body["validFrom"] = valid_from.isoformat()
    return client.call_api("POST", "/certificates/enrollments", json=body, expect=(202,))["referenceNumber"]


def enrollment_status(client, reference):
    data = client.call_api("GET", "/certificates/enrollments/%s" % reference)
    status = data.get("status") or {}
    return EnrollmentStatus(int(status.get("code") or 0), status.get("description") or "",
                            tuple(status.get("details") or ()), data.get("certificateSerialNumber"),
                            parse_datetime(data.get("requestDate")))


def wait_for_enrollment(client, reference, timeout=30.0, interval=0.2, max_interval=5.0, sleep=time.sleep):
    """Poll the enrollment until it is no longer "accepted" (100) or ``timeout`` passes; returns
    the last status (still pending when KSeF took longer: ask again later). The pause doubles up
    to ``max_interval``: the endpoint allows 30 requests a minute (OpenAPI ``x-rate-limits``)."""
    return polling.until(lambda: enrollment_status(client, reference), lambda status: not status.pending,
                         timeout=timeout, interval=interval, factor=2, max_interval=max_interval, last_look=True,
                         sleep=sleep).value


def retrieve(client, serials):
    """``POST /certificates/retrieve``: {serial: (certificate DER, type, name)} (at most 10 serials)."""
    serials = list(serials)
    if not 1 <= len(serials) <= 10:
        raise EnrollmentError("bad_serials", "retrieve takes 1 to 10 serial numbers")
    data = client.call_api("POST", "/certificates/retrieve", json={"certificateSerialNumbers": serials})
    return {item["certificateSerialNumber"]: (base64.b64decode(item["certificate"]), item.get("certificateType"),
                                              item.get("certificateName"))
            for item in data.get("certificates") or ()}


def query(client, status=None, certificate_type=None, serial=None, name=None, expires_after=None, page_size=50):
    """Every certificate of the logged-in subject matching the filters (all pages)."""
    body = {}
    if status:
        body["status"] = status
    if certificate_type:
        body["type"] = certificate_type
    if serial:
        body["certificateSerialNumber"] = serial
    if name:
        body["name"] = name
    if expires_after:
        body["expiresAfter"] = expires_after.isoformat()
    found, offset = [], 0
    while True:
        data = client.call_api("POST", "/certificates/query", json=body,
                               params={"pageSize": page_size, "pageOffset": offset})
        found.extend(RemoteCertificate.from_json(item) for item in data.get("certificates") or ())
        if not data.get("hasMore"):
            return found
        offset += 1


def revoke(client, serial, reason="Unspecified"):
    if not SERIAL_PATTERN.match(serial or ""):
        raise EnrollmentError("bad_serial", "a KSeF serial number is 16 upper-case hex digits", serial=serial)
    if reason not in REVOCATION_REASONS:
        raise EnrollmentError("bad_reason", "revocation reason must be one of %s" % ", ".join(REVOCATION_REASONS))
    client.call_api("POST", "/certificates/%s/revoke" % serial, json={"revocationReason": reason}, expect=(204,))

"""KSeF certificates and their private keys (the Ministry's ksef-docs
``certyfikaty-KSeF.md``, ``kody-qr.md``).

KSeF issues two types of certificate, told apart by key usage:

- ``Offline``: Non-Repudiation (``content_commitment``); the only type that may sign KOD II;
- ``Authentication``: Digital Signature; for API login only.

KSeF returns certificates as DER; the private key never leaves the client, so users bring
their own files: a PEM (or DER) certificate plus a PKCS#8/traditional key (optionally
encrypted), or a PKCS#12 (.p12/.pfx) bundle with a password. This module loads them into a
plain ``KsefCertificate`` record and checks them for a purpose. Errors are typed. Each has a
stable ``code`` and ``params`` so the Odoo side can show a translated message, and none of them
ever contains the password or key material.
"""
import base64
import binascii
import dataclasses
import datetime
import hashlib
import re

from cryptography import x509
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from . import qr

OFFLINE = "Offline"
AUTHENTICATION = "Authentication"
KINDS = (OFFLINE, AUTHENTICATION)

IDENTIFIER_NIP = "Nip"
IDENTIFIER_PESEL = "Pesel"

KEY_RSA = "RSA"
KEY_EC = "EC"

_ORGANIZATION_IDENTIFIER = x509.ObjectIdentifier("2.5.4.97")
# ETSI EN 319 412-1 semantics identifiers as used in Polish certificates
_IDENTIFIER_PREFIXES = {"VATPL": IDENTIFIER_NIP, "TINPL": IDENTIFIER_NIP, "PNOPL": IDENTIFIER_PESEL}
_IDENTIFIER_SHAPES = {IDENTIFIER_NIP: re.compile(r"\d{10}"), IDENTIFIER_PESEL: re.compile(r"\d{11}")}


class CertificateError(ValueError):
    """Base of all certificate problems; ``code`` is stable, ``params`` fill a translated text."""
    code = "certificate_error"

    def __init__(self, message, **params):
        super().__init__(message)
        self.params = params


class CorruptFileError(CertificateError):
    code = "corrupt_file"


class WrongPasswordError(CertificateError):
    code = "wrong_password"


class PasswordRequiredError(WrongPasswordError):
    code = "password_required"


class MissingPrivateKeyError(CertificateError):
    code = "missing_private_key"


class KeyMismatchError(CertificateError):
    code = "key_mismatch"


class UnsupportedKeyError(CertificateError):
    code = "unsupported_key"


class CertificateExpiredError(CertificateError):
    code = "expired"


class CertificateNotYetValidError(CertificateError):
    code = "not_yet_valid"


class WrongKindError(CertificateError):
    code = "wrong_kind"


class WeakKeyError(CertificateError):
    """A key KSeF does not accept for signing: RSA under 2048 bits or an EC curve other than P-256."""
    code = "weak_key"


class IdentifierMismatchError(CertificateError):
    code = "identifier_mismatch"


def _utc_naive(moment):
    if moment is None:
        return datetime.datetime.utcnow()
    if isinstance(moment, datetime.datetime):
        if moment.tzinfo is not None:
            moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return moment
    raise TypeError("expected a datetime, got %r" % (moment,))


@dataclasses.dataclass(frozen=True)
class KsefCertificate:
    """A loaded KSeF certificate; ``private_key`` is None when only the certificate was loaded.

    - ``kind``: ``Offline``, ``Authentication``, or None when the key usage does not say (no
      KeyUsage, neither bit, or both bits — KSeF certificates have exactly one type);
    - ``usages``: every kind the key usage allows;
    - ``serial``: as KOD II writes it (``qr.serial_hex``): 16 upper-case hex digits for KSeF's
      serials, the big-endian bytes of a longer one (up to 20 bytes);
    - ``identifiers``: ``(type, value)`` pairs from the subject, e.g. ``(("Nip", "5265877635"),)``;
    - ``identifier_type`` / ``identifier``: the main one (NIP before PESEL), or None;
    - ``valid_from`` / ``valid_to``: naive UTC datetimes.
    """
    kind: object
    usages: frozenset
    serial: str
    subject_cn: str
    identifier_type: object
    identifier: object
    identifiers: tuple
    valid_from: datetime.datetime
    valid_to: datetime.datetime
    key_type: str
    certificate: object = dataclasses.field(repr=False, compare=False)
    private_key: object = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def nip(self):
        return dict(self.identifiers).get(IDENTIFIER_NIP)

    @property
    def pesel(self):
        return dict(self.identifiers).get(IDENTIFIER_PESEL)

    @property
    def public_key(self):
        return self.certificate.public_key()

    @property
    def der(self):
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def fingerprint_sha256(self):
        """Upper-case hex SHA-256 of the DER certificate (how KSeF names a fingerprint identity)."""
        return hashlib.sha256(self.der).hexdigest().upper()

    def days_left(self, now=None):
        """Whole days until ``valid_to`` (0 on the last day, negative once expired)."""
        return (self.valid_to - _utc_naive(now)).days

    def is_valid_at(self, now=None):
        now = _utc_naive(now)
        return self.valid_from <= now <= self.valid_to


# ---------------------------------------------------------------------------------------------
# Loading

def _password_bytes(password):
    if password is None or password == "" or password == b"":
        return None
    if isinstance(password, str):
        return password.encode("utf-8")
    if isinstance(password, (bytes, bytearray)):
        return bytes(password)
    raise TypeError("password must be text or bytes")


def _is_der_sequence(data):
    """True when ``data`` is one complete DER SEQUENCE: tells a damaged/truncated file from a
    well-formed one that merely would not decrypt."""
    if len(data) < 2 or data[0] != 0x30:
        return False
    first = data[1]
    if first < 0x80:
        return 2 + first == len(data)
    count = first & 0x7F
    if count == 0 or count > 4 or len(data) < 2 + count:
        return False
    return 2 + count + int.from_bytes(data[2:2 + count], "big") == len(data)


def _maybe_base64_der(data):
    """KSeF's API hands certificates out as Base64 DER text; accept that as well."""
    text = data.strip()
    if not text or text[:1] == b"0":  # b"0" is 0x30, the start of DER
        return data
    try:
        decoded = base64.b64decode(b"".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return data
    return decoded if decoded[:1] == b"\x30" else data


def _as_bytes(data, what):
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise CorruptFileError("the %s file is empty or not a file" % what, what=what)
    return bytes(data)


def _parse_certificate(data):
    data = _as_bytes(data, "certificate")
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificate(data, default_backend())
        return x509.load_der_x509_certificate(_maybe_base64_der(data), default_backend())
    except ValueError:
        raise CorruptFileError("the certificate file cannot be read: it is damaged or not an X.509 "
                               "certificate (PEM or DER)", what="certificate") from None


def _pem_key_is_encrypted(data):
    return b"ENCRYPTED PRIVATE KEY" in data or b"Proc-Type: 4,ENCRYPTED" in data


def _parse_private_key(data, password):
    data = _as_bytes(data, "private key")
    secret = _password_bytes(password)
    is_pem = b"-----BEGIN" in data
    encrypted_pem = is_pem and _pem_key_is_encrypted(data)
    if is_pem and not encrypted_pem:
        secret = None  # a password typed for a plain key is harmless; do not fail on it
    loader = serialization.load_pem_private_key if is_pem else serialization.load_der_private_key
    try:
        try:
            return loader(data, secret, default_backend())
        except TypeError:
            if secret is None:
                raise PasswordRequiredError("the private key is encrypted: a password is required") from None
            return loader(data, None, default_backend())  # a password given for a plain DER key
    except CertificateError:
        raise
    except ValueError:
        if secret is not None and (is_pem or _is_der_sequence(data)):
            raise WrongPasswordError("the private key cannot be decrypted: wrong password "
                                     "(or the key file is damaged)") from None
        raise CorruptFileError("the private key file cannot be read: it is damaged or not a "
                               "private key (PEM or DER)", what="private key") from None
    except Exception:
        # never let an unexpected library error carry key material into a log line
        raise CorruptFileError("the private key file cannot be read", what="private key") from None


def _spki(public_key):
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _check_key_matches(certificate, private_key):
    if private_key is None:
        raise MissingPrivateKeyError("no private key was found for the certificate")
    if _spki(private_key.public_key()) != _spki(certificate.public_key()):
        raise KeyMismatchError("the private key does not belong to this certificate "
                               "(its public key differs from the certificate's)")


def _key_type(public_key):
    if isinstance(public_key, rsa.RSAPublicKey):
        return KEY_RSA
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return KEY_EC
    raise UnsupportedKeyError("the certificate's key is %s; KSeF certificates use RSA or EC P-256 keys"
                              % type(public_key).__name__.lstrip("_"), key=type(public_key).__name__)


def _usages(certificate):
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return frozenset()
    kinds = set()
    if usage.content_commitment:
        kinds.add(OFFLINE)
    if usage.digital_signature:
        kinds.add(AUTHENTICATION)
    return frozenset(kinds)


def _identifiers(subject):
    found = []
    values = [attribute.value for attribute in subject.get_attributes_for_oid(_ORGANIZATION_IDENTIFIER)]
    values += [attribute.value for attribute in subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)]
    for value in values:
        prefix, _dash, rest = str(value).strip().partition("-")
        kind = _IDENTIFIER_PREFIXES.get(prefix.upper())
        if kind and _IDENTIFIER_SHAPES[kind].fullmatch(rest) and (kind, rest) not in found:
            found.append((kind, rest))
    # NIP first: a company's identity wins over a person's in the rare DN carrying both
    found.sort(key=lambda pair: pair[0] != IDENTIFIER_NIP)
    return tuple(found)


def _validity(certificate):
    # cryptography >= 42 prefers the *_utc properties; 3.4.8 (Odoo's pin) only has the naive ones
    after = getattr(certificate, "not_valid_after_utc", None) or certificate.not_valid_after
    before = getattr(certificate, "not_valid_before_utc", None) or certificate.not_valid_before
    return _utc_naive(before), _utc_naive(after)


def _serial(number):
    # As KOD II writes it; a serial KOD II cannot carry is still shown (and refused for signing).
    try:
        return qr.serial_hex(number)
    except qr.Kod2SerialError:
        return "%X" % number if number >= 0 else "-%X" % -number


def _record(certificate, private_key=None):
    key_type = _key_type(certificate.public_key())
    usages = _usages(certificate)
    identifiers = _identifiers(certificate.subject)
    common_names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    valid_from, valid_to = _validity(certificate)
    return KsefCertificate(
        kind=next(iter(usages)) if len(usages) == 1 else None,
        usages=usages,
        serial=_serial(certificate.serial_number),
        subject_cn=common_names[0].value if common_names else "",
        identifier_type=identifiers[0][0] if identifiers else None,
        identifier=identifiers[0][1] if identifiers else None,
        identifiers=identifiers,
        valid_from=valid_from,
        valid_to=valid_to,
        key_type=key_type,
        certificate=certificate,
        private_key=private_key,
    )


def load_certificate(certificate_data):
    """A ``KsefCertificate`` without private key, from PEM, DER or Base64-DER bytes (e.g. to
    show a certificate or verify a KOD II)."""
    return _record(_parse_certificate(certificate_data))


def load_pem(certificate_data, key_data, password=None):
    """Certificate (PEM/DER/Base64-DER) plus its private key (PEM or DER, PKCS#8 or traditional,
    encrypted when ``password`` is given). ``key_data`` may be the same PEM as the certificate
    when one file holds both."""
    certificate = _parse_certificate(certificate_data)
    _key_type(certificate.public_key())  # unsupported keys fail before any decryption
    private_key = _parse_private_key(key_data, password)
    _check_key_matches(certificate, private_key)
    return _record(certificate, private_key)


def load_pkcs12(data, password):
    """Certificate and key from a PKCS#12 (.p12 / .pfx) bundle."""
    data = _as_bytes(data, "PKCS#12")
    secret = _password_bytes(password)
    try:
        private_key, certificate, _chain = pkcs12.load_key_and_certificates(data, secret, default_backend())
    except ValueError:
        if not _is_der_sequence(data):
            raise CorruptFileError("the PKCS#12 file cannot be read: it is damaged or not a .p12/.pfx "
                                   "file", what="PKCS#12") from None
        if secret is None:
            raise PasswordRequiredError("the PKCS#12 file is protected: a password is required") from None
        raise WrongPasswordError("the PKCS#12 file cannot be opened: wrong password "
                                 "(or the file is damaged)") from None
    except Exception:
        raise CorruptFileError("the PKCS#12 file cannot be read", what="PKCS#12") from None
    if private_key is None:
        # OpenSSL then lists any certificates as "additional" ones, none as the main certificate
        raise MissingPrivateKeyError("the PKCS#12 file contains no private key, only certificates")
    if certificate is None:
        raise CorruptFileError("the PKCS#12 file contains no certificate for its private key", what="PKCS#12")
    _key_type(certificate.public_key())
    _check_key_matches(certificate, private_key)
    return _record(certificate, private_key)


# ---------------------------------------------------------------------------------------------
# Checks for a purpose

def require_kind(certificate, kind):
    """Raise ``WrongKindError`` unless ``certificate`` is exactly of ``kind`` (Offline/Authentication)."""
    if kind not in KINDS:
        raise ValueError("kind must be one of %s, got %r" % (", ".join(KINDS), kind))
    if certificate.kind == kind:
        if kind == OFFLINE:
            require_offline_key(certificate)
        return certificate
    if len(certificate.usages) > 1:
        detail = ("its key usage allows both Offline and Authentication use, but a KSeF certificate "
                  "has exactly one type")
    elif not certificate.usages:
        detail = "its key usage allows neither Offline (Non-Repudiation) nor Authentication (Digital Signature)"
    else:
        detail = "it is an %s certificate" % certificate.kind
    purpose = {OFFLINE: "sign offline QR codes (KOD II)", AUTHENTICATION: "log in to KSeF"}[kind]
    raise WrongKindError("certificate %s cannot %s: a KSeF %s certificate is needed, and %s"
                         % (certificate.serial, purpose, kind, detail),
                         serial=certificate.serial, required=kind, actual=certificate.kind)


def require_offline_key(certificate):
    """KOD II is signed with RSA-PSS (at least 2048 bits) or ECDSA P-256 (the Ministry's
    ``kody-qr.md``): refuse any other key before it is stored or used."""
    key = certificate.public_key
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        raise WeakKeyError("certificate %s has an RSA key of %d bits; KSeF requires at least 2048"
                           % (certificate.serial, key.key_size), serial=certificate.serial,
                           key="RSA %d" % key.key_size)
    if isinstance(key, ec.EllipticCurvePublicKey) and not isinstance(key.curve, ec.SECP256R1):
        raise WeakKeyError("certificate %s has an EC key on %s; KSeF requires P-256"
                           % (certificate.serial, key.curve.name), serial=certificate.serial, key=key.curve.name)
    return certificate


def require_valid(certificate, now=None):
    """Raise when ``now`` (default: current UTC time) is outside the validity period."""
    now = _utc_naive(now)
    if now < certificate.valid_from:
        raise CertificateNotYetValidError(
            "certificate %s is not valid yet: valid from %s UTC" % (certificate.serial, certificate.valid_from.isoformat(" ")),
            serial=certificate.serial, valid_from=certificate.valid_from)
    if now > certificate.valid_to:
        raise CertificateExpiredError(
            "certificate %s expired on %s UTC" % (certificate.serial, certificate.valid_to.isoformat(" ")),
            serial=certificate.serial, valid_to=certificate.valid_to)
    return certificate


def require_identifier(certificate, value, identifier_type=None):
    """Raise ``IdentifierMismatchError`` unless the subject carries identifier ``value`` (a NIP
    or PESEL; limited to ``identifier_type`` when given)."""
    value = str(value or "").strip()
    for kind, found in certificate.identifiers:
        if found == value and (identifier_type is None or kind == identifier_type):
            return certificate
    held = ", ".join("%s %s" % pair for pair in certificate.identifiers) or "no NIP or PESEL"
    raise IdentifierMismatchError("certificate %s belongs to %s, not to %s"
                                  % (certificate.serial, held, value),
                                  serial=certificate.serial, expected=value, actual=held,
                                  identifiers=tuple(certificate.identifiers))


def require_private_key(certificate):
    if certificate.private_key is None:
        raise MissingPrivateKeyError("certificate %s was loaded without its private key" % certificate.serial,
                                     serial=certificate.serial)
    return certificate


def require_offline_signer(certificate, nip=None, now=None):
    """Everything KOD II needs at issue time: an Offline certificate, valid now, with its private
    key, and (when ``nip`` is given) issued to that NIP."""
    require_kind(certificate, OFFLINE)
    require_private_key(certificate)
    require_valid(certificate, now)
    if nip is not None:
        require_identifier(certificate, nip, IDENTIFIER_NIP)
    return certificate

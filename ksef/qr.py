"""KSeF verification QR codes: KOD I (invoice) and KOD II (issuer certificate) (the Ministry's
ksef-docs ``kody-qr.md``).

KOD I:  {base}/invoice/{sellerNip}/{DD-MM-YYYY}/{sha256 base64url}
KOD II: {base}/certificate/{ctxType}/{ctxValue}/{sellerNip}/{serial}/{sha256 base64url}/{signature}

KOD II's signature covers the URL without its scheme, up to and including the hash. It is
RSASSA-PSS (SHA-256, MGF1-SHA-256, 32-byte salt) for RSA keys, and ECDSA P-256 / SHA-256 written
as IEEE P1363 r||s for EC keys. Everything is Base64URL without padding. The QR host is part of
what is signed, so a KOD II made for the test environment is not valid in production.

The hash is that of the exact file bytes sent to KSeF: build the URLs from the stored bytes
(or their stored hash), never from a re-serialised document (ksef-docs ``kody-qr.md``: the hash is
the SHA-256 of the file sent).
"""
import collections
import datetime
import io
import re

import qrcode
import qrcode.constants
import qrcode.image.svg
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from . import crypto

QR_BASE = {
    "test": "https://qr-test.ksef.mf.gov.pl",
    "demo": "https://qr-demo.ksef.mf.gov.pl",
    "production": "https://qr.ksef.mf.gov.pl",
}
_ENVIRONMENT_ALIASES = {"prd": "production", "prod": "production", "te": "test"}

CONTEXT_TYPES = ("Nip", "InternalId", "NipVatUe", "PeppolId")
# Shapes from the KSeF OpenAPI schemas, loosened on the NIP part (the official client tests use
# NIPs such as 0000000000 that the strict API pattern would refuse; KSeF judges validity itself).
_CONTEXT_VALUE_PATTERNS = {
    "Nip": re.compile(r"\d{10}"),
    "InternalId": re.compile(r"\d{10}-\d{5}"),
    "NipVatUe": re.compile(r"\d{10}-[A-Z]{2}[0-9A-Z+*]{2,12}"),
    "PeppolId": re.compile(r"P[A-Z]{2}\d{6}"),
}
_NIP = re.compile(r"\d{10}")
# KSeF's own serials are 16 hex digits; a longer X.509 serial (up to 20 bytes, RFC 5280 4.1.2.2,
# e.g. the 20 random bytes most CAs and ``cryptography`` give) is written as its big-endian bytes.
_SERIAL = re.compile(r"[0-9A-F]{16}|(?:[0-9A-F]{2}){9,20}")
SERIAL_MAX_BYTES = 20
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_CUSTOM_BASE = re.compile(r"https?://[^/\s?#]+(/[^\s?#]*)?")

KOD1_LABEL_OFFLINE = "OFFLINE"
KOD2_LABEL = "CERTYFIKAT"

P256_FIELD_BYTES = 32
RSA_MIN_BITS = 2048
PSS_SALT_LENGTH = 32

Kod2Link = collections.namedtuple(
    "Kod2Link",
    "base context_type context_value seller_nip certificate_serial invoice_hash signature signed_part",
)
Kod2Link.__doc__ = "The parts of a KOD II URL; ``signed_part`` is the exact string that was signed."


def base_url(environment):
    """The QR host for ``test`` / ``demo`` / ``production`` (aliases ``prd``, ``prod``, ``te``),
    or ``environment`` itself when it is an http(s) URL, e.g. the local simulator's."""
    if not isinstance(environment, str):
        raise ValueError("QR environment must be a string, got %r" % (environment,))
    key = environment.strip().lower()
    key = _ENVIRONMENT_ALIASES.get(key, key)
    if key in QR_BASE:
        return QR_BASE[key]
    if _CUSTOM_BASE.fullmatch(environment.strip()):
        return environment.strip().rstrip("/")
    raise ValueError("unknown QR environment %r: use test, demo, production or an http(s):// base URL"
                     % (environment,))


def _nip(value, what="seller NIP"):
    value = str(value or "").strip()
    if not _NIP.fullmatch(value):
        raise ValueError("%s must be exactly 10 digits, got %r" % (what, value))
    return value


def _issue_date(value):
    if isinstance(value, datetime.datetime):
        value = value.date()
    elif isinstance(value, str):
        try:
            value = datetime.date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("issue date must be YYYY-MM-DD, got %r" % (value,)) from None
    if not isinstance(value, datetime.date):
        raise ValueError("issue date must be a date, got %r" % (value,))
    return value.strftime("%d-%m-%Y")


def normalize_invoice_hash(invoice_hash):
    """The QR form (Base64URL, no padding, 43 chars) of a SHA-256 given as Base64 (the API form,
    as stored next to the invoice), Base64URL, or the 32 raw digest bytes."""
    if isinstance(invoice_hash, (bytes, bytearray)):
        digest = bytes(invoice_hash)
    elif isinstance(invoice_hash, str):
        text = invoice_hash.strip().replace("+", "-").replace("/", "_").rstrip("=")
        if not _B64URL.fullmatch(text or "!"):
            raise ValueError("invoice hash is not Base64/Base64URL: %r" % (invoice_hash,))
        try:
            digest = crypto.b64url_decode(text)
        except ValueError:
            raise ValueError("invoice hash is not Base64/Base64URL: %r" % (invoice_hash,)) from None
    else:
        raise ValueError("invoice hash must be a string or bytes, got %r" % (invoice_hash,))
    if len(digest) != 32:
        raise ValueError("invoice hash must be a SHA-256 (32 bytes), got %d bytes" % len(digest))
    return crypto.b64url(digest)


class Kod2SerialError(ValueError):
    """The certificate serial cannot be written in KOD II."""


class Kod2KeyError(ValueError):
    """The key cannot make (or the certificate cannot verify) a KOD II signature."""


def serial_hex(number):
    """A certificate's serial number as KSeF writes it in KOD II: 16 upper-case hex digits,
    zero-padded, for the serials KSeF issues (below 2**64); a longer serial as the big-endian
    bytes of its DER INTEGER, as the Ministry's C# client takes it from
    ``X509Certificate2.SerialNumber`` (``kody-qr.md``: the serial of the Offline certificate)."""
    if isinstance(number, bool) or not isinstance(number, int):
        raise Kod2SerialError("certificate serial must be an integer, got %r" % (number,))
    if number <= 0:
        raise Kod2SerialError("certificate serial must be a positive integer (RFC 5280), got %d" % number)
    if number < 1 << 64:
        return "%016X" % number
    length = number.bit_length() // 8 + 1   # DER: one more byte when the top bit is set
    if length > SERIAL_MAX_BYTES:
        raise Kod2SerialError("certificate serial is %d bytes long; X.509 serials have at most %d"
                              % (length, SERIAL_MAX_BYTES))
    return number.to_bytes(length, "big").hex().upper()


def normalize_serial(serial):
    """A KSeF certificate serial as written in KOD II (see ``serial_hex``); an int is converted,
    a string upper-cased and checked."""
    if isinstance(serial, int) and not isinstance(serial, bool):
        return serial_hex(serial)
    text = str(serial or "").strip().upper()
    if not _SERIAL.fullmatch(text):
        raise Kod2SerialError("certificate serial must be 16 hexadecimal digits (or the 9 to 20 hexadecimal "
                              "bytes of a longer serial), got %r" % (serial,))
    return text


def _context(context_type, context_value):
    if context_type not in CONTEXT_TYPES:
        raise ValueError("context type must be one of %s, got %r" % (", ".join(CONTEXT_TYPES), context_type))
    value = str(context_value or "").strip()
    if not _CONTEXT_VALUE_PATTERNS[context_type].fullmatch(value):
        raise ValueError("%r is not a valid %s context identifier" % (context_value, context_type))
    return context_type, value


def invoice_url_from_hash(environment, seller_nip, issue_date, invoice_hash):
    """KOD I from a stored hash (Base64 as sent to the API, Base64URL, or raw digest)."""
    return "%s/invoice/%s/%s/%s" % (
        base_url(environment), _nip(seller_nip), _issue_date(issue_date), normalize_invoice_hash(invoice_hash))


def invoice_url(environment, seller_nip, issue_date, xml_bytes):
    """KOD I for the exact invoice file bytes."""
    if not isinstance(xml_bytes, (bytes, bytearray)):
        raise ValueError("invoice XML must be the exact file bytes, not %s" % type(xml_bytes).__name__)
    return invoice_url_from_hash(environment, seller_nip, issue_date, crypto.sha256(bytes(xml_bytes)))


def _strip_scheme(url):
    return url.split("://", 1)[1]


def certificate_string_to_sign(environment, context_type, context_value, seller_nip, certificate_serial,
                               invoice_hash):
    """The KOD II text that gets signed: the URL without scheme, up to and including the hash."""
    context_type, context_value = _context(context_type, context_value)
    url = "%s/certificate/%s/%s/%s/%s/%s" % (
        base_url(environment), context_type, context_value, _nip(seller_nip),
        normalize_serial(certificate_serial), normalize_invoice_hash(invoice_hash))
    return _strip_scheme(url)


def sign_kod2(string_to_sign, private_key):
    """The raw KOD II signature of ``string_to_sign`` (UTF-8) with an RSA-2048+ or EC P-256 key."""
    data = string_to_sign.encode("utf-8")
    if isinstance(private_key, rsa.RSAPrivateKey):
        if private_key.key_size < RSA_MIN_BITS:
            raise Kod2KeyError("KOD II needs an RSA key of at least %d bits, got %d" % (RSA_MIN_BITS, private_key.key_size))
        return private_key.sign(data, _pss(), hashes.SHA256())
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        _check_p256(private_key.curve)
        r, s = decode_dss_signature(private_key.sign(data, ec.ECDSA(hashes.SHA256())))
        # IEEE P1363: fixed-width r||s, the encoding KSeF recommends
        return r.to_bytes(P256_FIELD_BYTES, "big") + s.to_bytes(P256_FIELD_BYTES, "big")
    raise Kod2KeyError("KOD II needs an RSA or EC P-256 private key, got %s" % type(private_key).__name__)


def _pss():
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=PSS_SALT_LENGTH)


def _check_p256(curve):
    if not isinstance(curve, ec.SECP256R1):
        raise Kod2KeyError("KOD II needs an EC key on P-256 (secp256r1), got %s" % curve.name)


def certificate_url_from_hash(environment, context_type, context_value, seller_nip, certificate_serial,
                              invoice_hash, private_key):
    """KOD II from a stored invoice hash, signed with the Offline certificate's private key."""
    signed_part = certificate_string_to_sign(
        environment, context_type, context_value, seller_nip, certificate_serial, invoice_hash)
    scheme = base_url(environment).split("://", 1)[0]
    return "%s://%s/%s" % (scheme, signed_part, crypto.b64url(sign_kod2(signed_part, private_key)))


def certificate_url(environment, context_type, context_value, seller_nip, certificate_serial, xml_bytes,
                    private_key):
    """KOD II for the exact invoice file bytes."""
    if not isinstance(xml_bytes, (bytes, bytearray)):
        raise ValueError("invoice XML must be the exact file bytes, not %s" % type(xml_bytes).__name__)
    return certificate_url_from_hash(environment, context_type, context_value, seller_nip,
                                     certificate_serial, crypto.sha256(bytes(xml_bytes)), private_key)


# A fixed sample: the trial signature proves the certificate and key work, whatever the invoice.
_TRIAL_HASH = crypto.b64url(bytes(32))


def check_signer(certificate_serial, private_key, certificate, seller_nip="1111111111", environment="test"):
    """Make a KOD II with this serial and private key and verify it with the certificate, as an
    offline invoice will. Returns the sample URL; raises ``Kod2SerialError`` / ``Kod2KeyError``
    saying what KOD II cannot use."""
    url = certificate_url_from_hash(environment, "Nip", seller_nip, seller_nip, certificate_serial, _TRIAL_HASH,
                                    private_key)
    try:
        verified = verify_certificate_url(url, certificate)
    except ValueError as error:
        raise Kod2KeyError(str(error)) from None
    if not verified:
        raise Kod2KeyError("a KOD II signed with the private key does not verify against the certificate")
    return url


def parse_certificate_url(url):
    """Split a KOD II URL into its parts (``Kod2Link``); ValueError when it is not one."""
    if not isinstance(url, str) or "://" not in url:
        raise ValueError("not a KOD II URL: %r" % (url,))
    base, marker, rest = url.rpartition("/certificate/")
    parts = rest.split("/")
    if not marker or len(parts) != 6 or not _CUSTOM_BASE.fullmatch(base):
        raise ValueError("not a KOD II URL (expected {base}/certificate/ followed by 6 segments): %r" % (url,))
    context_type, context_value, seller_nip, serial, invoice_hash, signature = parts
    _context(context_type, context_value)
    _nip(seller_nip)
    if not _SERIAL.fullmatch(serial):
        raise ValueError("KOD II certificate serial must be 16 upper-case hex digits (or 9 to 20 hex bytes), "
                         "got %r" % (serial,))
    if len(invoice_hash) != 43 or not _B64URL.fullmatch(invoice_hash):
        raise ValueError("KOD II invoice hash must be 43 Base64URL characters, got %r" % (invoice_hash,))
    if not _B64URL.fullmatch(signature):
        raise ValueError("KOD II signature must be Base64URL without padding")
    signed_part = _strip_scheme(url.rsplit("/", 1)[0])
    return Kod2Link(base, context_type, context_value, seller_nip, serial, invoice_hash,
                    crypto.b64url_decode(signature), signed_part)


def verify_certificate_url(url, public_key):
    """True when the KOD II URL's signature is valid for ``public_key`` (a public key or an
    ``x509.Certificate``). EC signatures may be P1363 (recommended) or DER (the allowed
    fallback). A malformed URL or a wrong signature gives False; an unusable key raises."""
    if isinstance(public_key, x509.Certificate):
        public_key = public_key.public_key()
    if not isinstance(public_key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        raise ValueError("KOD II is verified with an RSA or EC public key, got %s" % type(public_key).__name__)
    try:
        link = parse_certificate_url(url)
    except ValueError:
        return False
    data = link.signed_part.encode("utf-8")
    signature = link.signature
    if isinstance(public_key, rsa.RSAPublicKey):
        return _verifies(lambda: public_key.verify(signature, data, _pss(), hashes.SHA256()))
    _check_p256(public_key.curve)
    candidates = []
    if len(signature) == 2 * P256_FIELD_BYTES:
        r = int.from_bytes(signature[:P256_FIELD_BYTES], "big")
        s = int.from_bytes(signature[P256_FIELD_BYTES:], "big")
        candidates.append(encode_dss_signature(r, s))
    candidates.append(signature)  # DER as sent by e.g. Java's SHA256withECDSA
    return any(_verifies(lambda der=der: public_key.verify(der, data, ec.ECDSA(hashes.SHA256())))
               for der in candidates)


def _verifies(check):
    try:
        check()
    except (InvalidSignature, ValueError):
        return False
    return True


def _qr(url, box_size, border):
    if not isinstance(url, str) or not url:
        raise ValueError("QR content must be a non-empty string")
    if not isinstance(box_size, int) or box_size < 1:
        raise ValueError("box_size must be a positive number of pixels per module, got %r" % (box_size,))
    if not isinstance(border, int) or border < 0:
        raise ValueError("border must be a non-negative number of modules, got %r" % (border,))
    # ISO/IEC 18004 level M, as the official visualiser renders both codes
    code = qrcode.QRCode(version=None, error_correction=qrcode.constants.ERROR_CORRECT_M,
                         box_size=box_size, border=border)
    code.add_data(url.encode("utf-8"))
    code.make(fit=True)
    return code


def qr_png(url, box_size=10, border=4):
    """PNG bytes of a QR code for ``url``, error correction M, a 4-module quiet zone.

    With the default 10 px per module a KOD I (41 modules + quiet zone) is 490 px and an RSA
    KOD II (about 85 modules) about 930 px wide, i.e. more than one pixel per module even at
    600 dpi in the 4-5 cm a printed code gets (about 0.5 mm per module, which phone cameras
    read). Scale the image down in the layout; never let a renderer upscale a small bitmap.
    """
    image = _qr(url, box_size, border).make_image()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def qr_svg(url, border=4):
    """SVG bytes of the same QR code (one path, scales to any print size without blur)."""
    image = _qr(url, 10, border).make_image(image_factory=qrcode.image.svg.SvgPathImage)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


def qr_modules(url):
    """The side of the QR symbol in modules (without quiet zone), e.g. to choose a print size."""
    code = _qr(url, 1, 0)
    return code.modules_count

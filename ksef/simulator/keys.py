"""The simulator's own "Ministerstwo Finansów" encryption keys (KSeF
``bezpieczenstwo/klucze-publiczne-do-szyfrowania.md``).

One RSA-2048 key and self-signed certificate per usage (``KsefTokenEncryption``,
``SymmetricKeyEncryption``), as the real service lists them. ``certificateId`` is the Base64
SHA-256 of the certificate DER, ``publicKeyId`` the Base64 SHA-256 of the SubjectPublicKeyInfo.
"""
import datetime

from cryptography import x509
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from .. import crypto

KSEF_TOKEN_ENCRYPTION = "KsefTokenEncryption"
SYMMETRIC_KEY_ENCRYPTION = "SymmetricKeyEncryption"
USAGES = (KSEF_TOKEN_ENCRYPTION, SYMMETRIC_KEY_ENCRYPTION)


def _iso(moment):
    return moment.replace(microsecond=0).isoformat()


def new_key(usage, now=None):
    """Return a dict row for ``mf_keys``: a fresh key, certificate and their identifiers."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048, backend=default_backend())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Ministerstwo Finansów")])
    valid_from = now - datetime.timedelta(minutes=1)
    valid_to = now + datetime.timedelta(days=730)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from.replace(tzinfo=None))
        .not_valid_after(valid_to.replace(tzinfo=None))
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=True,
            data_encipherment=True, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256(), default_backend())
    )
    der = certificate.public_bytes(serialization.Encoding.DER)
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return {
        "private_key_pem": key.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()),
        "certificate_der": der,
        "certificate_id": crypto.sha256_b64(der),
        "public_key_id": crypto.sha256_b64(spki),
        "usage": usage,
        "valid_from": _iso(valid_from),
        "valid_to": _iso(valid_to),
    }


def load_private_key(pem):
    return serialization.load_pem_private_key(bytes(pem), password=None, backend=default_backend())

"""Self-made KSeF-like certificates for tests, demos and drills on the simulator.

Real KSeF certificates are issued by the Ministry after a XAdES login (the Ministry's ksef-docs
``certyfikaty-KSeF.md``). For the
simulator, the demo database and the tests we mint look-alikes with the same shape: one type
per certificate, told apart by key usage (Offline = Non-Repudiation, Authentication = Digital
Signature), a 16-hex-digit serial, and the subject's identifier in the DN
(``organizationIdentifier = VATPL-<NIP>`` for a company, ``serialNumber = TINPL-<NIP>``).
Never use these against the real KSeF.
"""
import datetime
import os

from cryptography import x509
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

OFFLINE = "Offline"
AUTHENTICATION = "Authentication"


def new_private_key(key_type="ec"):
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1(), default_backend())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048, backend=default_backend())
    raise ValueError("key_type must be 'ec' or 'rsa'")


def make_certificate(kind, nip, key_type="ec", private_key=None, not_before=None, valid_days=730,
                     name="Firma Testowa Sp. z o.o.", serial=None):
    """Return ``(certificate, private_key)`` of a self-signed KSeF-like certificate.

    ``kind`` is ``OFFLINE`` or ``AUTHENTICATION``; ``serial`` an int below 2**64 (random when
    omitted) so that its hex form is the 16 characters KSeF prints in KOD II.
    """
    if kind not in (OFFLINE, AUTHENTICATION):
        raise ValueError("kind must be Offline or Authentication")
    key = private_key or new_private_key(key_type)
    not_before = not_before or datetime.datetime.utcnow() - datetime.timedelta(minutes=5)
    serial = serial or (int.from_bytes(os.urandom(8), "big") | (1 << 60))
    suffix = "offline" if kind == OFFLINE else "uwierzytelnienie"
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, "%s (%s)" % (name, suffix)),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "PL"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
        # organizationIdentifier (2.5.4.97) carries the NIP of a company, as in Polish seals
        x509.NameAttribute(x509.ObjectIdentifier("2.5.4.97"), "VATPL-%s" % nip),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, "TINPL-%s" % nip),
    ])
    usage = dict(
        digital_signature=kind == AUTHENTICATION, content_commitment=kind == OFFLINE,
        key_encipherment=False, data_encipherment=False, key_agreement=False,
        key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "KSeF Simulator CA")]))
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_before + datetime.timedelta(days=valid_days))
        .add_extension(x509.KeyUsage(**usage), critical=True)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256(), default_backend())
    )
    return certificate, key


def to_pem(certificate, private_key, password=None):
    """PEM bytes of the certificate and of its PKCS#8 key (encrypted when a password is given)."""
    encryption = (serialization.BestAvailableEncryption(password.encode()) if password
                  else serialization.NoEncryption())
    return (
        certificate.public_bytes(serialization.Encoding.PEM),
        private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption),
    )


def to_pkcs12(certificate, private_key, password, friendly_name=b"ksef"):
    from cryptography.hazmat.primitives.serialization import pkcs12
    return pkcs12.serialize_key_and_certificates(
        friendly_name, private_key, certificate, None,
        serialization.BestAvailableEncryption(password.encode()),
    )

import base64
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from ksef import certificates as kc
from ksef import devcerts, qr

NIP = "5265877635"
UTC = datetime.timezone.utc


@pytest.fixture(scope="module")
def offline_ec():
    return devcerts.make_certificate(devcerts.OFFLINE, NIP, key_type="ec", serial=0x01F20A5D352AE590)


@pytest.fixture(scope="module")
def offline_rsa():
    return devcerts.make_certificate(devcerts.OFFLINE, NIP, key_type="rsa")


def custom_certificate(key, attributes, usage=None, days=(-1, 365)):
    """A certificate shape devcerts does not make (other key usages, PESEL subject)."""
    now = datetime.datetime.utcnow()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")]))
        .public_key(key.public_key())
        .serial_number(0xABCDEF)
        .not_valid_before(now + datetime.timedelta(days=days[0]))
        .not_valid_after(now + datetime.timedelta(days=days[1]))
    )
    if usage is not None:
        flags = dict(digital_signature=False, content_commitment=False, key_encipherment=False,
                     data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                     encipher_only=False, decipher_only=False)
        flags.update(usage)
        builder = builder.add_extension(x509.KeyUsage(**flags), critical=True)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm, default_backend())


def test_load_pem_pair_of_an_offline_ec_certificate(offline_ec):
    cert, key = offline_ec
    cert_pem, key_pem = devcerts.to_pem(cert, key)
    loaded = kc.load_pem(cert_pem, key_pem)
    assert loaded.kind == kc.OFFLINE and loaded.usages == {kc.OFFLINE}
    assert loaded.serial == "01F20A5D352AE590"                 # zero-padded to 16
    assert loaded.identifier_type == kc.IDENTIFIER_NIP and loaded.identifier == NIP and loaded.nip == NIP
    assert loaded.subject_cn == "Firma Testowa Sp. z o.o. (offline)"
    assert loaded.key_type == kc.KEY_EC
    assert loaded.valid_to - loaded.valid_from == datetime.timedelta(days=730)
    assert loaded.valid_to.tzinfo is None
    assert 728 <= loaded.days_left() <= 730
    assert loaded.is_valid_at()
    assert kc.require_offline_signer(loaded, nip=NIP) is loaded
    # the record's repr must never show the key
    assert "PRIVATE" not in repr(loaded) and "private_key" not in repr(loaded)


def test_encrypted_pem_key_and_rsa_authentication_certificate():
    cert, key = devcerts.make_certificate(devcerts.AUTHENTICATION, NIP, key_type="rsa")
    cert_pem, key_pem = devcerts.to_pem(cert, key, password="zażółć")
    loaded = kc.load_pem(cert_pem, key_pem, password="zażółć")
    assert loaded.kind == kc.AUTHENTICATION and loaded.key_type == kc.KEY_RSA
    assert loaded.subject_cn.endswith("(uwierzytelnienie)")
    assert kc.require_kind(loaded, kc.AUTHENTICATION) is loaded


def test_der_and_base64_der_certificates_as_ksef_returns_them(offline_ec):
    cert, key = offline_ec
    der = cert.public_bytes(serialization.Encoding.DER)
    key_der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    assert kc.load_pem(der, key_der).serial == "01F20A5D352AE590"
    assert kc.load_certificate(base64.b64encode(der)).serial == "01F20A5D352AE590"
    only_cert = kc.load_certificate(base64.b64encode(der).decode())
    assert only_cert.private_key is None
    with pytest.raises(kc.MissingPrivateKeyError):
        kc.require_offline_signer(only_cert)


def test_one_pem_file_with_certificate_and_key(offline_ec):
    cert, key = offline_ec
    cert_pem, key_pem = devcerts.to_pem(cert, key)
    bundle = cert_pem + key_pem
    assert kc.load_pem(bundle, bundle).fingerprint_sha256 == kc.load_certificate(cert_pem).fingerprint_sha256


def test_load_pkcs12(offline_rsa):
    cert, key = offline_rsa
    loaded = kc.load_pkcs12(devcerts.to_pkcs12(cert, key, "sekret"), "sekret")
    assert loaded.kind == kc.OFFLINE and loaded.key_type == kc.KEY_RSA
    assert loaded.serial == "%016X" % cert.serial_number
    # the loaded key signs a KOD II that verifies against the certificate
    url = qr.certificate_url("test", "Nip", NIP, NIP, loaded.serial, b"<Faktura/>", loaded.private_key)
    assert qr.verify_certificate_url(url, loaded.certificate)


def test_pkcs12_wrong_password(offline_ec):
    data = devcerts.to_pkcs12(*offline_ec, password="sekret")
    with pytest.raises(kc.WrongPasswordError) as caught:
        kc.load_pkcs12(data, "Sekret")
    assert caught.value.code == "wrong_password" and "sekret" not in str(caught.value).lower()
    with pytest.raises(kc.PasswordRequiredError) as caught:
        kc.load_pkcs12(data, None)
    assert isinstance(caught.value, kc.WrongPasswordError)   # callers may treat both alike


@pytest.mark.parametrize("damage", [lambda d: d[: len(d) // 2], lambda d: b"not a pfx at all", lambda d: b"\x00" + d])
def test_pkcs12_corrupt_file(offline_ec, damage):
    data = devcerts.to_pkcs12(*offline_ec, password="sekret")
    with pytest.raises(kc.CorruptFileError) as caught:
        kc.load_pkcs12(damage(data), "sekret")
    assert caught.value.code == "corrupt_file"


def test_pem_key_password_errors(offline_ec):
    cert, key = offline_ec
    cert_pem, key_pem = devcerts.to_pem(cert, key, password="sekret")
    with pytest.raises(kc.PasswordRequiredError):
        kc.load_pem(cert_pem, key_pem)
    with pytest.raises(kc.WrongPasswordError) as caught:
        kc.load_pem(cert_pem, key_pem, password="wrong")
    assert "wrong" not in str(caught.value).replace("wrong password", "")
    # a password typed for an unencrypted key is harmless
    plain_cert, plain_key = devcerts.to_pem(cert, key)
    assert kc.load_pem(plain_cert, plain_key, password="whatever").private_key is not None


def test_corrupt_certificate_and_key_files(offline_ec):
    cert, key = offline_ec
    cert_pem, key_pem = devcerts.to_pem(cert, key)
    with pytest.raises(kc.CorruptFileError, match="certificate"):
        kc.load_pem(cert_pem[:120] + b"\n-----END CERTIFICATE-----\n", key_pem)
    with pytest.raises(kc.CorruptFileError, match="certificate"):
        kc.load_certificate(b"\x30\x03abc")
    with pytest.raises(kc.CorruptFileError, match="empty"):
        kc.load_certificate(b"")
    with pytest.raises(kc.CorruptFileError, match="private key"):
        kc.load_pem(cert_pem, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(kc.CorruptFileError, match="private key"):
        kc.load_pem(cert_pem, b"garbage", password="sekret")


def test_key_does_not_match_certificate(offline_ec):
    cert, _key = offline_ec
    other = devcerts.new_private_key("ec")
    cert_pem, other_pem = devcerts.to_pem(cert, other)
    with pytest.raises(kc.KeyMismatchError, match="does not belong"):
        kc.load_pem(cert_pem, other_pem)
    # (a PKCS#12 with a foreign key cannot even be built: OpenSSL refuses to export one)


def test_pkcs12_without_private_key(offline_ec):
    from cryptography.hazmat.primitives.serialization import pkcs12
    data = pkcs12.serialize_key_and_certificates(b"x", None, offline_ec[0], None,
                                                 serialization.BestAvailableEncryption(b"x"))
    with pytest.raises(kc.MissingPrivateKeyError):
        kc.load_pkcs12(data, "x")


def test_expired_and_not_yet_valid():
    now = datetime.datetime.utcnow()
    old, old_key = devcerts.make_certificate(devcerts.OFFLINE, NIP, not_before=now - datetime.timedelta(days=800))
    expired = kc.load_pem(*devcerts.to_pem(old, old_key))
    assert expired.days_left() < 0 and not expired.is_valid_at()
    with pytest.raises(kc.CertificateExpiredError, match="expired on") as caught:
        kc.require_valid(expired)
    assert caught.value.params["valid_to"] == expired.valid_to
    with pytest.raises(kc.CertificateExpiredError):
        kc.require_offline_signer(expired)
    future, future_key = devcerts.make_certificate(devcerts.OFFLINE, NIP, not_before=now + datetime.timedelta(days=3))
    pending = kc.load_pem(*devcerts.to_pem(future, future_key))
    with pytest.raises(kc.CertificateNotYetValidError, match="not valid yet"):
        kc.require_valid(pending)
    # checking at a given moment, aware or naive UTC
    assert kc.require_valid(pending, now + datetime.timedelta(days=4)) is pending
    assert pending.is_valid_at((now + datetime.timedelta(days=4)).replace(tzinfo=UTC))


def test_days_left_counts_whole_days(offline_ec):
    record = kc.load_certificate(offline_ec[0].public_bytes(serialization.Encoding.PEM))
    assert record.days_left(record.valid_to - datetime.timedelta(hours=5)) == 0
    assert record.days_left(record.valid_to - datetime.timedelta(days=10, hours=1)) == 10
    assert record.days_left(record.valid_to + datetime.timedelta(hours=1)) == -1


def test_wrong_kind_for_the_purpose():
    cert, key = devcerts.make_certificate(devcerts.AUTHENTICATION, NIP)
    auth = kc.load_pem(*devcerts.to_pem(cert, key))
    with pytest.raises(kc.WrongKindError, match="Authentication certificate") as caught:
        kc.require_kind(auth, kc.OFFLINE)
    assert caught.value.params == {"serial": auth.serial, "required": "Offline", "actual": "Authentication"}
    with pytest.raises(kc.WrongKindError):
        kc.require_offline_signer(auth)
    with pytest.raises(ValueError, match="kind must be"):
        kc.require_kind(auth, "offline")


def test_certificates_with_both_or_neither_key_usage_have_no_kind():
    key = devcerts.new_private_key("ec")
    subject = [(NameOID.COMMON_NAME, "Dual"), (NameOID.SERIAL_NUMBER, "TINPL-" + NIP)]
    both = kc.load_certificate(custom_certificate(key, subject, dict(digital_signature=True, content_commitment=True))
                               .public_bytes(serialization.Encoding.PEM))
    assert both.kind is None and both.usages == {kc.OFFLINE, kc.AUTHENTICATION}
    with pytest.raises(kc.WrongKindError, match="exactly one type"):
        kc.require_kind(both, kc.OFFLINE)
    for usage in (None, dict(key_encipherment=True)):
        neither = kc.load_certificate(custom_certificate(key, subject, usage).public_bytes(serialization.Encoding.PEM))
        assert neither.kind is None and neither.usages == frozenset()
        with pytest.raises(kc.WrongKindError, match="neither"):
            kc.require_kind(neither, kc.AUTHENTICATION)


def test_identifiers_from_the_subject():
    key = devcerts.new_private_key("ec")
    person = kc.load_certificate(custom_certificate(
        key, [(NameOID.COMMON_NAME, "Jan Kowalski (offline)"), (NameOID.SERIAL_NUMBER, "PNOPL-85010112345")],
        dict(content_commitment=True)).public_bytes(serialization.Encoding.PEM))
    assert person.identifier_type == kc.IDENTIFIER_PESEL and person.pesel == "85010112345" and person.nip is None
    assert kc.require_identifier(person, "85010112345") is person
    seal = kc.load_certificate(custom_certificate(
        key, [(NameOID.SERIAL_NUMBER, "VATPL-1111111111")], dict(content_commitment=True))
        .public_bytes(serialization.Encoding.PEM))
    assert seal.nip == "1111111111" and seal.subject_cn == ""
    anonymous = kc.load_certificate(custom_certificate(
        key, [(NameOID.COMMON_NAME, "x"), (NameOID.SERIAL_NUMBER, "IDCPL-ABC123")], dict(content_commitment=True))
        .public_bytes(serialization.Encoding.PEM))
    assert anonymous.identifier is None and anonymous.identifiers == ()
    with pytest.raises(kc.IdentifierMismatchError, match="no NIP or PESEL"):
        kc.require_identifier(anonymous, NIP)


def test_certificate_for_another_nip(offline_ec):
    record = kc.load_pem(*devcerts.to_pem(*offline_ec))
    with pytest.raises(kc.IdentifierMismatchError, match="belongs to Nip %s, not to 1111111111" % NIP) as caught:
        kc.require_identifier(record, "1111111111")
    assert caught.value.code == "identifier_mismatch"
    with pytest.raises(kc.IdentifierMismatchError):
        kc.require_offline_signer(record, nip="1111111111")
    with pytest.raises(kc.IdentifierMismatchError):
        kc.require_identifier(record, NIP, kc.IDENTIFIER_PESEL)


def test_unsupported_key_type_is_refused():
    key = ed25519.Ed25519PrivateKey.generate()
    cert = custom_certificate(key, [(NameOID.COMMON_NAME, "ed")], dict(content_commitment=True))
    with pytest.raises(kc.UnsupportedKeyError, match="RSA or EC"):
        kc.load_certificate(cert.public_bytes(serialization.Encoding.PEM))


def test_all_errors_are_value_errors_with_codes():
    codes = set()
    for error in (kc.CorruptFileError, kc.WrongPasswordError, kc.PasswordRequiredError, kc.MissingPrivateKeyError,
                  kc.KeyMismatchError, kc.UnsupportedKeyError, kc.CertificateExpiredError,
                  kc.CertificateNotYetValidError, kc.WrongKindError, kc.IdentifierMismatchError):
        assert issubclass(error, kc.CertificateError) and issubclass(error, ValueError)
        codes.add(error.code)
    assert len(codes) == 10


def test_20_byte_serial_is_written_as_kod2_needs_it():
    """cryptography's default serial (20 random bytes) is kept whole, as KOD II carries it."""
    cert, key = devcerts.make_certificate(devcerts.OFFLINE, NIP, key_type="ec", serial=(1 << 158) | 0xABC)
    cert_pem, key_pem = devcerts.to_pem(cert, key)
    loaded = kc.load_pem(cert_pem, key_pem)
    assert loaded.serial == "40" + "00" * 17 + "0ABC"
    url = qr.check_signer(loaded.serial, loaded.private_key, loaded.certificate, NIP)
    assert "/%s/" % loaded.serial in url

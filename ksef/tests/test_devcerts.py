from cryptography.hazmat.primitives.serialization import load_pem_private_key, pkcs12

from ksef import devcerts


def test_offline_and_authentication_differ_by_key_usage():
    for kind, non_repudiation in ((devcerts.OFFLINE, True), (devcerts.AUTHENTICATION, False)):
        cert, key = devcerts.make_certificate(kind, "5265877635")
        usage = cert.extensions.get_extension_for_class(devcerts.x509.KeyUsage).value
        assert usage.content_commitment is non_repudiation
        assert usage.digital_signature is not non_repudiation
        assert len("%016X" % cert.serial_number) == 16


def test_pem_and_pkcs12_round_trip_with_password():
    cert, key = devcerts.make_certificate(devcerts.OFFLINE, "5265877635", key_type="rsa")
    _cert_pem, key_pem = devcerts.to_pem(cert, key, password="sekret")
    assert b"ENCRYPTED" in key_pem
    assert load_pem_private_key(key_pem, b"sekret").public_key().public_numbers() == key.public_key().public_numbers()
    loaded_key, loaded_cert, _extra = pkcs12.load_key_and_certificates(devcerts.to_pkcs12(cert, key, "sekret"), b"sekret")
    assert loaded_cert.serial_number == cert.serial_number

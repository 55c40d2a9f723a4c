import datetime
import json
import os
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from cryptography.x509.oid import NameOID

from ksef import crypto, devcerts, qr

D = datetime.date


def shared_dir():
    return Path(os.environ.get("KSEF_SHARED") or Path(__file__).resolve().parents[2] / ".." / "shared")


def vectors(name):
    return json.loads((shared_dir() / "ksef" / "test-vectors" / name).read_text(encoding="utf-8"))


OFFICIAL = vectors("qr-and-ksef-number-test-vectors.json")
SELF = vectors("kod2-selfgenerated-verification-vectors.json")
ENV_BY_VECTOR_KEY = {"TEST": "test", "DEMO": "demo", "PRD": "production"}


def test_base_urls_match_the_vectors():
    for key, env in ENV_BY_VECTOR_KEY.items():
        assert qr.QR_BASE[env] == OFFICIAL["qrBaseUrls"][key] == qr.base_url(env)
    assert qr.base_url("PRD") == qr.QR_BASE["production"]
    assert qr.base_url("http://127.0.0.1:8765/") == "http://127.0.0.1:8765"
    with pytest.raises(ValueError, match="unknown QR environment"):
        qr.base_url("staging")


def test_kod1_official_docs_example_from_stored_hash():
    v = OFFICIAL["official"]["kod1_docs_example"]
    issue = D.fromisoformat(v["issueDate_P_1"])
    for stored in (v["invoiceSha256_base64url"], v["invoiceSha256_base64"], bytes.fromhex(v["invoiceSha256_hex"])):
        assert qr.invoice_url_from_hash("test", v["sellerNip"], issue, stored) == v["expectedUrl"]
    assert qr.invoice_url_from_hash("test", v["sellerNip"], v["issueDate_P_1"], v["invoiceSha256_base64"]) == v["expectedUrl"]


def test_kod1_derived_vectors_from_xml_bytes_in_all_environments():
    for case in OFFICIAL["derivedFromOfficialTestInputs"]["kod1"]:
        xml = case["invoiceXml_utf8"].encode("utf-8")
        for key, expected in case["expectedUrls"].items():
            url = qr.invoice_url(ENV_BY_VECTOR_KEY[key], case["sellerNip"], D.fromisoformat(case["issueDate"]), xml)
            assert url == expected
            assert url.endswith("/" + case["issueDate_inUrl"] + "/" + case["invoiceHash_base64url_(QR_format)"])
        from_api_hash = qr.invoice_url_from_hash("test", case["sellerNip"], case["issueDate"],
                                                 case["invoiceHash_base64_(API_field_format)"])
        assert from_api_hash == case["expectedUrls"]["TEST"]


def test_kod2_official_docs_example_assembly():
    v = OFFICIAL["official"]["kod2_docs_example"]
    signed = qr.certificate_string_to_sign("test", v["contextIdentifierType"], v["contextIdentifierValue"],
                                           v["sellerNip"], v["certificateSerialNumber"], v["invoiceSha256_base64url"])
    assert signed == v["stringToSign"] == SELF["stringToSign"]
    assert v["expectedUrl"] == "https://" + signed + "/" + v["signature_base64url"]
    link = qr.parse_certificate_url(v["expectedUrl"])
    assert link.signed_part == v["stringToSign"]
    assert len(link.signature) == v["signature_lengthBytes"] == 256   # RSA-2048
    assert (link.context_type, link.context_value, link.seller_nip, link.certificate_serial) == (
        "Nip", "1111111111", "1111111111", "01F20A5D352AE590")
    assert link.base == qr.QR_BASE["test"]


def test_kod2_derived_string_to_sign_vector():
    case = OFFICIAL["derivedFromOfficialTestInputs"]["kod2_stringToSign"][0]
    inputs = case["inputs"]
    xml_hash = crypto.sha256(inputs["invoiceXml_utf8"].encode("utf-8"))
    assert qr.normalize_invoice_hash(xml_hash) == case["invoiceHash_base64url"]
    signed = qr.certificate_string_to_sign("test", inputs["contextIdentifierType"], inputs["contextIdentifierValue"],
                                           inputs["sellerNip"], "00000000000000AB", xml_hash)
    assert signed == case["stringToSign_TEST"].replace("<serial>", "00000000000000AB")


def test_selfgenerated_ec_vectors_verify_in_both_encodings():
    v = SELF["ecdsa_p256"]
    key = load_pem_public_key(v["publicKeySpkiPem"].encode(), default_backend())
    assert qr.verify_certificate_url(v["url_with_p1363"], key)
    assert qr.verify_certificate_url(v["url_with_der"], key)
    assert len(qr.parse_certificate_url(v["url_with_p1363"]).signature) == 64


def test_selfgenerated_rsa_vector_verifies():
    v = SELF["rsa2048_pss"]
    key = load_pem_public_key(v["publicKeySpkiPem"].encode(), default_backend())
    assert qr.verify_certificate_url(v["url"], key)
    other_key = load_pem_public_key(SELF["ecdsa_p256"]["publicKeySpkiPem"].encode(), default_backend())
    assert not qr.verify_certificate_url(v["url"], other_key)


def test_selfgenerated_vectors_fail_when_tampered():
    ec_key = load_pem_public_key(SELF["ecdsa_p256"]["publicKeySpkiPem"].encode(), default_backend())
    rsa_key = load_pem_public_key(SELF["rsa2048_pss"]["publicKeySpkiPem"].encode(), default_backend())
    ec_url, rsa_url = SELF["ecdsa_p256"]["url_with_p1363"], SELF["rsa2048_pss"]["url"]
    for url, key in ((ec_url, ec_key), (rsa_url, rsa_key)):
        assert not qr.verify_certificate_url(url.replace("qr-test.", "qr."), key)       # other environment
        assert not qr.verify_certificate_url(url.replace("/1111111111/01F2", "/1111111112/01F2"), key)
        # the scheme is not part of the signed text (ksef-docs ``kody-qr.md``, KOD II), so it does not matter
        assert qr.verify_certificate_url(url.replace("https://", "http://"), key)
        assert not qr.verify_certificate_url(url[:-2], key)                            # truncated signature
        assert not qr.verify_certificate_url("https://example.com/not/a/kod2", key)   # malformed


@pytest.mark.parametrize("key_type", ["ec", "rsa"])
def test_sign_then_verify_with_devcerts(key_type):
    cert, key = devcerts.make_certificate(devcerts.OFFLINE, "5265877635", key_type=key_type)
    xml = b"<Faktura>offline</Faktura>"
    url = qr.certificate_url("test", "Nip", "5265877635", "5265877635", cert.serial_number, xml, key)
    serial = "%016X" % cert.serial_number
    expected_prefix = "https://qr-test.ksef.mf.gov.pl/certificate/Nip/5265877635/5265877635/%s/%s/" % (
        serial, crypto.sha256_b64url(xml))
    assert url.startswith(expected_prefix)
    signature = crypto.b64url_decode(url[len(expected_prefix):])
    assert "=" not in url
    assert len(signature) == (64 if key_type == "ec" else 256)
    assert qr.verify_certificate_url(url, cert)                       # certificate accepted too
    assert qr.verify_certificate_url(url, key.public_key())
    tampered = url.replace("/5265877635/%s" % serial, "/5265877636/%s" % serial)
    assert not qr.verify_certificate_url(tampered, cert)
    other_cert, _other_key = devcerts.make_certificate(devcerts.OFFLINE, "5265877635", key_type=key_type)
    assert not qr.verify_certificate_url(url, other_cert)
    # the same KOD II from the stored API hash form gives the same signed prefix
    again = qr.certificate_url_from_hash("test", "Nip", "5265877635", "5265877635", serial, crypto.sha256_b64(xml), key)
    assert again.startswith(expected_prefix) and qr.verify_certificate_url(again, cert)


def test_ec_signature_is_p1363_and_verifies_as_ecdsa_sha256():
    key = devcerts.new_private_key("ec")
    message = SELF["stringToSign"]
    signature = qr.sign_kod2(message, key)
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    key.public_key().verify(der, message.encode(), ec.ECDSA(hashes.SHA256()))   # raises if wrong


def test_rsa_signature_is_pss_with_32_byte_salt():
    from cryptography.hazmat.primitives.asymmetric import padding
    key = devcerts.new_private_key("rsa")
    signature = qr.sign_kod2(SELF["stringToSign"], key)
    key.public_key().verify(signature, SELF["stringToSign"].encode(),
                            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    with pytest.raises(Exception):
        key.public_key().verify(signature, SELF["stringToSign"].encode(),
                                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=20), hashes.SHA256())


def test_custom_base_for_the_local_simulator_signs_without_scheme():
    key = devcerts.new_private_key("ec")
    url = qr.certificate_url_from_hash("http://127.0.0.1:8765", "Nip", "1111111111", "1111111111",
                                       "01F20A5D352AE590", SELF["ecdsa_p256"]["url_with_p1363"].split("/")[-2], key)
    assert url.startswith("http://127.0.0.1:8765/certificate/Nip/")
    assert qr.parse_certificate_url(url).signed_part.startswith("127.0.0.1:8765/certificate/")
    assert qr.verify_certificate_url(url, key.public_key())


@pytest.mark.parametrize("kwargs, message", [
    (dict(seller_nip="123456789"), "10 digits"),
    (dict(seller_nip="12345678901"), "10 digits"),
    (dict(seller_nip="PL12345678"), "10 digits"),
    (dict(certificate_serial="01F20A5D352AE59"), "16 hexadecimal"),
    (dict(certificate_serial="01F20A5D352AE59G"), "16 hexadecimal"),
    (dict(context_type="NIP"), "context type"),
    (dict(context_type="Pesel"), "context type"),
    (dict(context_type="InternalId", context_value="1111111111"), "InternalId"),
    (dict(context_type="PeppolId", context_value="PPL12345"), "PeppolId"),
    (dict(invoice_hash="abc"), "SHA-256"),
    (dict(invoice_hash="not base64!"), "Base64"),
])
def test_invalid_kod2_inputs_are_refused_clearly(kwargs, message):
    args = dict(environment="test", context_type="Nip", context_value="1111111111", seller_nip="1111111111",
                certificate_serial="01F20A5D352AE590", invoice_hash="UtQp9Gpc51y-u3xApZjIjgkpZ01js-J8KflSPW8WzIE")
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        qr.certificate_string_to_sign(**args)


def test_valid_other_context_types_and_serial_forms():
    h = "UtQp9Gpc51y-u3xApZjIjgkpZ01js-J8KflSPW8WzIE"
    assert "/InternalId/1111111111-00001/" in qr.certificate_string_to_sign("test", "InternalId", "1111111111-00001", "1111111111", "01f20a5d352ae590", h)
    assert "/NipVatUe/1111111111-DE123456789/" in qr.certificate_string_to_sign("test", "NipVatUe", "1111111111-DE123456789", "1111111111", 0x01F20A5D352AE590, h)
    assert "/PeppolId/PPL123456/" in qr.certificate_string_to_sign("test", "PeppolId", "PPL123456", "1111111111", "01F20A5D352AE590", h)
    assert qr.normalize_serial(0xAB) == "00000000000000AB"
    # Longer than KSeF's own 8 bytes: the big-endian bytes of the DER INTEGER, as X509Certificate2.SerialNumber
    assert qr.normalize_serial(1 << 64) == "010000000000000000"
    assert qr.normalize_serial(0x80 << 64) == "00800000000000000000"     # sign byte, as in DER
    assert qr.normalize_serial((1 << 159) - 1) == "7F" + "FF" * 19       # 20 bytes, the X.509 maximum
    for bad in (1 << 159, 0, -5):
        with pytest.raises(qr.Kod2SerialError):
            qr.normalize_serial(bad)
    assert qr.normalize_serial("3a" * 20) == "3A" * 20
    with pytest.raises(qr.Kod2SerialError):
        qr.normalize_serial("3A" * 21)


def test_kod2_with_a_20_byte_serial_certificate():
    """A certificate made the way cryptography and most CAs make them (20 random bytes of serial)
    gives a KOD II that parses, verifies and carries the serial's full hex (issue 15)."""
    key = devcerts.new_private_key("ec")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Offline")])
    now = datetime.datetime.now(datetime.timezone.utc)
    serial = x509.random_serial_number() | (1 << 158)   # 20 bytes for sure
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(serial).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    text = qr.serial_hex(cert.serial_number)
    assert len(text) == 40 and int(text, 16) == serial
    url = qr.check_signer(text, key, cert, "5265877635")
    assert qr.parse_certificate_url(url).certificate_serial == text
    assert qr.verify_certificate_url(url, cert)
    other = devcerts.new_private_key("ec")
    with pytest.raises(qr.Kod2KeyError, match="does not verify"):
        qr.check_signer(text, other, cert)
    with pytest.raises(qr.Kod2KeyError, match="P-256"):
        qr.check_signer(text, ec.generate_private_key(ec.SECP384R1()), cert)


def test_kod1_input_validation():
    with pytest.raises(ValueError, match="exact file bytes"):
        qr.invoice_url("test", "1111111111", D(2026, 2, 1), "<Faktura/>")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        qr.invoice_url("test", "1111111111", "01-02-2026", b"<Faktura/>")
    with pytest.raises(ValueError, match="10 digits"):
        qr.invoice_url("test", "111-111-11-11", D(2026, 2, 1), b"<Faktura/>")


def test_unsuitable_signing_keys_are_refused():
    weak_rsa = rsa.generate_private_key(65537, 1024, default_backend())
    with pytest.raises(ValueError, match="2048"):
        qr.sign_kod2("x", weak_rsa)
    p384 = ec.generate_private_key(ec.SECP384R1(), default_backend())
    with pytest.raises(ValueError, match="P-256"):
        qr.sign_kod2("x", p384)
    with pytest.raises(ValueError, match="public key"):
        qr.verify_certificate_url(SELF["rsa2048_pss"]["url"], "not a key")


def test_kod1_for_a_thousand_invoices_is_fast():
    xml = b"<Faktura>" + b"x" * 20000 + b"</Faktura>"
    started = time.perf_counter()
    urls = {qr.invoice_url("production", "5265877635", D(2026, 2, 1), xml + str(i).encode()) for i in range(1000)}
    assert len(urls) == 1000
    assert time.perf_counter() - started < 2.0


def png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def zbar_decode(tmp_path, data, suffix=".png"):
    zbarimg = shutil.which("zbarimg")
    if zbarimg is None:
        pytest.skip("zbarimg (Debian package zbar-tools) is not installed")
    path = tmp_path / ("code" + suffix)
    path.write_bytes(data)
    done = subprocess.run([zbarimg, "--raw", "-q", "-Sdisable", "-Sqrcode.enable", str(path)], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode("utf-8").strip()


def test_official_example_pngs_decode_to_the_vector_urls(tmp_path):
    for name, key in (("qr-offline.png", "kod1_docs_example"), ("qr-cert.png", "kod2_docs_example")):
        data = (shared_dir() / "ksef" / "qr" / name).read_bytes()
        assert zbar_decode(tmp_path, data) == OFFICIAL["official"][key]["expectedUrl"]


def test_kod1_png_decodes_back_and_uses_error_correction_m(tmp_path):
    url = OFFICIAL["official"]["kod1_docs_example"]["expectedUrl"]
    data = qr.qr_png(url)
    assert zbar_decode(tmp_path, data) == url
    # 104 bytes fit version 5 at level L, need version 6 (41 modules) at M, version 8 at Q
    assert qr.qr_modules(url) == 41
    assert png_size(data) == ((41 + 2 * 4) * 10, (41 + 2 * 4) * 10)
    assert png_size(qr.qr_png(url, box_size=4, border=2)) == ((41 + 4) * 4,) * 2


@pytest.mark.parametrize("key_type", ["ec", "rsa"])
def test_kod2_png_decodes_back(tmp_path, key_type):
    cert, key = devcerts.make_certificate(devcerts.OFFLINE, "5265877635", key_type=key_type)
    url = qr.certificate_url("demo", "Nip", "5265877635", "5265877635", cert.serial_number, b"<Faktura/>", key)
    assert zbar_decode(tmp_path, qr.qr_png(url)) == url
    assert qr.verify_certificate_url(url, cert)


def test_svg_is_an_svg_document():
    svg = qr.qr_svg(OFFICIAL["official"]["kod1_docs_example"]["expectedUrl"])
    assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg and b"<path" in svg


def test_png_parameters_are_validated():
    with pytest.raises(ValueError, match="box_size"):
        qr.qr_png("https://qr.ksef.mf.gov.pl/x", box_size=0)
    with pytest.raises(ValueError, match="border"):
        qr.qr_png("https://qr.ksef.mf.gov.pl/x", border=-1)
    with pytest.raises(ValueError, match="non-empty"):
        qr.qr_png("")

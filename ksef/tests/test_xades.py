import base64
import datetime

import pytest
from cryptography.hazmat.primitives import serialization
from lxml import etree

from ksef import devcerts, xades

NIP = "5265877635"
AUTH_NS = "http://ksef.mf.gov.pl/auth/token/2.1"
REQUEST = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<AuthTokenRequest xmlns="%s">\n'
    "  <Challenge>20250625-CR-20F5EE4000-DA48AE4124-46</Challenge>\n"
    "  <ContextIdentifier><Nip>%s</Nip></ContextIdentifier>\n"
    "  <SubjectIdentifierType>certificateSubject</SubjectIdentifierType>\n"
    "</AuthTokenRequest>\n" % (AUTH_NS, NIP)
).encode()
NS = {"ds": xades.DS_NS, "xades": xades.XADES_NS, "a": AUTH_NS}


@pytest.fixture(scope="module", params=["ec", "rsa"])
def credentials(request):
    return devcerts.make_certificate(devcerts.AUTHENTICATION, NIP, key_type=request.param)


def _rewrite(signed, xpath, change):
    root = etree.fromstring(signed)
    change(root.xpath(xpath, namespaces=NS)[0])
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")


def test_round_trip_returns_the_signing_certificate(credentials):
    certificate, key = credentials
    signed = xades.sign_auth_token_request(REQUEST, certificate, key)
    verified = xades.verify_signed_xml(signed)
    assert verified.fingerprint(xades.hashes.SHA256()) == certificate.fingerprint(xades.hashes.SHA256())


def test_signature_structure_is_enveloped_xades_bes(credentials):
    certificate, key = credentials
    when = datetime.datetime(2026, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc)
    root = etree.fromstring(xades.sign_auth_token_request(REQUEST, certificate, key, signing_time=when))
    signature = root[-1]
    assert signature.tag == "{%s}Signature" % xades.DS_NS
    references = signature.findall("ds:SignedInfo/ds:Reference", NS)
    assert [r.get("URI") for r in references][0] == ""
    assert [t.get("Algorithm") for t in references[0].findall("ds:Transforms/ds:Transform", NS)] == \
        [xades.ENVELOPED, xades.EXC_C14N]
    assert references[1].get("Type") == xades.SIGNED_PROPERTIES_TYPE
    properties_id = references[1].get("URI")[1:]
    signed_properties = root.xpath("//xades:SignedProperties", namespaces=NS)[0]
    assert signed_properties.get("Id") == properties_id
    assert root.findtext(".//xades:SigningTime", namespaces=NS) == "2026-02-03T04:05:06Z"
    assert xades.signing_time(etree.tostring(root)) == when
    der = certificate.public_bytes(serialization.Encoding.DER)
    assert root.findtext(".//xades:SigningCertificateV2/xades:Cert/xades:CertDigest/ds:DigestValue",
                         namespaces=NS) == base64.b64encode(xades._digest(der)).decode()
    method = signature.find("ds:SignedInfo/ds:SignatureMethod", NS).get("Algorithm")
    value = base64.b64decode(signature.findtext("ds:SignatureValue", namespaces=NS))
    if isinstance(key, xades.ec.EllipticCurvePrivateKey):
        assert method == xades.ECDSA_SHA256
        assert len(value) == 64  # raw R||S for P-256, not DER
    else:
        assert method == xades.RSA_SHA256
        assert len(value) == 256


def test_issuer_serial_v2_is_der_of_issuer_and_serial(credentials):
    certificate, _key = credentials
    der = xades.issuer_serial_v2(certificate)
    issuer = certificate.issuer.public_bytes(xades.default_backend())
    assert der[0] == 0x30 and issuer in der
    assert der.endswith(xades._der_integer(certificate.serial_number))


@pytest.mark.parametrize("xpath, text", [
    ("//a:Nip", "1111111111"),                         # the signed document
    ("//xades:SigningTime", "2020-01-01T00:00:00Z"),   # the signed properties
], ids=["document", "signed_properties"])
def test_tampering_is_detected(credentials, xpath, text):
    certificate, key = credentials
    signed = xades.sign_auth_token_request(REQUEST, certificate, key)
    tampered = _rewrite(signed, xpath, lambda e: setattr(e, "text", text))
    with pytest.raises(xades.XadesError, match="digest mismatch"):
        xades.verify_signed_xml(tampered)


def test_tampered_signed_info_breaks_the_signature_value(credentials):
    certificate, key = credentials
    signed = xades.sign_auth_token_request(REQUEST, certificate, key)
    # Recompute the document digest after changing the content: only the signature value can tell.
    root = etree.fromstring(signed)
    root.find("a:Challenge", NS).text = "20250625-CR-20F5EE4000-DA48AE4124-47"
    signature = root.find("ds:Signature", NS)
    digest = xades._digest(xades._enveloped_document_c14n(root.getroottree(), signature))
    signature.find("ds:SignedInfo/ds:Reference/ds:DigestValue", NS).text = base64.b64encode(digest).decode()
    with pytest.raises(xades.XadesError, match="signature value does not verify"):
        xades.verify_signed_xml(etree.tostring(root))


def test_wrong_key_is_detected(credentials):
    certificate, _key = credentials
    other_key = devcerts.new_private_key("ec" if isinstance(_key, xades.ec.EllipticCurvePrivateKey) else "rsa")
    signed = xades.sign_auth_token_request(REQUEST, certificate, other_key)
    with pytest.raises(xades.XadesError, match="signature value does not verify"):
        xades.verify_signed_xml(signed)


def test_swapped_keyinfo_certificate_is_detected(credentials):
    certificate, key = credentials
    impostor, _ = devcerts.make_certificate(devcerts.AUTHENTICATION, NIP, private_key=key)
    signed = xades.sign_auth_token_request(REQUEST, certificate, key)
    impostor_b64 = base64.b64encode(impostor.public_bytes(serialization.Encoding.DER)).decode()
    swapped = _rewrite(signed, "//ds:X509Certificate", lambda e: setattr(e, "text", impostor_b64))
    with pytest.raises(xades.XadesError, match="signing certificate digest"):
        xades.verify_signed_xml(swapped)


def test_whitespace_outside_the_signature_is_part_of_the_signed_document(credentials):
    certificate, key = credentials
    signed = xades.sign_auth_token_request(REQUEST, certificate, key)
    assert xades.verify_signed_xml(signed)
    changed = signed.replace(b"<Challenge>", b"<Challenge >").replace(b"\n  <ContextIdentifier>", b"\n <ContextIdentifier>")
    with pytest.raises(xades.XadesError):
        xades.verify_signed_xml(changed)


def test_unsigned_and_malformed_documents_are_rejected():
    with pytest.raises(xades.XadesError, match="exactly one ds:Signature"):
        xades.verify_signed_xml(REQUEST)
    with pytest.raises(xades.XadesError, match="not well-formed"):
        xades.verify_signed_xml(b"<AuthTokenRequest>")


def test_signature_without_whole_document_reference_is_rejected(credentials):
    certificate, key = credentials
    signed = xades.sign_auth_token_request(REQUEST, certificate, key)
    root = etree.fromstring(signed)
    first = root.find("ds:Signature/ds:SignedInfo/ds:Reference", NS)
    first.getparent().remove(first)
    with pytest.raises(xades.XadesError, match="no reference covers the whole document"):
        xades.verify_signed_xml(etree.tostring(root))


def test_small_rsa_keys_are_refused():
    small_key = xades.rsa.generate_private_key(65537, 1024, xades.default_backend())
    certificate, _ = devcerts.make_certificate(devcerts.AUTHENTICATION, NIP, private_key=small_key)
    with pytest.raises(xades.XadesError, match="2048"):
        xades.sign_auth_token_request(REQUEST, certificate, small_key)

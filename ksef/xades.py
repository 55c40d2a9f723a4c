"""Enveloped XAdES-BES signatures for the KSeF ``AuthTokenRequest`` (the Ministry's
ksef-docs ``auth/podpis-xades.md``).

Written from the W3C XML-DSig and ETSI XAdES rules with lxml + cryptography only:

- ``ds:Signature`` is appended as the last child of the document element (enveloped);
- ``SignedInfo`` has two references: the whole document (``URI=""``, enveloped-signature
  transform then exclusive C14N) and the XAdES ``SignedProperties`` (exclusive C14N);
- ``SignedProperties`` carry ``SigningTime`` and ``SigningCertificateV2`` (SHA-256 digest of the
  certificate plus the DER ``IssuerSerialV2``);
- RSA keys sign with RSA-SHA256 (PKCS#1 v1.5); EC keys with ECDSA-SHA256, the ``SignatureValue``
  being R||S (each half padded to the curve size), as XML-DSig and KSeF require.

``verify_signed_xml`` is the reverse used by the simulator: it checks every reference digest,
that one reference covers the whole document, that the signed XAdES properties name the
certificate in ``KeyInfo``, and the signature value itself.  It returns that certificate.
"""
import base64
import datetime
import uuid

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from lxml import etree

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
XADES_NS = "http://uri.etsi.org/01903/v1.3.2#"
EC_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
EXC_C14N_WITH_COMMENTS = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_WITH_COMMENTS = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SIGNED_PROPERTIES_TYPE = "http://uri.etsi.org/01903#SignedProperties"

_DIGESTS = {
    SHA256: hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmlenc#sha512": hashes.SHA512,
}
_SIGNATURE_METHODS = {
    RSA_SHA256: ("rsa", hashes.SHA256),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": ("rsa", hashes.SHA384),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": ("rsa", hashes.SHA512),
    ECDSA_SHA256: ("ec", hashes.SHA256),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": ("ec", hashes.SHA384),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": ("ec", hashes.SHA512),
}
_C14N_METHODS = {
    EXC_C14N: (True, False),
    EXC_C14N_WITH_COMMENTS: (True, True),
    C14N: (False, False),
    C14N_WITH_COMMENTS: (False, True),
}


class XadesError(Exception):
    """The XML is not a valid signature we can check, or the signature does not verify."""


def _ds(tag):
    return "{%s}%s" % (DS_NS, tag)


def _xades(tag):
    return "{%s}%s" % (XADES_NS, tag)


def _digest(data, hash_class=hashes.SHA256):
    hasher = hashes.Hash(hash_class(), default_backend())
    hasher.update(data)
    return hasher.finalize()


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _b64decode(text):
    try:
        return base64.b64decode("".join((text or "").split()), validate=True)
    except (ValueError, TypeError) as exc:
        raise XadesError("invalid Base64 content: %s" % exc) from exc


def _safe_parser():
    # No DTDs, entities or network: the XML comes from outside.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           remove_comments=False, huge_tree=False)


def _canonicalize(node, exclusive=True, with_comments=False, inclusive_prefixes=None):
    return etree.tostring(node, method="c14n", exclusive=exclusive, with_comments=with_comments,
                          inclusive_ns_prefixes=inclusive_prefixes or None)


# --- DER helpers for IssuerSerialV2 (RFC 5035): SEQUENCE { GeneralNames, INTEGER } -------------

def _der_length(length):
    if length < 0x80:
        return bytes([length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


def _der(tag, content):
    return bytes([tag]) + _der_length(len(content)) + content


def _der_integer(value):
    encoded = value.to_bytes(value.bit_length() // 8 + 1, "big")  # leading 0 keeps it positive
    return _der(0x02, encoded)


def issuer_serial_v2(certificate):
    """DER of ``IssuerSerial`` with the issuer as a directoryName GeneralName."""
    issuer_name = certificate.issuer.public_bytes(default_backend())
    general_names = _der(0x30, _der(0xA4, issuer_name))  # [4] EXPLICIT Name
    return _der(0x30, general_names + _der_integer(certificate.serial_number))


# --- signing -------------------------------------------------------------------------------

def _signature_method(private_key):
    if isinstance(private_key, rsa.RSAPrivateKey):
        if private_key.key_size < 2048:
            raise XadesError("KSeF requires RSA keys of at least 2048 bits")
        return RSA_SHA256
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        if private_key.curve.key_size < 256:
            raise XadesError("KSeF requires EC keys on a curve of at least 256 bits")
        return ECDSA_SHA256
    raise XadesError("unsupported private key type %s" % type(private_key).__name__)


def _sign_bytes(private_key, data):
    if isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    der_signature = private_key.sign(data, ec.ECDSA(hashes.SHA256()))
    r, s = utils.decode_dss_signature(der_signature)
    size = (private_key.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def _sub(parent, tag, text=None, **attributes):
    element = etree.SubElement(parent, tag, **attributes)
    if text is not None:
        element.text = text
    return element


def _reference(signed_info, uri, transforms, digest_value="", **attributes):
    reference = _sub(signed_info, _ds("Reference"), URI=uri, **attributes)
    transforms_element = _sub(reference, _ds("Transforms"))
    for algorithm in transforms:
        _sub(transforms_element, _ds("Transform"), Algorithm=algorithm)
    _sub(reference, _ds("DigestMethod"), Algorithm=SHA256)
    return _sub(reference, _ds("DigestValue"), digest_value)


def sign_xml(xml_bytes, certificate, private_key, signing_time=None):
    """Return ``xml_bytes`` with an enveloped XAdES-BES signature appended to its root."""
    try:
        tree = etree.fromstring(xml_bytes, _safe_parser()).getroottree()
    except etree.XMLSyntaxError as exc:
        raise XadesError("the document to sign is not well-formed XML: %s" % exc) from exc
    root = tree.getroot()
    signature_method = _signature_method(private_key)
    suffix = uuid.uuid4().hex
    signature_id = "Signature-%s" % suffix
    properties_id = "SignedProperties-%s" % suffix
    signing_time = signing_time or datetime.datetime.now(datetime.timezone.utc)
    certificate_der = certificate.public_bytes(serialization.Encoding.DER)

    signature = etree.SubElement(root, _ds("Signature"), Id=signature_id, nsmap={"ds": DS_NS})
    signed_info = _sub(signature, _ds("SignedInfo"))
    _sub(signed_info, _ds("CanonicalizationMethod"), Algorithm=EXC_C14N)
    _sub(signed_info, _ds("SignatureMethod"), Algorithm=signature_method)
    document_digest = _reference(signed_info, "", [ENVELOPED, EXC_C14N], Id="Reference-%s" % suffix)
    properties_digest = _reference(signed_info, "#" + properties_id, [EXC_C14N],
                                   Type=SIGNED_PROPERTIES_TYPE)
    signature_value = _sub(signature, _ds("SignatureValue"), Id="SignatureValue-%s" % suffix)
    key_info = _sub(signature, _ds("KeyInfo"))
    _sub(_sub(key_info, _ds("X509Data")), _ds("X509Certificate"), _b64(certificate_der))

    signature_object = _sub(signature, _ds("Object"))
    qualifying = etree.SubElement(signature_object, _xades("QualifyingProperties"),
                                  Target="#" + signature_id, nsmap={"xades": XADES_NS})
    signed_properties = _sub(qualifying, _xades("SignedProperties"), Id=properties_id)
    signature_properties = _sub(signed_properties, _xades("SignedSignatureProperties"))
    _sub(signature_properties, _xades("SigningTime"),
         signing_time.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    cert = _sub(_sub(signature_properties, _xades("SigningCertificateV2")), _xades("Cert"))
    cert_digest = _sub(cert, _xades("CertDigest"))
    _sub(cert_digest, _ds("DigestMethod"), Algorithm=SHA256)
    _sub(cert_digest, _ds("DigestValue"), _b64(_digest(certificate_der)))
    _sub(cert, _xades("IssuerSerialV2"), _b64(issuer_serial_v2(certificate)))

    properties_digest.text = _b64(_digest(_canonicalize(signed_properties)))
    document_digest.text = _b64(_digest(_enveloped_document_c14n(tree, signature)))
    signature_value.text = _b64(_sign_bytes(private_key, _canonicalize(signed_info)))
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


def sign_auth_token_request(xml_bytes, certificate, private_key, signing_time=None):
    """Sign a KSeF ``AuthTokenRequest`` for ``POST /auth/xades-signature``."""
    return sign_xml(xml_bytes, certificate, private_key, signing_time=signing_time)


# --- verification --------------------------------------------------------------------------

def _enveloped_document_c14n(tree, signature, exclusive=True, with_comments=False, prefixes=None):
    """The whole document without ``signature`` (enveloped-signature transform), canonicalized."""
    # Find the same element in a copy by its child-index path (prefix-free, unlike getpath).
    steps = []
    node = signature
    while node.getparent() is not None:
        steps.append(node.getparent().index(node))
        node = node.getparent()
    copy = etree.fromstring(etree.tostring(tree), _safe_parser()).getroottree()
    twin = copy.getroot()
    for step in reversed(steps):
        twin = twin[step]
    parent = twin.getparent()
    # lxml drops an element's tail with it; the tail is the parent's text, keep it.
    if twin.tail:
        previous = twin.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + twin.tail
        else:
            parent.text = (parent.text or "") + twin.tail
    parent.remove(twin)
    return _canonicalize(copy, exclusive, with_comments, prefixes)


def _find_by_id(tree, identifier):
    matches = tree.xpath("//*[@Id=$v or @ID=$v or @id=$v]", v=identifier)
    if len(matches) != 1:
        raise XadesError("reference #%s matches %d elements" % (identifier, len(matches)))
    return matches[0]


def _c14n_parameters(transform):
    algorithm = transform.get("Algorithm")
    if algorithm not in _C14N_METHODS:
        raise XadesError("unsupported transform %s" % algorithm)
    exclusive, with_comments = _C14N_METHODS[algorithm]
    inclusive = transform.find("{%s}InclusiveNamespaces" % EC_NS)
    prefixes = inclusive.get("PrefixList", "").split() if inclusive is not None else None
    return exclusive, with_comments, prefixes


def _signed_info_c14n(signature):
    element = signature.find("%s/%s" % (_ds("SignedInfo"), _ds("CanonicalizationMethod")))
    algorithm = element.get("Algorithm") if element is not None else None
    return _C14N_METHODS.get(algorithm, (False, False))[0]


def _reference_candidates(tree, signature, reference):
    """The octets a reference may digest, and whether it covers the whole document.

    Without an explicit C14N transform XML-DSig says inclusive C14N; some signers use the
    SignedInfo method instead, so both are tried (each is a faithful image of the same nodes).
    """
    uri = reference.get("URI")
    transforms = reference.findall("%s/%s" % (_ds("Transforms"), _ds("Transform")))
    enveloped = any(t.get("Algorithm") == ENVELOPED for t in transforms)
    c14n_transforms = [t for t in transforms if t.get("Algorithm") != ENVELOPED]
    if len(c14n_transforms) > 1:
        raise XadesError("more than one canonicalization transform in a reference")
    if c14n_transforms:
        exclusive, _comments, prefixes = _c14n_parameters(c14n_transforms[0])
        variants = [(exclusive, prefixes)]
    else:
        variants = [(False, None)]
        if _signed_info_c14n(signature):
            variants.append((True, None))
    # A same-document URI never keeps comments (XML-DSig 4.3.3.3).
    if uri == "":
        if enveloped:
            return [_enveloped_document_c14n(tree, signature, ex, False, pf) for ex, pf in variants], True
        return [_canonicalize(tree, ex, False, pf) for ex, pf in variants], True
    if uri and uri.startswith("#"):
        if enveloped:
            raise XadesError("enveloped transform on a fragment reference is not supported")
        target = _find_by_id(tree, uri[1:])
        return [_canonicalize(target, ex, False, pf) for ex, pf in variants], False
    raise XadesError("unsupported reference URI %r (only same-document references)" % uri)


def _check_reference(tree, signature, reference):
    digest_method = reference.find(_ds("DigestMethod"))
    algorithm = digest_method.get("Algorithm") if digest_method is not None else None
    if algorithm not in _DIGESTS:
        raise XadesError("unsupported digest method %s" % algorithm)
    candidates, whole_document = _reference_candidates(tree, signature, reference)
    expected = _b64decode(reference.findtext(_ds("DigestValue")))
    if not any(_digest(data, _DIGESTS[algorithm]) == expected for data in candidates):
        raise XadesError("digest mismatch for reference URI=%r: the signed content was changed"
                         % reference.get("URI"))
    return whole_document


def _key_info_certificate(signature):
    texts = signature.xpath("ds:KeyInfo/ds:X509Data/ds:X509Certificate/text()",
                            namespaces={"ds": DS_NS})
    if not texts:
        raise XadesError("the signature carries no X509Certificate in KeyInfo")
    der = _b64decode(texts[0])
    try:
        return x509.load_der_x509_certificate(der, default_backend()), der
    except ValueError as exc:
        raise XadesError("the KeyInfo certificate cannot be read: %s" % exc) from exc


def _check_signing_certificate(signed_properties, certificate_der):
    """XAdES binds the certificate: one SigningCertificate(V2)/Cert must digest to it."""
    certs = signed_properties.xpath(
        ".//xades:SignedSignatureProperties/xades:SigningCertificateV2/xades:Cert"
        " | .//xades:SignedSignatureProperties/xades:SigningCertificate/xades:Cert",
        namespaces={"xades": XADES_NS})
    if not certs:
        raise XadesError("SignedProperties name no SigningCertificate(V2)")
    for cert in certs:
        method = cert.find("%s/%s" % (_xades("CertDigest"), _ds("DigestMethod")))
        value = cert.findtext("%s/%s" % (_xades("CertDigest"), _ds("DigestValue")))
        hash_class = _DIGESTS.get(method.get("Algorithm") if method is not None else None)
        if hash_class is None and method is not None \
                and method.get("Algorithm") == "http://www.w3.org/2000/09/xmldsig#sha1":
            hash_class = hashes.SHA1
        if hash_class and value and _digest(certificate_der, hash_class) == _b64decode(value):
            return
    raise XadesError("the signing certificate digest does not match the KeyInfo certificate")


def _check_signature_value(signed_info, signature, certificate):
    method_element = signed_info.find(_ds("SignatureMethod"))
    method = method_element.get("Algorithm") if method_element is not None else None
    if method not in _SIGNATURE_METHODS:
        raise XadesError("unsupported signature method %s" % method)
    key_kind, hash_class = _SIGNATURE_METHODS[method]
    c14n_element = signed_info.find(_ds("CanonicalizationMethod"))
    c14n_method = c14n_element.get("Algorithm") if c14n_element is not None else None
    if c14n_method not in _C14N_METHODS:
        raise XadesError("unsupported canonicalization method %s" % c14n_method)
    exclusive, with_comments = _C14N_METHODS[c14n_method]
    inclusive = c14n_element.find("{%s}InclusiveNamespaces" % EC_NS)
    prefixes = inclusive.get("PrefixList", "").split() if inclusive is not None else None
    data = _canonicalize(signed_info, exclusive, with_comments, prefixes)
    value = _b64decode(signature.findtext(_ds("SignatureValue")))
    public_key = certificate.public_key()
    try:
        if key_kind == "rsa":
            if not isinstance(public_key, rsa.RSAPublicKey):
                raise XadesError("RSA signature method but the certificate key is not RSA")
            public_key.verify(value, data, padding.PKCS1v15(), hash_class())
        else:
            if not isinstance(public_key, ec.EllipticCurvePublicKey):
                raise XadesError("ECDSA signature method but the certificate key is not EC")
            size = (public_key.curve.key_size + 7) // 8
            if len(value) != 2 * size:
                raise XadesError("ECDSA SignatureValue must be R||S of %d bytes" % (2 * size))
            r, s = int.from_bytes(value[:size], "big"), int.from_bytes(value[size:], "big")
            public_key.verify(utils.encode_dss_signature(r, s), data, ec.ECDSA(hash_class()))
    except InvalidSignature as exc:
        raise XadesError("the signature value does not verify with the KeyInfo certificate") from exc


def verify_signed_xml(xml_bytes):
    """Verify an enveloped XAdES signature over the whole document; return its certificate.

    Raises ``XadesError`` when the XML is malformed, the signature is missing, a reference
    digest or the signature value does not verify, no reference covers the whole document,
    or the XAdES signed properties do not bind the KeyInfo certificate.
    """
    try:
        root = etree.fromstring(xml_bytes, _safe_parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise XadesError("not well-formed XML: %s" % exc) from exc
    tree = root.getroottree()
    signatures = root.findall(_ds("Signature"))
    if len(signatures) != 1:
        raise XadesError("expected exactly one ds:Signature under the document element, found %d"
                         % len(signatures))
    signature = signatures[0]
    signed_info = signature.find(_ds("SignedInfo"))
    if signed_info is None:
        raise XadesError("ds:Signature has no SignedInfo")
    references = signed_info.findall(_ds("Reference"))
    if not references:
        raise XadesError("SignedInfo has no Reference")
    covers_document = False
    signed_properties = None
    for reference in references:
        covers_document |= _check_reference(tree, signature, reference)
        if reference.get("Type") == SIGNED_PROPERTIES_TYPE:
            signed_properties = _find_by_id(tree, reference.get("URI", "")[1:])
    if not covers_document:
        raise XadesError("no reference covers the whole document (URI=\"\")")
    if signed_properties is None or signed_properties.tag != _xades("SignedProperties"):
        raise XadesError("no signed reference to XAdES SignedProperties")
    certificate, certificate_der = _key_info_certificate(signature)
    _check_signing_certificate(signed_properties, certificate_der)
    _check_signature_value(signed_info, signature, certificate)
    return certificate


def signing_time(xml_bytes):
    """The XAdES ``SigningTime`` of a signed document as an aware datetime, or None."""
    root = etree.fromstring(xml_bytes, _safe_parser())
    text = root.findtext(".//%s" % _xades("SigningTime"))
    if not text:
        return None
    text = text.strip().replace("Z", "+00:00")
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        return None

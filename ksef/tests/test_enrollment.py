"""KSeF certificates requested from the client: CSR, enrollment, retrieve, query, revoke, limits,
against the simulator over real HTTP with the add-on's own client (``ksef.client``)."""
import base64

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ksef import certificates, devcerts, enrollment, errors
from ksef.client import KsefClient
from ksef.simulator import ratelimit
from ksef.simulator.testing import SAMPLE_SELLER_NIP

TOKEN = "enrollment-test-token"
OTHER_NIP = "3861610227"


def _xades_client(base_url, seal=None, nip=SAMPLE_SELLER_NIP):
    certificate, key = seal or enrollment.self_signed_seal(nip, "Firma Testowa Sp. z o.o.")
    client = KsefClient(base_url=base_url + "/v2", poll_interval=0.05, timeout=10)
    client.authenticate_with_certificate("Nip", nip, certificate, key, timeout=10)
    return client


def _token_client(base_url):
    client = KsefClient(base_url=base_url + "/v2", poll_interval=0.05, timeout=10)
    client.authenticate_with_token("Nip", SAMPLE_SELLER_NIP, TOKEN, timeout=10)
    return client


def _obtain(client, certificate_type, algorithm=enrollment.KEY_EC_P256, name="Certyfikat testowy"):
    key = enrollment.generate_private_key(algorithm)
    data = enrollment.enrollment_data(client)
    reference = enrollment.enroll(client, name, certificate_type, enrollment.build_csr(data, key))
    status = enrollment.wait_for_enrollment(client, reference, timeout=10, interval=0.05)
    assert status.issued, status
    der, kind, _name = enrollment.retrieve(client, [status.serial])[status.serial]
    assert kind == certificate_type
    return certificates.load_pem(der, enrollment.private_key_pem(key))


@pytest.fixture(autouse=True)
def _reset(base_url):
    requests.post(base_url + "/_control/reset", timeout=10)


def test_ec_and_rsa_keys_and_csr_carry_exactly_the_enrollment_data(base_url):
    client = _xades_client(base_url)
    data = enrollment.enrollment_data(client)
    assert data.nip == SAMPLE_SELLER_NIP and data.get("countryName") == "PL"
    for algorithm, key_class in ((enrollment.KEY_EC_P256, ec.EllipticCurvePrivateKey),
                                 (enrollment.KEY_RSA_2048, rsa.RSAPrivateKey)):
        key = enrollment.generate_private_key(algorithm)
        assert isinstance(key, key_class)
        csr = x509.load_der_x509_csr(enrollment.build_csr(data, key), default_backend())
        assert csr.is_signature_valid and csr.subject == data.subject()
    with pytest.raises(enrollment.EnrollmentError):
        enrollment.generate_private_key("dsa_1024")


def test_both_certificates_issued_then_the_authentication_one_logs_in(base_url):
    client = _xades_client(base_url)
    auth = _obtain(client, "Authentication")
    offline = _obtain(client, "Offline", algorithm=enrollment.KEY_RSA_2048)
    assert auth.kind == certificates.AUTHENTICATION and offline.kind == certificates.OFFLINE
    assert auth.nip == offline.nip == SAMPLE_SELLER_NIP
    assert auth.subject_cn.endswith("(uwierzytelnienie)") and offline.subject_cn.endswith("(offline)")
    assert len(auth.serial) == 16 and auth.key_type == "EC" and offline.key_type == "RSA"
    assert 729 <= (auth.valid_to - auth.valid_from).days <= 731
    certificates.require_offline_signer(offline, nip=SAMPLE_SELLER_NIP)
    # the new Authentication certificate logs in on its own and may request again
    own = _xades_client(base_url, seal=(auth.certificate, auth.private_key))
    assert enrollment.enrollment_data(own).nip == SAMPLE_SELLER_NIP
    listed = {item.serial: item for item in enrollment.query(own)}
    assert {listed[auth.serial].status, listed[offline.serial].status} == {"Active"}
    assert listed[offline.serial].certificate_type == "Offline"
    assert listed[auth.serial].last_use is not None  # KSeF records the login


def test_revoked_certificate_is_listed_so_and_no_longer_logs_in(base_url):
    client = _xades_client(base_url)
    auth = _obtain(client, "Authentication")
    offline = _obtain(client, "Offline")
    enrollment.revoke(client, offline.serial, "KeyCompromise")
    assert [item.status for item in enrollment.query(client, serial=offline.serial)] == ["Revoked"]
    assert [item.serial for item in enrollment.query(client, status="Active")] == [auth.serial]
    with pytest.raises(errors.KsefError) as again:
        enrollment.revoke(client, offline.serial)
    assert again.value.code == 25009
    enrollment.revoke(client, auth.serial)
    with pytest.raises(errors.AuthenticationFailed) as refused:
        _xades_client(base_url, seal=(auth.certificate, auth.private_key))
    assert refused.value.code == 460


def test_token_login_cannot_request_or_revoke(base_url):
    client = _token_client(base_url)
    with pytest.raises(errors.KsefError) as no_data:
        enrollment.enrollment_data(client)
    assert no_data.value.code == 25001
    key = enrollment.generate_private_key()
    data = enrollment.EnrollmentData.from_json({"commonName": "X", "countryName": "PL"})
    with pytest.raises(errors.KsefError) as no_request:
        enrollment.enroll(client, "Certyfikat", "Offline", enrollment.build_csr(data, key))
    assert no_request.value.code == 25002
    assert enrollment.limits(client).can_request  # limits and the list are readable with a token


def test_csr_for_another_subject_or_key_is_refused(base_url):
    client = _xades_client(base_url)
    data = enrollment.enrollment_data(client)
    other = enrollment.EnrollmentData(tuple(
        (name, "VATPL-%s" % OTHER_NIP if name == "organizationIdentifier" else value) for name, value in data.attributes))
    with pytest.raises(errors.KsefError) as mismatch:
        enrollment.enroll(client, "Cudzy certyfikat", "Offline", enrollment.build_csr(other, enrollment.generate_private_key()))
    assert mismatch.value.code == 25003 and "organizationIdentifier" in str(mismatch.value.details)
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024, backend=default_backend())
    with pytest.raises(errors.KsefError) as bad_key:
        enrollment.enroll(client, "Slaby klucz", "Offline", enrollment.build_csr(data, weak))
    assert bad_key.value.code == 25010
    garbage = base64.b64encode(b"not a csr")
    answer = requests.post(base_url + "/v2/certificates/enrollments", timeout=10,
                           headers={"Authorization": "Bearer " + client.access_token.token},
                           json={"certificateName": "Zepsuty CSR", "certificateType": "Offline", "csr": garbage.decode()})
    assert answer.status_code == 400 and answer.json()["exception"]["exceptionDetailList"][0]["exceptionCode"] == 25004
    with pytest.raises(enrollment.EnrollmentError):
        enrollment.enroll(client, "x!", "Offline", b"")  # checked before any call
    # a key another subject already holds a certificate for
    key = enrollment.generate_private_key()
    _obtain_with_key = enrollment.enroll(client, "Moj klucz", "Offline", enrollment.build_csr(data, key))
    assert enrollment.wait_for_enrollment(client, _obtain_with_key, timeout=10, interval=0.05).issued
    stranger = _xades_client(base_url, nip=OTHER_NIP)
    reference = enrollment.enroll(stranger, "Cudzy klucz", "Offline",
                                  enrollment.build_csr(enrollment.enrollment_data(stranger), key))
    status = enrollment.wait_for_enrollment(stranger, reference, timeout=10, interval=0.05)
    assert status.code == 400 and not status.issued
    # another subject cannot see or revoke our certificates
    assert enrollment.query(stranger) == []


def test_limits_count_and_refuse_when_exhausted(base_url):
    client = _xades_client(base_url)
    before = enrollment.limits(client)
    assert (before.enrollment_limit, before.certificate_limit) == (300, 100) and before.can_request
    _obtain(client, "Offline")
    after = enrollment.limits(client)
    assert after.enrollment_remaining == 299 and after.certificate_remaining == 99
    client._request("POST", "/testdata/limits/subject/certificate", json={"certificate": {"maxCertificates": 1}})
    exhausted = enrollment.limits(client)
    assert not exhausted.can_request and exhausted.certificate_remaining == 0
    data = enrollment.enrollment_data(client)
    with pytest.raises(errors.KsefError) as refused:
        enrollment.enroll(client, "Za duzo", "Offline", enrollment.build_csr(data, enrollment.generate_private_key()))
    assert refused.value.code == 25007
    client._request("POST", "/testdata/limits/subject/certificate", json={"enrollment": {"maxEnrollments": 1}})
    with pytest.raises(errors.KsefError) as requests_out:
        enrollment.enroll(client, "Za duzo", "Offline", enrollment.build_csr(data, enrollment.generate_private_key()))
    assert requests_out.value.code == 25006
    client._request("DELETE", "/testdata/limits/subject/certificate")
    assert enrollment.limits(client).can_request


def test_expired_by_testdata_and_blocked_by_control(base_url):
    client = _xades_client(base_url)
    offline = _obtain(client, "Offline")
    auth = _obtain(client, "Authentication")
    client._request("PUT", "/testdata/certificates/%s" % offline.serial, json={"validTo": "2026-01-01T00:00:00Z"})
    assert enrollment.query(client, serial=offline.serial)[0].status == "Expired"
    requests.post(base_url + "/_control/certificates/status", json={"serial": auth.serial, "status": "Blocked"},
                  timeout=10).raise_for_status()
    assert enrollment.query(client, serial=auth.serial)[0].status == "Blocked"
    with pytest.raises(errors.AuthenticationFailed):
        _xades_client(base_url, seal=(auth.certificate, auth.private_key))


def test_unknown_enrollment_and_paging(base_url):
    client = _xades_client(base_url)
    with pytest.raises(errors.KsefError) as unknown:
        enrollment.enrollment_status(client, "20261130-EH-0000000000-0000000000-00")
    assert unknown.value.code == 25005
    for number in range(12):
        _obtain(client, "Offline", name="Certyfikat %02d" % number)
    assert len(enrollment.query(client, page_size=10)) == 12


def test_certificate_endpoints_have_the_spec_rate_limits():
    # x-rate-limits of every /certificates endpoint in open-api.json 2.6 and 2.7: 10 / 30 / 120
    for method, path in (("GET", "/certificates/limits"), ("GET", "/certificates/enrollments/data"),
                         ("POST", "/certificates/enrollments"), ("GET", "/certificates/enrollments/X"),
                         ("POST", "/certificates/retrieve"), ("POST", "/certificates/query"),
                         ("POST", "/certificates/0123456789ABCDEF/revoke")):
        assert ratelimit.group_of(method, path)[1] == (10, 30, 120)


def test_devcerts_lookalike_is_not_a_ksef_certificate(base_url):
    """A self-made look-alike logs in (as on TEST) but KSeF lists only what it issued."""
    certificate, key = devcerts.make_certificate(devcerts.AUTHENTICATION, SAMPLE_SELLER_NIP)
    client = _xades_client(base_url, seal=(certificate, key))
    assert enrollment.query(client) == []


def test_enrollment_polling_backs_off_within_the_rate_limit(base_url):
    """A slow KSeF: the polls thin out (30 requests a minute is the endpoint's limit)."""
    client = _xades_client(base_url)
    data = enrollment.enrollment_data(client)
    requests.post(base_url + "/_control/config", json={"processing_delay": 3600}, timeout=10)
    try:
        reference = enrollment.enroll(client, "Wolny KSeF", "Offline", enrollment.build_csr(data, enrollment.generate_private_key()))
        pauses = []

        def sleep(seconds):
            pauses.append(round(seconds, 1))
            if len(pauses) == 8:
                raise StopIteration  # enough pauses seen; no need to wait them out

        with pytest.raises(StopIteration):
            enrollment.wait_for_enrollment(client, reference, timeout=60, interval=0.2, sleep=sleep)
    finally:
        requests.post(base_url + "/_control/config", json={"processing_delay": 0.1}, timeout=10)
    assert pauses == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]
    assert enrollment.enrollment_status(client, reference).pending

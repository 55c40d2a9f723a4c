"""Black-box tests of the simulator's authentication, tokens and MF keys."""
import base64
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import serialization

from ksef import crypto, devcerts
from ksef.simulator.testing import SAMPLE_SELLER_NIP, SimClient

TOKEN = "auth-test-token"
OTHER_NIP = "3861610227"



@pytest.fixture
def client(base_url):
    return SimClient(base_url)


def exception_code(answer):
    assert answer.status_code == 400, answer.text
    return answer.json()["exception"]["exceptionDetailList"][0]["exceptionCode"]


def test_public_keys_look_like_the_ministrys(client):
    keys = requests.get(client.url("/v2/security/public-key-certificates"), timeout=10).json()
    assert sorted(u for k in keys for u in k["usage"]) == ["KsefTokenEncryption", "SymmetricKeyEncryption"]
    for key in keys:
        der = base64.b64decode(key["certificate"])
        certificate = x509.load_der_x509_certificate(der, default_backend())
        assert certificate.subject.rfc4514_string() == "CN=Ministerstwo Finansów"
        assert key["certificateId"] == crypto.sha256_b64(der)
        spki = certificate.public_key().public_bytes(serialization.Encoding.DER,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo)
        assert key["publicKeyId"] == crypto.sha256_b64(spki) and len(key["publicKeyId"]) == 44
        assert certificate.public_key().key_size == 2048


def test_token_login_status_redeem_once_and_refresh(client):
    challenge = requests.post(client.url("/v2/auth/challenge"), timeout=10).json()
    assert len(challenge["challenge"]) == 36 and challenge["clientIp"] == "127.0.0.1"
    init = client.start_token_login(SAMPLE_SELLER_NIP, TOKEN)
    assert init.status_code == 202
    reference = init.json()["referenceNumber"]
    auth_token = init.json()["authenticationToken"]["token"]
    first = client.call("GET", "/v2/auth/" + reference, token=auth_token).json()
    assert first["status"]["code"] == 100 and first["authenticationMethod"] == "Token"
    assert client.wait_auth(reference, auth_token)["code"] == 200
    tokens = client.call("POST", "/v2/auth/token/redeem", token=auth_token)
    assert tokens.status_code == 200
    again = client.call("POST", "/v2/auth/token/redeem", token=auth_token)
    assert exception_code(again) == 21301
    access = tokens.json()["accessToken"]["token"]
    refresh = tokens.json()["refreshToken"]["token"]
    assert client.call("GET", "/v2/sessions", token=access, params={"sessionType": "Online"}).status_code == 200
    refreshed = client.call("POST", "/v2/auth/token/refresh", token=refresh)
    assert refreshed.status_code == 200
    new_access = refreshed.json()["accessToken"]["token"]
    assert new_access != access
    assert client.call("GET", "/v2/sessions", token=new_access, params={"sessionType": "Batch"}).status_code == 200
    # an access token is not a refresh token
    assert client.call("POST", "/v2/auth/token/refresh", token=access).status_code == 401
    status = client.call("GET", "/v2/auth/" + reference, token=auth_token).json()
    assert status["isTokenRedeemed"] is True and status["lastTokenRefreshDate"]


@pytest.mark.parametrize("nip, token, expected", [
    (SAMPLE_SELLER_NIP, "no-such-token", 450),
    (OTHER_NIP, TOKEN, 415),  # a valid token, but for another context
])
def test_failed_token_logins_end_with_a_final_status(client, nip, token, expected):
    init = client.start_token_login(nip, token).json()
    auth_token = init["authenticationToken"]["token"]
    assert client.wait_auth(init["referenceNumber"], auth_token)["code"] == expected
    assert exception_code(client.call("POST", "/v2/auth/token/redeem", token=auth_token)) == 21301


def test_unknown_or_reused_challenge_is_21111(client):
    public_key, key_id = client.public_key("KsefTokenEncryption")
    body = {"challenge": "20260101-CR-0000000000-0000000000-00",
            "contextIdentifier": {"type": "Nip", "value": SAMPLE_SELLER_NIP},
            "encryptedToken": crypto.b64(crypto.rsa_oaep_encrypt(public_key, b"x|1")), "publicKeyId": key_id}
    assert exception_code(requests.post(client.url("/v2/auth/ksef-token"), json=body, timeout=10)) == 21111


def test_missing_or_bad_bearer_is_401_problem_details(client):
    for headers in ({}, {"Authorization": "Bearer not.a.jwt"}):
        answer = requests.get(client.url("/v2/sessions"), params={"sessionType": "Online"}, headers=headers, timeout=10)
        assert answer.status_code == 401
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert answer.json()["status"] == 401 and answer.json()["title"] == "Unauthorized"


def test_short_lived_access_token_expires_and_refresh_recovers(client):
    client.control("config", {"access_token_ttl": 1})
    try:
        client.login(SAMPLE_SELLER_NIP, TOKEN)
    finally:
        client.control("config", {"access_token_ttl": 900})
    assert client.open_online().status_code == 201
    time.sleep(1.1)
    expired = client.open_online()
    assert expired.status_code == 401 and "wygasł" in expired.json()["detail"]
    client.access_token = client.call("POST", "/v2/auth/token/refresh", token=client.refresh_token) \
        .json()["accessToken"]["token"]
    assert client.open_online().status_code == 201


def test_expire_all_access_tokens(client):
    client.login(SAMPLE_SELLER_NIP, TOKEN)
    assert client.open_online().status_code == 201
    client.control("expire", {"access_tokens": True})
    assert client.open_online().status_code == 401
    client.login(SAMPLE_SELLER_NIP, TOKEN)
    assert client.open_online().status_code == 201


def test_key_rotation_makes_the_old_key_id_unknown(client):
    client.login(SAMPLE_SELLER_NIP, TOKEN)
    _, old_id = client.public_key("SymmetricKeyEncryption")
    client.control("keys/rotate", {"mode": "transition"})
    assert client.open_online().status_code == 201  # both keys listed during a transition
    old_body = {"formCode": {"systemCode": "FA (3)", "schemaVersion": "1-0E", "value": "FA"},
                "encryption": client.encryption(key_id=old_id)}
    assert client.call("POST", "/v2/sessions/online", json=old_body).status_code == 201
    keys = client.control("keys/rotate", {"mode": "emergency"})
    assert old_id not in [k["publicKeyId"] for k in keys]
    answer = client.call("POST", "/v2/sessions/online", json=old_body)
    assert exception_code(answer) == 21470
    assert client.open_online().status_code == 201  # after reloading the keys it works again


def test_xades_login_with_authentication_certificate(client):
    xades = pytest.importorskip("ksef.xades")

    def signed_request(kind, nip, context_nip):
        challenge = requests.post(client.url("/v2/auth/challenge"), timeout=10).json()["challenge"]
        document = ('<AuthTokenRequest xmlns="http://ksef.mf.gov.pl/auth/token/2.1">'
                    "<Challenge>%s</Challenge><ContextIdentifier><Nip>%s</Nip></ContextIdentifier>"
                    "<SubjectIdentifierType>certificateSubject</SubjectIdentifierType></AuthTokenRequest>"
                    % (challenge, context_nip)).encode()
        certificate, key = devcerts.make_certificate(kind, nip)
        return xades.sign_auth_token_request(document, certificate, key)

    def login(body):
        return requests.post(client.url("/v2/auth/xades-signature"), data=body,
                             headers={"Content-Type": "application/xml"}, timeout=10)

    good = login(signed_request(devcerts.AUTHENTICATION, SAMPLE_SELLER_NIP, SAMPLE_SELLER_NIP))
    assert good.status_code == 202, good.text
    auth_token = good.json()["authenticationToken"]["token"]
    assert client.wait_auth(good.json()["referenceNumber"], auth_token)["code"] == 200
    status = client.call("GET", "/v2/auth/" + good.json()["referenceNumber"], token=auth_token).json()
    assert status["authenticationMethod"] == "InternalCertificate"
    assert client.call("POST", "/v2/auth/token/redeem", token=auth_token).status_code == 200

    offline = login(signed_request(devcerts.OFFLINE, SAMPLE_SELLER_NIP, SAMPLE_SELLER_NIP)).json()
    assert client.wait_auth(offline["referenceNumber"], offline["authenticationToken"]["token"])["code"] == 460
    stranger = login(signed_request(devcerts.AUTHENTICATION, OTHER_NIP, SAMPLE_SELLER_NIP)).json()
    assert client.wait_auth(stranger["referenceNumber"], stranger["authenticationToken"]["token"])["code"] == 415

    tampered = signed_request(devcerts.AUTHENTICATION, SAMPLE_SELLER_NIP, SAMPLE_SELLER_NIP).replace(
        b"certificateSubject", b"certificateFingerprint")
    assert exception_code(login(tampered)) == 9105
    unsigned = b'<AuthTokenRequest xmlns="http://ksef.mf.gov.pl/auth/token/2.1"/>'
    assert exception_code(login(unsigned)) == 9102

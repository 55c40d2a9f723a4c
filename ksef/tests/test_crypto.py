import pytest
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives.asymmetric import rsa

from ksef import crypto


def test_hash_spellings_match_official_kod1_example():
    # The official clients' KOD I unit-test vector: '<root>test</root>' -> qrs2gCLXnTUy6--AHwHuDxFuCj0BYUGRGtBuGnJwN-c
    data = b"<root>test</root>"
    assert crypto.sha256_b64url(data) == "qrs2gCLXnTUy6--AHwHuDxFuCj0BYUGRGtBuGnJwN-c"
    api_form = crypto.sha256_b64(data)
    assert len(api_form) == 44 and api_form.endswith("=")
    assert crypto.b64_to_b64url(api_form) == crypto.sha256_b64url(data)
    assert crypto.b64url_to_b64(crypto.sha256_b64url(data)) == api_form


@pytest.mark.parametrize("size", [0, 1, 15, 16, 6480, 100_003])
def test_aes_roundtrip_and_pkcs7_size(size):
    key, iv = crypto.new_symmetric_key()
    plaintext = bytes(range(256)) * (size // 256) + bytes(size % 256)
    ciphertext = crypto.aes_encrypt(plaintext, key, iv)
    # PKCS#7 always pads, a full block when the size is a multiple of 16 (the KSeF OpenAPI example: 6480 -> 6496)
    assert len(ciphertext) == (size // 16 + 1) * 16
    assert crypto.aes_decrypt(ciphertext, key, iv) == plaintext


def test_rsa_oaep_roundtrip():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048, backend=default_backend())
    secret = b"token|1700000000000"
    wrapped = crypto.rsa_oaep_encrypt(key.public_key(), secret)
    assert wrapped != secret and len(wrapped) == 256
    assert crypto.rsa_oaep_decrypt(key, wrapped) == secret

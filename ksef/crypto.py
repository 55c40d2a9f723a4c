"""Cryptographic primitives used by KSeF 2.0 (the Ministry's ksef-docs
``kody-qr.md``, ``uwierzytelnianie.md``, ``bezpieczenstwo/klucze-publiczne-do-szyfrowania.md``,
``sesja-interaktywna.md``, ``sesja-wsadowa.md``; OpenAPI ``EncryptionInfo``).

- SHA-256 in two spellings: standard Base64 with padding (API ``invoiceHash``) and
  Base64URL without padding (QR codes).
- AES-256-CBC with PKCS#7 padding; the IV travels separately, never prepended.
- RSA-OAEP with SHA-256 and MGF1-SHA-256 (token and symmetric-key wrapping).
"""
import base64
import hashlib
import os

from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

AES_KEY_SIZE = 32
AES_BLOCK_SIZE = 16


def sha256(data):
    return hashlib.sha256(data).digest()


def b64(data):
    return base64.b64encode(data).decode("ascii")


def b64decode(text):
    return base64.b64decode(text, validate=True)


def b64url(data):
    """Base64URL without padding, as used in QR links."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sha256_b64(data):
    """The API form of a document hash: Base64 with padding, 44 characters."""
    return b64(sha256(data))


def sha256_b64url(data):
    """The QR form of a document hash: Base64URL without padding, 43 characters."""
    return b64url(sha256(data))


def b64_to_b64url(value):
    return b64url(b64decode(value))


def b64url_to_b64(value):
    return b64(b64url_decode(value))


def new_symmetric_key():
    """A fresh AES-256 key and IV for one session."""
    return os.urandom(AES_KEY_SIZE), os.urandom(AES_BLOCK_SIZE)


def aes_encrypt(plaintext, key, iv):
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv), backend=default_backend()).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def aes_decrypt(ciphertext, key, iv):
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv), backend=default_backend()).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def _oaep():
    return asym_padding.OAEP(
        mgf=asym_padding.MGF1(algorithm=hashes.SHA256()),
        algorithm=hashes.SHA256(),
        label=None,
    )


def rsa_oaep_encrypt(public_key, data):
    return public_key.encrypt(data, _oaep())


def rsa_oaep_decrypt(private_key, data):
    return private_key.decrypt(data, _oaep())

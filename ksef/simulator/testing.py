"""A deliberately small KSeF client for driving the simulator in tests, drills and benchmarks.

It does what any KSeF 2.0 client does - token login with RSA-OAEP, AES session keys, hashes and
sizes, ZIP batch parts - with ``requests`` and ``ksef.crypto`` only. It is not the add-on's
client (``ksef.client``); keeping it separate lets the simulator be tested on its own.
"""
import base64
import datetime
import io
import time
import zipfile
import zoneinfo

import requests
from cryptography import x509
from cryptography.hazmat.backends import default_backend

from .. import crypto
from .invoices import default_shared_dir

FA3_FORM = {"systemCode": "FA (3)", "schemaVersion": "1-0E", "value": "FA"}
SAMPLE_SELLER_NIP = "5265877635"


def warsaw_today():
    return datetime.datetime.now(zoneinfo.ZoneInfo("Europe/Warsaw")).date()


def sample_invoice(number, issue_date=None, seller_nip=None):
    """The shared minimal FA(3) invoice (``examples-own/fa3-vat-minimal.xml``) with its own
    ``P_2``, ``P_1`` (default: today in Warsaw) and optionally another seller NIP."""
    template = (default_shared_dir() / "ksef" / "examples-own" / "fa3-vat-minimal.xml").read_bytes()
    values = {"P_2": number, "P_1": (issue_date or warsaw_today()).isoformat()}
    if seller_nip:
        values["NIP"] = seller_nip
    return set_invoice_fields(template, **values)


def set_invoice_fields(xml, **values):
    """Replace the text of simple FA(3) elements, e.g. ``P_2="FV/1"``, ``P_1="2026-02-02"``,
    ``NIP="5265877635"`` (first occurrence = the seller's)."""
    if isinstance(xml, bytes):
        xml = xml.decode("utf-8")
    for name, value in values.items():
        start = xml.index("<%s>" % name) + len(name) + 2
        end = xml.index("</%s>" % name, start)
        xml = xml[:start] + str(value) + xml[end:]
    return xml.encode("utf-8")


class SimClient:
    def __init__(self, base_url, timeout=30):
        self.base_url = base_url.rstrip("/")
        self.http = requests.Session()
        self.timeout = timeout
        self.access_token = None
        self.refresh_token = None
        self.key = None
        self.iv = None

    # -- plumbing -----------------------------------------------------------------
    def url(self, path):
        return self.base_url + path

    def call(self, method, path, token=None, **kwargs):
        headers = kwargs.pop("headers", {})
        token = token or self.access_token
        if token:
            headers["Authorization"] = "Bearer " + token
        return self.http.request(method, self.url(path), headers=headers, timeout=self.timeout, **kwargs)

    def control(self, action, payload=None, method="POST"):
        answer = self.http.request(method, self.url("/_control/" + action), json=payload, timeout=self.timeout)
        answer.raise_for_status()
        return answer.json()

    # -- keys and login -----------------------------------------------------------------
    def public_key(self, usage):
        keys = self.http.get(self.url("/v2/security/public-key-certificates"), timeout=self.timeout).json()
        chosen = sorted((k for k in keys if usage in k["usage"]), key=lambda k: k["validFrom"])[-1]
        certificate = x509.load_der_x509_certificate(base64.b64decode(chosen["certificate"]), default_backend())
        return certificate.public_key(), chosen["publicKeyId"]

    def start_token_login(self, nip, token, context_type="Nip"):
        challenge = self.http.post(self.url("/v2/auth/challenge"), timeout=self.timeout).json()
        public_key, key_id = self.public_key("KsefTokenEncryption")
        encrypted = crypto.rsa_oaep_encrypt(public_key, ("%s|%d" % (token, challenge["timestampMs"])).encode())
        return self.http.post(self.url("/v2/auth/ksef-token"), timeout=self.timeout, json={
            "challenge": challenge["challenge"],
            "contextIdentifier": {"type": context_type, "value": nip},
            "encryptedToken": crypto.b64(encrypted),
            "publicKeyId": key_id,
        })

    def wait_auth(self, reference, auth_token, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            status = self.call("GET", "/v2/auth/" + reference, token=auth_token).json()["status"]
            if status["code"] != 100 or time.monotonic() > deadline:
                return status
            time.sleep(0.05)

    def login(self, nip, token):
        answer = self.start_token_login(nip, token)
        answer.raise_for_status()
        init = answer.json()
        auth_token = init["authenticationToken"]["token"]
        status = self.wait_auth(init["referenceNumber"], auth_token)
        if status["code"] != 200:
            raise RuntimeError("login failed: %s" % status)
        tokens = self.call("POST", "/v2/auth/token/redeem", token=auth_token).json()
        self.access_token = tokens["accessToken"]["token"]
        self.refresh_token = tokens["refreshToken"]["token"]
        return tokens

    # -- sessions ----------------------------------------------------------------------
    def encryption(self, key_id=None):
        self.key, self.iv = crypto.new_symmetric_key()
        public_key, current_id = self.public_key("SymmetricKeyEncryption")
        return {"encryptedSymmetricKey": crypto.b64(crypto.rsa_oaep_encrypt(public_key, self.key)),
                "initializationVector": crypto.b64(self.iv), "publicKeyId": key_id or current_id}

    def open_online(self, **extra):
        body = {"formCode": FA3_FORM, "encryption": self.encryption()}
        body.update(extra)
        return self.call("POST", "/v2/sessions/online", json=body)

    def invoice_payload(self, xml, offline_mode=False, corrected_hash=None):
        encrypted = crypto.aes_encrypt(xml, self.key, self.iv)
        body = {"invoiceHash": crypto.sha256_b64(xml), "invoiceSize": len(xml),
                "encryptedInvoiceHash": crypto.sha256_b64(encrypted), "encryptedInvoiceSize": len(encrypted),
                "encryptedInvoiceContent": crypto.b64(encrypted), "offlineMode": offline_mode}
        if corrected_hash:
            body["hashOfCorrectedInvoice"] = corrected_hash
        return body

    def send(self, session_ref, xml, **kwargs):
        return self.call("POST", "/v2/sessions/online/%s/invoices" % session_ref,
                         json=self.invoice_payload(xml, **kwargs))

    def invoice_status(self, session_ref, invoice_ref):
        return self.call("GET", "/v2/sessions/%s/invoices/%s" % (session_ref, invoice_ref))

    def wait_invoice(self, session_ref, invoice_ref, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            status = self.invoice_status(session_ref, invoice_ref).json()
            if status["status"]["code"] not in (100, 150) or time.monotonic() > deadline:
                return status
            time.sleep(0.05)

    def session_status(self, session_ref):
        return self.call("GET", "/v2/sessions/%s" % session_ref)

    def wait_session(self, session_ref, timeout=60, pending=(100, 150, 170)):
        deadline = time.monotonic() + timeout
        while True:
            status = self.session_status(session_ref).json()
            if status["status"]["code"] not in pending or time.monotonic() > deadline:
                return status
            time.sleep(0.05)

    # -- batch ----------------------------------------------------------------------------
    @staticmethod
    def zip_invoices(invoices):
        """ZIP bytes of ``{file name: xml bytes}``."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, xml in invoices.items():
                archive.writestr(name, xml)
        return buffer.getvalue()

    def open_batch(self, package, part_count=1, offline_mode=False, **extra):
        """Encrypt ``package`` in ``part_count`` parts; return (response, encrypted parts)."""
        encryption = self.encryption()
        size = -(-len(package) // part_count)
        plain_parts = [package[i:i + size] for i in range(0, len(package), size)]
        parts = [crypto.aes_encrypt(part, self.key, self.iv) for part in plain_parts]
        body = {
            "formCode": FA3_FORM,
            "batchFile": {
                "fileSize": len(package), "fileHash": crypto.sha256_b64(package),
                "fileParts": [{"ordinalNumber": i + 1, "fileSize": len(p), "fileHash": crypto.sha256_b64(p)}
                              for i, p in enumerate(parts)],
            },
            "encryption": encryption,
            "offlineMode": offline_mode,
        }
        body.update(extra)
        return self.call("POST", "/v2/sessions/batch", json=body), parts

    def upload_parts(self, open_response, parts):
        answers = []
        for request in open_response["partUploadRequests"]:
            answers.append(self.http.request(request["method"], request["url"], headers=request["headers"],
                                             data=parts[request["ordinalNumber"] - 1], timeout=self.timeout))
        return answers

    def send_batch(self, invoices, part_count=1, offline_mode=False):
        """Open, upload, close; return the batch session reference."""
        answer, parts = self.open_batch(self.zip_invoices(invoices), part_count, offline_mode)
        answer.raise_for_status()
        opened = answer.json()
        for upload in self.upload_parts(opened, parts):
            upload.raise_for_status()
        self.call("POST", "/v2/sessions/batch/%s/close" % opened["referenceNumber"]).raise_for_status()
        return opened["referenceNumber"]

    def all_invoices(self, session_ref, failed=False, page_size=1000):
        invoices, token = [], None
        path = "/v2/sessions/%s/invoices%s" % (session_ref, "/failed" if failed else "")
        while True:
            headers = {"x-continuation-token": token} if token else {}
            page = self.call("GET", path, params={"pageSize": page_size}, headers=headers).json()
            invoices += page["invoices"]
            token = page.get("continuationToken")
            if not token:
                return invoices

"""API 2.7: the client sends ``publicKeyId`` in every request body where the spec offers it, and
the simulator honours it (the key it names decrypts; an unknown one gives 21470). Real HTTP."""
import json
import re
import uuid

import pytest

from ksef import errors
from ksef.client import KsefClient
from ksef.simulator.invoices import default_shared_dir
from ksef.simulator.testing import SAMPLE_SELLER_NIP, sample_invoice

TOKEN = "pkid-test-%s" % uuid.uuid4().hex
PROCESSING_DELAY = 0.05   # for the simulator of conftest.base_url
# Request bodies of open-api-2.7 that carry publicKeyId (directly or in EncryptionInfo) and the
# client call that sends each; exports are not used by the add-on.
CALLS = {"/auth/ksef-token": "InitTokenAuthenticationRequest", "/sessions/online": "OpenOnlineSessionRequest",
         "/sessions/batch": "OpenBatchSessionRequest"}


def spec():
    return json.loads((default_shared_dir() / "ksef" / "openapi" / "open-api-2.7-snapshot.json").read_text())


def offers_public_key_id(schemas, name, seen=()):
    schema = schemas[name]
    text = json.dumps(schema)
    if '"publicKeyId"' in text:
        return True
    refs = {ref.split("/")[-1] for ref in re.findall(r'"#/components/schemas/([A-Za-z0-9]+)"', text)}
    return any(offers_public_key_id(schemas, ref, seen + (name,)) for ref in refs if ref not in seen)


def test_every_request_the_spec_offers_it_carries_the_public_key_id(base_url):
    document = spec()
    schemas = document["components"]["schemas"]
    offered = set()
    for path, item in document["paths"].items():
        body = (item.get("post") or {}).get("requestBody", {}).get("content", {}).get("application/json", {})
        refs = [ref.split("/")[-1] for ref in re.findall(r'"#/components/schemas/([A-Za-z0-9]+)"',
                                                                          json.dumps(body.get("schema", {})))]
        if any(offers_public_key_id(schemas, ref) for ref in refs):
            offered.add(path)
    assert set(CALLS) <= offered
    assert offered - set(CALLS) <= {"/invoices/exports"}, offered

    client = KsefClient(base_url=base_url + "/v2", timeout=5, poll_interval=0.05)
    sent = {}

    def record(response, *args, **kwargs):
        sent.setdefault(response.request.path_url.split("?")[0][3:], response.request.body)

    client.http.hooks["response"].append(record)
    client.authenticate_with_token("Nip", SAMPLE_SELLER_NIP, TOKEN)
    client.open_online_session()
    client.open_batch_session([("a.xml", sample_invoice("FV/PK/%s" % uuid.uuid4().hex[:6]))])
    keys = {c.public_key_id for c in client.public_key_certificates()}
    for path in CALLS:
        body = json.loads(sent[path])
        key = body.get("publicKeyId") or body["encryption"]["publicKeyId"]
        assert key in keys and len(key) == 44, path


def test_an_unknown_public_key_id_is_refused_with_21470(base_url):
    client = KsefClient(base_url=base_url + "/v2", timeout=5, poll_interval=0.05)
    client.authenticate_with_token("Nip", SAMPLE_SELLER_NIP, TOKEN)
    body = {"formCode": {"systemCode": "FA (3)", "schemaVersion": "1-0E", "value": "FA"},
            "encryption": {"encryptedSymmetricKey": "AAAA", "initializationVector": "AAAAAAAAAAAAAAAAAAAAAA==",
                           "publicKeyId": "A" * 43 + "="}}
    with pytest.raises(errors.KsefError) as refused:
        client._request("POST", "/sessions/online", json=body, expect=(201,))
    assert "21470" in str(refused.value) or getattr(refused.value, "code", None) == 21470

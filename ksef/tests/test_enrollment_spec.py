"""The simulator's certificate endpoints against the official OpenAPI documents (2.6 and the 2.7
snapshot): every request body our core sends and every answer the simulator gives is checked
against the schema the spec declares for it, and the rate limits against ``x-rate-limits``."""
import base64
import datetime
import json
import re

import pytest
import requests

from ksef import enrollment
from ksef.client import KsefClient
from ksef.simulator import ratelimit
from ksef.simulator.invoices import default_shared_dir
from ksef.simulator.testing import SAMPLE_SELLER_NIP

TOKEN = "enrollment-spec-token"
SPECS = ("open-api.json", "open-api-2.7-snapshot.json")


def _spec(name):
    return json.loads((default_shared_dir() / "ksef" / "openapi" / name).read_text(encoding="utf-8"))


def check(spec, schema, value, where="$"):
    """A small OpenAPI 3.0 schema check (the subset the certificate schemas use)."""
    if "$ref" in schema:
        schema = dict(spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]],
                      **{k: v for k, v in schema.items() if k != "$ref"})
    if value is None:
        assert schema.get("nullable"), "%s: null where the spec does not allow it" % where
        return
    for part in schema.get("allOf", ()):
        check(spec, part, value, where)
    kind = schema.get("type")
    if kind == "object":
        assert isinstance(value, dict), "%s: expected an object" % where
        for name in schema.get("required", ()):
            assert name in value, "%s: required %s missing" % (where, name)
        for name, item in value.items():
            if name in schema.get("properties", {}):
                check(spec, schema["properties"][name], item, "%s.%s" % (where, name))
    elif kind == "array":
        assert isinstance(value, list), "%s: expected an array" % where
        assert len(value) >= schema.get("minItems", 0) and len(value) <= schema.get("maxItems", 10 ** 9), where
        for index, item in enumerate(value):
            check(spec, schema["items"], item, "%s[%d]" % (where, index))
    elif kind == "string":
        assert isinstance(value, str), "%s: expected a string, got %r" % (where, value)
        assert schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", 10 ** 9), where
        if "pattern" in schema:
            assert re.search(schema["pattern"], value), "%s: %r does not match %s" % (where, value, schema["pattern"])
        if schema.get("format") == "date-time":
            datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if schema.get("format") == "byte":
            base64.b64decode(value, validate=True)
    elif kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), "%s: expected an integer" % where
    elif kind == "boolean":
        assert isinstance(value, bool), "%s: expected a boolean" % where
    if "enum" in schema:
        assert value in schema["enum"], "%s: %r not in %s" % (where, value, schema["enum"])


def _operation(spec, method, path):
    return spec["paths"][path][method.lower()]


def _response_schema(spec, method, path, status, content_type="application/json"):
    return _operation(spec, method, path)["responses"][str(status)]["content"][content_type]["schema"]


@pytest.fixture(autouse=True)
def _reset(base_url):
    requests.post(base_url + "/_control/reset", timeout=10)


@pytest.mark.parametrize("spec_name", SPECS)
def test_certificate_requests_and_answers_follow_the_spec(base_url, spec_name):
    spec = _spec(spec_name)
    certificate, key = enrollment.self_signed_seal(SAMPLE_SELLER_NIP, "Firma Testowa")
    client = KsefClient(base_url=base_url + "/v2", poll_interval=0.05, timeout=10)
    client.authenticate_with_certificate("Nip", SAMPLE_SELLER_NIP, certificate, key, timeout=10)
    http = requests.Session()
    http.headers["Authorization"] = "Bearer " + client.access_token.token

    def call(method, path, spec_path, status, body=None, params=None, headers=None):
        if body is not None:
            check(spec, _operation(spec, method, spec_path)["requestBody"]["content"]["application/json"]["schema"],
                  body, "request %s" % spec_path)
        answer = http.request(method, base_url + "/v2" + path, json=body, params=params, headers=headers, timeout=10)
        assert answer.status_code == status, (path, answer.status_code, answer.text)
        if answer.content:
            content_type = answer.headers["Content-Type"].split(";")[0]
            check(spec, _response_schema(spec, method, spec_path, status, content_type), answer.json(),
                  "%s %s" % (status, spec_path))
        return answer.json() if answer.content else None

    call("GET", "/certificates/limits", "/certificates/limits", 200)
    data = call("GET", "/certificates/enrollments/data", "/certificates/enrollments/data", 200)
    csr = enrollment.build_csr(enrollment.EnrollmentData.from_json(data), enrollment.generate_private_key())
    body = {"certificateName": "Certyfikat Offline", "certificateType": "Offline",
            "csr": base64.b64encode(csr).decode("ascii")}
    reference = call("POST", "/certificates/enrollments", "/certificates/enrollments", 202, body)["referenceNumber"]
    status_path = "/certificates/enrollments/{referenceNumber}"
    status = call("GET", "/certificates/enrollments/" + reference, status_path, 200)
    while status["status"]["code"] == 100:
        status = call("GET", "/certificates/enrollments/" + reference, status_path, 200)
    serial = status["certificateSerialNumber"]
    call("POST", "/certificates/retrieve", "/certificates/retrieve", 200, {"certificateSerialNumbers": [serial]})
    call("POST", "/certificates/query", "/certificates/query", 200, {"status": "Active"}, params={"pageSize": 10})
    call("POST", "/certificates/%s/revoke" % serial, "/certificates/{certificateSerialNumber}/revoke", 204,
         {"revocationReason": "Superseded"})
    # errors: the KSeF exception list by default, Problem Details on request
    call("POST", "/certificates/%s/revoke" % serial, "/certificates/{certificateSerialNumber}/revoke", 400, {})
    call("POST", "/certificates/enrollments", "/certificates/enrollments", 400,
         dict(body, csr=base64.b64encode(b"x" * 40).decode()), headers={"X-Error-Format": "problem-details"})
    call("GET", "/certificates/enrollments/20261130-EH-0000000000-0000000000-00", status_path, 400)
    if "/testdata/certificates/{serialNumber}" in spec["paths"]:
        check(spec, _operation(spec, "PUT", "/testdata/certificates/{serialNumber}")["requestBody"]["content"]
              ["application/json"]["schema"], {"validTo": "2027-01-01T00:00:00Z"})


@pytest.mark.parametrize("spec_name", SPECS)
def test_rate_limits_are_the_specs(spec_name):
    spec = _spec(spec_name)
    for path, operations in spec["paths"].items():
        if not path.startswith("/certificates"):
            continue
        for method, operation in operations.items():
            limits = operation["x-rate-limits"]
            concrete = re.sub(r"\{[^}]+\}", "0123456789ABCDEF", path)
            assert ratelimit.group_of(method.upper(), concrete)[1] == (
                limits["perSecond"], limits["perMinute"], limits["perHour"]), (method, path)

"""The add-on's own KSeF client (``ksef.client``, written independently from the spec) against
the simulator: if both follow the OpenAPI spec they must understand each other."""
import uuid

import pytest
from lxml import etree

from ksef.ksef_number import is_valid_ksef_number
from ksef.simulator import Simulator
from ksef.simulator.invoices import default_shared_dir
from ksef.simulator.testing import SAMPLE_SELLER_NIP, sample_invoice
from ksef.upo import parse_upo

client_module = pytest.importorskip("ksef.client")
TOKEN = "interop-token"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    simulator = Simulator(tmp_path_factory.mktemp("sim") / "state.db", tokens={SAMPLE_SELLER_NIP: TOKEN},
                          rate_limits="production", processing_delay=0.05)
    yield simulator.start()
    simulator.stop()


@pytest.fixture
def ksef(base_url):
    ksef = client_module.KsefClient(base_url=base_url + "/v2", poll_interval=0.05)
    ksef.authenticate_with_token("Nip", SAMPLE_SELLER_NIP, TOKEN, timeout=10)
    return ksef


def test_online_session_with_the_addon_client(ksef):
    session = ksef.open_online_session()
    xml = sample_invoice("INT/%s" % uuid.uuid4().hex[:10])
    reference = ksef.send_invoice(session, xml)
    status = ksef.wait_for_invoice(session, reference, timeout=10)
    assert is_valid_ksef_number(status.ksef_number)
    upo = ksef.invoice_upo(session, invoice_reference=reference)
    assert parse_upo(upo)["documents"][0].ksef_number == status.ksef_number
    ksef.close_online_session(session)
    assert ksef.wait_for_session(session, timeout=10).code == 200
    [page] = ksef.session_upo(session)
    schema = etree.XMLSchema(etree.parse(str(default_shared_dir() / "ksef" / "upo" / "upo-v4-3.xsd")))
    assert schema.validate(etree.fromstring(page))


def test_batch_session_with_the_addon_client(ksef):
    invoices = [("%d.xml" % i, sample_invoice("INTB/%s" % uuid.uuid4().hex[:10])) for i in range(5)]
    batch = ksef.send_batch(invoices)
    assert ksef.wait_for_session(batch, timeout=20).code == 200
    listed = list(ksef.session_invoices(batch))
    assert len(listed) == 5 and all(item.is_success for item in listed)

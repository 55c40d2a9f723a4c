import pytest
from lxml import etree

from ksef.simulator import Simulator
from ksef.simulator.invoices import default_shared_dir
from ksef.simulator.testing import SAMPLE_SELLER_NIP, SimClient


@pytest.fixture(scope="session")
def upo_schema():
    return etree.XMLSchema(etree.parse(str(default_shared_dir() / "ksef" / "upo" / "upo-v4-3.xsd")))


@pytest.fixture(scope="module")
def base_url(request, tmp_path_factory):
    """An in-process simulator per test module, with the module's TOKEN registered for the sample
    seller and its PROCESSING_DELAY (default 0.1 s); rate limits off."""
    module = request.module
    simulator = Simulator(
        tmp_path_factory.mktemp("sim") / "state.db",
        tokens=["%s:%s" % (SAMPLE_SELLER_NIP, module.TOKEN)],
        rate_limits="off",
        processing_delay=getattr(module, "PROCESSING_DELAY", 0.1),
    )
    yield simulator.start()
    simulator.stop()


@pytest.fixture
def client(base_url, request):
    """A reference client logged in to the module's simulator with the module's TOKEN."""
    client = SimClient(base_url)
    client.login(SAMPLE_SELLER_NIP, request.module.TOKEN)
    return client

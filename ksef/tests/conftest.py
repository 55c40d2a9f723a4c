import pytest

from ksef.simulator import Simulator
from ksef.simulator.testing import SAMPLE_SELLER_NIP


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

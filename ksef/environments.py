"""The KSeF environments and the addresses of the services we call in each.

Sources: the Ministry's `srodowiska.md` and the OpenAPI ``servers`` (KSeF API); the Ministry's
C# client `KSeF.Client/DI/LighthouseEnvironmentsUris.cs` (Latarnia: a TEST and a production
address, no DEMO one).
"""
from . import safehttp

KSEF_API = {
    "test": "https://api-test.ksef.mf.gov.pl/v2",
    "demo": "https://api-demo.ksef.mf.gov.pl/v2",
    "production": "https://api.ksef.mf.gov.pl/v2",
}
LATARNIA = {
    "test": "https://api-latarnia-test.ksef.mf.gov.pl",
    # No DEMO Latarnia is named; DEMO mirrors production, so we follow the TEST one.
    "demo": "https://api-latarnia-test.ksef.mf.gov.pl",
    "production": "https://api-latarnia.ksef.mf.gov.pl",
}


def service_url(addresses, environment, base_url=None, service="KSeF"):
    """``base_url`` (e.g. a simulator) or the address of ``environment`` in ``addresses``, checked
    to be http(s) (a ``file://`` address is no outage) and without its trailing slash."""
    if base_url is None:
        try:
            base_url = addresses[environment]
        except KeyError:
            raise ValueError("unknown %s environment %r; use one of %s or base_url="
                             % (service, environment, ", ".join(addresses))) from None
    return safehttp.http_url(base_url).rstrip("/")

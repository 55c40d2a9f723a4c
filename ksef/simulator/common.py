"""What the simulator's API modules share: KSeF's limits and lifetimes, and the small readers of
request fields (KSeF OpenAPI; ``limity/limity.md``; ``sesja-interaktywna.md``, ``sesja-wsadowa.md``)."""
import base64
import datetime
import zoneinfo

from .. import upo as upo_xml
from .wire import validation_error

WARSAW = zoneinfo.ZoneInfo("Europe/Warsaw")

FA3_FORM = {"systemCode": "FA (3)", "schemaVersion": "1-0E", "value": "FA"}
MAX_INVOICES_PER_SESSION = 10000
MAX_INVOICE_SIZE = 1000000
MAX_INVOICE_WITH_ATTACHMENT_SIZE = 3000000
MAX_BATCH_PARTS = 50
MAX_BATCH_PART_SIZE = 100000000          # before encryption; PKCS#7 adds at most one block
MAX_BATCH_PACKAGE_SIZE = 5 * 1000 ** 3
CHALLENGE_LIFETIME = 600.0
ONLINE_SESSION_LIFETIME = 12 * 3600.0
BATCH_UPLOAD_TIME_PER_PART = 20 * 60.0
AUTH_TOKEN_LIFETIME = 30 * 60.0
REFRESH_TOKEN_LIFETIME = 7 * 24 * 3600.0
DOWNLOAD_URL_LIFETIME = 3 * 24 * 3600.0
UPO_PAGE_SIZE = upo_xml.MAX_DOCUMENTS_PER_PAGE

CONTEXT_TYPES = ("Nip", "InternalId", "NipVatUe", "PeppolId")


def b64decode(value, field):
    if not isinstance(value, str):
        raise validation_error("Pole %s jest wymagane." % field)
    try:
        return base64.b64decode(value, validate=True)
    except (ValueError, TypeError):
        raise validation_error("Pole %s nie jest poprawnym Base64." % field)


def require(data, field, kind=str):
    value = data.get(field)
    if value is None or not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise validation_error("Pole %s jest wymagane (%s)." % (field, kind.__name__))
    return value


def parse_time(value, name):
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise validation_error("Parametr %s nie jest datą ISO 8601." % name)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def warsaw_date(ts):
    return datetime.datetime.fromtimestamp(ts, WARSAW).date()


def context_nip(context_type, context_value):
    """The NIP a context belongs to (``InternalId``/``NipVatUe`` start with it)."""
    if context_type in ("Nip", "InternalId", "NipVatUe"):
        return context_value.split("-")[0]
    return None

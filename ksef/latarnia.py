"""Client of "Latarnia", the public KSeF availability and failure notice API the VAT act
(art. 106ne) requires; its addresses and wire format follow the Ministry's C# client
(`KSeF.Client/Clients/LighthouseClient.cs`, `KSeF.Client.Core/Models/Lighthouse/`).

``GET /status`` gives ``{status, messages[]}`` with ``status`` in AVAILABLE, MAINTENANCE,
FAILURE, TOTAL_FAILURE; ``GET /messages`` the list of notices. Each notice carries the event
id, category, type, times and texts that the ERP records as evidence for offline invoices.

Latarnia's own trouble raises ``LatarniaUnavailable``, which is deliberately NOT a
``KsefError``: MF says nothing about Latarnia outages and one must never be read as a KSeF
failure.
"""
import dataclasses
import datetime
import logging

import requests

from . import environments, safehttp
from .client import parse_datetime

_logger = logging.getLogger(__name__)

ENVIRONMENTS = environments.LATARNIA

AVAILABLE = "AVAILABLE"
MAINTENANCE = "MAINTENANCE"
FAILURE = "FAILURE"
TOTAL_FAILURE = "TOTAL_FAILURE"
STATUSES = (AVAILABLE, MAINTENANCE, FAILURE, TOTAL_FAILURE)
MAX_ANSWER_BYTES = 1024 * 1024   # a status and a list of notices

FAILURE_START = "FAILURE_START"
FAILURE_END = "FAILURE_END"
MAINTENANCE_ANNOUNCEMENT = "MAINTENANCE_ANNOUNCEMENT"


class LatarniaError(Exception):
    """Base of Latarnia client errors (never a KSeF error)."""


class LatarniaUnavailable(LatarniaError):
    """Latarnia could not be reached, timed out, failed (5xx) or sent something unreadable."""

    def __init__(self, message, http_status=None):
        self.http_status = http_status
        super().__init__(message)


@dataclasses.dataclass
class LatarniaMessage:
    id: str
    event_id: int
    category: str
    type: str
    title: str = None
    text: str = None
    start: datetime.datetime = None
    end: datetime.datetime = None
    version: int = None
    published: datetime.datetime = None
    # The notice verbatim as Latarnia sent it, and the URL it came from: evidence for an auditor.
    raw: dict = dataclasses.field(default=None, compare=False, repr=False)
    fetched_from: str = dataclasses.field(default=None, compare=False)

    @classmethod
    def from_json(cls, data, fetched_from=None):
        event_id = data.get("eventId")
        try:
            event_id = int(event_id) if event_id is not None else None
        except (TypeError, ValueError):
            pass
        return cls(
            id=data.get("id"),
            event_id=event_id,
            category=data.get("category"),
            type=data.get("type"),
            title=data.get("title"),
            text=data.get("text"),
            start=parse_datetime(data.get("start")),
            end=parse_datetime(data.get("end")),
            version=data.get("version"),
            published=parse_datetime(data.get("published")),
            raw=data,
            fetched_from=fetched_from,
        )

    @property
    def is_failure(self):
        return self.category in (FAILURE, TOTAL_FAILURE)


@dataclasses.dataclass
class LatarniaStatus:
    status: str
    messages: list = dataclasses.field(default_factory=list)

    @property
    def is_available(self):
        return self.status == AVAILABLE

    @property
    def is_failure(self):
        return self.status in (FAILURE, TOTAL_FAILURE)

    @property
    def is_total_failure(self):
        return self.status == TOTAL_FAILURE


class LatarniaClient:
    def __init__(self, environment="test", base_url=None, timeout=10.0, session=None):
        self.base_url = environments.service_url(ENVIRONMENTS, environment, base_url, "Latarnia")
        self.timeout = safehttp.check_timeout(timeout)
        self.http = session or requests.Session()

    def _get(self, path):
        url = self.base_url + path
        try:
            response = safehttp.bounded_request(self.http, "GET", url, self.timeout, max_bytes=MAX_ANSWER_BYTES,
                                                headers={"Accept": "application/json"})
        except (requests.Timeout, ValueError) as exc:
            raise LatarniaUnavailable("Latarnia did not answer GET %s within %s s" % (path, self.timeout)) from exc
        except requests.RequestException as exc:
            raise LatarniaUnavailable("cannot reach Latarnia (GET %s): %s" % (path, type(exc).__name__)) from exc
        _logger.debug("Latarnia GET %s -> %s", path, response.status_code)
        if response.status_code != 200:
            raise LatarniaUnavailable("Latarnia answered HTTP %s on GET %s" % (response.status_code, path),
                                      http_status=response.status_code)
        try:
            return response.json()
        except ValueError as exc:
            raise LatarniaUnavailable("Latarnia sent a non-JSON answer on GET %s" % path,
                                      http_status=response.status_code) from exc

    @staticmethod
    def _messages(items, fetched_from=None):
        if not isinstance(items, list):
            raise LatarniaUnavailable("Latarnia messages are not a list")
        return [LatarniaMessage.from_json(item, fetched_from) for item in items if isinstance(item, dict)]

    def status(self):
        data = self._get("/status")
        if not isinstance(data, dict) or data.get("status") not in STATUSES:
            raise LatarniaUnavailable("Latarnia status answer is not understood: %r"
                                      % (data.get("status") if isinstance(data, dict) else type(data).__name__))
        return LatarniaStatus(data["status"], self._messages(data.get("messages") or [], self.base_url + "/status"))

    def messages(self):
        return self._messages(self._get("/messages"), self.base_url + "/messages")

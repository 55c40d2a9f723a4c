"""What the engine works on and hands back: items, plans, outcomes, session records."""
import dataclasses

from .. import batch as batch_package
from .. import crypto

ACCEPTED = "accepted"
REJECTED = "rejected"
DUPLICATE_ADOPTED = "duplicate_adopted"
PENDING = "pending"
RETRY = "retry"
FINAL_STATUSES = (ACCEPTED, DUPLICATE_ADOPTED, REJECTED)

ONLINE = "online"   # interactive session kind
BATCH = "batch"

MAX_INVOICES_PER_SESSION = batch_package.MAX_INVOICES

# Outcome preference when one item shows up in several sessions (reconcile).
RANK = {ACCEPTED: 5, DUPLICATE_ADOPTED: 4, PENDING: 3, REJECTED: 2, RETRY: 1}


@dataclasses.dataclass(frozen=True)
class Item:
    """One invoice to submit.

    ``key`` is the caller's identifier (e.g. the ``account.move`` id), ``invoice_hash`` the
    Base64 SHA-256 of ``xml_bytes`` (API form; checked here so a stale hash is caught before it
    reaches KSeF), ``offline_mode`` the declared mode, ``hash_of_corrected_invoice`` the hash of a
    rejected original when this is a technical correction (requires ``offline_mode``).
    """
    key: object
    xml_bytes: bytes = dataclasses.field(repr=False)
    invoice_hash: str
    offline_mode: bool
    hash_of_corrected_invoice: str = None

    def __post_init__(self):
        if not isinstance(self.xml_bytes, (bytes, bytearray)) or not self.xml_bytes:
            raise ValueError("item %r: xml_bytes must be non-empty bytes" % (self.key,))
        actual = crypto.sha256_b64(bytes(self.xml_bytes))
        if actual != self.invoice_hash:
            raise ValueError("item %r: invoice_hash %s is not the SHA-256 of its XML (%s)"
                             % (self.key, self.invoice_hash, actual))
        if self.hash_of_corrected_invoice and not self.offline_mode:
            raise ValueError("item %r: a technical correction must be sent with offline_mode=True" % (self.key,))

    @classmethod
    def of(cls, key, xml_bytes, offline_mode, hash_of_corrected_invoice=None):
        """Build an item computing its hash."""
        xml_bytes = bytes(xml_bytes)
        return cls(key, xml_bytes, crypto.sha256_b64(xml_bytes), bool(offline_mode), hash_of_corrected_invoice)

    @property
    def is_technical_correction(self):
        return bool(self.hash_of_corrected_invoice)


@dataclasses.dataclass(frozen=True)
class SessionUpo:
    """One page of a collective session UPO, shared by every outcome it covers (store it once)."""
    session_reference: str
    upo_reference: str
    xml: bytes = dataclasses.field(repr=False)


@dataclasses.dataclass
class Outcome:
    """What happened to one item. See the package docstring (``ksef.submission``) for the meaning of ``status``."""
    key: object
    status: str
    invoice_hash: str = None
    ksef_number: str = None
    acquisition_date: object = None      # aware datetime (KSeF receipt = numbering time)
    invoicing_mode: str = None           # "Online" / "Offline" as KSeF decided (`offline/automatyczne-okreslanie-trybu-offline.md`)
    code: int = None
    description: str = None
    details: list = dataclasses.field(default_factory=list)
    upo_xml: bytes = dataclasses.field(default=None, repr=False)   # per-invoice UPO, when fetched
    session_upo: SessionUpo = dataclasses.field(default=None, repr=False)  # shared session UPO page
    session_reference: str = None
    invoice_reference: str = None
    retry_after: float = None            # for ``retry``/``pending``: seconds before trying again
    original_session_reference: str = None   # for ``duplicate_adopted``
    # The exception behind a retry/pending/rejected outcome, when there was one: the ERP words
    # it for its users (``description`` falls back to its English text for logs).
    error: Exception = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def is_final(self):
        return self.status in FINAL_STATUSES


@dataclasses.dataclass
class SessionPlan:
    kind: str            # ONLINE or BATCH
    offline_mode: bool
    items: list


@dataclasses.dataclass
class Plan:
    sessions: list

    @property
    def interactive(self):
        return [s for s in self.sessions if s.kind == ONLINE]

    @property
    def batches(self):
        return [s for s in self.sessions if s.kind == BATCH]


@dataclasses.dataclass
class SessionRecord:
    """What the journal must keep about a session that may hold our items (JSON-friendly).

    ``hashes`` maps invoice hash -> item key for every item planned into the session.
    No secret (AES key) is needed to reconcile, so none is kept.
    """
    reference: str
    kind: str
    offline_mode: bool
    hashes: dict
    opened_at: float = None

    @property
    def item_keys(self):
        return list(self.hashes.values())

    def to_dict(self):
        return {"reference": self.reference, "kind": self.kind, "offline_mode": self.offline_mode,
                "hashes": dict(self.hashes), "opened_at": self.opened_at}

    @classmethod
    def from_dict(cls, data):
        return cls(data["reference"], data["kind"], bool(data["offline_mode"]), dict(data["hashes"]),
                   data.get("opened_at"))


@dataclasses.dataclass
class ReconcileResult:
    outcomes: list      # Outcome for every item KSeF knows about (or that is still undecided)
    to_resend: list     # Items KSeF does not have: safe to submit again

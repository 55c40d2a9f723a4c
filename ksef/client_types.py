"""The KSeF 2.0 wire types of ``ksef.client``: what its calls take and return (OpenAPI schemas
``StatusInfo``, ``SessionStatusResponse``, ``SessionInvoiceStatusResponse``, ``PartUploadRequest``...).

Plain dataclasses, importable from ``ksef.client`` as well. Secrets (tokens, AES keys, pre-signed
URLs) are kept out of every ``repr``.
"""
import dataclasses
import datetime
import re

from cryptography import x509
from cryptography.hazmat.backends import default_backend

from . import batch as batch_package
from . import codes, crypto
from .errors import error_from_invoice_status


@dataclasses.dataclass(frozen=True)
class FormCode:
    system_code: str
    schema_version: str
    value: str

    def to_json(self):
        return {"systemCode": self.system_code, "schemaVersion": self.schema_version, "value": self.value}


FORM_CODES = {
    "FA (3)": FormCode("FA (3)", "1-0E", "FA"),
    "FA (2)": FormCode("FA (2)", "1-0E", "FA"),
    "PEF (3)": FormCode("PEF (3)", "2-1", "PEF"),
    "PEF_KOR (3)": FormCode("PEF_KOR (3)", "2-1", "PEF"),
    "FA_RR (1)": FormCode("FA_RR (1)", "1-1E", "FA_RR"),
}


def _form_code(form_code):
    if isinstance(form_code, FormCode):
        return form_code
    if isinstance(form_code, dict):
        return FormCode(form_code["systemCode"], form_code["schemaVersion"], form_code["value"])
    try:
        return FORM_CODES[form_code]
    except KeyError:
        raise ValueError("unknown form code %r; known: %s" % (form_code, ", ".join(FORM_CODES))) from None


_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_datetime(value):
    """KSeF date-time (up to 7 fraction digits, ``Z`` or offset) as an aware datetime; None stays None."""
    if not value:
        return None
    if isinstance(value, datetime.datetime):
        return value
    text = _FRACTION.sub(r"\1", str(value).strip()).replace("Z", "+00:00")
    parsed = datetime.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


# --- data ---------------------------------------------------------------------------------

@dataclasses.dataclass
class TokenInfo:
    token: str = dataclasses.field(repr=False)
    valid_until: datetime.datetime = None

    @classmethod
    def from_json(cls, data):
        return cls(data["token"], parse_datetime(data.get("validUntil")))

    def expired(self, margin_seconds=0):
        return bool(self.valid_until) and _now() + datetime.timedelta(seconds=margin_seconds) >= self.valid_until


@dataclasses.dataclass
class AuthTokens:
    access_token: TokenInfo
    refresh_token: TokenInfo = None


@dataclasses.dataclass
class Challenge:
    challenge: str
    timestamp: str
    timestamp_ms: int
    client_ip: str = None


@dataclasses.dataclass
class AuthOperation:
    """A started authentication: its reference and the token to poll and redeem it."""
    reference_number: str
    authentication_token: TokenInfo = dataclasses.field(repr=False)


@dataclasses.dataclass
class Status:
    code: int
    description: str = None
    details: list = dataclasses.field(default_factory=list)
    extensions: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_json(cls, data):
        data = data or {}
        return cls(data.get("code"), data.get("description"), list(data.get("details") or []),
                   dict(data.get("extensions") or {}))

    def to_json(self):
        return {"code": self.code, "description": self.description, "details": self.details,
                "extensions": self.extensions}


@dataclasses.dataclass
class AuthStatus:
    status: Status
    start_date: datetime.datetime = None
    authentication_method: str = None
    raw: dict = dataclasses.field(default_factory=dict, repr=False)


@dataclasses.dataclass
class PublicKeyCertificate:
    certificate_b64: str = dataclasses.field(repr=False)
    certificate_id: str
    public_key_id: str
    valid_from: datetime.datetime
    valid_to: datetime.datetime
    usage: list

    @property
    def certificate(self):
        return x509.load_der_x509_certificate(crypto.b64decode(self.certificate_b64), default_backend())

    def public_key(self):
        return self.certificate.public_key()

    def valid_at(self, when):
        return (self.valid_from is None or self.valid_from <= when) and \
            (self.valid_to is None or when < self.valid_to)


@dataclasses.dataclass
class OnlineSession:
    """An open interactive session. ``symmetric_key``/``iv`` are secrets kept by the caller."""
    reference_number: str
    symmetric_key: bytes = dataclasses.field(repr=False)
    iv: bytes = dataclasses.field(repr=False)
    valid_until: datetime.datetime = None
    form_code: FormCode = FORM_CODES["FA (3)"]
    public_key_id: str = None

    def expired(self, margin_seconds=60):
        return bool(self.valid_until) and _now() + datetime.timedelta(seconds=margin_seconds) >= self.valid_until

    def to_dict(self):
        """JSON-ready form, key and IV in Base64: store it as a secret."""
        return {
            "reference_number": self.reference_number,
            "symmetric_key": crypto.b64(self.symmetric_key),
            "iv": crypto.b64(self.iv),
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "form_code": self.form_code.to_json(),
            "public_key_id": self.public_key_id,
        }

    @classmethod
    def from_dict(cls, data):
        return cls(
            reference_number=data["reference_number"],
            symmetric_key=crypto.b64decode(data["symmetric_key"]),
            iv=crypto.b64decode(data["iv"]),
            valid_until=parse_datetime(data.get("valid_until")),
            form_code=_form_code(data.get("form_code") or "FA (3)"),
            public_key_id=data.get("public_key_id"),
        )


@dataclasses.dataclass
class PartUploadRequest:
    ordinal_number: int
    method: str
    url: str = dataclasses.field(repr=False)  # pre-signed: it grants write access
    headers: dict = dataclasses.field(default_factory=dict, repr=False)


@dataclasses.dataclass
class BatchSession:
    """An opened batch session with its package (encrypted parts) and upload instructions."""
    reference_number: str
    symmetric_key: bytes = dataclasses.field(repr=False)
    iv: bytes = dataclasses.field(repr=False)
    package: batch_package.BatchPackage = dataclasses.field(repr=False)
    part_upload_requests: list = dataclasses.field(default_factory=list)
    form_code: FormCode = FORM_CODES["FA (3)"]
    offline_mode: bool = False
    public_key_id: str = None

    @property
    def file_names(self):
        return self.package.file_names


@dataclasses.dataclass
class UpoPage:
    reference_number: str
    download_url: str = dataclasses.field(repr=False)
    download_url_expiration_date: datetime.datetime = None


@dataclasses.dataclass
class SessionStatus:
    status: Status
    date_created: datetime.datetime = None
    date_updated: datetime.datetime = None
    valid_until: datetime.datetime = None
    invoice_count: int = None
    successful_invoice_count: int = None
    failed_invoice_count: int = None
    upo_pages: list = dataclasses.field(default_factory=list)
    raw: dict = dataclasses.field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data):
        upo = data.get("upo") or {}
        return cls(
            status=Status.from_json(data.get("status")),
            date_created=parse_datetime(data.get("dateCreated")),
            date_updated=parse_datetime(data.get("dateUpdated")),
            valid_until=parse_datetime(data.get("validUntil")),
            invoice_count=data.get("invoiceCount"),
            successful_invoice_count=data.get("successfulInvoiceCount"),
            failed_invoice_count=data.get("failedInvoiceCount"),
            upo_pages=[UpoPage(p["referenceNumber"], p.get("downloadUrl"),
                               parse_datetime(p.get("downloadUrlExpirationDate")))
                       for p in upo.get("pages") or []],
            raw=data,
        )

    @property
    def code(self):
        return self.status.code

    @property
    def is_final(self):
        return codes.is_final_session(self.status.code)


@dataclasses.dataclass
class InvoiceStatus:
    reference_number: str
    status: Status
    ordinal_number: int = None
    invoice_number: str = None
    ksef_number: str = None
    invoice_hash: str = None
    invoice_file_name: str = None
    acquisition_date: datetime.datetime = None
    invoicing_date: datetime.datetime = None
    permanent_storage_date: datetime.datetime = None
    upo_download_url: str = dataclasses.field(default=None, repr=False)
    upo_download_url_expiration_date: datetime.datetime = None
    invoicing_mode: str = None
    raw: dict = dataclasses.field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data):
        return cls(
            reference_number=data.get("referenceNumber"),
            status=Status.from_json(data.get("status")),
            ordinal_number=data.get("ordinalNumber"),
            invoice_number=data.get("invoiceNumber"),
            ksef_number=data.get("ksefNumber"),
            invoice_hash=data.get("invoiceHash"),
            invoice_file_name=data.get("invoiceFileName"),
            acquisition_date=parse_datetime(data.get("acquisitionDate")),
            invoicing_date=parse_datetime(data.get("invoicingDate")),
            permanent_storage_date=parse_datetime(data.get("permanentStorageDate")),
            upo_download_url=data.get("upoDownloadUrl"),
            upo_download_url_expiration_date=parse_datetime(data.get("upoDownloadUrlExpirationDate")),
            invoicing_mode=data.get("invoicingMode"),
            raw=data,
        )

    @property
    def code(self):
        return self.status.code

    @property
    def is_pending(self):
        return self.status.code in codes.INVOICE_PENDING

    @property
    def is_success(self):
        return self.status.code == codes.INVOICE_SUCCESS

    @property
    def group(self):
        """The meaning of the status code (``ksef.codes``: pending, success, duplicate...)."""
        return codes.invoice_group(self.status.code)

    def error(self):
        """The typed error (``Rejected``, ``Duplicate``, ``KsefUnavailable``) or None."""
        return error_from_invoice_status(self.status.to_json(), reference_number=self.reference_number)

    def raise_for_status(self):
        error = self.error()
        if error is not None:
            raise error
        return self


@dataclasses.dataclass
class InvoicePage:
    """One page of a session's invoice list; ``continuation_token`` asks for the next (None: last)."""
    invoices: list
    continuation_token: str = None


def _reference(session_or_reference):
    return getattr(session_or_reference, "reference_number", session_or_reference)

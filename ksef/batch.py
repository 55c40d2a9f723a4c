"""Batch packages for ``POST /sessions/batch`` (the Ministry's `sesja-wsadowa.md`; OpenAPI
``OpenBatchSessionRequest``, ``BatchFileInfo``).

The invoices go into one ZIP; the ZIP binary is cut into at most 50 parts of at most
100,000,000 bytes (before encryption); every part is encrypted on its own with the session's
AES-256-CBC key and IV. KSeF is told the size and SHA-256 of the whole plaintext ZIP and of
every encrypted part.

The ZIP is deterministic (fixed names and timestamps, stable order), so the same invoices give
the same package hash; the map ``file name -> invoice hash`` lets statuses (which carry
``invoiceFileName`` and ``invoiceHash``) be matched back to the source documents.
"""
import dataclasses
import io
import zipfile

from . import crypto

MAX_PARTS = 50
MAX_PART_SIZE = 100_000_000
MAX_PACKAGE_SIZE = 5_000_000_000
MAX_INVOICES = 10_000
COMPRESSION_ZIP = "Zip"

_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class BatchError(ValueError):
    """The invoices cannot be packaged within KSeF's batch limits."""


@dataclasses.dataclass
class BatchPart:
    ordinal_number: int
    content: bytes = dataclasses.field(repr=False)  # encrypted bytes, the upload body
    file_size: int = 0
    file_hash: str = ""


@dataclasses.dataclass
class BatchPackage:
    file_size: int
    file_hash: str
    parts: list
    file_names: dict  # ZIP entry name -> Base64 SHA-256 of the invoice XML
    compression_type: str = COMPRESSION_ZIP

    def batch_file(self):
        """The ``batchFile`` object of ``OpenBatchSessionRequest``."""
        return {
            "fileSize": self.file_size,
            "fileHash": self.file_hash,
            "compressionType": self.compression_type,
            "fileParts": [
                {"ordinalNumber": part.ordinal_number, "fileSize": part.file_size,
                 "fileHash": part.file_hash}
                for part in self.parts
            ],
        }

    def invoice_hashes(self):
        """Invoice hash -> ZIP entry name (statuses carry both)."""
        return {invoice_hash: name for name, invoice_hash in self.file_names.items()}


def name_invoices(invoices):
    """Give every invoice a stable ZIP entry name.

    ``invoices`` holds XML bytes or ``(file_name, xml_bytes)`` pairs. Unnamed invoices are
    called ``invoice-00001.xml``... in their order. Names must be unique.
    """
    named = []
    for index, item in enumerate(invoices, start=1):
        if isinstance(item, (bytes, bytearray)):
            name, content = "invoice-%05d.xml" % index, bytes(item)
        else:
            name, content = item
            content = bytes(content)
        if not name or "/" in name or "\\" in name or len(name) > 128:
            raise BatchError("invalid invoice file name %r (no paths, at most 128 characters)" % name)
        named.append((name, content))
    names = [name for name, _ in named]
    if len(set(names)) != len(names):
        raise BatchError("invoice file names in a batch must be unique")
    if not named:
        raise BatchError("a batch needs at least one invoice")
    if len(named) > MAX_INVOICES:
        raise BatchError("a batch holds at most %d invoices, got %d" % (MAX_INVOICES, len(named)))
    return named


def build_zip(named_invoices):
    """A deterministic ZIP (deflated, fixed timestamps) of ``(name, xml_bytes)`` pairs."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in named_invoices:
            info = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
    return buffer.getvalue()


def split(data, max_part_size=MAX_PART_SIZE, max_parts=MAX_PARTS):
    """Cut ``data`` into the fewest parts of at most ``max_part_size`` bytes, evenly sized."""
    if not data:
        raise BatchError("cannot split an empty package")
    if len(data) > MAX_PACKAGE_SIZE:
        raise BatchError("the package is %d bytes; KSeF accepts at most %d" % (len(data), MAX_PACKAGE_SIZE))
    count = -(-len(data) // max_part_size)
    if count > max_parts:
        raise BatchError("the package needs %d parts of %d bytes; KSeF accepts at most %d parts"
                         % (count, max_part_size, max_parts))
    size = -(-len(data) // count)
    return [data[offset:offset + size] for offset in range(0, len(data), size)]


def build_package(invoices, key, iv, max_part_size=MAX_PART_SIZE):
    """Package, split and encrypt ``invoices`` with the session ``key``/``iv``."""
    named = name_invoices(invoices)
    archive = build_zip(named)
    parts = []
    for ordinal, chunk in enumerate(split(archive, max_part_size), start=1):
        encrypted = crypto.aes_encrypt(chunk, key, iv)
        parts.append(BatchPart(ordinal, encrypted, len(encrypted), crypto.sha256_b64(encrypted)))
    return BatchPackage(
        file_size=len(archive),
        file_hash=crypto.sha256_b64(archive),
        parts=parts,
        file_names={name: crypto.sha256_b64(content) for name, content in named},
    )


def decrypt_package(parts, key, iv):
    """The plaintext ZIP back from encrypted parts (what KSeF does; used in tests and drills)."""
    return b"".join(crypto.aes_decrypt(part, key, iv) for part in parts)

"""What the simulator checks inside one FA(3) invoice: XML well-formedness, the XSD, and the
facts it needs (seller NIP, kind, number, issue date, attachments)."""
import collections
import os
import threading
from pathlib import Path

from lxml import etree

FA3_NAMESPACE = "http://crd.gov.pl/wzor/2025/06/25/13775/"
FA3_SCHEMA_FILE = "schemat_FA(3)_v1-0E.local.xsd"
MAX_XSD_ERRORS = 20

InvoiceFacts = collections.namedtuple(
    "InvoiceFacts", "errors seller_nip invoice_kind invoice_number issue_date has_attachment")


def default_shared_dir():
    """``$KSEF_SHARED`` or ``<repo root>/../shared`` (the repo root holds the ``ksef`` package)."""
    env = os.environ.get("KSEF_SHARED")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / ".." / "shared"


def default_xsd_dir():
    return default_shared_dir() / "ksef" / "xsd" / "FA3"


class InvoiceInspector:
    """Compiles the FA(3) schema once; ``inspect`` is thread-safe (one validator per call)."""

    def __init__(self, xsd_dir=None):
        xsd_dir = Path(xsd_dir) if xsd_dir else default_xsd_dir()
        schema_path = xsd_dir / FA3_SCHEMA_FILE
        if not schema_path.is_file():
            raise FileNotFoundError("FA(3) schema not found: %s (use --xsd-dir or KSEF_SHARED)" % schema_path)
        self.schema_doc = etree.parse(str(schema_path))
        self._schema = etree.XMLSchema(self.schema_doc)
        self._lock = threading.Lock()

    def inspect(self, xml_bytes, schema=None):
        """Return ``InvoiceFacts``; ``errors`` is empty when the XML is valid FA(3).

        lxml's XMLSchema objects are not safe to share between threads while validating, so a
        worker thread passes its own ``schema`` (see ``new_schema``)."""
        try:
            # parsers are not thread-safe either: a fresh one per call is cheap
            root = etree.fromstring(xml_bytes, etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.XMLSyntaxError as exc:
            return InvoiceFacts(["Nieprawidłowy dokument XML: %s" % exc], None, None, None, None, False)
        errors = []
        if schema is None:
            with self._lock:
                errors = self._validate(self._schema, root)
        else:
            errors = self._validate(schema, root)
        ns = {"fa": root.tag[1:].split("}")[0] if root.tag.startswith("{") else ""}

        def text(path):
            found = root.find(path, ns)
            return found.text.strip() if found is not None and found.text else None

        return InvoiceFacts(
            errors,
            text("fa:Podmiot1/fa:DaneIdentyfikacyjne/fa:NIP"),
            text("fa:Fa/fa:RodzajFaktury"),
            text("fa:Fa/fa:P_2"),
            text("fa:Fa/fa:P_1"),
            root.find("fa:Zalacznik", ns) is not None,
        )

    @staticmethod
    def _validate(schema, root):
        if schema.validate(root):
            return []
        return ["linia %d: %s" % (e.line, e.message) for e in list(schema.error_log)[:MAX_XSD_ERRORS]]

    def new_schema(self):
        return etree.XMLSchema(self.schema_doc)

"""UPO (Urzędowe Poświadczenie Odbioru) documents in the v4-3 structure (the Ministry's
ksef-docs ``faktury/upo/schemy/upo-v4-3.xsd``).

``build_upo`` writes a UPO for one invoice (one ``Dokument``) or one page of a session UPO
(``OpisPotwierdzenia`` + up to 10,000 ``Dokument``), ``parse_upo`` reads one back.

The v4-3 XSD fixes ``NazwaPodmiotuPrzyjmujacego`` to "Ministerstwo Finansów" and has no place
for a ``ds:Signature`` element, so a document that validates against the schema is unsigned;
the real MF UPOs carry an enveloped XAdES signature (and an environment suffix on TEST/DEMO)
and therefore do not validate strictly. ``parse_upo`` accepts both.
"""
import collections
import datetime

from lxml import etree

from . import safehttp

UPO_NAMESPACE = "http://upo.schematy.mf.gov.pl/KSeF/v4-3"
RECEIVING_ENTITY = "Ministerstwo Finansów"
MAX_DOCUMENTS_PER_PAGE = 10000
FA3_STRUCTURE_NAME = "Schemat_FA(3)_v1-0E.xsd"
FA3_FORM_CODE = "FA (3)"

# API context identifier type -> UPO element
CONTEXT_ELEMENTS = {
    "Nip": "Nip",
    "InternalId": "IdWewnetrzny",
    "NipVatUe": "IdZlozonyVatUE",
    "PeppolId": "IdDostawcyUslugPeppol",
}

UpoDocument = collections.namedtuple(
    "UpoDocument",
    "seller_nip ksef_number invoice_number issue_date sent_at numbered_at document_hash mode",
)
UpoDocument.__doc__ = """One ``Dokument`` entry: ``issue_date`` is P_1 (date or ISO string),
``sent_at``/``numbered_at`` aware datetimes (or ISO strings), ``document_hash`` the Base64
SHA-256 of the invoice, ``mode`` "Online" or "Offline"."""

UpoPage = collections.namedtuple("UpoPage", "page page_count range_from range_to total_documents")


def _q(name):
    return "{%s}%s" % (UPO_NAMESPACE, name)


def _iso_datetime(value):
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("UPO timestamps must be timezone-aware")
    return value.isoformat(timespec="milliseconds")


def _iso_date(value):
    if isinstance(value, str):
        return value
    if isinstance(value, datetime.datetime):
        value = value.date()
    return value.isoformat()


def build_upo(session_reference, context_type, context_value, documents,
              auth_token_reference=None, auth_document_hash=None, page=None,
              structure_name=FA3_STRUCTURE_NAME, form_code=FA3_FORM_CODE):
    """Return UPO XML bytes (UTF-8, with declaration).

    Exactly one of ``auth_token_reference`` (KSeF-token login) or ``auth_document_hash``
    (Base64 SHA-256 of the signed XAdES login document) must be given. ``page`` is an
    ``UpoPage`` for a session UPO, None for a single-invoice UPO.
    """
    if context_type not in CONTEXT_ELEMENTS:
        raise ValueError("unknown context type %r" % context_type)
    if (auth_token_reference is None) == (auth_document_hash is None):
        raise ValueError("give exactly one of auth_token_reference / auth_document_hash")
    documents = list(documents)
    if not 1 <= len(documents) <= MAX_DOCUMENTS_PER_PAGE:
        raise ValueError("a UPO holds 1..%d documents, got %d" % (MAX_DOCUMENTS_PER_PAGE, len(documents)))
    root = etree.Element(_q("Potwierdzenie"), nsmap={None: UPO_NAMESPACE})
    etree.SubElement(root, _q("NazwaPodmiotuPrzyjmujacego")).text = RECEIVING_ENTITY
    etree.SubElement(root, _q("NumerReferencyjnySesji")).text = session_reference
    auth = etree.SubElement(root, _q("Uwierzytelnienie"))
    context = etree.SubElement(auth, _q("IdKontekstu"))
    etree.SubElement(context, _q(CONTEXT_ELEMENTS[context_type])).text = context_value
    if auth_token_reference is not None:
        etree.SubElement(auth, _q("NumerReferencyjnyTokenaKSeF")).text = auth_token_reference
    else:
        etree.SubElement(auth, _q("SkrotDokumentuUwierzytelniajacego")).text = auth_document_hash
    if page is not None:
        description = etree.SubElement(root, _q("OpisPotwierdzenia"))
        for name, value in (("Strona", page.page), ("LiczbaStron", page.page_count),
                            ("ZakresDokumentowOd", page.range_from), ("ZakresDokumentowDo", page.range_to),
                            ("CalkowitaLiczbaDokumentow", page.total_documents)):
            etree.SubElement(description, _q(name)).text = str(value)
    etree.SubElement(root, _q("NazwaStrukturyLogicznej")).text = structure_name
    etree.SubElement(root, _q("KodFormularza")).text = form_code
    for doc in documents:
        entry = etree.SubElement(root, _q("Dokument"))
        for name, value in (
            ("NipSprzedawcy", doc.seller_nip),
            ("NumerKSeFDokumentu", doc.ksef_number),
            ("NumerFaktury", doc.invoice_number),
            ("DataWystawieniaFaktury", _iso_date(doc.issue_date)),
            ("DataPrzeslaniaDokumentu", _iso_datetime(doc.sent_at)),
            ("DataNadaniaNumeruKSeF", _iso_datetime(doc.numbered_at)),
            ("SkrotDokumentu", doc.document_hash),
            ("TrybWysylki", doc.mode),
        ):
            etree.SubElement(entry, _q(name)).text = value
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def page_ranges(total, per_page=MAX_DOCUMENTS_PER_PAGE):
    """Split ``total`` documents into ``UpoPage`` tuples (1-based, inclusive ranges as in the
    official examples: a one-page UPO of 2 documents says Od=1, Do=2)."""
    if total < 1:
        return []
    count = (total + per_page - 1) // per_page
    return [UpoPage(i + 1, count, i * per_page + 1, min(total, (i + 1) * per_page), total)
            for i in range(count)]


def parse_upo(xml_bytes):
    """Read a UPO (signed or not) into a dict with ``session_reference``, ``receiving_entity``,
    ``page`` (UpoPage or None) and ``documents`` (list of UpoDocument with string values)."""
    # A UPO comes from a server: no DTD, no entities, no network (a hostile one cannot read local files).
    root = etree.fromstring(xml_bytes, safehttp.xml_parser())
    if root.tag != _q("Potwierdzenie"):
        raise ValueError("not a UPO v4-3 document: root element %s" % root.tag)

    def text(parent, name):
        node = parent.find(_q(name))
        return node.text if node is not None else None

    description = root.find(_q("OpisPotwierdzenia"))
    page = None
    if description is not None:
        page = UpoPage(*(int(text(description, name)) for name in (
            "Strona", "LiczbaStron", "ZakresDokumentowOd", "ZakresDokumentowDo", "CalkowitaLiczbaDokumentow")))
    documents = [
        UpoDocument(*(text(entry, name) for name in (
            "NipSprzedawcy", "NumerKSeFDokumentu", "NumerFaktury", "DataWystawieniaFaktury",
            "DataPrzeslaniaDokumentu", "DataNadaniaNumeruKSeF", "SkrotDokumentu", "TrybWysylki")))
        for entry in root.findall(_q("Dokument"))
    ]
    return {
        "receiving_entity": text(root, "NazwaPodmiotuPrzyjmujacego"),
        "session_reference": text(root, "NumerReferencyjnySesji"),
        "page": page,
        "documents": documents,
    }

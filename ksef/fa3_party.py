"""The identification fields that ``fa3.Buyer`` (Podmiot2) and ``fa3_parts.ThirdParty``
(Podmiot3) share: the identification choice of the FA(3) XSD's ``TPodmiot2`` and ``TPodmiot3``
(NIP | KodUE + NrVatUE | KodKraju + NrID | BrakID; TPodmiot3's IDWew is not used), then Adres,
DaneKontaktowe and NrKlienta.  Its own module so that ``fa3`` and
``fa3_parts`` (which import each other) both build on it whichever is imported first; its
DaneIdentyfikacyjne is written by ``fa3._build_identification``."""
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .fa3 import Address


@dataclass(kw_only=True)
class Party:
    """A buyer-like party (Podmiot2, Podmiot3): identification, address, contact, customer number.  The identification is chosen by which fields are set (only one kind allowed):

    ``nip`` (Polish NIP) | ``eu_country`` + ``eu_vat_number`` (KodUE/NrVatUE, number without the
    country prefix) | ``tax_id`` with optional ``tax_id_country`` (KodKraju/NrID) | none of them
    (BrakID=1, e.g. a consumer).
    """

    name: str | None = None
    nip: str | None = None
    eu_country: str | None = None
    eu_vat_number: str | None = None
    tax_id: str | None = None
    tax_id_country: str | None = None
    address: "Address | None" = None  # fa3.Address
    email: str | None = None
    phone: str | None = None
    customer_number: str | None = None  # NrKlienta

"""KSeF numbers: ``NNNNNNNNNN-YYYYMMDD-XXXXXXXXXXXX-CC`` (the Ministry's
ksef-docs ``faktury/numer-ksef.md``; OpenAPI ``KsefNumber``).

The seller NIP, the date the invoice was accepted for processing, 12 uppercase hex digits
chosen by KSeF, and a CRC-8 (polynomial 0x07, initial value 0, no reflection, no final XOR)
over the ASCII bytes of the first 32 characters, hyphens included, as 2 uppercase hex digits.
"""
import datetime
import os
import re

KSEF_NUMBER_LENGTH = 35
# NIP pattern of the OpenAPI spec (no leading zero, digits 2-3 not both zero), then the date,
# the 12 hex digits and the checksum.
_KSEF_NUMBER_RE = re.compile(
    r"^([1-9](\d[1-9]|[1-9]\d)\d{7})-(\d{4})(\d{2})(\d{2})-([0-9A-F]{12})-([0-9A-F]{2})$"
)


def _crc8_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return table


_CRC8_TABLE = _crc8_table()


def crc8(data):
    """CRC-8 with polynomial 0x07 and initial value 0 (CRC-8/SMBUS) of ``data`` (bytes or str)."""
    if isinstance(data, str):
        data = data.encode("ascii")
    crc = 0
    for byte in data:
        crc = _CRC8_TABLE[crc ^ byte]
    return crc


def make_ksef_number(nip, date, hex_part=None):
    """Build a KSeF number for ``nip`` accepted on ``date`` (a ``datetime.date``).

    ``hex_part`` is the 12-hex-digit middle (int or str); random when omitted.
    """
    nip = str(nip)
    if not re.fullmatch(r"[1-9](\d[1-9]|[1-9]\d)\d{7}", nip):
        raise ValueError("not a valid NIP for a KSeF number: %r" % nip)
    if isinstance(date, datetime.datetime):
        date = date.date()
    if hex_part is None:
        hex_part = os.urandom(6).hex().upper()
    elif isinstance(hex_part, int):
        if not 0 <= hex_part < 16 ** 12:
            raise ValueError("hex_part out of range")
        hex_part = "%012X" % hex_part
    elif not re.fullmatch(r"[0-9A-F]{12}", hex_part):
        raise ValueError("hex_part must be 12 uppercase hex digits")
    body = "%s-%s-%s" % (nip, date.strftime("%Y%m%d"), hex_part)
    return "%s-%02X" % (body, crc8(body))


def is_valid_ksef_number(value):
    """True when ``value`` is a well-formed 35-character KSeF 2.0 number with a correct CRC."""
    if not isinstance(value, str) or len(value) != KSEF_NUMBER_LENGTH:
        return False
    match = _KSEF_NUMBER_RE.match(value)
    if not match:
        return False
    try:
        datetime.date(int(match.group(3)), int(match.group(4)), int(match.group(5)))
    except ValueError:
        return False
    return "%02X" % crc8(value[:32]) == value[33:]

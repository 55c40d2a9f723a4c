import datetime
import json
import os
from pathlib import Path

import pytest

from ksef.ksef_number import crc8, is_valid_ksef_number, make_ksef_number


def shared_dir():
    env = os.environ.get("KSEF_SHARED")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / ".." / "shared"


VECTORS = json.loads(
    (shared_dir() / "ksef" / "test-vectors" / "qr-and-ksef-number-test-vectors.json").read_text("utf-8")
)
VALID = VECTORS["official"]["ksefNumber_crc8"]["valid"]


def test_crc8_known_check_value():
    # CRC-8/SMBUS check value for the standard "123456789" input
    assert crc8(b"123456789") == 0xF4
    assert crc8(b"") == 0


@pytest.mark.parametrize("number", VALID)
def test_official_numbers_are_valid_and_reproducible(number):
    assert is_valid_ksef_number(number)
    nip, date, hex_part, _ = number.split("-")
    rebuilt = make_ksef_number(nip, datetime.datetime.strptime(date, "%Y%m%d").date(), hex_part)
    assert rebuilt == number


@pytest.mark.parametrize("number", VALID)
def test_any_single_character_change_is_detected(number):
    # flip the last hex digit of the random part: the CRC must no longer match
    chars = list(number)
    chars[31] = "0" if chars[31] != "0" else "1"
    assert not is_valid_ksef_number("".join(chars))


def test_rejects_malformed_numbers():
    good = VALID[0]
    assert not is_valid_ksef_number(good.lower())
    assert not is_valid_ksef_number(good + "0")
    assert not is_valid_ksef_number("0265877635" + good[10:])
    assert not is_valid_ksef_number("5265877635-20251341-0100001AF629-AF")
    assert not is_valid_ksef_number(None)


def test_make_random_number_is_valid():
    number = make_ksef_number("5265877635", datetime.date(2026, 2, 2))
    assert len(number) == 35 and number.startswith("5265877635-20260202-")
    assert is_valid_ksef_number(number)
    assert make_ksef_number("5265877635", datetime.date(2026, 2, 2), 0x1AF629)[20:32] == "0000001AF629"
    with pytest.raises(ValueError):
        make_ksef_number("0123456789", datetime.date(2026, 2, 2))

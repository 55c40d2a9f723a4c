import io
import zipfile

import pytest

from ksef import batch, crypto


def _invoice(number, padding=0):
    return ("<Faktura><P_2>FV/%d</P_2><X>%s</X></Faktura>" % (number, "z" * padding)).encode()


def test_zip_is_deterministic_and_maps_names_to_hashes():
    invoices = [_invoice(1), _invoice(2)]
    key, iv = crypto.new_symmetric_key()
    first = batch.build_package(invoices, key, iv)
    second = batch.build_package(invoices, key, iv)
    assert first.file_hash == second.file_hash
    assert first.file_names == {
        "invoice-00001.xml": crypto.sha256_b64(invoices[0]),
        "invoice-00002.xml": crypto.sha256_b64(invoices[1]),
    }
    assert first.invoice_hashes()[crypto.sha256_b64(invoices[1])] == "invoice-00002.xml"


def test_package_round_trips_through_encryption():
    invoices = [("FV-1.xml", _invoice(1)), ("FV-2.xml", _invoice(2))]
    key, iv = crypto.new_symmetric_key()
    package = batch.build_package(invoices, key, iv)
    plain = batch.decrypt_package([part.content for part in package.parts], key, iv)
    assert len(plain) == package.file_size and crypto.sha256_b64(plain) == package.file_hash
    with zipfile.ZipFile(io.BytesIO(plain)) as archive:
        assert archive.namelist() == ["FV-1.xml", "FV-2.xml"]
        assert archive.read("FV-2.xml") == _invoice(2)
    request = package.batch_file()
    assert request["compressionType"] == "Zip"
    assert request["fileParts"] == [{"ordinalNumber": 1, "fileSize": package.parts[0].file_size,
                                     "fileHash": crypto.sha256_b64(package.parts[0].content)}]
    # PKCS#7 always pads: the encrypted part is bigger than the plaintext, by 1..16 bytes
    assert 1 <= package.parts[0].file_size - package.file_size <= 16


def test_split_makes_the_fewest_even_parts_within_the_limit():
    data = bytes(range(256)) * 40  # 10240 bytes
    parts = batch.split(data, max_part_size=3000)
    assert len(parts) == 4 and b"".join(parts) == data
    assert max(len(p) for p in parts) <= 3000
    assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1
    assert batch.split(data, max_part_size=len(data)) == [data]


def test_multi_part_package_is_encrypted_part_by_part():
    invoices = [_invoice(n, padding=500) + bytes(str(n * 7919), "ascii") for n in range(1, 30)]
    key, iv = crypto.new_symmetric_key()
    package = batch.build_package(invoices, key, iv, max_part_size=400)
    assert len(package.parts) > 1
    assert [p.ordinal_number for p in package.parts] == list(range(1, len(package.parts) + 1))
    for part in package.parts:
        assert len(crypto.aes_decrypt(part.content, key, iv)) <= 400
    plain = batch.decrypt_package([p.content for p in package.parts], key, iv)
    assert crypto.sha256_b64(plain) == package.file_hash


def test_limits_are_enforced():
    with pytest.raises(batch.BatchError, match="at most 50 parts"):
        batch.split(b"x" * 5100, max_part_size=100)
    with pytest.raises(batch.BatchError, match="unique"):
        batch.name_invoices([("a.xml", b"<a/>"), ("a.xml", b"<b/>")])
    with pytest.raises(batch.BatchError, match="at least one"):
        batch.name_invoices([])
    with pytest.raises(batch.BatchError, match="file name"):
        batch.name_invoices([("../a.xml", b"<a/>")])
    assert batch.MAX_PART_SIZE == 100_000_000 and batch.MAX_PARTS == 50

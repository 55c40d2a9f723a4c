import io
import zipfile

import pytest

from ksef import evidence


def test_pack_lists_every_file_with_its_hash_and_detects_a_change():
    data = evidence.build_zip([("a/FA3.xml", b"<Faktura/>"), ("summary.pdf", b"%PDF-1.4")])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["a/FA3.xml", "summary.pdf", "SHA256SUMS"]
        assert "a/FA3.xml" in archive.read("SHA256SUMS").decode()
    assert evidence.verify_zip(data) == []
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(buffer, "w") as target:
        for name in source.namelist():
            target.writestr(name, b"<Faktura>changed</Faktura>" if name == "a/FA3.xml" else source.read(name))
    assert evidence.verify_zip(buffer.getvalue()) == ["a/FA3.xml"]


@pytest.mark.parametrize("path", ["", "/etc/passwd", "a/../b", "SHA256SUMS"])
def test_bad_paths_are_refused(path):
    with pytest.raises(ValueError):
        evidence.build_zip([(path, b"x")])


def test_repeated_path_and_text_content_are_refused():
    with pytest.raises(ValueError):
        evidence.build_zip([("a", b"x"), ("a", b"y")])
    with pytest.raises(TypeError):
        evidence.build_zip([("a", "text")])

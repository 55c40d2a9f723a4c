"""The evidence pack of invoices issued offline: one ZIP whose files an auditor can check
against each other. ``SHA256SUMS`` (the format of ``sha256sum -c``) lists every file's hash,
so that a file changed after the pack was made is seen. Pure: no clock, no Odoo."""
import hashlib
import io
import zipfile

SUMS_NAME = "SHA256SUMS"


def build_zip(files):
    """``files``: (path inside the ZIP, bytes) pairs, paths unique. Returns the ZIP bytes, with
    ``SHA256SUMS`` added last."""
    seen = set()
    buffer = io.BytesIO()
    sums = []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, content in files:
            if not path or path in seen or path == SUMS_NAME or path.startswith("/") or ".." in path.split("/"):
                raise ValueError("bad or repeated path in the evidence pack: %r" % path)
            if not isinstance(content, bytes):
                raise TypeError("%s: content must be bytes" % path)
            seen.add(path)
            archive.writestr(path, content)
            sums.append("%s  %s" % (hashlib.sha256(content).hexdigest(), path))
        archive.writestr(SUMS_NAME, ("\n".join(sums) + "\n").encode())
    return buffer.getvalue()


def verify_zip(data):
    """The paths whose content does not match ``SHA256SUMS`` (empty when the pack is intact)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        expected = {}
        for line in archive.read(SUMS_NAME).decode().splitlines():
            digest, path = line.split("  ", 1)
            expected[path] = digest
        names = set(archive.namelist()) - {SUMS_NAME}
        bad = [path for path in sorted(names | set(expected))
               if path not in expected or path not in names
               or hashlib.sha256(archive.read(path)).hexdigest() != expected[path]]
    return bad

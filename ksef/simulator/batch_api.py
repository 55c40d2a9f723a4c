"""Batch sessions (KSeF ``sesja-wsadowa.md``; OpenAPI ``OpenBatchSessionRequest``, ``BatchFileInfo``):
open with the declared package, pre-signed part uploads, close, and the worker thread that
decrypts, unpacks and judges the invoices. A mixin of ``SimulatorApp``."""
import io
import json
import tarfile
import threading
import zipfile

from .. import crypto
from .common import BATCH_UPLOAD_TIME_PER_PART, MAX_BATCH_PACKAGE_SIZE, MAX_BATCH_PART_SIZE, MAX_BATCH_PARTS, \
    require
from .sessions_api import status_refusal
from .wire import ApiError, ProblemError, Response, json_response, utc_iso, validation_error


def _unpack(package, compression):
    files = []
    if compression == "TarGz":
        with tarfile.open(fileobj=io.BytesIO(package), mode="r:gz") as archive:
            for member in archive.getmembers():
                if member.isfile():
                    files.append((member.name, archive.extractfile(member).read()))
        return files
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        for info in archive.infolist():
            if not info.is_dir():
                files.append((info.filename, archive.read(info)))
    return files


def _read_batch_file(data):
    """The ``batchFile`` of an open request, checked: {fileSize, fileHash, compressionType, fileParts}."""
    batch = data.get("batchFile")
    if not isinstance(batch, dict):
        raise validation_error("Pole batchFile jest wymagane.")
    file_size = require(batch, "fileSize", int)
    file_hash = require(batch, "fileHash")
    compression = batch.get("compressionType") or "Zip"
    if compression not in ("Zip", "TarGz"):
        raise validation_error("compressionType: dozwolone Zip lub TarGz.")
    if not 0 < file_size <= MAX_BATCH_PACKAGE_SIZE:
        raise validation_error("fileSize paczki musi mieścić się w 1..%d B." % MAX_BATCH_PACKAGE_SIZE)
    parts = batch.get("fileParts")
    if not isinstance(parts, list) or not parts:
        raise validation_error("fileParts: wymagana co najmniej jedna część.")
    if len(parts) > MAX_BATCH_PARTS:
        raise ApiError(400, 21161, "Przekroczono dozwoloną liczbę części pakietu.",
                       ["Zadeklarowano %d części, dozwolone %d." % (len(parts), MAX_BATCH_PARTS)])
    declared = []
    for part in parts:
        if not isinstance(part, dict):
            raise validation_error("fileParts: oczekiwano obiektów.")
        ordinal = require(part, "ordinalNumber", int)
        size = require(part, "fileSize", int)
        part_hash = require(part, "fileHash")
        if not 0 < size <= MAX_BATCH_PART_SIZE + 16:
            raise ApiError(400, 21157, "Nieprawidłowy rozmiar części pakietu.",
                           ["Część %d: %d B, dozwolone do %d B przed zaszyfrowaniem."
                            % (ordinal, size, MAX_BATCH_PART_SIZE)])
        declared.append({"ordinalNumber": ordinal, "fileSize": size, "fileHash": part_hash})
    if sorted(p["ordinalNumber"] for p in declared) != list(range(1, len(declared) + 1)):
        raise validation_error("fileParts: numery części muszą być kolejnymi liczbami od 1.")
    return {"fileSize": file_size, "fileHash": file_hash, "compressionType": compression,
            "fileParts": sorted(declared, key=lambda p: p["ordinalNumber"])}


class BatchApiMixin:
    """Handlers of ``/v2/sessions/batch*`` and ``PUT /upload/...``, and the batch worker."""

    def batch_routes(self):
        return [
            ("POST", r"/v2/sessions/batch", self.batch_open, "access"),
            ("POST", r"/v2/sessions/batch/(?P<ref>[^/]+)/close", self.batch_close, "access"),
        ]

    def upload_routes(self):
        return [("PUT", r"/upload/(?P<ref>[^/]+)/(?P<part>\d+)", self.batch_upload, "signed")]

    def batch_open(self, request):
        data = request.json()
        form = self._read_form_code(data)
        batch_info = _read_batch_file(data)
        offline_mode = data.get("offlineMode", False)
        if not isinstance(offline_mode, bool):
            raise validation_error("offlineMode musi być wartością logiczną.")
        key, iv, key_error = self._unwrap_session_key(data)
        now = self.now()
        ref = self.reference("SB", now)
        upload_time = BATCH_UPLOAD_TIME_PER_PART * len(batch_info["fileParts"])
        self._new_session(request, "Batch", ref, form, now, now + upload_time, 100, key, iv, key_error,
                          offline_mode=int(offline_mode), batch_file=json.dumps(batch_info))
        uploads = []
        for part in batch_info["fileParts"]:
            url, _ = self.signed_url(request, "/upload/%s/%d" % (ref, part["ordinalNumber"]), upload_time)
            uploads.append({"ordinalNumber": part["ordinalNumber"], "method": "PUT", "url": url,
                            "headers": {"x-ms-blob-type": "BlockBlob"}})
        return json_response(201, {"referenceNumber": ref, "partUploadRequests": uploads})

    def batch_upload(self, request, ref, part):
        row = self.store.session(ref, "Batch")
        if row is None:
            raise ProblemError(404, "Nie znaleziono sesji %s." % ref)
        row = self._refresh_session(row)
        if row["status_code"] != 100:
            raise ProblemError(403, "Sesja %s nie przyjmuje już części (status %d)." % (ref, row["status_code"]))
        ordinals = [p["ordinalNumber"] for p in json.loads(row["batch_file"])["fileParts"]]
        if int(part) not in ordinals:
            raise validation_error("Część %s nie została zadeklarowana." % part)
        self.store.put_batch_part(ref, int(part), request.body)
        return Response(201)

    def batch_close(self, request, ref):
        session = self._session(request, ref, "Batch")
        if session["status_code"] == 440:
            raise ApiError(400, 21208, "Czas oczekiwania na requesty upload lub finish został przekroczony.",
                           ["Sesja anulowana, przekroczony czas wysyłki."])
        if session["status_code"] != 100:
            raise status_refusal(session["status_code"], "jej zamknięcie")
        declared = json.loads(session["batch_file"])["fileParts"]
        sizes = self.store.batch_part_sizes(ref)
        for part in declared:
            ordinal = part["ordinalNumber"]
            if ordinal not in sizes:
                raise ApiError(400, 21205, "Pakiet nie może być pusty.",
                               ["Nie przesłano zadeklarowanej '%d' części pliku." % ordinal])
            if sizes[ordinal] != part["fileSize"]:
                raise ApiError(400, 21157, "Nieprawidłowy rozmiar części pakietu.",
                               ["Zadeklarowany rozmiar części '%d' nie zgadza się z rzeczywistym." % ordinal])
        with self.store.transaction():
            self._set_session_status(ref, 150, closed=utc_iso(self.now()))
        self._start_batch_worker(ref)
        response = Response(204)
        response.stall_seconds = self._take_stall()
        return response

    # ------------------------------------------------------------------ the worker
    def _resume_batches(self):
        """A batch closed just before a restart is processed again (its parts are stored)."""
        for ref in self.store.batches_in_processing():
            self._start_batch_worker(ref)

    def _start_batch_worker(self, ref):
        worker = threading.Thread(target=self._process_batch, args=(ref,), name="batch-" + ref, daemon=True)
        self.workers = [w for w in self.workers if w.is_alive()] + [worker]
        worker.start()

    def _process_batch(self, ref):
        try:
            self._process_batch_inner(ref)
        except Exception as exc:  # the session must not stay "processing" forever
            self._fail_batch(ref, 500, ["Nieznany błąd (%s): %s" % (type(exc).__name__, exc)])

    def _fail_batch(self, ref, code, details=None):
        with self.store.transaction():
            self._set_session_status(ref, code, details)

    def _process_batch_inner(self, ref):
        session = self.store.session(ref)
        if session["key_error"]:
            return self._fail_batch(ref, 415)
        info = json.loads(session["batch_file"])
        declared = {p["ordinalNumber"]: p for p in info["fileParts"]}
        plain_parts = []
        for part in self.store.batch_parts(ref):
            data = bytes(part["data"])
            if crypto.sha256_b64(data) != declared[part["ordinal"]]["fileHash"]:
                return self._fail_batch(ref, 405, ["Skrót części %d nie zgadza się z zadeklarowanym." % part["ordinal"]])
            try:
                plain_parts.append(crypto.aes_decrypt(data, bytes(session["aes_key"]), bytes(session["iv"])))
            except ValueError:
                return self._fail_batch(ref, 435, ["Nie udało się odszyfrować części %d." % part["ordinal"]])
        package = b"".join(plain_parts)
        if len(package) != info["fileSize"] or crypto.sha256_b64(package) != info["fileHash"]:
            return self._fail_batch(ref, 405, ["Rozmiar lub skrót paczki nie zgadza się z zadeklarowanym."])
        try:
            files = _unpack(package, info["compressionType"])
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
            return self._fail_batch(ref, 430, [str(exc)])
        limit = int(self.config["max_invoices_per_session"])
        if len(files) > limit:
            return self._fail_batch(ref, 420, ["Paczka zawiera %d faktur, limit %d." % (len(files), limit)])
        schema = self.inspector.new_schema()
        inspected = [(name, content, self.inspector.inspect(content, schema)) for name, content in files]
        now = self.now()
        offline_mode = bool(session["offline_mode"])
        # a batch's invoicingDate is the session's opening (offline/automatyczne-okreslanie-trybu-offline.md)
        invoicing_ts = session["created_ts"]
        with self.store.transaction():
            pending = {}
            rows = []
            for ordinal, (name, content, facts) in enumerate(inspected, start=1):
                result = self._evaluate(session, facts, len(content), offline_mode, invoicing_ts,
                                        online=False, corrected=None, pending=pending)
                rows.append(self._invoice_row(self.reference("EE", now), ref, ordinal, crypto.sha256_b64(content),
                                              len(content), name[:128], content, invoicing_ts, now, offline_mode,
                                              None, result, facts))
            self.store.add_invoices(rows)
            self.store.update_session(ref, invoice_count=len(rows))
            self.store.drop_batch_parts(ref)
            self._finish_session(ref, len(rows))

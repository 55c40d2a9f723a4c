"""KSeF status codes: the one table of the core.

The codes and their descriptions are the tables of the KSeF 2.0 OpenAPI (``open-api.json`` 2.6,
unchanged in the 2.7 snapshot): ``SessionStatusResponse.status`` (batch and interactive
sessions), ``SessionInvoiceStatusResponse.status`` (one invoice of a session),
``AuthenticationOperationStatusResponse.status`` and ``CertificateEnrollmentStatusResponse.status``. ``ksef/tests/test_codes.py`` reads both spec
files and checks that every code they document is here, with the same description and group.

The named groups say what a code means for the sender:

* pending: KSeF is still working, ask again later;
* success: done (a session processed, an invoice numbered);
* duplicate (invoice 440): KSeF already holds an invoice of this seller, type and number;
* technical (retryable): KSeF's own trouble, not a verdict on the document; KSeF did not
  process the invoice, so it may be sent again;
* permission: the sender may not send this (scope of permissions, attachments not enabled);
* rejected: a verdict on the file itself (schema, decryption, semantics);
* final session codes: nothing changes in the session any more.

The 405 question. The same number means two things, one per table:

* session 405, "Błąd weryfikacji poprawności dostarczonych elementów paczki" (batch only): the
  package failed verification and the session ended; it is a FINAL session code, a failure;
* invoice 405, "Przetwarzanie anulowane z powodu błędu sesji": KSeF cancelled the invoice's
  processing because of an error of its session, so the document itself was never judged and
  has no KSeF number. It is TECHNICAL (retryable), like 500 "Nieznany błąd" and 550 "Operacja
  została anulowana przez system ... Spróbuj ponownie"; sending the same file again in a new
  session is safe and right.
"""

# --- session statuses (OpenAPI SessionStatusResponse.status) ---------------------------------

BATCH_SESSION = {
    100: "Sesja wsadowa rozpoczęta",
    150: "Trwa przetwarzanie",
    200: "Sesja wsadowa przetworzona pomyślnie",
    405: "Błąd weryfikacji poprawności dostarczonych elementów paczki",
    415: "Błąd odszyfrowania dostarczonego klucza",
    420: "Przekroczony limit faktur w sesji",
    430: "Błąd dekompresji pierwotnego archiwum",
    435: "Błąd odszyfrowania zaszyfrowanych części archiwum",
    440: "Sesja anulowana",      # details: "Przekroczono czas wysyłki" / "Nie przesłano faktur"
    445: "Błąd weryfikacji, brak poprawnych faktur",
    500: "Nieznany błąd ({statusCode})",
}
ONLINE_SESSION = {
    100: "Sesja interaktywna otwarta",
    170: "Sesja interaktywna zamknięta",
    200: "Sesja interaktywna przetworzona pomyślnie",
    415: "Błąd odszyfrowania dostarczonego klucza",
    440: "Sesja anulowana",      # details: "Nie przesłano faktur"
    445: "Błąd weryfikacji, brak poprawnych faktur",
}

SESSION_OPEN = 100
SESSION_PROCESSING = 150
SESSION_CLOSED = 170             # interactive: closed, the session UPO is being prepared
SESSION_SUCCESS = 200
SESSION_CANCELLED = 440          # never closed in time, or nothing sent: none of it is processed
SESSION_PENDING = (SESSION_OPEN, SESSION_PROCESSING, SESSION_CLOSED)
SESSION_FAILED = (405, 415, 420, 430, 435, 445, 500)
# Statuses after which nothing changes in the session any more.
FINAL_SESSION_CODES = tuple(sorted((SESSION_SUCCESS, SESSION_CANCELLED) + SESSION_FAILED))

# --- per-invoice statuses (OpenAPI SessionInvoiceStatusResponse.status) ---------------------

INVOICE = {
    100: "Faktura przyjęta do dalszego przetwarzania",
    150: "Trwa przetwarzanie",
    200: "Sukces",
    405: "Przetwarzanie anulowane z powodu błędu sesji",
    410: "Nieprawidłowy zakres uprawnień",
    415: "Brak możliwości wysyłania faktury z załącznikiem",
    430: "Błąd weryfikacji pliku faktury",
    435: "Błąd odszyfrowania pliku",
    440: "Duplikat faktury",     # extensions: originalSessionReferenceNumber, originalKsefNumber
    450: "Błąd weryfikacji semantyki dokumentu faktury",
    500: "Nieznany błąd ({statusCode})",
    550: "Operacja została anulowana przez system",
}

INVOICE_PENDING = (100, 150)
INVOICE_SUCCESS = 200
INVOICE_DUPLICATE = 440
INVOICE_TECHNICAL = (405, 500, 550)   # KSeF's trouble: not processed, send again (see the 405 note)
INVOICE_PERMISSION = (410, 415)
INVOICE_REJECTED = (430, 435, 450)    # a verdict on the file

# --- authentication operation statuses (OpenAPI AuthenticationOperationStatusResponse.status) -

AUTH = {
    100: "Uwierzytelnianie w toku",
    200: "Uwierzytelnianie zakończone sukcesem",
    415: "Uwierzytelnianie zakończone niepowodzeniem",
    425: "Uwierzytelnienie unieważnione",
    450: "Uwierzytelnianie zakończone niepowodzeniem z powodu błędnego tokenu",
    460: "Uwierzytelnianie zakończone niepowodzeniem z powodu błędu certyfikatu",
    470: "Uwierzytelnianie zakończone niepowodzeniem",
    480: "Uwierzytelnienie zablokowane",
    500: "Nieznany błąd",
    550: "Operacja została anulowana przez system",
}

AUTH_PENDING = (100,)
AUTH_SUCCESS = 200
AUTH_PERMISSION = (415,)              # "Brak przypisanych uprawnień"
AUTH_TECHNICAL = (500, 550)
AUTH_REJECTED = (425, 450, 460, 470, 480)

# --- certificate enrollment statuses (OpenAPI CertificateEnrollmentStatusResponse.status) ------

ENROLLMENT = {
    100: "Wniosek przyjęty do realizacji",
    200: "Wniosek obsłużony (certyfikat wygenerowany)",
    400: "Wniosek odrzucony",     # details: key already certified for another subject / limit reached
    500: "Nieznany błąd",
    550: "Operacja została anulowana przez system",
}

ENROLLMENT_PENDING = (100,)
ENROLLMENT_ISSUED = 200

# --- groups ----------------------------------------------------------------------------------

PENDING = "pending"
SUCCESS = "success"
DUPLICATE = "duplicate"
TECHNICAL = "technical"
PERMISSION = "permission"
REJECTED = "rejected"
FAILED = "failed"          # a session that ended without processing its invoices
CANCELLED = "cancelled"

_INVOICE_GROUPS = {
    PENDING: INVOICE_PENDING, SUCCESS: (INVOICE_SUCCESS,), DUPLICATE: (INVOICE_DUPLICATE,),
    TECHNICAL: INVOICE_TECHNICAL, PERMISSION: INVOICE_PERMISSION, REJECTED: INVOICE_REJECTED,
}
_SESSION_GROUPS = {
    PENDING: SESSION_PENDING, SUCCESS: (SESSION_SUCCESS,), CANCELLED: (SESSION_CANCELLED,),
    FAILED: SESSION_FAILED,
}
_AUTH_GROUPS = {
    PENDING: AUTH_PENDING, SUCCESS: (AUTH_SUCCESS,), PERMISSION: AUTH_PERMISSION, TECHNICAL: AUTH_TECHNICAL,
    REJECTED: AUTH_REJECTED,
}


def _group(groups, code, default):
    for name, members in groups.items():
        if code in members:
            return name
    return default


def invoice_group(code):
    """The group of a per-invoice status code; an unknown 4xx/5xx is ``rejected``/``technical``."""
    return _group(_INVOICE_GROUPS, code, TECHNICAL if (code or 0) >= 500 else REJECTED)


def session_group(code):
    """The group of a session status code (None for a code the spec does not list)."""
    return _group(_SESSION_GROUPS, code, None)


def auth_group(code):
    """The group of an authentication operation status code."""
    return _group(_AUTH_GROUPS, code, TECHNICAL if (code or 0) >= 500 else REJECTED)


def is_final_session(code):
    return code in FINAL_SESSION_CODES

"""The simulator's KSeF status codes and their Polish descriptions: one table for every module
of the simulator. The codes are those the KSeF OpenAPI lists for ``SessionStatusResponse.status``
(online and batch sessions), ``SessionInvoiceStatusResponse.status``, the authentication
operation's and the certificate enrollment's status; the descriptions are Polish, as KSeF
answers. Kept self-contained: the core's ``ksef/codes.py`` may later be its source."""

# GET /sessions?statuses=...: which session codes each filter value stands for
SESSION_STATUS_GROUPS = {
    "InProgress": (100, 150, 170),
    "Succeeded": (200,),
    "Failed": (405, 415, 420, 430, 435, 445, 500),
    "Cancelled": (440,),
}
INVOICE_STATUS = {
    100: "Faktura przyjęta do dalszego przetwarzania",
    150: "Trwa przetwarzanie",
    200: "Sukces",
    405: "Przetwarzanie anulowane z powodu błędu sesji",
    410: "Nieprawidłowy zakres uprawnień",
    415: "Brak możliwości wysyłania faktury z załącznikiem",
    430: "Błąd weryfikacji pliku faktury",
    435: "Błąd odszyfrowania pliku",
    440: "Duplikat faktury",
    450: "Błąd weryfikacji semantyki dokumentu faktury",
}
ONLINE_STATUS = {
    100: "Sesja interaktywna otwarta",
    170: "Sesja interaktywna zamknięta",
    200: "Sesja interaktywna przetworzona pomyślnie",
    415: "Błąd odszyfrowania dostarczonego klucza",
    440: "Sesja anulowana",
    445: "Błąd weryfikacji, brak poprawnych faktur",
}
BATCH_STATUS = {
    100: "Sesja wsadowa rozpoczęta",
    150: "Trwa przetwarzanie",
    200: "Sesja wsadowa przetworzona pomyślnie",
    405: "Błąd weryfikacji poprawności dostarczonych elementów paczki",
    415: "Błąd odszyfrowania dostarczonego klucza",
    420: "Przekroczony limit faktur w sesji",
    430: "Błąd dekompresji pierwotnego archiwum",
    435: "Błąd odszyfrowania zaszyfrowanych części archiwum",
    440: "Sesja anulowana",
    445: "Błąd weryfikacji, brak poprawnych faktur",
    500: "Nieznany błąd",
}
AUTH_STATUS = {
    100: "Uwierzytelnianie w toku",
    200: "Uwierzytelnianie zakończone sukcesem",
    415: "Uwierzytelnianie zakończone niepowodzeniem",
    450: "Uwierzytelnianie zakończone niepowodzeniem z powodu błędnego tokenu",
    460: "Uwierzytelnianie zakończone niepowodzeniem z powodu błędu certyfikatu",
}
ENROLLMENT_STATUS = {
    100: "Wniosek przyjęty do realizacji",
    200: "Wniosek obsłużony (certyfikat wygenerowany)",
    400: "Wniosek odrzucony",
}


def session_status_description(kind, code):
    """The description of session status ``code`` for a session of ``kind`` (Online | Batch)."""
    return (ONLINE_STATUS if kind == "Online" else BATCH_STATUS)[code]

"""The simulator's KSeF status codes and their Polish descriptions: one table for every module
of the simulator, taken from the core's one table of KSeF codes (``ksef/codes.py``, itself the
KSeF OpenAPI's ``SessionStatusResponse.status``, ``SessionInvoiceStatusResponse.status``, the
authentication operation's and the certificate enrollment's status), so the simulator answers
with exactly the codes and words the client understands."""

from .. import codes


def _plain(table):
    # The OpenAPI writes "Nieznany błąd ({statusCode})" as a template; the simulator has no
    # inner code to put there.
    return {code: text.replace(" ({statusCode})", "") for code, text in table.items()}


# GET /sessions?statuses=...: which session codes each filter value stands for
SESSION_STATUS_GROUPS = {
    "InProgress": codes.SESSION_PENDING,
    "Succeeded": (codes.SESSION_SUCCESS,),
    "Failed": codes.SESSION_FAILED,
    "Cancelled": (codes.SESSION_CANCELLED,),
}
INVOICE_STATUS = _plain(codes.INVOICE)
ONLINE_STATUS = _plain(codes.ONLINE_SESSION)
BATCH_STATUS = _plain(codes.BATCH_SESSION)
AUTH_STATUS = _plain(codes.AUTH)
ENROLLMENT_STATUS = _plain(codes.ENROLLMENT)


def session_status_description(kind, code):
    """The description of session status ``code`` for a session of ``kind`` (Online | Batch)."""
    return (ONLINE_STATUS if kind == "Online" else BATCH_STATUS)[code]

"""A secret for the simulator's ``/_control`` API.

A drill's simulator listens on 127.0.0.1, where every local user could otherwise register a
token for any NIP or end the outage the trainer scripted. Started with a secret (the
environment variable below, never the command line, which every process listing shows), it
answers ``/_control/*`` only to requests carrying it in the header below; ``/_control/health``
stays open so a launcher can tell that something answers. Without a secret (tests, the demo's
own simulator) the control API is open as before.
"""
import hmac
import os

from .wire import json_response

ENV_VAR = "KSEF_SIMULATOR_CONTROL_SECRET"
HEADER = "X-KSeF-Simulator-Secret"
OPEN_PATHS = ("/_control/health",)


def from_environment(environ=None):
    return (environ if environ is not None else os.environ).get(ENV_VAR) or None


def headers(secret):
    """The request headers that open the control API of a simulator started with ``secret``."""
    return {HEADER: secret} if secret else {}


def refusal(expected, request):
    """``None`` when ``request`` may use the control API, else the 403 answer to give."""
    if not expected or request.path in OPEN_PATHS:
        return None
    given = request.header(HEADER) or ""
    if hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        return None
    return json_response(403, {"title": "Forbidden", "status": 403,
                               "detail": "The control API of this simulator needs its secret (%s)." % HEADER})

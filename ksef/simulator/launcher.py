"""Start the local simulator for a drill and drive its control API (used by the Odoo side).

``ensure_running`` starts ``python -m ksef.simulator`` detached from the caller (its own session,
its own log file, none of the caller's file descriptors), so an Odoo worker that restarts or
exits does not take the drill's simulator with it, and a second call finds it running instead
of starting another one. The other helpers are thin ``requests`` wrappers of ``/_control/*``
with short timeouts that raise ``SimulatorControlError`` with a readable message.
"""
import fcntl
import os
import signal
import subprocess
import time
import urllib.parse
from pathlib import Path

import requests

from . import control_secret
from .server import ALLOWED_HOSTS, _parse_tokens, package_root, simulator_command, simulator_env

CONTROL_TIMEOUT = 5.0
HEALTH_TIMEOUT = 1.0


class SimulatorControlError(Exception):
    """The simulator could not be started or reached, or refused a control request.

    Not a ``KsefError``: it is about the drill's tooling, never about KSeF itself, and must
    not be mistaken for a KSeF outage by code that reacts to those."""

    def __init__(self, message, http_status=None):
        super().__init__(message)
        self.http_status = http_status


def is_running(base_url):
    """True when ``base_url`` answers ``GET /_control/health``."""
    try:
        answer = requests.get(_control_url(base_url, "health"), timeout=HEALTH_TIMEOUT)
        return answer.status_code == 200 and answer.json().get("ok") is True
    except (requests.RequestException, ValueError):
        return False


def ensure_running(base_url, state_path, tokens=(), timeout=20.0, secret=None):
    """Make sure a simulator answers at ``base_url``; start one if not.

    Returns ``{"started": False, "pid": None}`` when one already answers, else starts
    ``python -m ksef.simulator --host 127.0.0.1 --port <port> --state <state_path>`` detached
    (log: ``<state_path>.log``) and returns ``{"started": True, "pid": pid}`` once it answers.
    Only a simulator on 127.0.0.1/localhost with an explicit port can be started: any other
    ``base_url`` that does not answer raises ``ValueError``. ``tokens`` (``"NIP:TOKEN"``,
    ``(nip, token)`` or ``{nip: token}``) are registered in both cases, through the control API
    rather than the command line so they never show in a process listing.
    Raises ``SimulatorControlError`` when the started simulator does not answer in ``timeout`` s.
    A simulator started here with ``secret`` answers its control API only to that secret.
    """
    result = {"started": False, "pid": None}
    if not is_running(base_url):
        port = _local_port(base_url)
        state_path = Path(state_path).resolve()
        state_path.parent.mkdir(parents=True, exist_ok=True)
        # two Odoo workers asking at once: the second waits and then finds the first one's simulator
        with open(str(state_path) + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if not is_running(base_url):
                    result = {"started": True, "pid": _start_detached(base_url, port, state_path, timeout, secret)}
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    for nip, token in _parse_tokens(tokens):
        register_token(base_url, nip, token, secret=secret)
    return result


def _local_port(base_url):
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme != "http" or parts.hostname not in ALLOWED_HOSTS:
        raise ValueError("The KSeF simulator at %s does not answer and cannot be started there: only "
                         "http://127.0.0.1:<port> or http://localhost:<port> can be started locally." % base_url)
    if not parts.port:
        raise ValueError("The simulator address %s needs an explicit port (e.g. http://127.0.0.1:8123)." % base_url)
    return parts.port


def _start_detached(base_url, port, state_path, timeout, secret=None):
    log_path = Path(str(state_path) + ".log")
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            simulator_command(state_path, port=port), cwd=str(package_root()), env=_child_env(secret),
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True,
            start_new_session=True)  # own session: no signal from the caller's terminal or process group
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_running(base_url):
            return process.pid
        if process.poll() is not None:
            raise SimulatorControlError("The KSeF simulator exited with code %s before answering at %s:\n%s"
                                        % (process.returncode, base_url, _tail(log_path)))
        time.sleep(0.1)
    process.terminate()  # ours and useless: do not leave a half-started simulator holding the port
    raise SimulatorControlError("The KSeF simulator did not answer at %s within %.0f s:\n%s"
                                % (base_url, timeout, _tail(log_path)))


def _tail(path, size=2000):
    try:
        data = Path(path).read_bytes()[-size:]
    except OSError:
        return "(no log at %s)" % path
    return "log %s:\n%s" % (path, data.decode("utf-8", "replace"))


# ---------------------------------------------------------------------- control API
def _control_url(base_url, path):
    return "%s/_control/%s" % (base_url.rstrip("/"), path)


def _control(base_url, method, path, payload=None, timeout=CONTROL_TIMEOUT, secret=None):
    url = _control_url(base_url, path)
    try:
        answer = requests.request(method, url, json=payload, timeout=timeout,
                                  headers=control_secret.headers(secret), allow_redirects=False)
    except requests.RequestException as exc:
        raise SimulatorControlError("The KSeF simulator at %s cannot be reached (%s)."
                                    % (base_url, exc.__class__.__name__)) from None
    if answer.status_code >= 400:
        raise SimulatorControlError("The KSeF simulator refused %s /_control/%s (HTTP %s): %s"
                                    % (method, path, answer.status_code, _error_text(answer)),
                                    http_status=answer.status_code)
    try:
        return answer.json()
    except ValueError:
        raise SimulatorControlError("The KSeF simulator answered %s /_control/%s with no JSON."
                                    % (method, path)) from None


def _error_text(answer):
    try:
        data = answer.json()
    except ValueError:
        return answer.text[:300]
    entries = (data.get("exception") or {}).get("exceptionDetailList") or data.get("errors") or []
    details = [detail for entry in entries for detail in entry.get("details") or []]
    if details:
        return "; ".join(details)
    if entries:
        return entries[0].get("exceptionDescription") or entries[0].get("description") or str(entries[0])
    return data.get("detail") or str(data)[:300]


def register_token(base_url, nip, token, secret=None):
    """Register a KSeF token for ``nip`` (the answer carries its reference, never the token)."""
    return _control(base_url, "POST", "tokens", {"nip": str(nip), "token": str(token)}, secret=secret)


def set_script(base_url, steps, secret=None):
    """Replace the outage script: ``steps`` = ``[{"at": "2026-11-25T10:00:00Z", "action": ..., "id": ...}]``."""
    return _control(base_url, "POST", "script", {"steps": list(steps)}, secret=secret)


def get_script(base_url, secret=None):
    """``{"steps": [{"id", "at", "action", "appliedAt"}], "pending": n, "now"}``."""
    return _control(base_url, "GET", "script", secret=secret)


def advance_script(base_url, secret=None):
    """Play the next pending step now; ``SimulatorControlError`` (http_status 409) when none is left."""
    return _control(base_url, "POST", "script/advance", secret=secret)


def clear_script(base_url, secret=None):
    return _control(base_url, "POST", "script/clear", secret=secret)


def reset_faults(base_url, secret=None):
    """No faults any more (also ends a ``connection_lost`` the script played)."""
    return _control(base_url, "POST", "faults/clear", secret=secret)


def reset(base_url, secret=None):
    """Forget the previous drill's invoices, sessions and Latarnia notices (keys and tokens stay)."""
    return _control(base_url, "POST", "reset", {}, timeout=10.0, secret=secret)


def _child_env(secret):
    env = simulator_env()
    env.pop(control_secret.ENV_VAR, None)
    if secret:
        env[control_secret.ENV_VAR] = secret
    return env


def stop(pid):
    """Stop the simulator ``ensure_running`` started as ``pid`` (and nothing else: the process
    must still be a ``ksef.simulator``; a recycled pid is left alone). True when it was stopped."""
    try:
        command = Path("/proc/%d/cmdline" % int(pid)).read_bytes().split(b"\0")
    except (OSError, ValueError):
        return False
    if b"ksef.simulator" not in command:
        return False
    try:
        os.kill(int(pid), signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):   # a SIGTERM that came too early in its start-up: no second chance to linger
            os.kill(int(pid), signal.SIGKILL)
    except ProcessLookupError:
        return False
    try:
        os.waitpid(int(pid), os.WNOHANG)   # our child when this process started it: no zombie left
    except ChildProcessError:
        pass
    return True


def _alive(pid):
    try:
        status = Path("/proc/%d/status" % int(pid)).read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status

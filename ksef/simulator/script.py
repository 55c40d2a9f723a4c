"""Outage scripts for drills: a list of timed steps the simulator plays on its own clock.

A drill needs KSeF to fail on schedule ("the connection is gone at 10:00, MF announces a
failure at 11:00, it ends at 12:00") while staff work as usual. This module is the pure part:
validating and ordering the steps, checking that every announced failure end has a start,
and the JSON views. Playing the steps (faults, Latarnia messages, SQLite state) is in
``script_api.py``.

A step is ``{"at": ISO-8601 with Z or an offset, "action": one of ACTIONS, "id": optional
opaque string}``.
"""
import datetime

from .wire import validation_error

CONNECTION_LOST = "connection_lost"
CONNECTION_RESTORED = "connection_restored"
LATARNIA_PREFIX = "latarnia:"

# script action -> the ``action`` of POST /_control/latarnia it publishes
LATARNIA_ACTIONS = {
    "latarnia:maintenance": "maintenance",
    "latarnia:failure_start": "failure_start",
    "latarnia:failure_end": "failure_end",
    "latarnia:total_failure": "total_failure",
    "latarnia:total_failure_end": "total_failure_end",
}
ACTIONS = (CONNECTION_LOST, CONNECTION_RESTORED) + tuple(LATARNIA_ACTIONS)

# Latarnia action -> (event category it concerns, True when it starts the event / False when it ends it)
FAILURE_EVENTS = {
    "failure_start": ("FAILURE", True),
    "failure_end": ("FAILURE", False),
    "total_failure": ("TOTAL_FAILURE", True),
    "total_failure_end": ("TOTAL_FAILURE", False),
}


def parse_at(value, where):
    """Seconds since the epoch of an ISO-8601 moment with a time zone (Z or +hh:mm)."""
    if not isinstance(value, str):
        raise validation_error("%s: pole at jest wymagane (ISO 8601, np. 2026-11-25T10:00:00Z)." % where)
    try:
        moment = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise validation_error("%s: at=%r nie jest datą ISO 8601." % (where, value)) from None
    if moment.tzinfo is None:
        # a drill's 10:00 means nothing without a zone: Warsaw and UTC differ by 1-2 hours
        raise validation_error("%s: at=%r nie ma strefy czasowej (dodaj Z albo +01:00)." % (where, value))
    return moment.timestamp()


def iso_z(ts):
    """``2026-11-25T10:00:00Z`` (milliseconds only when there are some)."""
    if ts is None:
        return None
    moment = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    text = moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def parse_script(data, open_events=None):
    """Validate the body of ``POST /_control/script``; return the steps sorted by time.

    ``open_events`` are the Latarnia failure categories the simulator already started through
    a script and has not ended (``{"FAILURE": eventId}``): a new script may end them. Every
    ``*_end`` step must end a failure that is open at that point, otherwise the whole script is
    refused (raises the simulator's 400 validation error) and nothing changes.
    Each step comes back as ``{"id", "at" (epoch seconds), "action"}``; a missing id becomes
    ``step-<position>`` (1-based, in time order).
    """
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
        raise validation_error('Oczekiwano {"steps": [{"at": ..., "action": ...}, ...]}.')
    parsed, seen_ids = [], set()
    for index, step in enumerate(data["steps"]):
        where = "steps[%d]" % index
        if not isinstance(step, dict):
            raise validation_error("%s: oczekiwano obiektu." % where)
        unknown = set(step) - {"at", "action", "id"}
        if unknown:
            raise validation_error("%s: nieznane pola %s." % (where, ", ".join(sorted(unknown))))
        action = step.get("action")
        if action not in ACTIONS:
            raise validation_error("%s: nieznana akcja %r (dozwolone: %s)." % (where, action, ", ".join(ACTIONS)))
        step_id = step.get("id")
        if step_id is not None:
            if not isinstance(step_id, str) or not step_id:
                raise validation_error("%s: id musi być niepustym tekstem." % where)
            if step_id in seen_ids:
                raise validation_error("%s: powtórzone id %r." % (where, step_id))
            seen_ids.add(step_id)
        parsed.append({"id": step_id, "at": parse_at(step.get("at"), where), "action": action, "index": index})
    parsed.sort(key=lambda step: (step["at"], step["index"]))  # stable: equal times keep the given order
    _check_failure_pairs(parsed, open_events or {})
    steps = []
    for position, step in enumerate(parsed, 1):
        step_id = step["id"]
        if step_id is None:
            step_id = "step-%d" % position
            while step_id in seen_ids:
                step_id += "'"
            seen_ids.add(step_id)
        steps.append({"id": step_id, "at": step["at"], "action": step["action"]})
    return steps


def _check_failure_pairs(steps, open_events):
    is_open = {category: True for category in open_events}
    for step in steps:
        event = FAILURE_EVENTS.get(LATARNIA_ACTIONS.get(step["action"]))
        if event is None:
            continue
        category, starts = event
        if starts:
            is_open[category] = True
        elif not is_open.pop(category, False):
            raise validation_error("steps[%d]: %s bez wcześniejszego początku tej awarii w scenariuszu."
                                   % (step["index"], step["action"]))


def script_view(rows, now):
    """``GET /_control/script``: rows are the stored steps in play order."""
    steps = []
    for row in rows:
        step = {"id": row["step_id"], "at": iso_z(row["at"]), "action": row["action"],
                "appliedAt": iso_z(row["applied_at"])}
        if row["note"]:  # why a played step did nothing
            step["note"] = row["note"]
        steps.append(step)
    return {"steps": steps, "pending": sum(1 for row in rows if row["applied_at"] is None), "now": iso_z(now)}

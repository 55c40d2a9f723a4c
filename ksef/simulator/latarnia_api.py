"""Latarnia, the Ministry's KSeF status service (public ``GET /status`` and ``GET /messages`` where
the Ministry announces failures and maintenance, VAT act art. 106ne), and publishing its messages
(the control API and the outage script). A mixin of ``SimulatorApp``."""
from .common import parse_time, warsaw_date
from .wire import json_response, utc_iso, validation_error

# action of POST /_control/latarnia: (category, type, code in the message id, default title)
PRESETS = {"maintenance": ("MAINTENANCE", "MAINTENANCE_ANNOUNCEMENT", "PLN", "Planowana niedostępność KSeF"),
           "failure_start": ("FAILURE", "FAILURE_START", "AWR", "Awaria KSeF"),
           "failure_end": ("FAILURE", "FAILURE_END", "AWR", "Zakończenie awarii KSeF"),
           "total_failure": ("TOTAL_FAILURE", "FAILURE_START", "AWC", "Awaria całkowita KSeF"),
           "total_failure_end": ("TOTAL_FAILURE", "FAILURE_END", "AWC", "Zakończenie awarii całkowitej")}
RANK = {"AVAILABLE": 0, "MAINTENANCE": 1, "FAILURE": 2, "TOTAL_FAILURE": 3}


def latarnia_view(row):
    return {"id": row["id"], "eventId": row["event_id"], "category": row["category"], "type": row["type"],
            "title": row["title"], "text": row["text"], "start": row["start"], "end": row["end_"],
            "version": row["version"], "published": row["published"]}


class LatarniaApiMixin:
    """Handlers of ``/status`` and ``/messages``; ``_publish_latarnia`` for the control API."""

    def latarnia_routes(self):
        return [
            ("GET", r"/status", self.latarnia_status, "latarnia"),
            ("GET", r"/messages", self.latarnia_messages, "latarnia"),
        ]

    def latarnia_status(self, request):
        """Status from the latest message of each event: an unfinished FAILURE_START makes the
        event active; a maintenance announcement is listed until its end and counts from its start."""
        now = self.now()
        latest = {}
        for row in self.store.latarnia_messages():
            latest[row["event_id"]] = row
        status, listed = "AVAILABLE", []
        for row in latest.values():
            current = None
            if row["type"] == "FAILURE_START":
                listed.append(row)
                current = row["category"]
            elif row["type"] == "MAINTENANCE_ANNOUNCEMENT":
                start = parse_time(row["start"], "start") if row["start"] else now
                end = parse_time(row["end_"], "end") if row["end_"] else None
                if end is None or now < end:
                    listed.append(row)
                    if start <= now:
                        current = "MAINTENANCE"
            if current and RANK[current] > RANK[status]:
                status = current
        listed.sort(key=lambda row: row["seq"])
        return json_response(200, {"status": status, "messages": [latarnia_view(row) for row in listed]})

    def latarnia_messages(self, request):
        return json_response(200, [latarnia_view(row) for row in reversed(self.store.latarnia_messages())])

    def _publish_latarnia(self, data):
        """Store one Latarnia message for ``data`` (the body of POST /_control/latarnia) inside the
        caller's ``store.transaction()``; return its row. Shared by the control endpoint and the outage script."""
        action = data.get("action")
        if action not in PRESETS:
            raise validation_error("action: %s." % ", ".join(PRESETS))
        category, kind, code, title = PRESETS[action]
        now = self.now()
        seq = self.store.latarnia_next("seq")
        event_id = data.get("eventId")
        start, end = data.get("start"), data.get("end")
        if kind == "FAILURE_END":
            started = self.store.latarnia_failure_start(event_id) if event_id is not None else None
            if started is None:
                raise validation_error("failure_end wymaga eventId rozpoczętej awarii.")
            category = started["category"]
            start = start or started["start"]
            end = end or utc_iso(now)
        else:
            if event_id is None:
                event_id = self.store.latarnia_next("event_id")
            if kind == "FAILURE_START":
                start = start or utc_iso(now)
        message_id = data.get("id") or "K/%d/%s/%02d" % (warsaw_date(now).year, code, seq)
        row = {"id": message_id, "seq": seq, "event_id": int(event_id), "category": category, "type": kind,
               "title": data.get("title") or title, "text": data.get("text") or title, "start": start,
               "end_": end, "version": int(data.get("version", 1)), "published": utc_iso(now)}
        self.store.add_latarnia_message(row)
        return row

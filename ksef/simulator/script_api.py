"""Playing the outage script of a drill and its ``/_control/script*`` endpoints (the validation
and views are in ``script.py``). A mixin of ``SimulatorApp``.

State: table script_steps (one row a step, in play order, applied_at once played) and meta
"script_open_events" ({category: eventId} of failures the script started and has not ended) and
"script_connection" ("lost" makes a restarted simulator come back without connection).
script_lock serialises players (the request threads and the ticker); it is always taken before
store.lock, never inside it."""
import logging
import threading

from . import script as outage_script
from .wire import ApiError, json_response, validation_error

_logger = logging.getLogger("ksef.simulator")


class ScriptApiMixin:
    """The outage script's player, its ticker thread and its control endpoints."""

    def script_routes(self):
        return [
            ("GET", r"/_control/script", self.control_get_script, "control"),
            ("POST", r"/_control/script", self.control_set_script, "control"),
            ("POST", r"/_control/script/advance", self.control_advance_script, "control"),
            ("POST", r"/_control/script/clear", self.control_clear_script, "control"),
        ]

    def _init_script(self):
        self.script_lock = threading.Lock()
        self._script_next_at = self._script_next_pending_at()
        self._script_ticker = None
        if self.store.get_meta("script_connection") == "lost":
            self._set_connection(lost=True)

    def _script_next_pending_at(self):
        row = self.store.next_script_step()
        return row["at"] if row else None

    def _script_response(self):
        return json_response(200, outage_script.script_view(self.store.script_steps(), self.now()))

    def play_due_script_steps(self):
        """Play, in order, every pending step whose time has come; return how many were played."""
        next_at = self._script_next_at  # cheap check first: this runs before every request
        if next_at is None or next_at > self.now():
            return 0
        played = 0
        with self.script_lock:
            while True:
                row = self.store.next_script_step()
                if row is None or row["at"] > self.now():
                    break
                self._play_script_step(row)
                played += 1
            self._script_next_at = self._script_next_pending_at()
        return played

    def _play_script_step(self, row):
        """Apply one step and mark it played in the same transaction (caller holds script_lock).
        A step that cannot play (its failure's messages were cleared meanwhile) is marked played
        with a ``note`` instead of blocking the rest of the script."""
        note = None
        with self.store.transaction():
            try:
                self._apply_script_action(row["action"])
            except ApiError as exc:
                note = "; ".join(exc.details) or exc.description
                _logger.warning("outage script step %s (%s) not applied: %s", row["step_id"], row["action"], note)
            self.store.mark_script_step(row["position"], self.now(), note)

    def _apply_script_action(self, action):
        if action in (outage_script.CONNECTION_LOST, outage_script.CONNECTION_RESTORED):
            lost = action == outage_script.CONNECTION_LOST
            self._set_connection(lost)
            self.store.set_meta("script_connection", "lost" if lost else "restored")
            return
        latarnia_action = outage_script.LATARNIA_ACTIONS[action]
        data = {"action": latarnia_action}
        open_events = self.store.get_meta("script_open_events") or {}
        category, starts = outage_script.FAILURE_EVENTS.get(latarnia_action, (None, None))
        if starts is False:
            if category not in open_events:
                raise validation_error("%s: skrypt nie rozpoczął takiej awarii." % action)
            data["eventId"] = open_events[category]
        row = self._publish_latarnia(data)
        if starts is True:
            open_events[category] = row["event_id"]
        elif starts is False:
            del open_events[category]
        self.store.set_meta("script_open_events", open_events)

    def start_script_ticker(self, interval=1.0):
        """Play due steps every ``interval`` s even when nobody calls (a drill's 10:00 happens anyway)."""
        if self._script_ticker is not None:
            return
        stop = threading.Event()

        def tick():
            while not stop.wait(interval):
                try:
                    self.play_due_script_steps()
                except Exception:
                    _logger.exception("outage script step failed")

        thread = threading.Thread(target=tick, name="ksef-simulator-script", daemon=True)
        self._script_ticker = (stop, thread)
        thread.start()

    def stop_script_ticker(self):
        if self._script_ticker is not None:
            stop, thread = self._script_ticker
            stop.set()
            thread.join(timeout=10)
            self._script_ticker = None

    def control_get_script(self, request):
        return self._script_response()

    def control_set_script(self, request):
        """Replace the script; all-or-nothing: an invalid step leaves the old script in place."""
        data = self._control_json(request)
        with self.script_lock:
            steps = outage_script.parse_script(data, self.store.get_meta("script_open_events") or {})
            with self.store.transaction():
                self.store.replace_script([(position, step["id"], step["at"], step["action"])
                                           for position, step in enumerate(steps, 1)])
            self._script_next_at = self._script_next_pending_at()
        self.play_due_script_steps()  # steps already in the past play now, so the answer shows them played
        return self._script_response()

    def control_advance_script(self, request):
        """The trainer's "next step now": play the next pending step whatever its time."""
        with self.script_lock:
            row = self.store.next_script_step()
            if row is None:
                raise ApiError(409, 21405, "Błąd walidacji danych wejściowych.",
                               ["Scenariusz nie ma kroków do wykonania."])
            self._play_script_step(row)
            self._script_next_at = self._script_next_pending_at()
        return self._script_response()

    def control_clear_script(self, request):
        """Forget the script; what it already did (faults, Latarnia messages) stays."""
        with self.script_lock:
            self.store.replace_script([])
            self._script_next_at = None
        return self._script_response()

"""The simulator's own ``/_control`` API (never rate-limited or faulted; behind the drill's secret
when one is set, ``control_secret.py``) and the faults it injects into the KSeF API. The outage
script's endpoints are in ``script_api.py``, the certificate status in ``certificates_api.py``.
A mixin of ``SimulatorApp``."""
import json
import random
import time

from . import keys as mf_keys
from .latarnia_api import latarnia_view
from .wire import Response, json_response, utc_iso, validation_error

DEFAULT_FAULTS = {
    "down": False,              # every /v2 call (and uploads/downloads) fails
    "down_mode": "503",         # "503" or "close" (drop the connection without an answer)
    "error_ratio": 0.0,         # share of /v2 calls answered with a 5xx before any processing
    "error_statuses": [500, 502, 503],
    "seed": 0,
    "delay": 0.0,               # seconds added to every /v2 answer
    "stall_after_accept_seconds": 0.0,  # invoice send / batch close / certificate request: store, then stall
    "stall_after_accept_count": 0,      # ... for this many requests
    "latarnia_down": False,     # /status and /messages answer 502
}


class ControlApiMixin:
    """Handlers of ``/_control/*`` (but the script's) and the fault injection of ``_dispatch``."""

    def control_routes(self):
        return [
            ("GET", r"/_control/health", self.control_health, "control"),
            ("GET", r"/_control/counters", self.control_counters, "control"),
            ("GET", r"/_control/faults", self.control_get_faults, "control"),
            ("POST", r"/_control/faults", self.control_faults, "control"),
            ("POST", r"/_control/faults/clear", self.control_faults_clear, "control"),
            ("POST", r"/_control/reset", self.control_reset, "control"),
            ("POST", r"/_control/tokens", self.control_tokens, "control"),
            ("POST", r"/_control/rate-limits", self.control_rate_limits, "control"),
            ("POST", r"/_control/expire", self.control_expire, "control"),
            ("POST", r"/_control/keys/rotate", self.control_rotate_keys, "control"),
            ("GET", r"/_control/config", self.control_get_config, "control"),
            ("POST", r"/_control/config", self.control_config, "control"),
            ("POST", r"/_control/latarnia", self.control_latarnia, "control"),
            ("POST", r"/_control/latarnia/clear", self.control_latarnia_clear, "control"),
        ]

    # ------------------------------------------------------------------ faults
    def _reset_faults(self, seed):
        """No faults, the generator re-seeded with ``seed``; caller holds ``fault_lock``."""
        self.faults = dict(DEFAULT_FAULTS, seed=seed)
        self.fault_rng = random.Random(seed)

    def _apply_faults(self, request, auth):
        with self.fault_lock:
            faults = dict(self.faults)
            failing = (request.path.startswith("/v2/") and faults["error_ratio"] > 0
                       and self.fault_rng.random() < faults["error_ratio"])
            error_status = self.fault_rng.choice(faults["error_statuses"]) if failing else None
        if faults["down"]:
            if faults["down_mode"] == "close":
                response = Response(503)
                response.drop_connection = True
                return response
            return json_response(503, {"status": {"code": 503, "description": "Service Unavailable",
                                                  "details": ["KSeF jest niedostępny (symulacja)."]}},
                                 {"Retry-After": "30"})
        if faults["delay"] and request.path.startswith("/v2/"):
            time.sleep(faults["delay"])
        if error_status:
            return json_response(error_status, {"status": {"code": error_status, "description": "Server Error",
                                                           "details": ["Błąd serwera (symulacja)."]}})
        return None

    def _take_stall(self):
        with self.fault_lock:
            if self.faults["stall_after_accept_count"] > 0 and self.faults["stall_after_accept_seconds"] > 0:
                self.faults["stall_after_accept_count"] -= 1
                return self.faults["stall_after_accept_seconds"]
        return 0.0

    def _set_connection(self, lost):
        with self.fault_lock:
            if lost:
                self.faults.update(down=True, down_mode="close", latarnia_down=True)
            else:
                self.faults.update(down=False, down_mode=DEFAULT_FAULTS["down_mode"], latarnia_down=False)

    # ------------------------------------------------------------------ handlers
    def control_health(self, request):
        return json_response(200, {"ok": True})

    def control_counters(self, request):
        counted = self.store.counters()
        return json_response(200, {
            "invoicesTotal": sum(counted["by_status"].values()),
            "invoicesAccepted": counted["by_status"].get("200", 0),
            "invoicesByStatus": counted["by_status"],
            "acceptedBySeller": counted["by_seller"],
            "acceptedByHash": counted["by_hash"],
            "submissionsByHash": counted["submissions"],
            "sessions": counted["sessions"],
            "apiCalls": self.limiter.calls_by_context(),
        })

    @staticmethod
    def _control_json(request):
        try:
            data = json.loads(request.body.decode("utf-8") or "{}")
        except ValueError as exc:
            raise validation_error("Nieprawidłowy JSON: %s" % exc)
        if not isinstance(data, dict):
            raise validation_error("Oczekiwano obiektu JSON.")
        return data

    def control_get_faults(self, request):
        with self.fault_lock:
            return json_response(200, dict(self.faults))

    def control_faults(self, request):
        data = self._control_json(request)
        unknown = set(data) - set(DEFAULT_FAULTS)
        if unknown:
            raise validation_error("Nieznane ustawienia awarii: %s" % ", ".join(sorted(unknown)))
        if data.get("down_mode", "503") not in ("503", "close"):
            raise validation_error("down_mode: 503 albo close.")
        with self.fault_lock:
            self.faults.update(data)
            if "seed" in data:
                self.fault_rng = random.Random(data["seed"])
            return json_response(200, dict(self.faults))

    def control_faults_clear(self, request):
        # a manual "no faults" also ends a connection_lost played by the script, even after a restart
        self.store.set_meta("script_connection", None)
        with self.fault_lock:
            self._reset_faults(self.faults["seed"])
            return json_response(200, dict(self.faults))

    def control_reset(self, request):
        for worker in list(self.workers):
            worker.join(timeout=30)
        with self.script_lock:
            self.store.reset()  # also the script and what it remembers
            self._script_next_at = None
        self.store.set_meta("access_tokens_not_before", 0)
        with self.fault_lock:
            self._reset_faults(self.faults["seed"])
        self.limiter.configure(reset=True)
        for nip, token in self.startup_tokens:
            self.register_token(nip, token)
        return json_response(200, {"ok": True})

    def control_tokens(self, request):
        data = self._control_json(request)
        entries = data.get("tokens") if "tokens" in data else [data]
        result = []
        for entry in entries:
            nip, token = entry.get("nip"), entry.get("token")
            if not isinstance(nip, str) or not isinstance(token, str) or not token:
                raise validation_error("Wymagane nip i token.")
            if entry.get("revoked"):
                self.store.revoke_token(token)
                result.append({"nip": nip, "revoked": True})
            else:
                result.append({"nip": nip, "referenceNumber": self.register_token(nip, token)})
        return json_response(200, {"tokens": result})

    def control_rate_limits(self, request):
        data = self._control_json(request)
        try:
            self.limiter.configure(enabled=data.get("enabled"), scale=data.get("scale"), reset=bool(data.get("reset")))
        except ValueError as exc:
            raise validation_error(str(exc))
        return json_response(200, {"enabled": self.limiter.enabled, "scale": self.limiter.scale})

    def control_expire(self, request):
        data = self._control_json(request)
        now = self.now()
        if data.get("access_tokens"):
            self.store.set_meta("access_tokens_not_before", now + 0.001)
        if data.get("sessions"):
            self.store.expire_open_sessions(now, utc_iso(now))
        return json_response(200, {"ok": True})

    def control_rotate_keys(self, request):
        data = self._control_json(request)
        mode = data.get("mode", "emergency")
        if mode not in ("emergency", "transition", "retire-old"):
            raise validation_error("mode: emergency, transition albo retire-old.")
        with self.store.lock:
            old = [row["id"] for row in self.store.active_keys()]
            if mode != "retire-old":
                for usage in mf_keys.USAGES:
                    self.store.add_key(mf_keys.new_key(usage))
            if mode in ("emergency", "retire-old"):
                newest = self.store.newest_key_ids()
                for key_id in old:
                    if key_id not in newest.values():
                        self.store.withdraw_key(key_id)
        return self.public_keys(request)

    def control_get_config(self, request):
        return json_response(200, dict(self.config, rate_limits={"enabled": self.limiter.enabled,
                                                                   "scale": self.limiter.scale}))

    def control_config(self, request):
        data = self._control_json(request)
        unknown = set(data) - set(self.config)
        if unknown:
            raise validation_error("Nieznane ustawienia: %s" % ", ".join(sorted(unknown)))
        for name, value in data.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise validation_error("%s musi być liczbą." % name)
            self.config[name] = float(value)
        return self.control_get_config(request)

    def control_latarnia(self, request):
        data = self._control_json(request)
        with self.store.transaction():
            row = self._publish_latarnia(data)
        return json_response(200, latarnia_view(row))

    def control_latarnia_clear(self, request):
        self.store.clear_latarnia()
        return json_response(200, {"ok": True})

"""Outage scripts played by the simulator for drills, and the launcher the Odoo side uses."""
import datetime
import os
import signal
import socket
import time

import pytest
import requests

from ksef.simulator import Simulator, launcher, start_subprocess, stop_subprocess
from ksef.simulator.testing import SAMPLE_SELLER_NIP, SimClient

TOKEN = "script-test-token"
FAR = 3600  # seconds: steps that only advance (never their time) may play


@pytest.fixture(scope="module")
def simulator(tmp_path_factory):
    simulator = Simulator(tmp_path_factory.mktemp("sim") / "state.db", tokens={SAMPLE_SELLER_NIP: TOKEN},
                          rate_limits="off", processing_delay=0.05)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def sim(simulator):
    client = SimClient(simulator.base_url, timeout=5)
    client.control("reset")
    yield client
    client.control("reset")


def at(seconds, offset_hours=0):
    """An ISO moment ``seconds`` from now, written in UTC (Z) or with a +hh:00 offset."""
    zone = datetime.timezone(datetime.timedelta(hours=offset_hours))
    text = datetime.datetime.fromtimestamp(time.time() + seconds, zone).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z") if offset_hours == 0 else text


def ts(iso):
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def set_script(client, steps):
    answer = client.http.post(client.url("/_control/script"), json={"steps": steps}, timeout=5)
    return answer


def view(client):
    return client.control("script", method="GET")


def advance(client):
    return client.control("script/advance")


def ksef_reachable(client):
    try:
        return requests.post(client.url("/v2/auth/challenge"), timeout=5).status_code == 200
    except requests.ConnectionError:
        return False


def latarnia(client, path="/status"):
    return requests.get(client.url(path), timeout=5)


def test_steps_play_at_their_time_even_when_nobody_calls(sim):
    answer = set_script(sim, [
        {"at": at(1.8, offset_hours=1), "action": "latarnia:failure_start", "id": "announce"},
        {"at": at(1.0), "action": "connection_lost", "id": "cable"},
    ])
    assert answer.status_code == 200
    planned = answer.json()
    assert [step["id"] for step in planned["steps"]] == ["cable", "announce"]  # sorted by time
    assert planned["pending"] == 2 and all(step["appliedAt"] is None for step in planned["steps"])
    assert planned["steps"][1]["at"].endswith("Z")  # the +01:00 input comes back in UTC
    time.sleep(3.5)  # nobody calls: only the ticker (every second) can play the steps
    looked_at = time.time()
    played = view(sim)
    assert played["pending"] == 0
    for step in played["steps"]:
        assert ts(step["at"]) <= ts(step["appliedAt"]) <= ts(step["at"]) + 1.3
        assert ts(step["appliedAt"]) < looked_at - 0.3  # played before anybody looked
    assert ts(played["steps"][0]["appliedAt"]) <= ts(played["steps"][1]["appliedAt"])
    assert not ksef_reachable(sim) and latarnia(sim).status_code == 502


def test_a_step_due_now_already_fails_the_request_that_finds_it(simulator, sim):
    simulator.app.stop_script_ticker()  # leave the lazy play at the start of a request as the only player
    try:
        set_script(sim, [{"at": at(0.3), "action": "connection_lost"}]).raise_for_status()
        time.sleep(0.5)
        with pytest.raises(requests.ConnectionError):
            requests.post(sim.url("/v2/auth/challenge"), timeout=5)
        assert view(sim)["steps"][0]["appliedAt"] is not None
    finally:
        simulator.app.start_script_ticker()


def test_advance_plays_the_next_step_connection_lost_then_restored(sim):
    set_script(sim, [{"at": at(FAR), "action": "connection_lost"},
                     {"at": at(2 * FAR), "action": "connection_restored"}]).raise_for_status()
    assert ksef_reachable(sim)
    first = advance(sim)
    assert first["pending"] == 1 and first["steps"][0]["appliedAt"] and first["steps"][1]["appliedAt"] is None
    # the company's line is down: the API drops connections, the Latarnia is unreachable...
    with pytest.raises(requests.ConnectionError):
        requests.get(sim.url("/v2/security/public-key-certificates"), timeout=5)
    assert latarnia(sim).status_code == 502 and latarnia(sim, "/messages").status_code == 502
    # ... while the trainer's control API still answers
    assert sim.control("health", method="GET") == {"ok": True}
    assert view(sim)["pending"] == 1
    second = advance(sim)
    assert second["pending"] == 0 and second["steps"][1]["appliedAt"]
    assert ksef_reachable(sim) and latarnia(sim).json()["status"] == "AVAILABLE"
    sim.login(SAMPLE_SELLER_NIP, TOKEN)  # fully usable again
    nothing_left = sim.http.post(sim.url("/_control/script/advance"), timeout=5)
    assert nothing_left.status_code == 409
    assert nothing_left.json()["exception"]["exceptionDetailList"][0]["exceptionCode"] == 21405


def test_latarnia_failures_start_and_end_with_the_same_event(sim):
    set_script(sim, [{"at": at(FAR), "action": "latarnia:failure_start"},
                     {"at": at(2 * FAR), "action": "latarnia:failure_end"},
                     {"at": at(3 * FAR), "action": "latarnia:total_failure"},
                     {"at": at(4 * FAR), "action": "latarnia:total_failure_end"},
                     {"at": at(5 * FAR), "action": "latarnia:maintenance"}]).raise_for_status()
    advance(sim)
    status = latarnia(sim).json()
    assert status["status"] == "FAILURE"
    started = [m for m in status["messages"] if m["type"] == "FAILURE_START"][0]
    advance(sim)
    ended = latarnia(sim, "/messages").json()[0]
    assert ended["type"] == "FAILURE_END" and ended["eventId"] == started["eventId"]
    assert ended["category"] == "FAILURE" and ended["start"] == started["start"] and ended["end"]
    assert latarnia(sim).json()["status"] == "AVAILABLE"
    advance(sim)
    total = latarnia(sim).json()
    assert total["status"] == "TOTAL_FAILURE"
    total_started = [m for m in total["messages"] if m["category"] == "TOTAL_FAILURE"][0]
    assert total_started["eventId"] != started["eventId"]
    advance(sim)
    total_ended = latarnia(sim, "/messages").json()[0]
    assert total_ended["type"] == "FAILURE_END" and total_ended["eventId"] == total_started["eventId"]
    assert latarnia(sim).json()["status"] == "AVAILABLE"
    final = advance(sim)
    # the same message POST /_control/latarnia {"action": "maintenance"} publishes: from now, no end
    assert latarnia(sim, "/messages").json()[0]["type"] == "MAINTENANCE_ANNOUNCEMENT"
    assert latarnia(sim).json()["status"] == "MAINTENANCE"
    assert final["pending"] == 0 and all("note" not in step for step in final["steps"])


def test_an_invalid_script_is_refused_and_changes_nothing(sim):
    set_script(sim, [{"at": at(FAR), "action": "latarnia:failure_start", "id": "a"},
                     {"at": at(2 * FAR), "action": "connection_lost", "id": "b"}]).raise_for_status()
    before = view(sim)["steps"]
    invalid = [
        {"steps": [{"at": at(FAR), "action": "connection_lost"}, {"at": at(FAR), "action": "unplug"}]},
        {"steps": [{"at": "tomorrow at ten", "action": "connection_lost"}]},
        {"steps": [{"at": "2026-11-25T10:00:00", "action": "connection_lost"}]},  # no zone
        {"steps": [{"action": "connection_lost"}]},
        {"steps": [{"at": at(FAR), "action": "latarnia:total_failure_end"}]},  # ends nothing
        {"steps": [{"at": at(FAR), "action": "latarnia:failure_end"},          # end before its start
                   {"at": at(2 * FAR), "action": "latarnia:failure_start"}]},
        {"steps": [{"at": at(FAR), "action": "connection_lost", "id": "x"},
                   {"at": at(FAR), "action": "connection_restored", "id": "x"}]},
        {"steps": "connection_lost"},
    ]
    for body in invalid:
        answer = sim.http.post(sim.url("/_control/script"), json=body, timeout=5)
        assert answer.status_code == 400, body
        detail = answer.json()["exception"]["exceptionDetailList"][0]
        assert detail["exceptionCode"] == 21405 and detail["details"], body
        assert view(sim)["steps"] == before
    assert ksef_reachable(sim)


def test_an_end_may_close_a_failure_started_by_the_previous_script(sim):
    set_script(sim, [{"at": at(FAR), "action": "latarnia:failure_start"}]).raise_for_status()
    started = advance(sim)
    set_script(sim, [{"at": at(FAR), "action": "latarnia:failure_end", "id": "end"}]).raise_for_status()
    ended = advance(sim)
    assert [(step["id"], step["action"]) for step in ended["steps"]] == [("end", "latarnia:failure_end")]
    messages = latarnia(sim, "/messages").json()
    assert [m["type"] for m in messages] == ["FAILURE_END", "FAILURE_START"]
    assert messages[0]["eventId"] == messages[1]["eventId"]
    assert started["pending"] == 0


def test_a_step_that_cannot_play_is_marked_with_a_note_and_the_script_goes_on(sim):
    set_script(sim, [{"at": at(FAR), "action": "latarnia:failure_start"},
                     {"at": at(2 * FAR), "action": "latarnia:failure_end"},
                     {"at": at(3 * FAR), "action": "connection_lost"}]).raise_for_status()
    advance(sim)
    sim.control("latarnia/clear")  # the trainer wiped the failure the script started
    skipped = advance(sim)["steps"][1]
    assert skipped["appliedAt"] and "eventId" in skipped["note"]
    assert latarnia(sim, "/messages").json() == []
    assert advance(sim)["pending"] == 0 and not ksef_reachable(sim)


def test_steps_in_the_past_play_at_once_and_clear_keeps_their_effects(sim):
    answer = set_script(sim, [{"at": "2020-01-01T09:00:00+01:00", "action": "connection_lost"},
                              {"at": at(FAR), "action": "connection_restored"}]).json()
    assert answer["steps"][0]["at"] == "2020-01-01T08:00:00Z" and answer["steps"][0]["appliedAt"]
    assert answer["pending"] == 1 and not ksef_reachable(sim)
    cleared = sim.control("script/clear")
    assert cleared["steps"] == [] and cleared["pending"] == 0
    assert not ksef_reachable(sim)  # clearing the script is not an undo
    sim.control("faults/clear")
    assert ksef_reachable(sim)


def test_reset_forgets_the_script_and_what_it_remembers(sim):
    set_script(sim, [{"at": at(FAR), "action": "latarnia:failure_start"},
                     {"at": at(2 * FAR), "action": "connection_lost"}]).raise_for_status()
    advance(sim)
    advance(sim)
    sim.control("reset")
    assert view(sim)["steps"] == [] and ksef_reachable(sim)
    assert latarnia(sim).json() == {"status": "AVAILABLE", "messages": []}
    # the failure the old script started is gone with the reset: nothing left to end
    assert set_script(sim, [{"at": at(FAR), "action": "latarnia:failure_end"}]).status_code == 400


def test_the_script_and_a_lost_connection_survive_a_restart(tmp_path):
    state = tmp_path / "state.db"
    process, base_url = start_subprocess(state, rate_limits="off", processing_delay=0)
    try:
        client = SimClient(base_url, timeout=5)
        set_script(client, [{"at": at(FAR), "action": "connection_lost", "id": "lost"},
                            {"at": at(2 * FAR), "action": "latarnia:total_failure", "id": "mf"},
                            {"at": at(3 * FAR), "action": "latarnia:total_failure_end", "id": "mf-end"},
                            {"at": at(4 * FAR), "action": "connection_restored", "id": "back"}]).raise_for_status()
        advance(client)
        before = advance(client)["steps"]
    finally:
        stop_subprocess(process)
    process, base_url = start_subprocess(state, rate_limits="off", processing_delay=0)
    try:
        client = SimClient(base_url, timeout=5)
        assert view(client)["steps"] == before
        assert not ksef_reachable(client) and latarnia(client).status_code == 502
        advance(client)  # the total failure started before the restart ends with its eventId
        advance(client)
        messages = latarnia(client, "/messages").json()
        assert [(m["type"], m["category"]) for m in messages] == [("FAILURE_END", "TOTAL_FAILURE"),
                                                                  ("FAILURE_START", "TOTAL_FAILURE")]
        assert messages[0]["eventId"] == messages[1]["eventId"]
        assert ksef_reachable(client)
        client.control("reset")
        cleared = view(client)
        assert cleared["steps"] == [] and cleared["pending"] == 0
    finally:
        stop_subprocess(process)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop_pid(pid, timeout=10.0):
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                return
        except ChildProcessError:  # already reaped by subprocess' own clean-up
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def test_launcher_starts_one_detached_simulator(tmp_path):
    base_url = "http://127.0.0.1:%d" % free_port()
    state = tmp_path / "drill" / "sim.db"
    first = launcher.ensure_running(base_url, state, tokens=["%s:%s" % (SAMPLE_SELLER_NIP, TOKEN)])
    try:
        assert first["started"] is True and first["pid"] > 0
        assert os.getsid(first["pid"]) == first["pid"]  # its own session: detached from ours
        assert (tmp_path / "drill" / "sim.db.log").read_text().strip() == base_url
        assert launcher.ensure_running(base_url, state) == {"started": False, "pid": None}
        SimClient(base_url, timeout=5).login(SAMPLE_SELLER_NIP, TOKEN)  # the token was registered
        launcher.register_token(base_url, "1111111111", "another-token")
        SimClient(base_url, timeout=5).login("1111111111", "another-token")

        planned = launcher.set_script(base_url, [{"at": at(FAR), "action": "connection_lost", "id": "s1"}])
        assert planned["pending"] == 1 and launcher.get_script(base_url)["steps"][0]["id"] == "s1"
        assert launcher.advance_script(base_url)["pending"] == 0
        assert launcher.is_running(base_url)  # the control API answers during the outage
        with pytest.raises(launcher.SimulatorControlError) as refused:
            launcher.advance_script(base_url)
        assert refused.value.http_status == 409 and "Scenariusz" in str(refused.value)
        with pytest.raises(launcher.SimulatorControlError) as invalid:
            launcher.set_script(base_url, [{"at": "soon", "action": "connection_lost"}])
        assert invalid.value.http_status == 400 and "soon" in str(invalid.value)
        assert launcher.reset_faults(base_url)["down"] is False
        assert launcher.clear_script(base_url)["steps"] == []
    finally:
        stop_pid(first["pid"])
    with pytest.raises(launcher.SimulatorControlError, match="cannot be reached"):
        launcher.get_script(base_url)


def test_launcher_refuses_to_start_anything_but_a_local_simulator(tmp_path):
    for base_url in ("http://ksef-simulator.invalid:8123", "http://0.0.0.0:%d" % free_port(),
                     "http://127.0.0.1"):
        with pytest.raises(ValueError, match="127.0.0.1"):
            launcher.ensure_running(base_url, tmp_path / "sim.db")
    assert list(tmp_path.iterdir()) == []

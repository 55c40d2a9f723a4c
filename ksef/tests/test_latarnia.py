"""LatarniaClient over real HTTP against the simulator's /status and /messages (the wire format
of the Ministry's C# client, `LighthouseClient.cs`)."""
import socket

import pytest
import requests

from ksef import errors, latarnia
from ksef.simulator import Simulator


@pytest.fixture(scope="module")
def simulator(tmp_path_factory):
    sim = Simulator(tmp_path_factory.mktemp("latarnia-sim") / "state.db", rate_limits="off")
    sim.start()
    yield sim
    sim.stop()


def control(simulator, action, payload=None):
    answer = requests.post(simulator.base_url + "/_control/" + action, json=payload or {}, timeout=10)
    answer.raise_for_status()
    return answer.json()


@pytest.fixture
def lighthouse(simulator):
    control(simulator, "latarnia/clear")
    yield latarnia.LatarniaClient(base_url=simulator.base_url, timeout=5)
    control(simulator, "faults/clear")
    control(simulator, "latarnia/clear")


def test_available_without_messages(lighthouse):
    status = lighthouse.status()
    assert status.status == latarnia.AVAILABLE and status.is_available and status.messages == []
    assert lighthouse.messages() == []


def test_failure_start_and_end_are_linked_by_event_id(simulator, lighthouse):
    started = control(simulator, "latarnia", {"action": "failure_start", "title": "Awaria KSeF", "text": "Opis"})
    status = lighthouse.status()
    assert status.status == latarnia.FAILURE and status.is_failure and not status.is_total_failure
    [message] = status.messages
    assert message.type == latarnia.FAILURE_START and message.category == latarnia.FAILURE and message.is_failure
    assert message.event_id == started["eventId"] and message.title == "Awaria KSeF" and message.text == "Opis"
    assert message.start is not None and message.start.tzinfo is not None and message.end is None
    assert message.published is not None and message.id == started["id"]

    control(simulator, "latarnia", {"action": "failure_end", "eventId": started["eventId"]})
    assert lighthouse.status().status == latarnia.AVAILABLE
    messages = lighthouse.messages()
    assert {m.type for m in messages} == {latarnia.FAILURE_START, latarnia.FAILURE_END}
    assert {m.event_id for m in messages} == {started["eventId"]}
    end = next(m for m in messages if m.type == latarnia.FAILURE_END)
    assert end.end is not None and end.end >= end.start


def test_total_failure(simulator, lighthouse):
    control(simulator, "latarnia", {"action": "total_failure"})
    status = lighthouse.status()
    assert status.is_total_failure and status.messages[0].category == latarnia.TOTAL_FAILURE


def test_latarnia_outage_is_its_own_error_not_a_ksef_failure(simulator, lighthouse):
    control(simulator, "faults", {"latarnia_down": True})
    with pytest.raises(latarnia.LatarniaUnavailable) as caught:
        lighthouse.status()
    assert caught.value.http_status == 502
    assert not isinstance(caught.value, errors.KsefError)
    with pytest.raises(latarnia.LatarniaUnavailable):
        lighthouse.messages()


def test_unreachable_latarnia():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(latarnia.LatarniaUnavailable, match="cannot reach"):
        latarnia.LatarniaClient(base_url="http://127.0.0.1:%d" % port, timeout=2).status()


def test_environments():
    assert latarnia.LatarniaClient("production").base_url == "https://api-latarnia.ksef.mf.gov.pl"
    assert latarnia.LatarniaClient("test").base_url == "https://api-latarnia-test.ksef.mf.gov.pl"
    with pytest.raises(ValueError):
        latarnia.LatarniaClient("nowhere")

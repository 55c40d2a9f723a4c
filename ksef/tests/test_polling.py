"""ksef.polling.until on a fake clock: the pauses, the two deadline rules, max_polls."""
import pytest

from ksef import polling


class FakeTime:
    def __init__(self):
        self.now = 100.0
        self.slept = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(round(seconds, 6))
        self.now += seconds


def answers(*values):
    values = list(values)
    return lambda: values.pop(0)


def test_done_at_once_sleeps_never():
    fake = FakeTime()
    polled = polling.until(answers("ok"), lambda v: v == "ok", timeout=10, sleep=fake.sleep, clock=fake.clock)
    assert (polled.value, polled.done, polled.polls) == ("ok", True, 1) and fake.slept == []


def test_pauses_grow_by_factor_up_to_the_cap():
    fake = FakeTime()
    polled = polling.until(answers(1, 2, 3, 4, 5, 6), lambda v: v == 6, timeout=100, interval=0.2, factor=2,
                           max_interval=1.0, sleep=fake.sleep, clock=fake.clock)
    assert polled.done and polled.polls == 6
    assert fake.slept == [0.2, 0.4, 0.8, 1.0, 1.0]


def test_engine_rule_never_starts_a_pause_past_the_deadline():
    fake = FakeTime()
    polled = polling.until(lambda: "working", lambda v: False, deadline=fake.now + 1.0, interval=0.4,
                           sleep=fake.sleep, clock=fake.clock)
    # 0.4 + 0.4 = 0.8; a third pause would end at 1.2 > 1.0: stop with the last answer
    assert (polled.value, polled.done, polled.polls) == ("working", False, 3)
    assert fake.slept == [0.4, 0.4] and fake.now <= 101.0


def test_last_look_cuts_the_last_pause_and_asks_at_the_deadline():
    fake = FakeTime()
    asked_at = []

    def fetch():
        asked_at.append(fake.now)
        return "working"

    polled = polling.until(fetch, lambda v: False, timeout=1.0, interval=0.4, factor=2, last_look=True,
                           sleep=fake.sleep, clock=fake.clock)
    assert not polled.done and fake.slept == [0.4, 0.6]     # 0.8 cut to the 0.6 left
    assert asked_at == [100.0, 100.4, 101.0]                  # the last look is at the deadline


def test_max_polls_with_a_pause_rule_and_no_deadline():
    fake = FakeTime()
    polled = polling.until(answers(3, 2, 1), lambda v: v == 0, max_polls=3, pause=lambda n: 10.0 * (n + 1),
                           sleep=fake.sleep, clock=fake.clock)
    assert (polled.value, polled.done, polled.polls) == (1, False, 3)
    assert fake.slept == [10.0, 20.0]    # no pause after the last ask


def test_errors_of_fetch_propagate_and_a_bound_is_required():
    def fetch():
        raise RuntimeError("KSeF down")

    with pytest.raises(RuntimeError):
        polling.until(fetch, bool, timeout=1, sleep=lambda s: None)
    with pytest.raises(ValueError):
        polling.until(lambda: 1, bool)

"""One way to wait for KSeF: ask, pause, ask again until done or out of time.

Every asynchronous KSeF operation (authentication, a session's processing, an invoice's status,
a certificate enrollment) answers "still working" for a while; its status endpoint is
rate-limited (OpenAPI ``x-rate-limits``), so the pause grows (``factor``) up to ``max_interval``.
The deadline is kept one of two ways:

* ``last_look=False``: never start a pause that would end after the deadline; stop instead
  (the engine: a session still processing becomes ``pending`` and is looked at on a later run);
* ``last_look=True``: the last pause is cut to end at the deadline and KSeF is asked once more
  there (a caller that reports "still working" wants the freshest answer).

``sleep`` and ``clock`` are injectable so that tests run on a fake clock.
"""
import dataclasses
import time


@dataclasses.dataclass
class Polled:
    """The last answer, and whether ``done`` accepted it (False: the deadline came first)."""
    value: object
    done: bool
    polls: int


def until(fetch, done, timeout=None, deadline=None, interval=1.0, factor=1.0, max_interval=None,
          last_look=False, max_polls=None, pause=None, sleep=time.sleep, clock=time.monotonic):
    """Call ``fetch()`` until ``done(answer)`` is true or the deadline passes; return ``Polled``.

    The deadline is ``deadline`` (on ``clock``) or ``clock() + timeout``; without either, only
    ``max_polls`` ends the wait. The first pause is ``interval``, each next one ``factor`` times
    longer, at most ``max_interval`` (None: no cap); ``pause(n)`` (n = 0, 1, ...: pauses made so
    far) replaces that rule, e.g. with ``submission.backoff``. ``max_polls`` bounds the asks.
    """
    if deadline is None and timeout is not None:
        deadline = clock() + timeout
    if deadline is None and max_polls is None:
        raise ValueError("give a timeout, a deadline or max_polls")
    delay = interval
    polls = 0
    while True:
        value = fetch()
        polls += 1
        if done(value):
            return Polled(value, True, polls)
        if max_polls is not None and polls >= max_polls:
            return Polled(value, False, polls)
        if pause is not None:
            delay = pause(polls - 1)
        wait = delay
        if deadline is not None:
            now = clock()
            if last_look:
                if now >= deadline:
                    return Polled(value, False, polls)
                wait = min(delay, max(0.0, deadline - now))
            elif now + delay > deadline:
                return Polled(value, False, polls)
        sleep(wait)
        if pause is None:
            delay = delay * factor
            if max_interval is not None:
                delay = min(max_interval, delay)

"""The engine's one retry rule: exponential backoff with jitter, a short inline wait, and
``RetryLater`` when KSeF needs longer than the engine may wait."""
import logging
import random
import time

from ..errors import KsefUnavailable, RateLimited
from .items import PENDING, RETRY

_logger = logging.getLogger(__name__)


class RetryLater(Exception):
    """KSeF is unavailable or rate-limiting for longer than the engine waits inline."""

    def __init__(self, after_seconds, cause=None):
        self.after_seconds = float(after_seconds)
        self.cause = cause
        super().__init__("retry after %.1f s%s" % (self.after_seconds, ": %s" % cause if cause else ""))


def backoff(attempt, base=1.0, cap=300.0, rng=None):
    """Exponential backoff with jitter: a delay in ``[d/2, d]`` where ``d = min(cap, base * 2**attempt)``.

    Half fixed, half random ("equal jitter"): never near zero, yet clients that failed together
    do not retry together. ``attempt`` counts from 0.
    """
    if attempt < 0:
        raise ValueError("attempt counts from 0")
    rng = rng or random
    ceiling = min(float(cap), float(base) * (2 ** min(attempt, 62)))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def retried(function, wait_after, sleep=time.sleep):
    """The one retry loop: call ``function()``; when it raises, ``wait_after(error, attempt)``
    (``attempt`` = 0, 1, ...: the retries so far) gives the seconds to wait before calling again,
    or None to let the error propagate; it may also raise an error of its own (``RetryLater``,
    a verdict). What is transient and how long to wait is each caller's: the Submitter's
    idempotent calls, its sending of one invoice, the Odoo side's login."""
    attempt = 0
    while True:
        try:
            return function()
        except Exception as error:  # noqa: BLE001 - ``wait_after`` decides; None re-raises it
            wait = wait_after(error, attempt)
            if wait is None:
                raise
        attempt += 1
        sleep(wait)


def next_retry_after(outcomes):
    """The shortest ``retry_after`` among ``retry``/``pending`` outcomes (None if none)."""
    delays = [o.retry_after for o in outcomes if o.status in (RETRY, PENDING) and o.retry_after is not None]
    return min(delays) if delays else None




class Retrying:
    """The retry rule of ``Submitter`` (a mixin): one backoff, one reading of a transient error,
    one loop for idempotent calls. Uses ``backoff_base``, ``backoff_cap``, ``rng``,
    ``max_attempts``, ``max_inline_wait``, ``sleep`` and ``stats`` of the submitter."""

    def _backoff(self, attempt):
        return backoff(attempt, self.backoff_base, self.backoff_cap, self.rng)

    def _wait_for(self, error, attempt):
        """How long to wait after ``error``: KSeF's own Retry-After for a 429, else the backoff."""
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return error.retry_after
        return self._backoff(attempt)

    def _call(self, what, function, *args, **kwargs):
        """Run an idempotent call; retry transient failures with backoff while the waits stay
        short; otherwise raise ``RetryLater``. Non-transient ``KsefError``s propagate."""
        def call():
            self.stats["requests"] += 1
            return function(*args, **kwargs)

        def wait_after(error, attempt):
            if not isinstance(error, (RateLimited, KsefUnavailable)):
                return None
            wait = self._wait_for(error, attempt)
            if attempt + 1 >= self.max_attempts or wait > self.max_inline_wait:
                if not isinstance(error, RateLimited):
                    wait = max(wait, backoff(attempt + 1, self.backoff_base * 4, self.backoff_cap * 5, self.rng))
                raise RetryLater(wait, error) from error
            _logger.info("KSeF %s: %s; retrying in %.1f s", what, type(error).__name__, wait)
            return wait

        return retried(call, wait_after, sleep=self.sleep)

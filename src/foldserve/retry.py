"""One retry policy for every call worth trying again, on :mod:`tenacity`.

The client's requests to an endpoint use it, and so can anything else that retries (webhook
deliveries, downloads). Its ``sleep`` and ``clock`` are the real ones unless a test passes
recording fakes, so a test of an outage or a ``Retry-After`` runs in milliseconds and can
assert the delays that were asked for.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import tenacity

E = TypeVar("E", bound=BaseException)


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how patiently, a failing call is tried again.

    Retry ``n`` (0 for the first) waits ``min(max_s, first_s * 2**n)`` times a random factor in
    [0.5, 1]: never zero, so clients failing together spread out. ``max_retries`` retries at
    most, so ``max_retries + 1`` attempts in all.
    """

    max_retries: int = 6
    first_s: float = 0.5
    max_s: float = 15.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    jitter: Callable[[float, float], float] = field(default=random.uniform, repr=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {self.max_retries}")
        if not 0 <= self.first_s <= self.max_s:
            raise ValueError(
                f"need 0 <= first_s <= max_s, got first_s={self.first_s}, max_s={self.max_s}"
            )

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first)."""
        return min(self.max_s, self.first_s * 2.0**retry) * self.jitter(0.5, 1.0)

    def retrying(
        self, retry_on: type[E], *, wait_hint: Callable[[E], float | None] | None = None
    ) -> tenacity.Retrying:
        """A :class:`tenacity.Retrying` that calls a function again while it raises ``retry_on``,
        and re-raises the last such failure once the retries are spent.

        ``wait_hint`` lets a failure say how long to wait itself (HTTP ``Retry-After``); None
        from it means the backoff.
        """

        def wait(state: tenacity.RetryCallState) -> float:
            failure = state.outcome.exception() if state.outcome is not None else None
            hint = (
                wait_hint(failure)
                if wait_hint is not None and isinstance(failure, retry_on)
                else None
            )
            return self.backoff(state.attempt_number - 1) if hint is None else hint

        return tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(retry_on),
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            wait=wait,
            sleep=self.sleep,
            reraise=True,
        )


#: Six retries, from half a second up to 15 s apart, with the real sleep and clock.
DEFAULT_RETRY = RetryPolicy()

"""Progress a platform relays (RunPod's ``/status``, SageMaker's log): every new stage or model
at once, the rest throttled.

A prediction can report a recycle every few hundred milliseconds; each update RunPod's SDK
sends is an HTTP request from a fresh thread, and a log line per recycle would bury the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from foldserve.jobs.progress import JobProgress


class ThrottledProgress:
    """Forward progress when its stage or model is new, or ``interval`` seconds have passed."""

    def __init__(
        self,
        send: Callable[[JobProgress], None],
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._interval = interval
        self._clock = clock
        self._last_key: tuple[str, str | None] | None = None
        self._last_sent = float("-inf")

    def __call__(self, progress: JobProgress) -> None:
        key = (progress.stage, progress.model)
        now = self._clock()
        if key == self._last_key and now - self._last_sent < self._interval:
            return
        self._last_key, self._last_sent = key, now
        self._send(progress)

"""A clock that moves only when slept on: retries and polls tested without waiting."""

from __future__ import annotations

from foldserve.retry import RetryPolicy


class FakeTime:
    """A clock that moves only when slept on, and the list of every sleep asked for."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def policy(self, max_retries: int) -> RetryPolicy:
        return RetryPolicy(max_retries=max_retries, sleep=self.sleep, clock=self.clock)

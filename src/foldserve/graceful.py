"""uvicorn's server, stopped by SIGTERM as by Ctrl-C: it shuts down and returns, and what the
caller does after ``run()`` (stopping workers, handing running jobs back) runs.

uvicorn's own server raises the signal it caught again once it has shut down. For SIGTERM, how
systemd, Docker, Kubernetes, RunPod and SageMaker stop a process, that is the default action:
the process ends there, killed, and nothing after ``run()`` runs.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

import uvicorn

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GracefulServer(uvicorn.Server):
    """A uvicorn server whose ``run()`` returns after SIGINT or SIGTERM; ``on_signal`` hears
    each one (a second SIGINT still forces the exit, as in uvicorn)."""

    def __init__(
        self, config: uvicorn.Config, on_signal: Callable[[signal.Signals], None] | None = None
    ) -> None:
        super().__init__(config)
        self._on_signal = on_signal

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._on_signal is not None:
            self._on_signal(signal.Signals(sig))
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach the main thread only
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

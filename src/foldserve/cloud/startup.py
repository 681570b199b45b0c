"""A cloud worker's start: each engine's weights in ``PARAM_DIR`` (fetched once per volume when
missing), then the engines, warm. The RunPod worker and the SageMaker container both start so.

Several workers often start together on an empty shared volume. Each finds the weights missing
and fetches them (:func:`foldserve.fold.weights.fetch` for AlphaFold2,
:func:`foldserve.fold.openfold3.weights.fetch_checkpoint` for OpenFold3), which takes a lock in
``PARAM_DIR``: the first downloads, verifies and installs by atomic rename; the others wait and
then find the install. Weights already there are used as they are, without the lock, so a
read-only ``PARAM_DIR`` (SageMaker's model data) serves as well. The JAX compilation cache lives
beside the weights (``PARAM_DIR/jax-cache``), so a new worker loads compiled functions instead
of compiling.

Each worker passes its own logger: its log lines keep its name.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from foldserve.cloud.settings import WorkerSettings
from foldserve.fold import weights
from foldserve.fold.engine import Engines
from foldserve.fold.openfold3.layout import checkpoint_dir, installed_checkpoint
from foldserve.fold.openfold3.weights import fetch_checkpoint
from foldserve.fold.weights import FetchResult

_LOG_EVERY_SECONDS = 30.0


def prepare_weights(settings: WorkerSettings, log: logging.Logger) -> None:
    """Make sure ``PARAM_DIR`` holds the weights of every engine the worker serves, fetching
    those it does not."""
    if "alphafold2" in settings.engines:
        _prepare_alphafold2(settings, log)
    if "openfold3" in settings.engines:
        _prepare_openfold3(settings, log)


def _prepare_alphafold2(settings: WorkerSettings, log: logging.Logger) -> None:
    """All five AlphaFold2 models in ``PARAM_DIR/params``."""
    param_dir = settings.param_dir
    present = [weights.model_param_file(param_dir, n).is_file() for n in weights.MODEL_NUMBERS]
    if all(present):
        log.info("weights found in %s", param_dir / "params")
        return
    log.info("no weights in %s: fetching %s", param_dir / "params", settings.params_url)
    result = weights.fetch(
        param_dir,
        settings.params_url,
        expected_sha256=settings.params_sha256,
        progress=_DownloadLog(log),
    )
    _log_fetched(result, param_dir / "params", log)


def _prepare_openfold3(settings: WorkerSettings, log: logging.Logger) -> None:
    """OpenFold3's checkpoint in ``PARAM_DIR/openfold3``."""
    folder = checkpoint_dir(settings.param_dir)
    if installed_checkpoint(settings.param_dir) is not None:
        log.info("OpenFold3 checkpoint found in %s", folder)
        return
    log.info("no OpenFold3 checkpoint in %s: fetching %s", folder, settings.openfold3_url)
    result = fetch_checkpoint(
        settings.param_dir,
        settings.openfold3_url,
        expected_sha256=settings.openfold3_sha256,
        progress=_DownloadLog(log),
    )
    _log_fetched(result, folder, log)


def _log_fetched(result: FetchResult, folder: Path, log: logging.Logger) -> None:
    if result.downloaded:
        verified = "verified" if result.sha256_verified else "recorded"
        log.info(
            "installed %s: %d bytes, SHA-256 %s (%s)",
            folder,
            result.archive_bytes,
            result.archive_sha256,
            verified,
        )
    else:
        log.info("weights installed meanwhile by another worker on this volume")


def load_engines(settings: WorkerSettings, log: logging.Logger) -> Engines:
    """The engines the worker serves, each with its weights already on the device."""
    started = time.perf_counter()
    engines = Engines(settings.engines, settings.param_dir, precision=settings.precision).load()
    for line in engines.describe():
        log.info("%s", line)
    log.info("ready in %.1f s", time.perf_counter() - started)
    return engines


class _DownloadLog:
    """Logs a fetch's progress every 30 seconds: worker logs are read, not watched."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._last = time.monotonic()

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self._last < _LOG_EVERY_SECONDS:
            return
        self._last = now
        share = f" of {total >> 20} MB ({done / total:.0%})" if total else ""
        self._log.info("fetching weights: %d MB%s", done >> 20, share)

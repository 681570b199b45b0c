"""Worker start: weights on the network volume (fetched once per volume), then a warm Predictor.

Several workers of one endpoint often start together on an empty volume. Each finds the
weights missing and calls :func:`foldserve.fold.weights.fetch`, which takes a lock in
``PARAM_DIR``: the first downloads, verifies and installs by atomic rename; the others wait and
then find the install. The JAX compilation cache lives on the volume too
(``PARAM_DIR/jax-cache``), so a new worker loads compiled functions instead of compiling.
"""

from __future__ import annotations

import logging
import time

from foldserve.cloud.runpod.settings import VOLUME_MOUNT, RunpodSettings
from foldserve.fold import weights
from foldserve.fold.predictor import Predictor

log = logging.getLogger("foldserve.runpod")

_LOG_EVERY_SECONDS = 30.0


def prepare_weights(settings: RunpodSettings) -> None:
    """Make sure ``PARAM_DIR/params`` holds all five models, fetching them when it does not."""
    param_dir = settings.param_dir
    present = [weights.model_param_file(param_dir, n).is_file() for n in weights.MODEL_NUMBERS]
    if all(present):
        log.info("weights found in %s", param_dir / "params")
        return
    if param_dir == VOLUME_MOUNT and not param_dir.exists():
        log.warning(
            "%s does not exist: no network volume is attached, so the weights go to the "
            "container disk and every new worker downloads them again",
            param_dir,
        )
    log.info("no weights in %s: fetching %s", param_dir / "params", settings.params_url)
    result = weights.fetch(
        param_dir,
        settings.params_url,
        expected_sha256=settings.params_sha256,
        progress=_DownloadLog(),
    )
    if result.downloaded:
        verified = "verified" if result.sha256_verified else "recorded"
        log.info(
            "installed %s: %d bytes, SHA-256 %s (%s)",
            param_dir / "params",
            result.archive_bytes,
            result.archive_sha256,
            verified,
        )
    else:
        log.info("weights installed meanwhile by another worker on this volume")


def load_predictor(settings: RunpodSettings) -> Predictor:
    """The Predictor with every model's parameters already on the device."""
    started = time.perf_counter()
    predictor = Predictor(settings.param_dir, precision=settings.precision)
    predictor.load_all_params()
    log.info(
        "ready in %.1f s: %s, models %s, %d evoformer blocks%s",
        time.perf_counter() - started,
        predictor.device,
        ",".join(map(str, predictor.available_models)),
        predictor.evoformer_blocks,
        " (TEST WEIGHTS: outputs are meaningless)" if predictor.test_weights else "",
    )
    return predictor


class _DownloadLog:
    """Logs a fetch's progress every 30 seconds: worker logs are read, not watched."""

    def __init__(self) -> None:
        self._last = time.monotonic()

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self._last < _LOG_EVERY_SECONDS:
            return
        self._last = now
        share = f" of {total >> 20} MB ({done / total:.0%})" if total else ""
        log.info("fetching weights: %d MB%s", done >> 20, share)

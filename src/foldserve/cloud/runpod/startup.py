"""Worker start on RunPod: each engine's weights on the endpoint's network volume (fetched once
per volume), then the engines, warm (:mod:`foldserve.cloud.startup`, logged as the RunPod
worker's)."""

from __future__ import annotations

import logging

from foldserve.cloud import startup
from foldserve.cloud.runpod.settings import VOLUME_MOUNT, RunpodSettings
from foldserve.fold.engine import Engines

log = logging.getLogger("foldserve.runpod")


def prepare_weights(settings: RunpodSettings) -> None:
    """Make sure ``PARAM_DIR`` holds the weights of every engine the worker serves, fetching
    those it does not."""
    param_dir = settings.param_dir
    if param_dir == VOLUME_MOUNT and not param_dir.exists():
        log.warning(
            "%s does not exist: no network volume is attached, so the weights go to the "
            "container disk and every new worker downloads them again",
            param_dir,
        )
    startup.prepare_weights(settings, log)


def load_engines(settings: RunpodSettings) -> Engines:
    """The engines the worker serves, each with its weights already on the device."""
    return startup.load_engines(settings, log)

"""foldserve: protein structure prediction from the multiple sequence alignment you already have.

``foldserve.Predictor`` and ``foldserve.PredictOptions`` are the Python API of the AlphaFold2
engine, ``foldserve.Client`` that of remote endpoints (RunPod or ``foldserve serve``); they are
imported on first use, so ``import foldserve`` stays fast.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("foldserve")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

if TYPE_CHECKING:
    from foldserve.fold.predictor import Predictor
    from foldserve.fold.results import PredictOptions
    from foldserve.service.client import Client

__all__ = ["Client", "PredictOptions", "Predictor", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Predictor":
        from foldserve.fold.predictor import Predictor

        return Predictor
    if name == "PredictOptions":
        from foldserve.fold.results import PredictOptions

        return PredictOptions
    if name == "Client":
        from foldserve.service.client import Client

        return Client
    raise AttributeError(f"module 'foldserve' has no attribute {name!r}")

"""foldserve: protein structure prediction from the multiple sequence alignment you already have.

``foldserve.Predictor`` and ``foldserve.PredictOptions`` are the Python API of the AlphaFold2
engine, ``foldserve.Client`` that of remote endpoints (RunPod or ``foldserve serve``); they are
imported on first use, so ``import foldserve`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from foldserve._version import __version__

if TYPE_CHECKING:
    from foldserve.client.client import Client
    from foldserve.fold.predictor import Predictor
    from foldserve.fold.results import PredictOptions

__all__ = ["Client", "PredictOptions", "Predictor", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Predictor":
        from foldserve.fold.predictor import Predictor

        return Predictor
    if name == "PredictOptions":
        from foldserve.fold.results import PredictOptions

        return PredictOptions
    if name == "Client":
        from foldserve.client.client import Client

        return Client
    raise AttributeError(f"module 'foldserve' has no attribute {name!r}")

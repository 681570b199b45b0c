"""foldserve: protein structure prediction from the multiple sequence alignment you already have.

``foldserve.load_engine("alphafold2" | "openfold3")`` gives a warm engine whose ``predict``
takes an MSA and ``foldserve.PredictOptions``; ``foldserve.Engines`` holds several, as a worker
does. ``foldserve.Predictor`` is the AlphaFold2 engine itself, ``foldserve.Client`` the Python
API of remote endpoints (RunPod or ``foldserve serve``), ``foldserve.SageMakerClient`` that of
SageMaker asynchronous endpoints. Each is imported on first use, so
``import foldserve`` stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from foldserve._version import __version__

if TYPE_CHECKING:
    from foldserve.client.client import Client
    from foldserve.client.sagemaker import SageMakerClient
    from foldserve.fold.alphafold2.predictor import Predictor
    from foldserve.fold.engine import Engine, Engines, load_engine
    from foldserve.fold.results import PredictOptions

__all__ = [
    "Client",
    "Engine",
    "Engines",
    "PredictOptions",
    "Predictor",
    "SageMakerClient",
    "__version__",
    "load_engine",
]

#: Where each public name lives: imported when first asked for.
_HOMES = {
    "Client": "foldserve.client.client",
    "Engine": "foldserve.fold.engine",
    "Engines": "foldserve.fold.engine",
    "load_engine": "foldserve.fold.engine",
    "Predictor": "foldserve.fold.alphafold2.predictor",
    "PredictOptions": "foldserve.fold.results",
    "SageMakerClient": "foldserve.client.sagemaker",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'foldserve' has no attribute {name!r}")
    return getattr(import_module(home), name)

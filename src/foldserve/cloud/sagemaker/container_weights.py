"""The folder the engines load their weights from: ``PARAM_DIR`` itself when it is writable,
else a writable stand-in for it.

The AlphaFold2 engine writes beside its weights: the JAX compilation cache
(``PARAM_DIR/jax-cache``) and the template search cache. SageMaker may mount the model data
(``/opt/ml/model``) read-only; the engines then read the weights through a folder of links on
the container's own disk, where those caches are written (each container compiles once).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from foldserve.fold.alphafold2.predictor import COMPILE_CACHE_DIRNAME, TEMPLATE_CACHE_DIRNAME

log = logging.getLogger("foldserve.sagemaker")

#: What the engines write in their weights folder: made anew, never linked to read-only ones.
_WRITTEN = frozenset({COMPILE_CACHE_DIRNAME, TEMPLATE_CACHE_DIRNAME})


def engine_param_dir(param_dir: Path) -> Path:
    """``param_dir`` when this process may write in it; else a new folder in the temporary
    directory holding a link to each of ``param_dir``'s entries but the caches."""
    if os.access(param_dir, os.W_OK):
        return param_dir
    stand_in = Path(tempfile.mkdtemp(prefix="foldserve-weights-"))
    for entry in param_dir.iterdir():
        if entry.name not in _WRITTEN:
            (stand_in / entry.name).symlink_to(entry)
    log.info(
        "%s is read-only: the engines read it through %s, where their caches go",
        param_dir,
        stand_in,
    )
    return stand_in

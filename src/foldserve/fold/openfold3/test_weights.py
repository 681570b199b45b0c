"""Random OpenFold3 weights for the reduced test configuration (:data:`TEST_MODEL_UPDATE`).

The model is built by OpenFold3's own code with the test configuration (official widths and
parameter names, one block per stack), initialised the way OpenFold3 initialises a model for
training, and saved in the layout of its published checkpoint (the model's ``state_dict``).
Layers OpenFold3 starts at zero (the output heads, AlphaFold's "final" init) get small random
values, so pLDDT, PAE and coordinates vary as they would with trained weights. A
``TEST_WEIGHTS.json`` marker beside the checkpoint tells the engine which configuration to
build and every later step that the output is meaningless as biology.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from foldserve._version import __version__
from foldserve.files import atomic_write, write_text
from foldserve.fold.openfold3.layout import (
    TEST_CHECKPOINT_NAME,
    TEST_MODEL_UPDATE,
    TEST_WEIGHTS_MARKER,
    checkpoint_dir,
)

#: Standard deviation given to parameters OpenFold3 initialises at zero.
ZERO_INIT_STD = 0.02


@dataclass(frozen=True)
class OpenFold3TestWeights:
    checkpoint: Path
    parameters: int
    seed: int


def make_test_checkpoint(
    param_dir: Path, *, seed: int = 0, full_size: bool = False
) -> OpenFold3TestWeights:
    """Write ``PARAM_DIR/openfold3/of3-test-weights.pt`` and its marker; replaces what is there.

    ``full_size`` makes random weights for OpenFold3's whole configuration instead (48
    pairformer blocks, 200 diffusion steps, 5 samples: about 1.3 GB), for timing on a GPU.
    """
    import torch

    from foldserve.fold.openfold3.engine import load_openfold3, model_config

    torch.manual_seed(seed)
    update = {} if full_size else TEST_MODEL_UPDATE
    module = load_openfold3().runner(model_config(update, on_cuda=False))
    with torch.no_grad():
        for parameter in module.model.parameters():
            if parameter.dim() > 1 and not parameter.any():
                parameter.normal_(0.0, ZERO_INIT_STD)
    folder = checkpoint_dir(param_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / TEST_CHECKPOINT_NAME
    with atomic_write(target, "wb") as out:
        torch.save(module.model.state_dict(), out)
    parameters = sum(p.numel() for p in module.model.parameters())
    marker = {
        "test_weights": True,
        "warning": "random parameters: predictions made with them are not protein structures",
        "model_update": update,
        "parameters": parameters,
        "seed": seed,
        "generator": f"foldserve {__version__}",
    }
    write_text(folder / TEST_WEIGHTS_MARKER, json.dumps(marker, indent=2) + "\n")
    return OpenFold3TestWeights(target, parameters, seed)

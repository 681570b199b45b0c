"""The AlphaFold2 pTM network, set up the way ColabFold sets it up, compiled once per precision.

This mirrors ``colabfold.alphafold.models.load_models_and_params`` for monomer pTM models without
templates (the same config switches, the same fused-weight loading through ColabFold's
``get_model_haiku_params``, the same ``jax.jit`` options) with one difference: the evoformer
depth is read from the parameter files instead of assumed to be 48, so reduced-depth test
weights run through the same code. As in ColabFold, model 3's configuration serves all five
models: their parameters are swapped into one compiled function.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from foldserve.fold.weights import model_param_file

MODEL_TYPE = "alphafold2_ptm"
_EVOFORMER_PROBE = (
    "alphafold/alphafold_iteration/evoformer/evoformer_iteration/msa_transition/"
    "input_layer_norm//scale"
)

Params = dict[str, dict[str, Any]]


def evoformer_blocks(param_file: Path) -> int:
    """Number of evoformer blocks in a params file (the stacked leading axis)."""
    with np.load(param_file, allow_pickle=False) as archive:
        return int(archive[_EVOFORMER_PROBE].shape[0])


@dataclass
class Network:
    """A jitted AlphaFold2 forward pass plus the config its data pipeline needs."""

    config: Any
    apply: Any
    param_keys: frozenset[str]
    evoformer_blocks: int


def build_network(param_dir: Path, model_3_params: Params, *, bfloat16: bool) -> Network:
    """Configure and jit the network for the weights in ``param_dir``.

    ``model_3_params`` (from :func:`load_params`) are the template-free parameter set every
    model is reduced to; the caller keeps them, so they are loaded once.
    """
    from alphafold.model import config, model
    from colabfold.alphafold.models import _compile_jit_kwargs

    blocks = evoformer_blocks(model_param_file(param_dir, 3))
    cfg = config.model_config("model_3_ptm")
    cfg.model.embeddings_and_evoformer.evoformer_num_block = blocks
    cfg.model.stop_at_score = 100.0
    # Ranking is done outside the network so that choosing a metric never recompiles.
    cfg.model.rank_by = "plddt"
    cfg.model.global_config.eval_dropout = False
    cfg.model.global_config.bfloat16 = bfloat16
    cfg.model.global_config.use_pallas = False
    cfg.model.global_config.kernel_backend = "pallas"
    cfg.model.global_config.compute_capability = None
    evoformer = cfg.model.embeddings_and_evoformer.evoformer
    evoformer.triangle_multiplication_incoming.fuse_projection_weights = True
    evoformer.triangle_multiplication_outgoing.fuse_projection_weights = True
    # Heads whose outputs are never saved (ColabFold's save_all=False).
    cfg.model.heads.distogram.weight = 0.0
    cfg.model.heads.masked_msa.weight = 0.0
    cfg.model.heads.experimentally_resolved.weight = 0.0
    cfg.data.eval.num_ensemble = 1
    runner = model.RunModel(cfg, model_3_params, jit_kwargs=_compile_jit_kwargs("tuned"))
    return Network(
        config=runner.config,
        apply=runner.apply,
        param_keys=frozenset(runner.params),
        evoformer_blocks=blocks,
    )


def load_params(param_dir: Path, model_number: int) -> Params:
    """One model's parameters, fused as ColabFold fuses them, on the default device."""
    from colabfold.alphafold.models import get_model_haiku_params

    params: Params = get_model_haiku_params(
        data_dir=str(param_dir), model_type=MODEL_TYPE, model_number=str(model_number)
    )
    return params

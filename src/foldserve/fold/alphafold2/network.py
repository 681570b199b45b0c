"""The AlphaFold2 networks, set up the way ColabFold sets them up.

This mirrors ``colabfold.alphafold.models.load_models_and_params`` (the same config switches,
the same fused-weight loading through ColabFold's ``get_model_haiku_params``, the same
``jax.jit`` options) with one difference: the evoformer depth is read from the parameter files
instead of assumed to be 48, so reduced-depth test weights run through the same code.

As in ColabFold, one configuration serves several models, their parameters swapped into one
compiled function: the pTM models 3, 4 and 5 (and 1 and 2 without templates) share model 3's,
models 1 and 2 with templates share model 1's, and the five multimer models share model 3's.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from foldserve.errors import WeightsError
from foldserve.fold.weights import model_param_file, multimer_param_file

MONOMER = "alphafold2_ptm"
MULTIMER = "alphafold2_multimer_v3"
#: ColabFold's MSA sizes for the multimer v3 models (``--max-msa`` default 508:2048).
MULTIMER_NUM_MSA = 508
MULTIMER_NUM_EXTRA_MSA = 2048
_EVOFORMER_PROBE = (
    "alphafold/alphafold_iteration/evoformer/evoformer_iteration/msa_transition/"
    "input_layer_norm//scale"
)

Params = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class NetworkKey:
    """What one compiled configuration is specialised to, beside the input shape.

    ``templates`` is the template-using monomer configuration (models 1 and 2 with templates);
    ``num_msa`` and ``num_extra_msa`` are the multimer's MSA sample sizes, which its network
    draws itself (the monomer's are sampled before the network, so they are only shapes).
    """

    network: str
    templates: bool = False
    num_msa: int = 0
    num_extra_msa: int = 0

    @property
    def multimer(self) -> bool:
        return self.network == MULTIMER

    def config_name(self) -> str:
        """AlphaFold's config the network is built from (ColabFold's choice)."""
        if self.multimer:
            return "model_3_multimer_v3"
        return "model_1_ptm" if self.templates else "model_3_ptm"

    def param_file(self, param_dir: Path, model_number: int) -> Path:
        if self.multimer:
            return multimer_param_file(param_dir, model_number)
        return model_param_file(param_dir, model_number)

    def reference_model(self) -> int:
        """The model whose parameter names the configuration uses."""
        return 1 if self.templates else 3


def evoformer_blocks(param_file: Path) -> int:
    """Number of evoformer blocks in a params file (the stacked leading axis)."""
    with np.load(param_file, allow_pickle=False) as archive:
        return int(archive[_EVOFORMER_PROBE].shape[0])


class Network:
    """AlphaFold2's jitted forward pass for one configuration, plus the config its data pipeline
    needs.

    :meth:`apply` gives the forward pass for an inference chunk (``global_config.subbatch_size``:
    the attention and transition layers run over that many rows at a time; ``None`` runs them
    whole; :func:`~.shapes.chunk_for` chooses), each built the first time it is asked for.
    """

    def __init__(self, key: NetworkKey, config: Any, reference_params: Params, blocks: int):
        self.key = key
        self.config = config
        self.evoformer_blocks = blocks
        self.param_keys = frozenset(reference_params)
        self._reference_params = reference_params
        self._applies: dict[int | None, Any] = {}

    def apply(self, chunk: int | None) -> Any:
        """The jitted forward pass with AlphaFold's layers chunked by ``chunk``."""
        if chunk not in self._applies:
            from alphafold.model import model
            from colabfold.alphafold.models import _compile_jit_kwargs

            cfg = copy.deepcopy(self.config)
            cfg.model.global_config.subbatch_size = chunk
            runner = model.RunModel(
                cfg, self._reference_params, jit_kwargs=_compile_jit_kwargs("tuned")
            )
            self._applies[chunk] = runner.apply
        return self._applies[chunk]


def build_network(
    param_dir: Path, reference_params: Params, key: NetworkKey, *, bfloat16: bool
) -> Network:
    """Configure and jit the network ``key`` names for the weights in ``param_dir``.

    ``reference_params`` (from :func:`load_params`, of ``key.reference_model()``) give the
    parameter names the network uses; the caller keeps them, so they are loaded once.
    """
    from alphafold.model import config

    blocks = evoformer_blocks(key.param_file(param_dir, key.reference_model()))
    cfg = config.model_config(key.config_name())
    cfg.model.embeddings_and_evoformer.evoformer_num_block = blocks
    cfg.model.stop_at_score = 100.0
    # Ranking is done outside the network so that choosing a metric never recompiles.
    cfg.model.rank_by = "multimer" if key.multimer else "plddt"
    cfg.model.global_config.eval_dropout = False
    cfg.model.global_config.bfloat16 = bfloat16
    cfg.model.global_config.use_pallas = False
    cfg.model.global_config.kernel_backend = "pallas"
    cfg.model.global_config.compute_capability = None
    embeddings = cfg.model.embeddings_and_evoformer
    for stack in (embeddings.evoformer, embeddings.template.template_pair_stack):
        stack.triangle_multiplication_incoming.fuse_projection_weights = True
        stack.triangle_multiplication_outgoing.fuse_projection_weights = True
    # Heads whose outputs are never saved (ColabFold's save_all=False).
    cfg.model.heads.distogram.weight = 0.0
    cfg.model.heads.masked_msa.weight = 0.0
    cfg.model.heads.experimentally_resolved.weight = 0.0
    if key.multimer:
        embeddings.num_msa = key.num_msa
        embeddings.num_extra_msa = key.num_extra_msa
        embeddings.use_cluster_profile = True
        cfg.model.num_ensemble_eval = 1
    else:
        cfg.data.eval.num_ensemble = 1
    return Network(key, cfg, reference_params, blocks)


def load_params(param_dir: Path, network: str, model_number: int) -> Params:
    """One model's parameters, fused as ColabFold fuses them, on the default device; a file
    that cannot be read is a :class:`WeightsError` naming it."""
    import zipfile

    from colabfold.alphafold.models import get_model_haiku_params

    try:
        params: Params = get_model_haiku_params(
            data_dir=str(param_dir), model_type=network, model_number=str(model_number)
        )
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise WeightsError(
            f"cannot read {network} model {model_number}'s parameters ({exc})",
            where=str(param_dir / "params"),
            fix="run `foldserve weights check`, then `foldserve weights fetch` again",
        ) from exc
    return params

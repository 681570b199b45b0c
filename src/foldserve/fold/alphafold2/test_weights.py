"""Random AlphaFold2 parameters with the keys and shapes of DeepMind's published files.

Real weights cannot be downloaded where the tests run, yet the tests must exercise the real
loading and model code. The parameter tree is traced from AlphaFold's own Haiku modules
(``jax.eval_shape``, no compute), stored under the names DeepMind's ``params_model_{N}_ptm.npz``
use (unfused triangle-multiplication projections, ``scope//name`` keys), and filled with random
values scaled like a trained network's: unit-variance activations through every linear layer,
so the 48-block stack and the structure module give finite, non-trivial coordinates.

With ``multimer=True`` the same is done for AlphaFold2-multimer v3
(``params_model_{N}_multimer_v3.npz``), traced from ``modules_multimer.AlphaFold``. Those files
keep the names the network uses: DeepMind trained v3 with fused triangle-multiplication
projections (``projection``, ``gate``, ``center_norm``, ``left_norm_input``) and published them so.

A ``TEST_WEIGHTS.json`` marker beside the files tells every later step that the output is
meaningless as biology.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from foldserve._version import __version__
from foldserve.files import atomic_write, write_text
from foldserve.fold.weights import (
    MANIFEST,
    MODEL_NUMBERS,
    SOURCE_RECORD,
    TEST_WEIGHTS_MARKER,
    model_param_file,
    multimer_param_file,
)

FULL_EVOFORMER_BLOCKS = 48

# Haiku modules built with a layer stack keep one slice per block in the leading axis.
_STACKED_SCOPES = (
    "evoformer_iteration",
    "extra_msa_stack",
    "__layer_stack_no_state",
    "template_embedding_iteration",  # the multimer's template pair stack
)

# Weight names whose input (fan-in) axes are not just the second-to-last one.
_FAN_IN_AXES = {
    "query_w": 1,  # (in, heads, head_dim)
    "key_w": 1,
    "value_w": 1,
    "gating_w": 1,
    "output_w": 2,  # (heads, head_dim, out)
}

# Structure-module layers whose outputs are coordinates or angles: kept small so the random
# network folds into a compact, finite chain instead of flying apart over eight iterations.
# ("rigid" is the multimer's ``quat_rigid/rigid`` backbone update.)
_SMALL_OUTPUT_SCOPES = ("affine_update", "rigid", "unnormalized_angles")

# Keeps the multimer files' random values apart from the pTM files' of the same model number.
_MULTIMER_STREAM = 1


@dataclass(frozen=True)
class TestWeightsInfo:
    """What ``make_test_weights`` wrote."""

    param_dir: Path
    evoformer_blocks: int
    seed: int
    files: tuple[Path, ...]


def make_test_weights(
    param_dir: Path,
    *,
    evoformer_blocks: int = FULL_EVOFORMER_BLOCKS,
    seed: int = 0,
    models: tuple[int, ...] = MODEL_NUMBERS,
    multimer: bool = False,
) -> TestWeightsInfo:
    """Write random ``params_model_{N}_ptm.npz`` files and the test-weights marker; with
    ``multimer``, ``params_model_{N}_multimer_v3.npz`` for the same models too."""
    if evoformer_blocks < 1:
        raise ValueError(f"evoformer_blocks must be at least 1, got {evoformer_blocks}")
    params_dir = param_dir / "params"
    params_dir.mkdir(parents=True, exist_ok=True)
    # Records of a fetched archive would otherwise vouch for files this replaces.
    for record in (MANIFEST, SOURCE_RECORD):
        (params_dir / record).unlink(missing_ok=True)
    files = []
    with_templates = _official_shapes(evoformer_blocks, templates=True)
    without_templates = _official_shapes(evoformer_blocks, templates=False)
    for number in models:
        # DeepMind's models 1 and 2 were trained with templates and carry those parameters.
        shapes = with_templates if number in (1, 2) else without_templates
        target = model_param_file(param_dir, number)
        _write_random(target, shapes, np.random.default_rng([seed, number]))
        files.append(target)
    if multimer:
        shapes = multimer_shapes(evoformer_blocks)
        for number in models:
            target = multimer_param_file(param_dir, number)
            _write_random(target, shapes, np.random.default_rng([seed, number, _MULTIMER_STREAM]))
            files.append(target)
    marker = {
        "test_weights": True,
        "warning": "random parameters: predictions made with them are not protein structures",
        "evoformer_blocks": evoformer_blocks,
        "seed": seed,
        "models": list(models),
        "generator": f"foldserve {__version__}",
    }
    if multimer:
        marker["multimer_models"] = list(models)
    write_text(params_dir / TEST_WEIGHTS_MARKER, json.dumps(marker, indent=2) + "\n")
    return TestWeightsInfo(param_dir, evoformer_blocks, seed, tuple(files))


def _official_shapes(evoformer_blocks: int, *, templates: bool) -> dict[str, tuple[int, ...]]:
    """Trace the pTM network; return ``{"scope//name": shape}`` under DeepMind's names."""
    import jax
    from alphafold.model import config, features, model, utils

    from foldserve.fold.alphafold2.features import tiny_raw_features

    cfg = config.model_config("model_1_ptm" if templates else "model_3_ptm")
    cfg.model.embeddings_and_evoformer.evoformer_num_block = evoformer_blocks
    cfg.data.common.num_recycle = 0
    cfg.model.num_recycle = 0
    cfg.data.eval.max_msa_clusters = 8
    cfg.data.common.max_extra_msa = 4
    batch = features.np_example_to_features(tiny_raw_features(), cfg, random_seed=0)
    batch = jax.tree_util.tree_map(lambda x: x[:1], batch)
    traced = _trace_init(model.RunModel(cfg), batch)
    placeholders = {
        f"{scope}//{name}": np.zeros(leaf.shape, dtype=np.float32)
        for scope, leaves in traced.items()
        for name, leaf in leaves.items()
    }
    # The config fuses the left/right projections; the published files keep them apart.
    unfused: dict[str, dict[str, Any]] = utils.flat_params_to_haiku(
        placeholders, fuse=False, to_jnp=False
    )
    return {
        f"{scope}//{name}": tuple(array.shape)
        for scope, leaves in unfused.items()
        for name, array in leaves.items()
    }


def multimer_shapes(evoformer_blocks: int) -> dict[str, tuple[int, ...]]:
    """Trace the multimer v3 network; return ``{"scope//name": shape}``.

    One trace serves all five models: ``model_{1..5}_multimer_v3`` differ only in
    ``num_extra_msa`` (how many extra-MSA rows are sampled), which shapes no parameter.
    """
    from alphafold.model import config, model

    cfg = config.model_config("model_1_multimer_v3")
    embeddings = cfg.model.embeddings_and_evoformer
    embeddings.evoformer_num_block = evoformer_blocks
    # A toy batch: four MSA rows, two of them sampled as clusters and two as extra rows.
    embeddings.num_msa = 2
    embeddings.num_extra_msa = 2
    cfg.model.num_recycle = 0
    traced = _trace_init(model.RunModel(cfg), multimer_toy_batch())
    return {
        f"{scope}//{name}": tuple(leaf.shape)
        for scope, leaves in traced.items()
        for name, leaf in leaves.items()
    }


def multimer_toy_batch() -> dict[str, Any]:
    """Shapes of a multimer batch as ColabFold feeds it: 8 residues, 4 MSA rows, 1 template.

    ``all_atom_positions`` and ``prev`` are ColabFold's too: the multimer network runs its
    structure module only when the batch has the former and reads the recycled state from the
    latter.
    """
    import jax
    import jax.numpy as jnp

    residues, rows, templates = 8, 4, 1

    def spec(*shape: int, dtype: Any = jnp.float32) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct(shape, dtype)  # type: ignore[no-untyped-call]

    per_residue = ("aatype", "residue_index", "asym_id", "entity_id", "sym_id")
    return {
        **{name: spec(residues, dtype=jnp.int32) for name in per_residue},
        "seq_mask": spec(residues),
        "msa": spec(rows, residues, dtype=jnp.int32),
        "msa_mask": spec(rows, residues),
        "deletion_matrix": spec(rows, residues),
        "cluster_bias_mask": spec(rows),
        "all_atom_positions": spec(residues, 37, 3),
        "template_aatype": spec(templates, residues, dtype=jnp.int32),
        "template_all_atom_positions": spec(templates, residues, 37, 3),
        "template_all_atom_mask": spec(templates, residues, 37),
        "prev": {
            "prev_msa_first_row": spec(residues, 256),
            "prev_pair": spec(residues, residues, 128),
            "prev_pos": spec(residues, 37, 3),
        },
    }


def _trace_init(run_model: Any, batch: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The parameter tree ``run_model`` initialises for ``batch``, as shapes only."""
    import jax

    traced: dict[str, dict[str, Any]] = jax.eval_shape(run_model.init, jax.random.PRNGKey(0), batch)
    return traced


def _write_random(
    target: Path, shapes: dict[str, tuple[int, ...]], rng: np.random.Generator
) -> None:
    arrays = {key: _random_values(key, shape, rng) for key, shape in shapes.items()}
    with atomic_write(target, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]


def _random_values(
    key: str, shape: tuple[int, ...], rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    scope, name = key.split("//")
    stacked = any(part in scope.split("/") for part in _STACKED_SCOPES)
    per_block = shape[1:] if stacked else shape
    if name == "scale":
        values = 1.0 + 0.05 * rng.standard_normal(shape)
    elif name in ("offset", "bias") or name.endswith("_b") or len(per_block) < 2:
        values = 0.02 * rng.standard_normal(shape)
    else:
        fan_in_axes = _FAN_IN_AXES.get(name, 1)
        fan_in = math.prod(per_block[:fan_in_axes])
        gain = 0.1 if scope.split("/")[-1] in _SMALL_OUTPUT_SCOPES else 1.0
        values = rng.standard_normal(shape) * (gain / math.sqrt(fan_in))
    return values.astype(np.float32)

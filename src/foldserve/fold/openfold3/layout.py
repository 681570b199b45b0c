"""Where OpenFold3's weights live beside AlphaFold2's, and the model settings foldserve runs.

``PARAM_DIR/openfold3/`` holds one checkpoint: OpenFold3's published one
(:data:`DEFAULT_CHECKPOINT_NAME`) or random test weights with ``TEST_WEIGHTS.json`` saying
which reduced configuration they were made for (:data:`TEST_MODEL_UPDATE`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from foldserve.fold.weights import folder_fingerprint

#: The subfolder of ``PARAM_DIR`` that holds OpenFold3's checkpoint.
OPENFOLD3_DIRNAME = "openfold3"
#: OpenFold3 0.5's default checkpoint (``openfold3.entry_points.parameters``).
DEFAULT_CHECKPOINT_NAME = "of3-ob-2025-06-30-174k.pt"
#: The public bucket OpenFold3's ``setup_openfold`` downloads it from, over HTTPS.
DEFAULT_CHECKPOINT_URL = (
    f"https://openfold3-data.s3.amazonaws.com/openfold3-parameters/{DEFAULT_CHECKPOINT_NAME}"
)
TEST_CHECKPOINT_NAME = "of3-test-weights.pt"
TEST_WEIGHTS_MARKER = "TEST_WEIGHTS.json"

#: Always applied: OpenFold3's inference preset, and no Triton kernels off a CUDA GPU (the
#: engine turns them back on where Triton runs; on a CPU they raise).
CPU_MODEL_UPDATE: dict[str, Any] = {
    "settings": {"memory": {"eval": {"use_triton_triangle_kernels": False}}},
}

#: The reduced configuration test weights are made for: one block per stack, four diffusion
#: steps, one sample, official widths (so every key and per-block shape is the real one).
#: It runs the real OpenFold3 code on a CPU in well under a minute for ~60 residues. The
#: diffusion starts from 64 Å of noise instead of 2,560 Å: four steps of a random denoiser
#: cannot contract the full-scale start, and kilometre-wide models compare to nothing.
TEST_MODEL_UPDATE: dict[str, Any] = {
    "architecture": {
        "noise_schedule": {"s_max": 4.0},
        "shared": {"diffusion": {"no_full_rollout_samples": 1, "no_full_rollout_steps": 4}},
        "input_embedder": {"atom_attn_enc": {"no_blocks": 1}},
        "template": {"template_pair_stack": {"no_blocks": 1}},
        "msa": {"msa_module": {"no_blocks": 1}},
        "pairformer": {"no_blocks": 1},
        "diffusion_module": {
            "atom_attn_enc": {"no_blocks": 1},
            "diffusion_transformer": {"no_blocks": 1},
            "atom_attn_dec": {"no_blocks": 1},
        },
        "heads": {"pairformer_embedding": {"pairformer": {"no_blocks": 1}}},
    }
}


def checkpoint_dir(param_dir: Path) -> Path:
    return param_dir / OPENFOLD3_DIRNAME


def is_test_checkpoint(param_dir: Path) -> bool:
    return (checkpoint_dir(param_dir) / TEST_WEIGHTS_MARKER).is_file()


def installed_checkpoint(param_dir: Path) -> Path | None:
    """The checkpoint in ``PARAM_DIR/openfold3``: test weights when marked so, else the
    published one; None when neither is there."""
    folder = checkpoint_dir(param_dir)
    name = TEST_CHECKPOINT_NAME if is_test_checkpoint(param_dir) else DEFAULT_CHECKPOINT_NAME
    path = folder / name
    return path if path.is_file() else None


def test_model_update(param_dir: Path) -> dict[str, Any]:
    """The configuration test weights were made for, as their marker records it: the reduced
    one (:data:`TEST_MODEL_UPDATE`), or ``{}`` for full-size random weights (benchmarks)."""
    marker = json.loads((checkpoint_dir(param_dir) / TEST_WEIGHTS_MARKER).read_text())
    update = marker.get("model_update", TEST_MODEL_UPDATE)
    return update if isinstance(update, dict) else TEST_MODEL_UPDATE


def checkpoint_fingerprint(param_dir: Path) -> str:
    """A short hash naming the checkpoint installed in ``PARAM_DIR/openfold3`` (no weight file
    is read: its ``SHA256SUMS``, or the test marker and the file's size)."""
    return folder_fingerprint(checkpoint_dir(param_dir), "*.pt")

"""Generated test weights: the official keys and shapes, loadable by ColabFold, marked as fake."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from foldserve.fold import weights
from foldserve.fold.network import evoformer_blocks
from tests.cli_runner import foldserve
from tests.conftest import TEST_WEIGHT_BLOCKS

TRIANGLE = (
    "alphafold/alphafold_iteration/evoformer/evoformer_iteration/triangle_multiplication_outgoing"
)
TEMPLATE = "alphafold/alphafold_iteration/evoformer/template_embedding"


def keys_and_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    with np.load(path) as archive:
        return {key: archive[key].shape for key in archive.files}


def test_keys_follow_deepmind_files(test_params: Path) -> None:
    files = {n: keys_and_shapes(weights.model_param_file(test_params, n)) for n in (1, 2, 3, 4, 5)}
    # Models 1 and 2 were trained with templates; 3, 4 and 5 were not.
    assert files[1] == files[2] and files[3] == files[4] == files[5]
    assert any(key.startswith(TEMPLATE) for key in files[1])
    assert not any(key.startswith(TEMPLATE) for key in files[3])
    assert set(files[3]) < set(files[1])
    model_3 = files[3]
    assert all(key.count("//") == 1 for key in model_3)
    # Published files keep the triangle projections unfused.
    assert model_3[f"{TRIANGLE}/left_projection//weights"] == (TEST_WEIGHT_BLOCKS, 128, 128)
    assert f"{TRIANGLE}/projection//weights" not in model_3
    assert model_3[
        "alphafold/alphafold_iteration/predicted_aligned_error_head/logits//weights"
    ] == (
        128,
        64,
    )
    assert evoformer_blocks(weights.model_param_file(test_params, 3)) == TEST_WEIGHT_BLOCKS


def test_colabfold_loads_them_and_values_are_sane(test_params: Path) -> None:
    from colabfold.alphafold.models import get_model_haiku_params

    params = get_model_haiku_params(str(test_params), "alphafold2_ptm", "1", to_jnp=False)
    assert f"{TRIANGLE}/projection" in params  # fused on load, as for the real files
    values = np.concatenate([np.ravel(v) for leaves in params.values() for v in leaves.values()])
    assert np.isfinite(values).all() and 0.01 < values.std() < 1.0


def test_marked_as_test_weights_and_reported_by_check(test_params: Path) -> None:
    marker = json.loads((test_params / "params" / weights.TEST_WEIGHTS_MARKER).read_text())
    assert marker["test_weights"] is True and marker["evoformer_blocks"] == TEST_WEIGHT_BLOCKS
    assert weights.is_test_weights(test_params)
    report = weights.check(test_params).to_json()
    assert report["test_weights"]


def test_make_test_command_is_deterministic(tmp_path: Path) -> None:
    for name in ("a", "b"):
        result = foldserve("weights", "make-test", "--out", str(tmp_path / name), "--blocks", "1")
        assert result.exit_code == 0, result.stderr
        assert "random" in result.stderr
    first = weights.model_param_file(tmp_path / "a", 4).read_bytes()
    assert first == weights.model_param_file(tmp_path / "b", 4).read_bytes()
    with (
        np.load(weights.model_param_file(tmp_path / "a", 3)) as m3,
        np.load(weights.model_param_file(tmp_path / "a", 4)) as m4,
    ):
        key = m3.files[0]
        assert not np.array_equal(m3[key], m4[key])  # five different models
    bad = foldserve("weights", "make-test", "--out", str(tmp_path / "c"), "--blocks", "0")
    assert bad.exit_code == 2 and "--blocks" in bad.stderr

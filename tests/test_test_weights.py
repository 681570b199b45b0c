"""Generated test weights: the official keys and shapes, loadable by ColabFold, marked as fake."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from foldserve.fold import weights
from foldserve.fold.alphafold2.network import evoformer_blocks
from foldserve.fold.alphafold2.test_weights import multimer_toy_batch
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


# AlphaFold2-multimer v3

MULTIMER_BLOCKS = 1


@pytest.fixture(scope="module")
def multimer_params(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("multimer")
    result = foldserve(
        "weights", "make-test", "--out", str(out), "--blocks", str(MULTIMER_BLOCKS), "--multimer"
    )
    assert result.exit_code == 0, result.stderr
    assert "wrote 10 test-weight files" in result.stderr
    return out


def haiku_multimer_shapes(model_name: str) -> dict[str, tuple[int, ...]]:
    """What the multimer Haiku model itself initialises, outside foldserve's tracing."""
    import haiku as hk
    import jax
    from alphafold.model import config, modules_multimer

    cfg = config.model_config(model_name)
    cfg.model.embeddings_and_evoformer.evoformer_num_block = MULTIMER_BLOCKS
    cfg.model.embeddings_and_evoformer.num_msa = 2
    cfg.model.embeddings_and_evoformer.num_extra_msa = 2
    cfg.model.calc_extended_ptm = False  # set by ColabFold's RunModel, which is bypassed here

    def forward(batch: dict[str, object]) -> object:
        return modules_multimer.AlphaFold(cfg.model)(batch, is_training=False)

    tree = jax.eval_shape(hk.transform(forward).init, jax.random.PRNGKey(0), multimer_toy_batch())
    return {
        f"{scope}//{name}": leaf.shape
        for scope, leaves in tree.items()
        for name, leaf in leaves.items()
    }


def test_multimer_keys_are_what_the_multimer_model_initialises(multimer_params: Path) -> None:
    files = {
        n: keys_and_shapes(weights.multimer_param_file(multimer_params, n)) for n in (1, 2, 3, 4, 5)
    }
    assert files[1] == files[2] == files[3] == files[4] == files[5]
    # Models 4 and 5 have their own config (fewer extra-MSA rows): the parameters are the same.
    assert files[5] == haiku_multimer_shapes("model_5_multimer_v3")
    # v3 was published with fused triangle projections; templates are used by all five.
    assert files[1][f"{TRIANGLE}/projection//weights"] == (MULTIMER_BLOCKS, 128, 256)
    assert f"{TRIANGLE}/left_projection//weights" not in files[1]
    assert any(key.startswith(TEMPLATE) for key in files[1])


@pytest.mark.parametrize("number", [1, 5])
def test_colabfold_loads_the_multimer_files(multimer_params: Path, number: int) -> None:
    from colabfold.alphafold.models import get_model_haiku_params

    params = get_model_haiku_params(
        str(multimer_params), "alphafold2_multimer_v3", str(number), to_jnp=False
    )
    loaded = {
        f"{scope}//{name}": v.shape
        for scope, leaves in params.items()
        for name, v in leaves.items()
    }
    assert loaded == keys_and_shapes(weights.multimer_param_file(multimer_params, number))
    values = np.concatenate([np.ravel(v) for leaves in params.values() for v in leaves.values()])
    assert np.isfinite(values).all() and 0.01 < values.std() < 1.0
    with (
        np.load(weights.multimer_param_file(multimer_params, number)) as multimer,
        np.load(weights.model_param_file(multimer_params, number)) as monomer,
    ):
        key = "alphafold/alphafold_iteration/structure_module/initial_projection//weights"
        assert not np.array_equal(multimer[key], monomer[key])  # drawn apart


def test_multimer_marked_and_listed_by_check(multimer_params: Path) -> None:
    marker = json.loads((multimer_params / "params" / weights.TEST_WEIGHTS_MARKER).read_text())
    assert marker["multimer_models"] == [1, 2, 3, 4, 5]
    report = weights.check(multimer_params)
    assert report.ok and report.multimer_ok
    assert [m.path for m in report.multimer_models] == [
        weights.multimer_param_file(multimer_params, n) for n in (1, 2, 3, 4, 5)
    ]
    listed = foldserve("weights", "check", "--params-dir", str(multimer_params))
    assert listed.exit_code == 0, listed.stderr
    assert "params_model_5_multimer_v3.npz" in listed.stdout
    as_json = json.loads(
        foldserve("weights", "check", "--params-dir", str(multimer_params), "--json").stdout
    )
    assert len(as_json["multimer_models"]) == 5 and as_json["multimer_ok"] is True


def test_make_test_without_multimer_writes_no_multimer_files(tmp_path: Path) -> None:
    made = foldserve("weights", "make-test", "--out", str(tmp_path), "--blocks", "1")
    assert made.exit_code == 0, made.stderr
    assert not list((tmp_path / "params").glob("*multimer*"))
    marker = json.loads((tmp_path / "params" / weights.TEST_WEIGHTS_MARKER).read_text())
    assert "multimer_models" not in marker
    report = weights.check(tmp_path)
    assert report.multimer_models == () and not report.multimer_ok
    assert "multimer" not in json.dumps(report.to_json()["models"])

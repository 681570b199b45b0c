"""``load_engine`` keeps the engines it loaded warm for the process: the same weights asked for
again give the same engine (weights on the device, shapes compiled), other weights or another
precision a new one, and only the last few are kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from foldserve.errors import InputError
from foldserve.fold import engine as engines
from foldserve.fold.alphafold2.predictor import Predictor
from foldserve.fold.engine import load_engine
from foldserve.fold.results import PredictOptions
from foldserve.msa import read
from tests.conftest import data

pytestmark = pytest.mark.timeout(300)


def linked_weights(source: Path, target: Path, *, without: tuple[str, ...] = ()) -> Path:
    """A weights folder of links to ``source``'s files (no copy), less ``without``."""
    (target / "params").mkdir(parents=True)
    for file in (source / "params").iterdir():
        if file.name not in without:
            (target / "params" / file.name).symlink_to(file)
    return target


def test_the_same_weights_give_the_warm_engine_that_predicted_before(test_params: Path) -> None:
    first = load_engine("alphafold2", test_params)
    assert isinstance(first, Predictor)
    msa = read(data("msa/a3m/colabfold_Q60262_uniref_env_small.a3m"))
    options = PredictOptions(models=(1,), num_recycles=0)
    first.predict(msa, options)
    compiled = first.compile_count

    again = load_engine("alphafold2", str(test_params))  # a str names the same folder
    assert again is first
    again.predict(msa, options)
    assert first.compile_count == compiled  # nothing compiled again


def test_other_weights_or_precision_load_a_new_engine(test_params: Path, tmp_path: Path) -> None:
    warm = load_engine("alphafold2", test_params)
    assert load_engine("alphafold2", test_params, precision="float32") is not warm

    folder = linked_weights(test_params, tmp_path / "weights")
    linked = load_engine("alphafold2", folder)
    assert linked is not warm and load_engine("alphafold2", folder) is linked
    # Weights changed in place (a model removed): the folder's fingerprint changes with them.
    (folder / "params" / "params_model_5_ptm.npz").unlink()
    changed = load_engine("alphafold2", folder)
    assert changed is not linked and isinstance(changed, Predictor)
    assert 5 not in changed.available_models


def test_only_the_last_engines_asked_for_are_kept(test_params: Path, tmp_path: Path) -> None:
    folders = [linked_weights(test_params, tmp_path / f"w{i}") for i in range(engines.WARM_ENGINES)]
    kept = [load_engine("alphafold2", folder) for folder in folders]
    oldest, *rest = kept
    load_engine("alphafold2", folders[0])  # asked for again: now the most recent
    load_engine("alphafold2", test_params)  # pushes out the least recent, folders[1]
    assert load_engine("alphafold2", folders[0]) is oldest
    assert load_engine("alphafold2", folders[1]) is not rest[0]


def test_weights_that_fail_to_load_are_not_kept(test_params: Path, tmp_path: Path) -> None:
    folder = linked_weights(test_params, tmp_path / "weights", without=("params_model_3_ptm.npz",))
    with pytest.raises(InputError, match="no AlphaFold2 parameters"):
        load_engine("alphafold2", folder)
    (folder / "params" / "params_model_3_ptm.npz").symlink_to(
        test_params / "params" / "params_model_3_ptm.npz"
    )
    assert isinstance(load_engine("alphafold2", folder), Predictor)

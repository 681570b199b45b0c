"""The AlphaFold2 engine: same coordinates as ColabFold, padding that changes nothing, warmth."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from foldserve.errors import Cancelled, InputError, TooLarge
from foldserve.fold.alphafold2 import shapes
from foldserve.fold.alphafold2.features import raw_features
from foldserve.fold.alphafold2.predictor import Predictor
from foldserve.fold.alphafold2.shape_policy import COARSE_LADDER
from foldserve.fold.outputs import write_best_model, write_prediction
from foldserve.fold.results import PredictOptions, ProgressEvent
from foldserve.msa.reading import read
from tests.colabfold_reference import CA, TOLERANCE, colabfold_ca
from tests.conftest import TEST_WEIGHT_BLOCKS, data

SMALL = "msa/a3m/colabfold_Q60262_uniref_env_small.a3m"  # 62 residues, 6 rows
DEEP = "msa/a3m/openfold_short_bfd_uniclust_hits.a3m"  # 73 residues, 1024 rows: extra MSA used


@pytest.mark.parametrize("relative", [SMALL, DEEP])
def test_features_equal_colabfolds(relative: str) -> None:
    """Our parsed MSA gives the arrays ColabFold's ``build_monomer_feature`` builds from the
    A3M text (which ``fold/alphafold2/features.py`` says), array for array."""
    from colabfold.batch import build_monomer_feature, mk_mock_template

    msa = read(data(relative))
    sequence = msa.query_sequence
    ours = raw_features(msa)
    theirs = build_monomer_feature(sequence, data(relative).read_text(), mk_mock_template(sequence))
    # Species, read from row names, only pair the chains of a complex: a monomer uses none.
    compared = set(theirs) - {"msa_species_identifiers"}
    assert compared <= set(ours)
    assert ours["msa"].shape == (len(msa), msa.query_length)
    for key in sorted(compared):
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)


@pytest.fixture(scope="module")
def exact_predictor(test_params: Path) -> Iterator[Predictor]:
    yield Predictor(test_params, bucketing=False)


@pytest.fixture(scope="module")
def ladder_predictor(test_params: Path) -> Iterator[Predictor]:
    """Always padded to the coarse ladder, whatever this device's costs (and without the
    compilation cache, whose exact shapes it would load)."""
    yield Predictor(test_params, shape_costs=COARSE_LADDER, compile_cache=False)


@pytest.mark.timeout(900)  # two full ColabFold runs: 80 s on 2 idle cores, far more when busy
@pytest.mark.parametrize(("relative", "model"), [(SMALL, 1), (DEEP, 4)])
def test_coordinates_match_colabfold_run(
    relative: str,
    model: int,
    test_params: Path,
    ladder_predictor: Predictor,
    exact_predictor: Predictor,
    tmp_path: Path,
) -> None:
    reference = colabfold_ca(test_params, data(relative), tmp_path, model, recycles=1)
    msa = read(data(relative))
    options = PredictOptions(models=(model,), num_recycles=1)
    padded = ladder_predictor.predict(msa, options)
    exact = exact_predictor.predict(msa, options)
    assert padded.shape.length > msa.query_length  # really padded
    assert exact.shape.length == msa.query_length
    for prediction in (exact, padded):
        ours = prediction.best.positions[:, CA]
        assert ours.shape == reference.shape
        assert np.abs(ours).max() > 1.0  # a folded chain, not atoms piled at the origin
        deviation = np.linalg.norm(ours - reference, axis=1)
        assert deviation.max() < TOLERANCE, f"CA deviates by {deviation.max():.3f} Å"


@pytest.mark.timeout(600)
def test_padding_and_chunking_change_no_coordinate(
    test_params: Path, exact_predictor: Predictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exact shape with AlphaFold's chunked layers run whole (a short job on a CPU) against
    the coarse ladder's padded shape (70 residues at 96) run chunked: the same structure."""
    msa = read(data("msa/a3m/openfold_2q2k_A_bfd_uniclust_hits.a3m"))
    options = PredictOptions(models=(2,), num_recycles=2, seed=3)
    assert exact_predictor.shape_choice(msa, options).chunk is None
    exact = exact_predictor.predict(msa, options).best
    monkeypatch.setattr(shapes, "WHOLE_LAYERS_BYTES", 0)  # as for a long job
    ladder_predictor = Predictor(test_params, shape_costs=COARSE_LADDER, compile_cache=False)
    assert ladder_predictor.shape_choice(msa, options).chunk == shapes.ALPHAFOLD_CHUNK
    padded = ladder_predictor.predict(msa, options).best
    assert ladder_predictor.shape_for(msa) != exact_predictor.shape_for(msa)
    deviation = np.linalg.norm(padded.positions[:, CA] - exact.positions[:, CA], axis=1)
    assert deviation.max() < TOLERANCE
    assert abs(padded.mean_plddt - exact.mean_plddt) < 0.1
    assert padded.pae.shape == exact.pae.shape == (msa.query_length, msa.query_length)


@pytest.mark.timeout(600)
def test_a_stream_of_lengths_compiles_once_per_bucket(test_params: Path) -> None:
    predictor = Predictor(test_params, shape_costs=COARSE_LADDER, compile_cache=False)
    options = PredictOptions(models=(1, 2, 3, 4, 5), num_recycles=0)
    small = read(data(SMALL))  # 62 residues → bucket 64
    tiny = read(data("msa/a3m/openfold_2q2k_A_bfd_uniclust_hits.a3m"))  # 70 → bucket 96
    first = predictor.predict(small, options)
    assert predictor.compile_count == 1  # five models, one compiled function
    predictor.predict(small, PredictOptions(models=(3,), num_recycles=2, seed=7))
    assert predictor.compile_count == 1
    predictor.predict(tiny, options)
    assert predictor.compile_count == 2
    again = predictor.predict(small, options)
    assert predictor.compile_count == 2
    assert [r.name for r in again.ranked] == [r.name for r in first.ranked]
    assert np.array_equal(again.best.positions, first.best.positions)


def test_models_differ_and_are_ranked(predictor: Predictor) -> None:
    msa = read(data(SMALL))
    by_ptm = predictor.predict(msa, PredictOptions(models=(1, 3, 5), num_recycles=0, rank_by="ptm"))
    ptms = [run.ptm for run in by_ptm.ranked]
    assert ptms == sorted(ptms, reverse=True)
    assert len({run.model for run in by_ptm.ranked}) == 3
    assert not np.allclose(by_ptm.ranked[0].positions, by_ptm.ranked[1].positions)
    seeds = predictor.predict(msa, PredictOptions(models=(1,), num_recycles=0, num_seeds=2))
    assert sorted(run.name for run in seeds.ranked) == ["model_1_ptm_pred_0", "model_1_ptm_pred_1"]


def test_progress_reports_every_recycle_and_early_stop(predictor: Predictor) -> None:
    events: list[ProgressEvent] = []
    msa = read(data(SMALL))
    prediction = predictor.predict(
        msa, PredictOptions(models=(1, 2), num_recycles=3), progress=events.append
    )
    recycles = [(e.model, e.recycle) for e in events if e.stage == "predict"]
    assert recycles == [(f"model_{m}_ptm", r) for m in (1, 2) for r in range(4)]
    assert events[-1].stage == "done"
    assert all(run.recycles == 3 for run in prediction.ranked)
    stopped = predictor.predict(
        msa, PredictOptions(models=(1,), num_recycles=6, recycle_early_stop_tolerance=1e6)
    )
    assert stopped.best.recycles == 1  # the first recycle that can compare positions


def test_cancel_stops_at_a_recycle_boundary(predictor: Predictor) -> None:
    seen: list[ProgressEvent] = []
    with pytest.raises(Cancelled):
        predictor.predict(
            read(data(SMALL)),
            PredictOptions(models=(1, 2), num_recycles=3),
            progress=seen.append,
            cancel=lambda: any(e.recycle == 1 for e in seen),
        )
    assert max(e.recycle or 0 for e in seen) == 1


def test_engine_reads_evoformer_depth_from_the_files(predictor: Predictor) -> None:
    assert predictor.evoformer_blocks == TEST_WEIGHT_BLOCKS
    assert predictor.test_weights


def test_a_job_too_large_for_the_device_is_refused_first(test_params: Path) -> None:
    small_device = Predictor(test_params, memory_limit_bytes=1200 << 20)
    deep = read(data("msa/a3m/colabfold_4OT_uniref_env.a3m"))
    with pytest.raises(TooLarge) as refused:
        small_device.predict(deep, PredictOptions(models=(1,), num_recycles=0))
    message = refused.value.one_line()
    assert "GiB" in message and "7797 MSA rows" in message and "--max-seqs" in message
    assert small_device.compile_count == 0


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"models": (6,)}, "models"),
        ({"models": ()}, "models"),
        ({"num_recycles": -1}, "num_recycles"),
        ({"model_type": "monomer_casp14"}, "model_type"),
        ({"rank_by": "confidence"}, "rank_by"),
        ({"recycle_early_stop_tolerance": -0.5}, "recycle_early_stop_tolerance"),
    ],
)
def test_bad_options_name_the_field(options: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as bad:
        PredictOptions(**options)  # type: ignore[arg-type]
    assert bad.value.where == field
    assert bad.value.fix


def test_missing_weights_say_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(InputError) as missing:
        Predictor(tmp_path)
    assert "foldserve weights fetch" in missing.value.one_line()


@pytest.mark.parametrize("precision", ["fp16", "float16", "BFLOAT16", ""])
def test_an_unknown_precision_is_refused_not_ignored(test_params: Path, precision: str) -> None:
    with pytest.raises(InputError) as refused:
        Predictor(test_params, precision=precision)  # type: ignore[arg-type]
    assert refused.value.where == "precision"
    assert refused.value.fix == "use auto, bfloat16 or float32"
    assert repr(precision) in refused.value.problem


def test_write_prediction_writes_the_directory_and_the_best_model(
    predictor: Predictor, tmp_path: Path
) -> None:
    out, best = tmp_path / "run", tmp_path / "models" / "best.pdb"
    prediction = predictor.predict(read(data(SMALL)), PredictOptions(models=(1, 2), num_recycles=0))
    write_prediction(prediction, out)
    best.parent.mkdir()
    write_best_model(out, best)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [
            *(
                f"{kind}_{run.name}.{ext}"
                for run in prediction.ranked
                for kind, ext in (("unrelaxed", "pdb"), ("pae", "json"), ("confidence", "json"))
            ),
            *(f"ranked_{rank}.{ext}" for rank in (0, 1) for ext in ("pdb", "cif")),
            "ranking_debug.json",
            "timings.json",
            "scores.json",
            "msa.a3m",
            "config.json",
        ]
    )  # and no temporary file left beside them
    assert best.read_bytes() == (out / "ranked_0.pdb").read_bytes()
    assert list(best.parent.iterdir()) == [best]
    ranking = json.loads((out / "ranking_debug.json").read_text())
    assert ranking["order"][0] == prediction.best.name

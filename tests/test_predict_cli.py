"""``foldserve predict`` as a user runs it: the run_alphafold directory, the best model, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from foldserve.fold.alphafold2.predictor import Predictor
from foldserve.fold.results import PredictOptions
from foldserve.msa.reading import read
from tests.cli_runner import Ran, foldserve
from tests.conftest import data

MSA = "msa/fasta_aligned/prody_msa_Cys_knot_PF00007.fasta"


def predict(msa: Path, output: Path, params: Path, *extra: str) -> Ran:
    """``foldserve predict --msa MSA --output OUTPUT --params-dir PARAMS EXTRA...``."""
    return foldserve(
        "predict", "--msa", str(msa), "--output", str(output), "--params-dir", str(params), *extra
    )


@pytest.fixture(scope="module")
def prediction_dir(test_params: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("predict")
    result = predict(
        data(MSA),
        out / "best.pdb",
        test_params,
        *("--out-dir", str(out / "run"), "--models", "2,5", "--num-recycles", "1"),
    )
    assert result.exit_code == 0, result.stderr
    stderr = result.stderr
    assert "TEST WEIGHTS" in stderr  # the loud warning
    # Off a terminal progress is one line per step: 2 models x (the first pass + 1 recycle).
    steps = [line for line in stderr.splitlines() if " recycle " in line and "pLDDT" in line]
    assert len(steps) == 4
    assert any(line.endswith("] done") for line in stderr.splitlines())
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in stderr.splitlines()]
    ranking = {row[1]: row for row in rows if len(row) == 7}
    assert set(ranking) == {"model_2_ptm", "model_5_ptm"}
    assert ranking["model_2_ptm"][5] == ranking["model_5_ptm"][5] == "1"  # recycles
    return out


def test_run_alphafold_layout(prediction_dir: Path) -> None:
    run = prediction_dir / "run"
    names = {p.name for p in run.iterdir()}
    for name in ("model_2_ptm_pred_0", "model_5_ptm_pred_0"):
        assert {f"unrelaxed_{name}.pdb", f"pae_{name}.json", f"confidence_{name}.json"} <= names
    expected = {"ranked_0.pdb", "ranked_1.pdb", "ranked_0.cif", "ranked_1.cif"}
    expected |= {"ranking_debug.json", "timings.json", "scores.json", "msa.a3m", "config.json"}
    assert expected <= names
    assert not any(name.endswith(".partial") for name in names)
    assert (prediction_dir / "best.pdb").read_text() == (run / "ranked_0.pdb").read_text()


def test_every_output_says_test_weights(prediction_dir: Path) -> None:
    run = prediction_dir / "run"
    for path in run.glob("*.json"):
        document = json.loads(path.read_text())
        records = document if isinstance(document, list) else [document]
        assert all(record["test_weights"] is True for record in records), path.name
    for path in run.glob("*.pdb"):
        assert path.read_text().startswith("REMARK   1 MADE WITH RANDOM TEST WEIGHTS"), path.name
    for path in run.glob("*.cif"):
        assert "RANDOM TEST WEIGHTS" in path.read_text().splitlines()[1]


def test_ranking_and_confidences_agree(prediction_dir: Path) -> None:
    run = prediction_dir / "run"
    ranking = json.loads((run / "ranking_debug.json").read_text())
    order = ranking["order"]
    assert [ranking["plddts"][n] for n in order] == sorted(ranking["plddts"].values(), reverse=True)
    scores = json.loads((run / "scores.json").read_text())
    assert [s["rank"] for s in scores] == [0, 1]
    assert len((run / "scores.json").read_text().strip().splitlines()) == 4  # [, one per model, ]
    best = order[0]
    confidence = json.loads((run / f"confidence_{best}.json").read_text())
    length = read(data(MSA)).query_length
    assert confidence["residueNumber"] == list(range(1, length + 1))
    assert set(confidence["confidenceCategory"]) <= {"H", "M", "L", "D"}
    (pae,) = json.loads((run / f"pae_{best}.json").read_text())
    assert np.array(pae["predicted_aligned_error"]).shape == (length, length)
    assert pae["max_predicted_aligned_error"] > 0
    # pLDDT in the B-factor column of every atom, per residue as in the confidence file.
    b_factors: dict[int, float] = {}
    for line in (run / "ranked_0.pdb").read_text().splitlines():
        if line.startswith("ATOM"):
            b_factors.setdefault(int(line[22:26]), float(line[60:66]))
    assert len(b_factors) == length
    assert np.allclose(list(b_factors.values()), confidence["confidenceScore"], atol=0.011)


def test_the_msa_used_is_kept(prediction_dir: Path) -> None:
    used = read(prediction_dir / "run" / "msa.a3m")
    original = read(data(MSA))
    assert used.sequences == original.sequences


def test_cif_is_readable_by_gemmi_free_parsers(prediction_dir: Path) -> None:
    from alphafold.common import protein

    text = (prediction_dir / "run" / "ranked_0.cif").read_text()
    model = protein.from_mmcif_string(text)
    pdb = protein.from_pdb_string((prediction_dir / "run" / "ranked_0.pdb").read_text())
    assert np.allclose(model.atom_positions, pdb.atom_positions, atol=1e-3)


def test_python_api_gives_the_cli_result(prediction_dir: Path, predictor: Predictor) -> None:
    prediction = predictor.predict(read(data(MSA)), PredictOptions(models=(2, 5), num_recycles=1))
    cli_ca = [
        [float(line[30:38]), float(line[38:46]), float(line[46:54])]
        for line in (prediction_dir / "best.pdb").read_text().splitlines()
        if line.startswith("ATOM") and line[12:16] == " CA "
    ]
    assert np.allclose(prediction.best.positions[:, 1], cli_ca, atol=1e-3)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--templates", "nowhere.cif"], "error: nowhere.cif: no such template file"),
        (["--model-type", "monomer_casp14"], "error: --model-type: the monomer_casp14 preset"),
        (["--models", "1,7"], "error: --models: no AlphaFold2 model 7"),
        (["--models", "1,x"], "error: --models: cannot read model list"),
        (["--rank-by", "confidence"], "--rank-by"),
        (["--num-recycles", "-2"], "--num-recycles"),
    ],
)
def test_bad_flags_get_one_line(
    extra: list[str], expected: str, test_params: Path, tmp_path: Path
) -> None:
    result = predict(data(MSA), tmp_path / "x.pdb", test_params, *extra)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in lines[0]
    assert not (tmp_path / "x.pdb").exists()


@pytest.mark.timeout(60)
def test_bad_msa_and_missing_weights(test_params: Path, tmp_path: Path) -> None:
    unaligned = data("sequences/pfam_PF02518_HATPase_c_seed_unaligned.fasta")
    bad = predict(unaligned, tmp_path / "x.pdb", test_params)
    assert bad.exit_code == 2 and "pfam_PF02518_HATPase_c_seed_unaligned.fasta:" in bad.stderr
    no_weights = predict(data(MSA), tmp_path / "x.pdb", tmp_path / "empty")
    assert no_weights.exit_code == 2
    assert "foldserve weights fetch" in no_weights.stderr

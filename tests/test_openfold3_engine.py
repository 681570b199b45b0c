"""The OpenFold3 engine: the real openfold3 code with random test weights on the CPU.

One engine is loaded for the whole file and kept warm, as a worker keeps it; predictions run
with no recycling (one pass through the trunk) to keep the file around a minute or two.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from foldserve.errors import Cancelled, InputError
from foldserve.fold.engine import Engines, load_engine
from foldserve.fold.openfold3.engine import OpenFold3Engine
from foldserve.fold.openfold3.query import MAIN_MSA_NAME, PAIRED_MSA_NAME, write_query
from foldserve.fold.outputs import write_prediction
from foldserve.fold.results import PredictOptions, TemplateSource
from foldserve.msa import reading as msa_io
from foldserve.msa.pairing import ChainMsa, pair_chains
from tests.conftest import data

K2Q2K = "msa/a3m/openfold_2q2k_A_bfd_uniclust_hits.a3m"
Q60262 = "msa/a3m/colabfold_Q60262_uniref_env_small.a3m"
FAST = PredictOptions(num_recycles=0, num_diffusion_samples=2, seed=7)

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def engine(openfold3_params: Path) -> OpenFold3Engine:
    loaded = load_engine("openfold3", openfold3_params)
    assert isinstance(loaded, OpenFold3Engine)
    return loaded


def test_a_monomer_from_the_users_a3m(engine: OpenFold3Engine, tmp_path: Path) -> None:
    msa = msa_io.read(data(K2Q2K))
    events: list[str] = []
    prediction = engine.predict(msa, FAST, progress=lambda event: events.append(event.stage))

    assert prediction.engine.name == "openfold3" and prediction.test_weights
    # The model saw every row of the user's MSA (OpenFold3 adds the query as a row of its own).
    assert prediction.shape.length == msa.query_length == 70
    assert prediction.shape.clusters == len(msa) + 1
    assert [run.name for run in prediction.ranked] == sorted(
        (run.name for run in prediction.ranked),
        key=lambda name: -next(r for r in prediction.ranked if r.name == name).score("engine"),
    )
    assert {run.name for run in prediction.ranked} == {
        "openfold3_sample_1_pred_7",
        "openfold3_sample_2_pred_7",
    }
    best = prediction.best
    assert best.positions.shape == (70, 37, 3) and best.plddt.shape == (70,)
    assert best.pae.shape == (70, 70) and best.iptm is None and best.engine_score is not None
    # Every residue's backbone is there; pLDDT is on AlphaFold's 0-100 scale.
    assert best.atom_mask[:, [0, 1, 2, 4]].all() and 0 < best.mean_plddt < 100  # N CA C O
    assert events[0] == "features" and "predict" in events and events[-1] == "done"

    files = write_prediction(prediction, tmp_path)
    assert {"ranked_0.pdb", "ranked_1.cif", "scores.json", "ranking_debug.json", "msa.a3m"} <= set(
        files
    )
    pae = json.loads((tmp_path / f"pae_{best.name}.json").read_text())[0]
    assert pae["engine"] == "openfold3" and len(pae["predicted_aligned_error"]) == 70
    debug = json.loads((tmp_path / "ranking_debug.json").read_text())
    assert debug["engine"] == "openfold3" and debug["order"][0] == best.name
    assert debug["ranking_scores"][best.name] == pytest.approx(best.engine_score, abs=1e-4)
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["engine"], config["network"]) == ("openfold3", "openfold3")
    pdb = (tmp_path / "ranked_0.pdb").read_text()
    assert pdb.count(" CA ") == 70


def test_a_two_chain_complex(engine: OpenFold3Engine, tmp_path: Path) -> None:
    pairing = pair_chains([ChainMsa(msa_io.read(data(Q60262))), ChainMsa(msa_io.read(data(K2Q2K)))])
    prediction = engine.predict(pairing.msa, FAST)

    assert [c.id for c in prediction.chain_list] == ["A", "B"]
    assert prediction.shape.length == 62 + 70
    best = prediction.best
    assert best.positions.shape == (132, 37, 3) and best.pae.shape == (132, 132)
    assert best.iptm is not None and 0 <= best.iptm <= 1
    write_prediction(prediction, tmp_path)
    chains = {
        line[21]
        for line in (tmp_path / "ranked_0.pdb").read_text().splitlines()
        if line.startswith("ATOM")
    }
    assert chains == {"A", "B"}


def test_the_msa_files_carry_the_names_openfold3_reads(tmp_path: Path) -> None:
    pairing = pair_chains(
        [ChainMsa(msa_io.read(data(Q60262)), 2), ChainMsa(msa_io.read(data(K2Q2K)))]
    )
    query = write_query(pairing.msa, tmp_path)

    chains = query.query.chains
    assert [c.chain_ids for c in chains] == [["A", "B"], ["C"]]
    for chain, folder in zip(chains, query.msa_dirs, strict=True):
        assert (folder / MAIN_MSA_NAME).read_text().startswith(">")
        assert [p.name for p in chain.paired_msa_file_paths[0].iterdir()] == [PAIRED_MSA_NAME]
    # The user's rows reach OpenFold3 as given: chain 1's main MSA holds each of its hits.
    main = (query.msa_dirs[0] / MAIN_MSA_NAME).read_text()
    hits = [name for name in msa_io.read(data(Q60262)).names if name != "101"]
    assert all(f">{name}" in main for name in hits)


def test_the_engine_stays_warm_across_jobs(
    engine: OpenFold3Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import openfold3.core.utils.checkpoint_loading_utils as loading

    def no_reload(*_: object, **__: object) -> None:
        raise AssertionError("the checkpoint was read again")

    monkeypatch.setattr(loading, "load_checkpoint", no_reload)
    module = engine._module
    msa = msa_io.read(data(K2Q2K))
    first = engine.predict(msa, FAST)
    second = engine.predict(msa, FAST)
    assert engine._module is module and engine.load_count == 1
    # Same seed, same input: the same structure, as a warm model must give.
    np.testing.assert_allclose(first.best.positions, second.best.positions, atol=1e-3)


def test_cancel_stops_before_the_trunk_and_the_engine_still_works(
    engine: OpenFold3Engine,
) -> None:
    msa = msa_io.read(data(K2Q2K))
    with pytest.raises(Cancelled):
        engine.predict(msa, FAST, cancel=lambda: True)
    assert len(engine.predict(msa, FAST).ranked) == 2


def test_alphafold2_only_choices_are_refused_in_one_line(engine: OpenFold3Engine) -> None:
    msa = msa_io.read(data(K2Q2K))
    with pytest.raises(InputError, match="an AlphaFold2 option") as raised:
        engine.check_input(msa, PredictOptions(model_type="multimer"), where="input.models")
    assert raised.value.where == "input.model_type"
    with pytest.raises(InputError, match="templates"):
        engine.predict(msa, FAST, templates=TemplateSource(files=(data(K2Q2K),)))


def test_missing_weights_say_what_to_fetch(tmp_path: Path) -> None:
    with pytest.raises(InputError) as raised:
        Engines(("openfold3",), tmp_path).get("openfold3")
    assert "weights fetch --engine openfold3" in (raised.value.fix or "")
    assert "no OpenFold3 checkpoint" in str(raised.value)


def test_without_the_extra_the_message_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sys

    # As if openfold3 were not installed: importing it fails.
    monkeypatch.setitem(sys.modules, "openfold3.projects.of3_all_atom.project_entry", None)
    with pytest.raises(InputError) as raised:
        load_engine("openfold3", tmp_path)
    assert "OpenFold3 is not installed" in str(raised.value)
    assert raised.value.fix == "install the extra: pip install 'foldserve[openfold3]'"

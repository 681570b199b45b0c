"""AlphaFold2-multimer: ColabFold's coordinates for a complex, chains, ipTM ranking, templates.

The issue names the 3G5O RelB/RelE complex as the fidelity target; no MSA of it is in
``../shared/testdata``, so the complex is built from two real MSAs there: Q60262 (62 residues,
ColabFold's server answer) and 2Q2K chain A (70 residues, OpenFold's BFD hits), paired the way
``--msa A --msa B`` pairs them and written as ColabFold's complex A3M.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from foldserve.errors import InputError
from foldserve.fold.alphafold2.predictor import Predictor
from foldserve.fold.complex_msa import split_complex
from foldserve.fold.results import PredictOptions
from foldserve.msa.model import Msa
from foldserve.msa.pairing import ChainMsa, pair_chains
from foldserve.msa.reading import read
from foldserve.msa.writing import write_a3m
from tests.colabfold_reference import CA, TOLERANCE, colabfold_ca
from tests.conftest import data

CHAIN_A = "msa/a3m/colabfold_Q60262_uniref_env_small.a3m"  # 62 residues
CHAIN_B = "msa/a3m/openfold_2q2k_A_bfd_uniclust_hits.a3m"  # 70 residues


def heteromer() -> Msa:
    chains = [ChainMsa(read(data(CHAIN_A))), ChainMsa(read(data(CHAIN_B)))]
    return pair_chains(chains).msa


@pytest.mark.timeout(900)  # a ColabFold multimer run and two compiles: minutes on 2 cores
def test_complex_coordinates_match_colabfold_multimer_run(
    test_params: Path, predictor: Predictor, tmp_path: Path
) -> None:
    """Padded to its shape bucket (so equal to the exact shape as well), the complex gives
    ColabFold's coordinates."""
    msa = heteromer()
    a3m = tmp_path / "complex.a3m"
    with a3m.open("w") as out:
        write_a3m(msa, out)
    reference = colabfold_ca(
        test_params, a3m, tmp_path / "colabfold", 1, recycles=1, model_type="alphafold2_multimer_v3"
    )
    options = PredictOptions(models=(1,), num_recycles=1)
    padded = predictor.predict(msa, options)
    assert padded.shape.length > 132  # really padded
    for prediction in (padded,):
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
    # the other metrics read the same runs' scores
    assert [r.score("plddt") for r in prediction.ranked] == [
        r.mean_plddt for r in prediction.ranked
    ]
    assert [r.score("iptm") for r in prediction.ranked] == [r.iptm for r in prediction.ranked]


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
    from foldserve.fold.alphafold2.shapes import multimer_shape

    shape = multimer_shape(132, rows, num_msa, num_extra, bucketing=True)
    assert shape.clusters == padded and shape.length == 160
    exact = multimer_shape(132, rows, num_msa, num_extra, bucketing=False)
    assert exact.clusters == max(rows, num_msa + 4) and exact.length == 132

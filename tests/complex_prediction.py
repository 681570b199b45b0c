"""Predictions of a complex built by hand, from a real structure, without the engine.

Hemoglobin 2HHB (../shared/testdata/structures/pdb/proteincontactmap_2hhb.pdb) has two alpha
chains (A, C: 141 residues) and two beta chains (B, D: 146). Laid out as foldserve lays out a
complex (:func:`foldserve.fold.results.chains_of`: copies of one sequence together), the
prediction's chains A, B are 2HHB's alpha chains A, C and its chains C, D the beta chains B, D.
"""

from __future__ import annotations

import io
from dataclasses import replace
from functools import cache

import numpy as np
from alphafold.common import protein, residue_constants

from foldserve.fold.alphafold2.features import InputShape
from foldserve.fold.results import (
    ChainInfo,
    EngineInfo,
    ModelRun,
    Prediction,
    PredictOptions,
    chains_of,
)
from foldserve.msa.reading import read
from tests.conftest import data

HHB = "structures/pdb/proteincontactmap_2hhb.pdb"
#: 2HHB's chains in the order of the hand-made prediction's chains A, B, C, D.
HHB_ORDER = ("A", "C", "B", "D")


@cache
def hemoglobin_chains() -> tuple[protein.Protein, ...]:
    """2HHB's protein chains in HHB_ORDER, amino acids only (no haem, no water)."""
    text = data(HHB).read_text()
    chains = []
    for chain_id in HHB_ORDER:
        whole = protein.from_pdb_string(text, chain_id)
        keep = whole.aatype < residue_constants.restype_num
        chains.append(
            protein.Protein(
                atom_positions=whole.atom_positions[keep],
                atom_mask=whole.atom_mask[keep],
                aatype=whole.aatype[keep],
                residue_index=whole.residue_index[keep],
                chain_index=whole.chain_index[keep],
                b_factors=whole.b_factors[keep],
            )
        )
    return tuple(chains)


def sequence_of(chain: protein.Protein) -> str:
    return "".join(residue_constants.restypes[a] for a in chain.aatype)


def run_of(
    model: str, positions: np.ndarray, mask: np.ndarray, *, plddt: float, ptm: float, iptm: float
) -> ModelRun:
    length = len(positions)
    rng = np.random.default_rng(int(plddt * 10))
    per_residue = np.clip(plddt + rng.normal(0, 5, length), 0, 100).astype(np.float32)
    pae = np.abs(rng.normal(5, 2, (length, length))).astype(np.float32)
    return ModelRun(
        model=model,
        seed=0,
        positions=positions.astype(np.float32),
        atom_mask=mask.astype(np.float32),
        plddt=per_residue,
        pae=pae,
        max_pae=31.75,
        ptm=ptm,
        mean_plddt=float(per_residue.mean()),
        recycles=3,
        tolerance=None,
        seconds=1.5,
        iptm=iptm,
    )


def hemoglobin_prediction(*, test_weights: bool = False) -> Prediction:
    """Two multimer runs of hemoglobin (alpha2 beta2): the 2HHB coordinates, the second run's
    with chain D moved 20 Å; ranked by 0.8 ipTM + 0.2 pTM."""
    chains = hemoglobin_chains()
    alpha, beta = sequence_of(chains[0]), sequence_of(chains[2])
    layout = chains_of((alpha, beta), (2, 2))
    a3m = f"#{len(alpha)},{len(beta)}\t2,2\n>101\n{alpha}{beta}\n".encode()
    msa = read(io.BytesIO(a3m))
    positions = np.concatenate([c.atom_positions for c in chains])
    mask = np.concatenate([c.atom_mask for c in chains])
    moved = positions.copy()
    last = layout[-1]
    moved[last.start : last.end] += (
        np.array([20.0, 0.0, 0.0]) * mask[last.start : last.end, :, None]
    )
    runs = (
        run_of("model_1_multimer_v3", positions, mask, plddt=85.0, ptm=0.8, iptm=0.75),
        run_of("model_2_multimer_v3", moved, mask, plddt=80.0, ptm=0.7, iptm=0.5),
    )
    return Prediction(
        msa=msa,
        aatype=np.concatenate([c.aatype for c in chains]).astype(np.int32),
        residue_index=np.concatenate([np.arange(c.length, dtype=np.int32) for c in layout]),
        ranked=runs,
        options=PredictOptions(models=(1, 2), num_seeds=1),
        shape=InputShape(length=len(positions), clusters=1, extra=1),
        engine=EngineInfo(
            params_dir="/weights",
            weights_fingerprint="ab12cd34",
            test_weights=test_weights,
            evoformer_blocks=48,
            device="cpu",
            precision="float32",
            network="alphafold2_multimer_v3",
        ),
        timings={"features": 0.1, "predict": 3.0},
        chains=layout,
        rank_by="multimer",
        templates={"A": ("1a00_A",), "C": ()},
    )


def monomer_of(prediction: Prediction, chain: ChainInfo) -> Prediction:
    """The prediction cut down to one chain, as a monomer pTM run would give it."""
    cut = slice(chain.start, chain.end)
    runs = tuple(
        replace(
            run,
            model=run.model.replace("multimer_v3", "ptm"),
            positions=run.positions[cut],
            atom_mask=run.atom_mask[cut],
            plddt=run.plddt[cut],
            pae=run.pae[cut, cut],
            iptm=None,
        )
        for run in prediction.ranked
    )
    a3m = f">101\n{chain.sequence}\n".encode()
    return replace(
        prediction,
        msa=read(io.BytesIO(a3m)),
        aatype=prediction.aatype[cut],
        residue_index=prediction.residue_index[cut],
        ranked=runs,
        engine=replace(prediction.engine, network="alphafold2_ptm"),
        chains=(),
        rank_by="plddt",
        templates={},
    )

"""AlphaFold2-multimer inputs from a complex MSA, built with ColabFold's own functions.

A complex reaches the engine as one :class:`~foldserve.msa.model.Msa` in ColabFold's complex
A3M layout (``Msa.complex``; :mod:`foldserve.msa.pairing` builds it from one MSA per chain).
ColabFold's ``unserialize_msa`` splits that text into each chain's paired and unpaired
alignments and ``generate_input_feature`` merges the chains' features as AlphaFold-multimer's
pipeline does; both are used as they are, so the network sees exactly what ``colabfold_batch``
would give it for the same A3M file.

Unlike ColabFold, which compiles for every complex length, the features can be padded to a
shape bucket (:func:`pad_to`): padded residues and rows carry zero masks, as in the monomer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from foldserve.fold.alphafold2.features import FeatureDict, InputShape
from foldserve.fold.alphafold2.network import MULTIMER
from foldserve.fold.complex_msa import ComplexInput

#: Multimer features whose leading (0) or second (1) axis runs over residues.
_RESIDUE_AXIS = {
    "aatype": 0,
    "residue_index": 0,
    "asym_id": 0,
    "sym_id": 0,
    "entity_id": 0,
    "deletion_mean": 0,
    "entity_mask": 0,
    "seq_mask": 0,
    "all_atom_mask": 0,
    "all_atom_positions": 0,
    "msa": 1,
    "deletion_matrix": 1,
    "bert_mask": 1,
    "msa_mask": 1,
    "template_aatype": 1,
    "template_all_atom_mask": 1,
    "template_all_atom_positions": 1,
}


def multimer_features(
    complex_input: ComplexInput,
    *,
    num_msa: int,
    template_features: Sequence[dict[str, Any]] | None = None,
) -> FeatureDict:
    """The merged features of every chain, MSA padded to at least ``num_msa + 4`` rows
    (ColabFold's ``generate_input_feature``); ``template_features`` per distinct chain, or
    mock templates."""
    from colabfold.batch import generate_input_feature, mk_mock_template

    templates = list(template_features or [mk_mock_template(s) for s in complex_input.sequences])
    features, _ = generate_input_feature(
        list(complex_input.sequences),
        list(complex_input.copies),
        list(complex_input.unpaired),
        None if complex_input.paired is None else list(complex_input.paired),
        templates,
        True,
        MULTIMER,
        max_seq=num_msa,
    )
    # ColabFold's predict_structure counts chains from 0 whatever the pipeline numbered them.
    features["asym_id"] = features["asym_id"] - features["asym_id"][..., 0]
    return dict(features)


def msa_rows(features: FeatureDict) -> int:
    return int(features["msa"].shape[0])


def pad_to(features: FeatureDict, shape: InputShape) -> FeatureDict:
    """``features`` padded with masked residues to ``shape.length`` and masked MSA rows to
    ``shape.clusters`` (the multimer's full MSA depth)."""
    from alphafold.data import pipeline_multimer

    padded = dict(pipeline_multimer.pad_msa(features, min_num_seq=shape.clusters))
    length = int(features["aatype"].shape[0])
    extra = shape.length - length
    if extra <= 0:
        return padded
    for name, axis in _RESIDUE_AXIS.items():
        if name in padded:
            array = np.asarray(padded[name])
            widths = [(0, 0)] * array.ndim
            widths[axis] = (0, extra)
            padded[name] = np.pad(array, widths)
    return padded

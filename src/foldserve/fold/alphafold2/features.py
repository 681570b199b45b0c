"""Model inputs from a parsed MSA, built the way ColabFold builds them for an A3M input.

ColabFold's ``build_monomer_feature`` re-parses A3M text and maps every residue through a dict
in Python; our ``Msa`` already holds the rows as byte arrays, so the MSA features are one table
lookup here. ``tests/test_fold_engine.py`` checks the result equals ColabFold's, array for
array. Sequence features, the mock template and the processing pipeline are ColabFold's and
DeepMind's own functions.
"""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from foldserve.msa.model import Msa

FeatureDict = dict[str, Any]

# ColabFold's defaults for the monomer pTM models: cluster centres and extra rows the network sees.
MAX_MSA_CLUSTERS = 512
MAX_EXTRA_MSA = 5120


def _hhblits_table() -> npt.NDArray[np.int32]:
    from alphafold.common import residue_constants

    table = np.full(256, residue_constants.HHBLITS_AA_TO_ID["X"], dtype=np.int32)
    for letter, index in residue_constants.HHBLITS_AA_TO_ID.items():
        table[ord(letter)] = index
    return table


@dataclass(frozen=True)
class InputShape:
    """The padded sizes one compiled function is specialised to."""

    length: int
    clusters: int
    extra: int

    def describe(self) -> str:
        """``96 residues x 64+1024 MSA rows``: what a progress line shows."""
        return f"{self.length} residues x {self.clusters}+{self.extra} MSA rows"


def msa_sizes(
    depth: int, max_clusters: int = MAX_MSA_CLUSTERS, max_extra: int = MAX_EXTRA_MSA
) -> tuple[int, int]:
    """Cluster centres and extra rows for ``depth`` rows: ColabFold's rule for one query, with
    its ``--max-msa CLUSTERS:EXTRA`` caps."""
    clusters = min(depth, max_clusters)
    extra = max(min(depth - clusters, max_extra), 1)
    return clusters, extra


def raw_features(msa: Msa) -> FeatureDict:
    """Unprocessed features of ``msa``: sequence, MSA and (mock) template features."""
    from alphafold.data import pipeline
    from colabfold.batch import mk_mock_template

    sequence = msa.query_sequence
    features: FeatureDict = {
        **pipeline.make_sequence_features(
            sequence=sequence, description="none", num_res=len(sequence)
        ),
        **msa_features(msa),
        **mk_mock_template(sequence),
    }
    features["asym_id"] = np.zeros(len(sequence), dtype=int)
    return features


def msa_features(msa: Msa) -> FeatureDict:
    """AlphaFold's ``msa``, ``deletion_matrix_int``, ``num_alignments`` arrays for ``msa``."""
    depth, length = msa.residues.shape
    return {
        "deletion_matrix_int": msa.deletions.astype(np.int32),
        "msa": _hhblits_table()[msa.residues],
        "num_alignments": np.full(length, depth, dtype=np.int32),
        # Species only matter for pairing chains of a complex; a monomer needs none.
        "msa_species_identifiers": np.full(depth, b"", dtype=np.object_),
    }


def process_features(
    raw: FeatureDict,
    model_config: Any,
    *,
    seed: int,
    num_recycles: int,
    sizes: tuple[int, int],
    shape: InputShape,
) -> FeatureDict:
    """Sample and featurise the MSA as DeepMind's pipeline does, then pad to ``shape``.

    ``sizes`` are the cluster centres and extra rows to sample (:func:`msa_sizes`), so a padded
    run sees exactly the rows an unpadded one would; padding adds masked rows and residues only.
    """
    from alphafold.model import features
    from colabfold.alphafold.msa import make_fixed_size

    config = copy.deepcopy(model_config)
    clusters, extra = sizes
    config.data.eval.max_msa_clusters = clusters
    config.data.common.max_extra_msa = extra
    config.data.common.num_recycle = num_recycles
    config.model.num_recycle = num_recycles
    processed: FeatureDict = features.np_example_to_features(
        np_example=raw, config=config, random_seed=seed
    )
    iterations = processed["aatype"].shape[0]
    processed["asym_id"] = np.tile(raw["asym_id"], iterations).reshape(iterations, -1)
    schema = {key: [None, *value] for key, value in dict(config.data.eval.feat).items()}
    padded: FeatureDict = make_fixed_size(
        processed,
        schema,
        msa_cluster_size=shape.clusters,
        extra_msa_size=shape.extra,
        num_res=shape.length,
        num_templates=4,
    )
    return padded


def tiny_raw_features() -> FeatureDict:
    """Features of a three-row toy MSA: enough to trace the network's parameter shapes."""
    from foldserve.msa.reading import read

    toy = b">q\nMKVLAAGIVG\n>a\nMKVLSAGIVG\n>b\nMRVLAAGLVG\n"
    return raw_features(read(io.BytesIO(toy), format="a3m"))

"""A job's MSA as OpenFold3 reads it: a query whose MSA files carry the names its pipeline knows.

OpenFold3's data pipeline reads only MSA files named after the databases it expects
(``colabfold_main.a3m`` for a chain's main MSA, ``colabfold_paired.a3m`` for its paired rows;
``dataset_config_components.py``) and silently skips any other name, after which a query
whose only MSA was skipped crashes. foldserve writes the user's alignment under those names,
one folder per distinct chain (OpenFold3 tells chains' MSAs apart by the folder's name), and
never asks OpenFold3's MSA server for anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from foldserve.fold.complex_msa import split_complex
from foldserve.fold.results import ChainInfo, chains_of
from foldserve.msa.model import Msa

MAIN_MSA_NAME = "colabfold_main.a3m"
PAIRED_MSA_NAME = "colabfold_paired.a3m"
#: OpenFold3's query id for the one query of a job (it names nothing the user sees).
QUERY_NAME = "query"


@dataclass(frozen=True)
class OpenFold3Query:
    """One job's OpenFold3 query and the chains on foldserve's residue axis."""

    #: ``openfold3``'s ``Query`` (pydantic), ready for its ``InferenceQuerySet``.
    query: Any
    chains: tuple[ChainInfo, ...]
    #: Where each chain's MSA files were written, by distinct chain.
    msa_dirs: tuple[Path, ...]
    name: str = QUERY_NAME

    @property
    def length(self) -> int:
        return sum(chain.length for chain in self.chains)

    @property
    def aatype(self) -> npt.NDArray[np.int32]:
        """AlphaFold's residue types along the complex (the outputs write them)."""
        from alphafold.common import residue_constants

        order = residue_constants.restype_order_with_x
        unknown = order["X"]
        sequence = "".join(chain.sequence for chain in self.chains)
        return np.array([order.get(aa, unknown) for aa in sequence], dtype=np.int32)

    @property
    def residue_index(self) -> npt.NDArray[np.int32]:
        """0-based residue numbers, restarting with each chain (as AlphaFold-multimer's)."""
        return np.concatenate([np.arange(chain.length, dtype=np.int32) for chain in self.chains])


def write_query(msa: Msa, directory: Path) -> OpenFold3Query:
    """Write ``msa`` (one chain, or a complex in ColabFold's layout) into ``directory`` under
    OpenFold3's MSA names and return the query that points at it."""
    from openfold3.projects.of3_all_atom.config.inference_query_format import Chain, Query

    split = split_complex(msa)
    chains = chains_of(split.sequences, split.copies)
    of3_chains = []
    msa_dirs = []
    for index, sequence in enumerate(split.sequences):
        chain_ids = [chain.id for chain in chains if chain.entity == index + 1]
        # OpenFold3 keys a chain's MSAs by their folder's name: each must be unique.
        main = directory / f"main_{index + 1}"
        main.mkdir()
        (main / MAIN_MSA_NAME).write_text(split.unpaired[index])
        paired_paths = None
        if split.paired is not None:
            paired = directory / f"paired_{index + 1}"
            paired.mkdir()
            (paired / PAIRED_MSA_NAME).write_text(split.paired[index])
            paired_paths = [paired]
        msa_dirs.append(main)
        of3_chains.append(
            Chain(
                molecule_type="protein",
                chain_ids=chain_ids,
                sequence=sequence,
                main_msa_file_paths=[main],
                paired_msa_file_paths=paired_paths,
            )
        )
    query = Query(query_name=QUERY_NAME, chains=of3_chains)
    return OpenFold3Query(query=query, chains=chains, msa_dirs=tuple(msa_dirs))

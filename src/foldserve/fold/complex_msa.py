"""A complex MSA split the way ColabFold splits it, for every engine.

A complex reaches an engine as one :class:`~foldserve.msa.model.Msa` in ColabFold's complex A3M
layout (``Msa.complex``; :mod:`foldserve.msa.pairing` builds it from one MSA per chain).
ColabFold's own ``unserialize_msa`` splits that text into each distinct chain's paired and
unpaired alignments: AlphaFold2-multimer's features and OpenFold3's MSA files are both made
from what it gives, so both engines see the chains exactly as ``colabfold_batch`` would.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from foldserve.fold.results import ChainInfo, chains_of
from foldserve.msa.model import Msa
from foldserve.msa.writing import write_a3m


@dataclass(frozen=True)
class ComplexInput:
    """A complex MSA split the way ColabFold splits it: per distinct chain, in header order."""

    sequences: tuple[str, ...]
    copies: tuple[int, ...]
    #: Each distinct chain's unpaired A3M (what its templates are searched with).
    unpaired: tuple[str, ...]
    #: Each distinct chain's paired A3M, or None when the complex has no paired block.
    paired: tuple[str, ...] | None

    @property
    def chains(self) -> tuple[ChainInfo, ...]:
        return chains_of(self.sequences, self.copies)


def split_complex(msa: Msa) -> ComplexInput:
    """``msa`` (a complex, or one chain in one copy) as ColabFold's ``unserialize_msa`` reads it."""
    from colabfold.batch import unserialize_msa

    text = io.StringIO()
    write_a3m(msa, text)
    query = None if msa.complex is not None else msa.query_sequence
    unpaired, paired, sequences, copies, _ = unserialize_msa([text.getvalue()], query)
    return ComplexInput(
        sequences=tuple(sequences),
        copies=tuple(copies),
        unpaired=tuple(unpaired),
        paired=None if paired is None else tuple(paired),
    )

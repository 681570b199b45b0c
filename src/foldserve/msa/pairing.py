"""One MSA per chain into the ColabFold complex MSA of the whole complex.

ColabFold's server hands out one A3M for a complex (``colabfold.input.msa_to_str``): the
``#lengths<TAB>copies`` first line, then the **paired block** (``pair_sequences``: row ``i`` of
every chain's paired MSA side by side, its first row the queries side by side), then each
chain's **unpaired block** (``pad_sequences``: the chain's own MSA, its query included, with
gaps over the other chains' columns). Each distinct chain appears once, whatever its copies.
:func:`pair_chains` builds exactly that from an ``Msa`` per chain.

The paired block is the user's paired MSA when there is one (``--paired-msa``, e.g. the
server's ``pair.a3m`` with the chains already side by side). Otherwise rows are paired by
species with AlphaFold-multimer's own code (``alphafold.data.msa_pairing.pair_sequences`` and
``reorder_paired_rows``, species from ``msa_identifiers.get_identifiers``): per species found in
at least two chains, each chain's rows of that species are sorted by identity to its query and
the first ``min(counts)`` of each are paired in that order; a chain without the species gets a
gap row; a species with over 600 rows in a chain is skipped. Pairs of every chain come first.
Where this differs from AlphaFold's pipeline:

* the species of row 0 is always empty: row 0 is the query, paired with the other queries
  (AlphaFold names the query after the input, so its species is empty there too);
* rows are not deduplicated first (AlphaFold's ``make_msa_features`` drops repeated sequences
  before pairing): every row of the chain's ``Msa`` can be paired;
* a gap row's part of a paired row's name is ``-``.

A homo-oligomer (one distinct chain) has no pairs: its paired block is the query alone, as
ColabFold writes it (``get_msa_and_templates`` makes the homo-oligomer's paired MSA copies of
the query, which ``msa_to_str`` lays out as one row).

Paired rows are named as ColabFold names them, each chain's header line joined by a tab; an
``Msa`` keeps the first word as the name and the rest as the description, so written back as
A3M the first tab becomes a space when the first chain's header has no description.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from foldserve.errors import InputError
from foldserve.msa.alphabet import GAP
from foldserve.msa.model import ComplexLayout, Msa

#: The part of a paired row's name for a chain that has no row in that pairing.
MISSING_PART = "-"


@dataclass(frozen=True)
class ChainMsa:
    """One distinct chain of a complex: its own MSA (query first) and its number of copies."""

    msa: Msa
    copies: int = 1


@dataclass(frozen=True)
class PairingResult:
    """The complex MSA and how it came about.

    ``paired_rows`` counts the rows of the paired block, the query row included; the unpaired
    blocks follow them. ``warnings`` say what could not be paired, e.g. chains whose row names
    hold no species; the same warnings are in ``msa.warnings``.
    """

    msa: Msa
    paired_rows: int
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Rows:
    """Rows of one block of the complex MSA; unlike an ``Msa``, its first row may hold gaps."""

    names: tuple[str, ...]
    descriptions: tuple[str, ...]
    residues: npt.NDArray[np.uint8]
    deletions: npt.NDArray[np.uint16]
    insertions: tuple[bytes, ...]

    @classmethod
    def of(cls, msa: Msa) -> _Rows:
        return cls(msa.names, msa.descriptions, msa.residues, msa.deletions, msa.insertions)


def pair_chains(chains: Sequence[ChainMsa], *, paired: Msa | None = None) -> PairingResult:
    """The ColabFold complex MSA of ``chains``, paired by species unless ``paired`` is given.

    ``paired`` is used as the paired block as it is: its rows must span every chain (its width
    the chains' lengths summed) and its first row must be the chains' queries side by side.
    A single chain in one copy is no complex: its MSA comes back unchanged.
    """
    _check_chains(chains)
    msas = [chain.msa for chain in chains]
    if len(chains) == 1 and paired is not None:
        raise InputError(
            "a paired MSA pairs the rows of different chains, and there is only one",
            where="--paired-msa",
            fix="leave out --paired-msa for a single chain or a homo-oligomer",
        )
    if len(chains) == 1 and chains[0].copies == 1:
        return PairingResult(msa=msas[0], paired_rows=1)
    layout = ComplexLayout(
        lengths=tuple(m.query_length for m in msas),
        copies=tuple(chain.copies for chain in chains),
    )
    warnings: tuple[str, ...] = ()
    if paired is not None:
        _check_paired(paired, msas, layout)
        block = _Rows.of(paired)
    elif len(msas) == 1:
        block = _Rows.of(msas[0].select(np.zeros(1, dtype=np.intp)))
    else:
        species = [row_species(m) for m in msas]
        rows = _species_pairs(msas, species)
        block = _side_by_side(msas, rows)
        warnings = _pairing_warnings(msas, species, len(rows))
    unpaired = [_padded(m, index, layout) for index, m in enumerate(msas)]
    return PairingResult(
        msa=_stack([block, *unpaired], layout, warnings, source=" + ".join(m.source for m in msas)),
        paired_rows=len(block.names),
        warnings=warnings,
    )


def _species_pairs(msas: Sequence[Msa], species: Sequence[list[str]]) -> npt.NDArray[np.intp]:
    """Row indices paired by species, AlphaFold-multimer's way: ``(pairs, chains)``.

    Row 0 is ``[0, 0, ...]``, the queries; ``-1`` stands for a gap row of that chain.
    """
    from alphafold.common.residue_constants import HHBLITS_AA_TO_ID
    from alphafold.data.msa_pairing import pair_sequences, reorder_paired_rows

    encode = np.full(256, HHBLITS_AA_TO_ID["X"], dtype=np.int32)
    for letter, index in HHBLITS_AA_TO_ID.items():
        encode[ord(letter)] = index
    examples = [
        {
            "msa_all_seq": encode[m.residues],
            "msa_species_identifiers_all_seq": np.array(
                [b"", *(s.encode() for s in names[1:])], dtype=np.object_
            ),
        }
        for m, names in zip(msas, species, strict=True)
    ]
    rows = reorder_paired_rows(pair_sequences(examples))
    return np.asarray(rows, dtype=np.intp).reshape(-1, len(msas))


def row_species(msa: Msa) -> list[str]:
    """The UniProt species code of each row ('HUMAN' for ``sp|P69905|HBA_HUMAN``), '' if none.

    AlphaFold's ``get_identifiers``: the first word of the header, cut at '/', must be a
    UniProt name ``sp|accession|NAME_SPECIES`` or ``tr|...``.
    """
    from alphafold.data.msa_identifiers import get_identifiers

    return [get_identifiers(name).species_id for name in msa.names]


def _check_chains(chains: Sequence[ChainMsa]) -> None:
    if not chains:
        raise InputError(
            "no chains to build a complex MSA from",
            where="--msa",
            fix="give one MSA per distinct chain (--msa A.a3m --msa B.a3m)",
        )
    for index, chain in enumerate(chains):
        if chain.copies < 1:
            raise InputError(
                f"chain {_label(index)} ({chain.msa.source}) has {chain.copies} copies",
                where="--copies",
                fix="give each chain 1 copy or more",
            )
        if chain.msa.complex is not None:
            raise InputError(
                f"the MSA of chain {_label(index)} is already a complex MSA "
                f"({chain.msa.complex.describe()})",
                where=chain.msa.source,
                fix="give it alone as the complex MSA, or give one single-chain MSA per chain",
            )


def _check_paired(paired: Msa, msas: Sequence[Msa], layout: ComplexLayout) -> None:
    lengths = "+".join(map(str, layout.lengths))
    if paired.query_length != layout.query_length:
        raise InputError(
            f"the paired MSA has {paired.query_length} columns, but the chains have "
            f"{lengths} = {layout.query_length} residues",
            where=paired.source,
            fix="give the paired MSA of these chains, their rows side by side in the order of "
            "the --msa options",
        )
    if paired.complex is not None and paired.complex.lengths != layout.lengths:
        raise InputError(
            f"the paired MSA's header gives chains of {'+'.join(map(str, paired.complex.lengths))}"
            f" residues, the chains' MSAs {lengths}",
            where=paired.source,
            fix="give the --msa options in the order of the paired MSA's chains",
        )
    queries = "".join(m.query_sequence for m in msas)
    if paired.query_sequence != queries:
        raise InputError(
            "the paired MSA's first row is not the chains' queries side by side",
            where=paired.source,
            fix="give the paired MSA of these chains, its first row their queries in the order "
            "of the --msa options",
        )


def _side_by_side(msas: Sequence[Msa], rows: npt.NDArray[np.intp]) -> _Rows:
    """Paired rows: row ``rows[k, i]`` of chain ``i`` for each ``k``; ``-1`` a gap row."""
    residues = []
    deletions = []
    for index, m in enumerate(msas):
        # A gap row appended last, so that -1 picks it: AlphaFold's own padding trick.
        residues.append(
            np.vstack([m.residues, np.full((1, m.query_length), GAP, np.uint8)])[rows[:, index]]
        )
        deletions.append(
            np.vstack([m.deletions, np.zeros((1, m.query_length), np.uint16)])[rows[:, index]]
        )
    headers = []
    insertions = []
    for pairing in rows.tolist():
        parts = [
            _header_text(m, i) if i >= 0 else MISSING_PART
            for m, i in zip(msas, pairing, strict=True)
        ]
        headers.append("\t".join(parts))
        insertions.append(
            b"".join(m.insertions[i] for m, i in zip(msas, pairing, strict=True) if i >= 0)
        )
    names, descriptions = zip(*(_split_header(h) for h in headers), strict=True)
    return _Rows(
        names=tuple(names),
        descriptions=tuple(descriptions),
        residues=np.hstack(residues),
        deletions=np.hstack(deletions),
        insertions=tuple(insertions),
    )


def _pairing_warnings(
    msas: Sequence[Msa], species: Sequence[list[str]], pairs: int
) -> tuple[str, ...]:
    unnamed = [index for index, names in enumerate(species) if not any(names[1:])]
    if unnamed:
        return tuple(
            f"no species in the row names of chain {_label(index)} ({msas[index].source}): "
            "rows left unpaired (AlphaFold pairs rows named like sp|P69905|HBA_HUMAN)"
            for index in unnamed
        )
    if pairs == 1:
        return ("no species is found in two chains or more: rows left unpaired",)
    return ()


def _header_text(msa: Msa, row: int) -> str:
    """Row ``row``'s header line as A3M has it, without the '>'."""
    description = msa.descriptions[row]
    return f"{msa.names[row]} {description}" if description else msa.names[row]


def _split_header(text: str) -> tuple[str, str]:
    """Name and description, split as the A3M reader splits a header line."""
    name, description = [*text.split(None, 1), ""][:2]
    return name, description.strip()


def _padded(msa: Msa, chain: int, layout: ComplexLayout) -> _Rows:
    """The chain's rows with gaps over the other chains' columns (ColabFold's unpaired block)."""
    start = sum(layout.lengths[:chain])
    columns = slice(start, start + msa.query_length)
    residues = np.full((len(msa), layout.query_length), GAP, dtype=np.uint8)
    residues[:, columns] = msa.residues
    deletions = np.zeros((len(msa), layout.query_length), dtype=np.uint16)
    deletions[:, columns] = msa.deletions
    return _Rows(
        names=msa.names,
        descriptions=msa.descriptions,
        residues=residues,
        deletions=deletions,
        insertions=msa.insertions,
    )


def _stack(
    blocks: Sequence[_Rows], layout: ComplexLayout, warnings: tuple[str, ...], *, source: str
) -> Msa:
    return Msa(
        names=tuple(name for block in blocks for name in block.names),
        descriptions=tuple(text for block in blocks for text in block.descriptions),
        residues=np.vstack([block.residues for block in blocks]),
        deletions=np.vstack([block.deletions for block in blocks]),
        insertions=tuple(text for block in blocks for text in block.insertions),
        source=source,
        warnings=warnings,
        complex=layout,
    )


def _label(index: int) -> str:
    """Chains are A, B, ... in the order given (each distinct chain once)."""
    return string.ascii_uppercase[index] if index < 26 else str(index + 1)

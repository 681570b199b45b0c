"""Compare two protein chains: TM-score both ways, RMSD, aligned length, GDT-TS, lDDT.

The alignment comes from TM-align (tmtools) and is sequence-independent, unless the two
sequences are identical: then residue i is paired with residue i, as the TM-score program and
CASP score a model against its target (``align="auto"``, the default). ``align="structure"``
always asks TM-align for the alignment, which is what TM-align itself reports.
``superpose=False`` scores the chains in their own frames (US-align ``-se``), for structures
that are already superposed, such as the models of an NMR ensemble.

Complexes (:func:`compare_structures`): chains are matched by id (when the ids name chains of
similar sequence), the rest by sequence; each matched pair is scored on its own, and the whole
complex once more over the matched chains concatenated in matched order, with the residue
pairs of the chain pairs held fixed (TM-align given that alignment, as US-align scores a
complex once its chains are assigned). One chain against a complex is scored against the
complex's chain of the most similar sequence, and the result says which.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import tmtools

from foldserve.errors import InputError
from foldserve.structure import metrics
from foldserve.structure.reading import Chain, read_chain, read_chains

Align = Literal["auto", "structure", "sequence"]
ALIGN_CHOICES: tuple[Align, ...] = ("auto", "structure", "sequence")
#: How two chains of complexes were paired: same chain id, or most similar sequence.
MatchedBy = Literal["id", "sequence"]
#: Chains whose sequences are less alike than this (difflib's ratio) are not paired.
MIN_SIMILARITY = 0.3
#: A structure: one chain, or the chains of a complex in their file's order.
Structure = Chain | tuple[Chain, ...]


def read_compared(path: Path, chain: str | None = None, *, model: int = 0) -> Structure:
    """What is compared of a file: the chain asked for, else every protein chain of the file
    (one chain, or a complex compared whole: each chain matched, and the complex as one)."""
    if chain is not None:
        return read_chain(path, chain, model=model)
    chains = read_chains(path, model=model)
    return chains[0] if len(chains) == 1 else chains


@dataclass(frozen=True)
class ChainMatch:
    """Chain ``chain_a`` of one complex paired with ``chain_b`` of the other, and its scores."""

    chain_a: str
    chain_b: str
    matched_by: MatchedBy
    comparison: Comparison

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_a": self.chain_a,
            "chain_b": self.chain_b,
            "matched_by": self.matched_by,
            **self.comparison.to_json(),
        }


@dataclass(frozen=True)
class Comparison:
    """Scores of chain ``a`` against chain ``b``; GDT-TS and lDDT take ``b`` as the reference.

    ``rmsd`` is TM-align's: over the aligned pairs, after their least-RMSD superposition.
    """

    a: str
    b: str
    length_a: int
    length_b: int
    alignment: Literal["residue", "tm-align"]
    superposed: bool
    tm_score_a: float
    tm_score_b: float
    rmsd: float
    aligned_length: int
    sequence_identity: float
    gdt_ts: float
    lddt: float
    rotation: tuple[tuple[float, ...], ...]
    translation: tuple[float, ...]
    #: The alignment as two gapped strings (TM-align's ``seqxA``/``seqyA``).
    aligned_a: str = field(default="", repr=False)
    aligned_b: str = field(default="", repr=False)
    #: Complexes: the chain pairs, each scored on its own (the fields above are the complex's).
    chains: tuple[ChainMatch, ...] = ()
    #: Complexes: chains left without a partner, of a and of b.
    unmatched_a: tuple[str, ...] = ()
    unmatched_b: tuple[str, ...] = ()
    #: One chain against a complex: how the complex's chain was picked, e.g.
    #: ``chain B of b: the most similar sequence``.
    picked: str | None = None

    @property
    def is_complex(self) -> bool:
        return bool(self.chains)

    def score_cells(self) -> list[str]:
        """TM-score both ways, RMSD, aligned pairs, GDT-TS and lDDT as tables show them."""
        return [
            f"{self.tm_score_a:.4f}",
            f"{self.tm_score_b:.4f}",
            f"{self.rmsd:.2f}",
            str(self.aligned_length),
            f"{self.gdt_ts:.4f}",
            f"{self.lddt:.4f}",
        ]

    def to_json(self) -> dict[str, Any]:
        scores = self._scores()
        if self.chains:
            scores["chains"] = [match.to_json() for match in self.chains]
            scores["unmatched"] = {"a": list(self.unmatched_a), "b": list(self.unmatched_b)}
        if self.picked is not None:
            scores["picked"] = self.picked
        return scores

    def _scores(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "length": {"a": self.length_a, "b": self.length_b},
            "alignment": self.alignment,
            "superposed": self.superposed,
            "tm_score": {"a": round(self.tm_score_a, 5), "b": round(self.tm_score_b, 5)},
            "rmsd": round(self.rmsd, 3),
            "aligned_length": self.aligned_length,
            "sequence_identity": round(self.sequence_identity, 4),
            "gdt_ts": round(self.gdt_ts, 4),
            "lddt": round(self.lddt, 4),
        }


def _pairs(alignment_a: str, alignment_b: str) -> tuple[npt.NDArray[np.intp], ...]:
    """Indices into chain a and chain b of the aligned (gap-free) columns."""
    a_letters = np.frombuffer(alignment_a.encode(), dtype=np.uint8) != ord("-")
    b_letters = np.frombuffer(alignment_b.encode(), dtype=np.uint8) != ord("-")
    both = a_letters & b_letters
    index_a = np.cumsum(a_letters) - 1
    index_b = np.cumsum(b_letters) - 1
    return index_a[both].astype(np.intp), index_b[both].astype(np.intp)


def compare(a: Chain, b: Chain, *, align: Align = "auto", superpose: bool = True) -> Comparison:
    """Score ``a`` against ``b`` (see the module docstring for the alignment rule)."""
    if align not in ALIGN_CHOICES:
        raise InputError(
            f"unknown alignment {align!r}", where="align", fix="use auto, structure or sequence"
        )
    by_residue = align == "sequence" or (align == "auto" and a.sequence == b.sequence)
    if by_residue and len(a) != len(b):
        raise InputError(
            f"residue correspondence needs equal lengths, got {len(a)} and {len(b)}",
            where=f"{a.label} vs {b.label}",
            fix="compare with structural alignment (--align structure)",
        )
    if not superpose and not by_residue:
        raise InputError(
            "scoring in place needs identical sequences",
            where=f"{a.label} vs {b.label}",
            fix="drop --in-place to superpose the structures first",
        )
    fixed = [a.sequence, b.sequence] if by_residue else None
    return _scored(a, b, fixed, "residue" if by_residue else "tm-align", superpose=superpose)


def _scored(
    a: Chain,
    b: Chain,
    fixed: list[str] | None,
    alignment: Literal["residue", "tm-align"],
    *,
    superpose: bool,
) -> Comparison:
    """TM-align's scores of ``a`` against ``b`` on the alignment ``fixed`` (two gapped
    strings), or on its own when None; the rest of the scores on the same pairs."""
    result = tmtools.tm_align(a.ca, b.ca, a.sequence, b.sequence, fixed)
    index_a, index_b = _pairs(result.seqxA, result.seqyA)
    if superpose:
        rotation, translation = np.asarray(result.u), np.asarray(result.t)
    else:
        rotation, translation = np.eye(3), np.zeros(3)
    moved = a.ca @ rotation.T + translation
    model, reference = moved[index_a], b.ca[index_b]
    if superpose:
        tm_a, tm_b, rmsd = result.tm_norm_chain1, result.tm_norm_chain2, result.rmsd
    else:
        tm_a = metrics.tm_score_in_place(model, reference, len(a))
        tm_b = metrics.tm_score_in_place(model, reference, len(b))
        rmsd = metrics.rmsd_in_place(model, reference)
    same = (
        np.frombuffer(a.sequence.encode(), dtype=np.uint8)[index_a]
        == np.frombuffer(b.sequence.encode(), dtype=np.uint8)[index_b]
    )
    if superpose:
        gdt = metrics.gdt_ts(a.ca[index_a], reference, len(a), len(b))
    else:
        gdt = metrics.gdt_ts_in_place(model, reference, len(b))
    return Comparison(
        a=a.label,
        b=b.label,
        length_a=len(a),
        length_b=len(b),
        alignment=alignment,
        superposed=superpose,
        tm_score_a=float(tm_a),
        tm_score_b=float(tm_b),
        rmsd=float(rmsd),
        aligned_length=len(index_a),
        sequence_identity=float(same.mean()) if len(same) else 0.0,
        gdt_ts=gdt,
        lddt=metrics.lddt(moved[index_a], index_b, b.ca),
        rotation=tuple(tuple(float(v) for v in row) for row in rotation),
        translation=tuple(float(v) for v in translation),
        aligned_a=str(result.seqxA),
        aligned_b=str(result.seqyA),
    )


def similarity(a: str, b: str) -> float:
    """How alike two sequences are, 0 to 1 (difflib's ratio: matched residues over both)."""
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def match_chains(
    a: Sequence[Chain], b: Sequence[Chain]
) -> tuple[list[tuple[Chain, Chain, MatchedBy]], list[Chain], list[Chain]]:
    """Pairs of chains of ``a`` and ``b`` (in ``a``'s order), and the chains of each left over.

    Chains with the same id are paired when their sequences are alike (a model and its target
    usually name chains alike); the others by sequence, most similar first (on ties, in the
    files' order: copies of a homomer pair up in order).
    """
    pairs: dict[int, tuple[int, MatchedBy]] = {}
    used: set[int] = set()
    ids_b = {chain.chain_id: j for j, chain in enumerate(b)}
    for i, chain in enumerate(a):
        j = ids_b.get(chain.chain_id)
        if j is not None and similarity(chain.sequence, b[j].sequence) >= 0.5:
            pairs[i] = (j, "id")
            used.add(j)
    scored = sorted(
        (-similarity(x.sequence, y.sequence), i, j)
        for i, x in enumerate(a)
        if i not in pairs
        for j, y in enumerate(b)
        if j not in used
    )
    for negative, i, j in scored:
        if -negative < MIN_SIMILARITY or i in pairs or j in used:
            continue
        pairs[i] = (j, "sequence")
        used.add(j)
    matched = [(a[i], b[j], how) for i, (j, how) in sorted(pairs.items())]
    return (
        matched,
        [c for i, c in enumerate(a) if i not in pairs],
        [c for j, c in enumerate(b) if j not in used],
    )


def pick_chain(chain: Chain, candidates: Sequence[Chain]) -> Chain:
    """The chain of ``candidates`` most like ``chain`` in sequence (the first on ties)."""
    scores = [similarity(chain.sequence, candidate.sequence) for candidate in candidates]
    return candidates[scores.index(max(scores))]


def _joined(chains: Sequence[Chain]) -> Chain:
    """The chains as one, in the given order (for scoring a complex as a whole)."""
    first = chains[0]
    return Chain(
        source=first.source,
        label=Path(first.source).name,
        chain_id="+".join(c.chain_id for c in chains),
        sequence="".join(c.sequence for c in chains),
        residue_ids=tuple(f"{c.chain_id}:{r}" for c in chains for r in c.residue_ids),
        ca=np.concatenate([c.ca for c in chains]),
        b_factors=np.concatenate([c.b_factors for c in chains]),
    )


def compare_complexes(
    a: Sequence[Chain], b: Sequence[Chain], *, align: Align = "auto", superpose: bool = True
) -> Comparison:
    """Score complex ``a`` against complex ``b``: each matched chain pair on its own
    (:attr:`Comparison.chains`), and the complex as a whole over the matched chains."""
    matched, left_a, left_b = match_chains(a, b)
    if not matched:
        raise InputError(
            "no chain of one structure matches a chain of the other, by id or by sequence",
            where=f"{Path(a[0].source).name} vs {Path(b[0].source).name}",
            fix="compare one chain of each (--chain-a, --chain-b)",
        )
    per_chain = [compare(x, y, align=align, superpose=superpose) for x, y, _ in matched]
    joined_a = _joined([x for x, _, _ in matched])
    joined_b = _joined([y for _, y, _ in matched])
    fixed = ["".join(c.aligned_a for c in per_chain), "".join(c.aligned_b for c in per_chain)]
    residue = all(c.alignment == "residue" for c in per_chain)
    whole = _scored(
        joined_a, joined_b, fixed, "residue" if residue else "tm-align", superpose=superpose
    )
    return replace(
        whole,
        chains=tuple(
            ChainMatch(x.chain_id, y.chain_id, how, comparison)
            for (x, y, how), comparison in zip(matched, per_chain, strict=True)
        ),
        unmatched_a=tuple(c.chain_id for c in left_a),
        unmatched_b=tuple(c.chain_id for c in left_b),
    )


def chains_of(structure: Structure) -> tuple[Chain, ...]:
    """The chains of a structure: the one chain, or the complex's in their file's order."""
    return (structure,) if isinstance(structure, Chain) else tuple(structure)


def compare_structures(
    a: Structure, b: Structure, *, align: Align = "auto", superpose: bool = True
) -> Comparison:
    """Score ``a`` against ``b``, each one chain or a complex: two chains as :func:`compare`,
    two complexes as :func:`compare_complexes`, one chain against the complex's chain of the
    most similar sequence (named in :attr:`Comparison.picked`)."""
    chains_a, chains_b = chains_of(a), chains_of(b)
    if len(chains_a) > 1 and len(chains_b) > 1:
        return compare_complexes(chains_a, chains_b, align=align, superpose=superpose)
    if len(chains_a) == 1 and len(chains_b) == 1:
        return compare(chains_a[0], chains_b[0], align=align, superpose=superpose)
    if len(chains_a) == 1:
        picked = pick_chain(chains_a[0], chains_b)
        result = compare(chains_a[0], picked, align=align, superpose=superpose)
        note = f"chain {picked.chain_id!r} of {Path(picked.source).name}: most similar sequence"
    else:
        picked = pick_chain(chains_b[0], chains_a)
        result = compare(picked, chains_b[0], align=align, superpose=superpose)
        note = f"chain {picked.chain_id!r} of {Path(picked.source).name}: most similar sequence"
    return replace(result, picked=note)


def compare_all(
    structures: Sequence[Structure], reference: Structure | None = None, *, align: Align = "auto"
) -> list[Comparison]:
    """Every structure (a chain or a complex) against every later one, then every one against
    ``reference``."""
    pairs = [(a, b) for i, a in enumerate(structures) for b in structures[i + 1 :]]
    if reference is not None:
        pairs += [(structure, reference) for structure in structures]
    return [compare_structures(a, b, align=align) for a, b in pairs]

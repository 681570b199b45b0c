"""Compare two protein chains: TM-score both ways, RMSD, aligned length, GDT-TS, lDDT.

The alignment comes from TM-align (tmtools) and is sequence-independent, unless the two
sequences are identical: then residue i is paired with residue i, as the TM-score program and
CASP score a model against its target (``align="auto"``, the default). ``align="structure"``
always asks TM-align for the alignment, which is what TM-align itself reports.
``superpose=False`` scores the chains in their own frames (US-align ``-se``), for structures
that are already superposed, such as the models of an NMR ensemble.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import tmtools

from foldserve.errors import InputError
from foldserve.structure import metrics
from foldserve.structure.reading import Chain

Align = Literal["auto", "structure", "sequence"]
ALIGN_CHOICES: tuple[Align, ...] = ("auto", "structure", "sequence")


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

    def to_json(self) -> dict[str, Any]:
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
        alignment="residue" if by_residue else "tm-align",
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
    )


def compare_all(
    chains: list[Chain], reference: Chain | None = None, *, align: Align = "auto"
) -> list[Comparison]:
    """Every chain against every later one, then every chain against ``reference``."""
    pairs = [(a, b) for i, a in enumerate(chains) for b in chains[i + 1 :]]
    if reference is not None:
        pairs += [(chain, reference) for chain in chains]
    return [compare(a, b, align=align) for a, b in pairs]

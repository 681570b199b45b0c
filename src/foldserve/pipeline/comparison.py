"""What the compare step records, as typed data: scores of compared structures, and the engines
of one run side by side.

:class:`Scores` keeps the numbers of one :class:`~foldserve.structure.compare.Comparison` for a
step's record and MLflow; :func:`reference_metrics` names a model's scores against the
reference as MLflow metrics. A run with several engines compares their best models with each
other and with the reference (:func:`compare_engines`, through
:func:`~foldserve.structure.compare.compare_all`) into an :class:`EnginesComparison`: the
pipeline's ``comparison.json``, the report's engines table and the parent run's metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from foldserve.fold.results import EngineName
from foldserve.pipeline.figures import plddt_of
from foldserve.pipeline.prediction_dir import PredictionDir
from foldserve.structure.compare import Comparison, compare_all, read_compared

#: What joins two engines' names in the name of a metric comparing them.
PAIR = "_vs_"


class Scores(BaseModel):
    """Structure ``a`` against ``b``: TM-score normalised by each one's length, RMSD over the
    aligned pairs, GDT-TS and lDDT with ``b`` as the reference (rounded as ``compare --json``)."""

    model_config = ConfigDict(frozen=True)

    a: str
    b: str
    tm_score_a: float
    tm_score_b: float
    #: None when TM-align paired no residues (structures with nothing in common).
    rmsd: float | None
    aligned_length: int
    gdt_ts: float
    lddt: float
    #: Complexes: each chain of ``a`` against its partner in ``b`` (TM-score by ``b``'s chain).
    chain_tm_scores: dict[str, float] = {}

    @classmethod
    def of(cls, comparison: Comparison) -> Scores:
        return cls(
            a=comparison.a,
            b=comparison.b,
            tm_score_a=round(comparison.tm_score_a, 5),
            tm_score_b=round(comparison.tm_score_b, 5),
            rmsd=round(comparison.rmsd, 3) if comparison.aligned_length else None,
            aligned_length=comparison.aligned_length,
            gdt_ts=round(comparison.gdt_ts, 4),
            lddt=round(comparison.lddt, 4),
            chain_tm_scores={
                match.chain_a: round(match.comparison.tm_score_b, 5) for match in comparison.chains
            },
        )


def reference_metrics(scores: Scores) -> dict[str, float]:
    """A model's scores against the reference as MLflow metrics: TM-score (by the reference's
    length), RMSD, and for a complex each chain's TM-score."""
    metrics = {"tm_score_to_reference": scores.tm_score_b}
    if scores.rmsd is not None:
        metrics["rmsd_to_reference"] = scores.rmsd
    for chain, score in scores.chain_tm_scores.items():
        metrics[f"tm_score_to_reference_{chain}"] = score
    return metrics


class EngineBest(BaseModel):
    """One engine's best model and its confidences."""

    model_config = ConfigDict(frozen=True)

    engine: EngineName
    #: The engine's prediction directory, in the run directory.
    prediction: str
    #: The model's file label (``ranked_0``) and the run that made it (``model_1_ptm_pred_0``).
    model: str
    run: str
    mean_plddt: float | None
    ptm: float | None
    iptm: float | None
    #: The engine's own ranking score: OpenFold3's sample ranking score, AlphaFold2-multimer's
    #: 0.8 ipTM + 0.2 pTM; none for AlphaFold2's monomer models (ranked by mean pLDDT).
    ranking_score: float | None
    #: Per-residue pLDDT, chain after chain (empty when the model file records none).
    plddt: tuple[float, ...]
    test_weights: bool


class EnginesComparison(BaseModel):
    """The engines' best models side by side: ``pairs`` every engine against every later one
    (``a`` and ``b`` engine names), ``to_reference`` every engine against the reference."""

    model_config = ConfigDict(frozen=True)

    engines: tuple[EngineBest, ...]
    pairs: tuple[Scores, ...]
    reference: str | None = None
    to_reference: tuple[Scores, ...] = ()

    def metrics(self) -> dict[str, float]:
        """The comparison as MLflow metrics: ``tm_score_alphafold2_vs_openfold3`` (by the
        second engine's length) and ``rmsd_alphafold2_vs_openfold3``."""
        metrics: dict[str, float] = {}
        for pair in self.pairs:
            metrics[f"tm_score_{pair.a}{PAIR}{pair.b}"] = pair.tm_score_b
            if pair.rmsd is not None:
                metrics[f"rmsd_{pair.a}{PAIR}{pair.b}"] = pair.rmsd
        return metrics

    def engine_metrics(self, engine: EngineName) -> dict[str, float]:
        """The engine's best model against the reference, as MLflow metrics (none without)."""
        return reference_metrics(self._to_reference(engine)) if self.reference else {}

    def _to_reference(self, engine: EngineName) -> Scores:
        return next(scores for scores in self.to_reference if scores.a == engine)

    def table(self) -> tuple[list[str], list[list[str]]]:
        """The engines side by side: a header (``engine`` and the engines' names) and a row
        per score: best model, confidences, TM-score and RMSD against each engine (dashes on
        the diagonal) and against the reference."""
        bests, names = self.engines, [best.engine for best in self.engines]
        rows = [
            ["best model", *(best.run for best in bests)],
            ["mean pLDDT", *(_cell(best.mean_plddt, 1) for best in bests)],
            ["pTM", *(_cell(best.ptm, 3) for best in bests)],
        ]
        if any(best.iptm is not None for best in bests):
            rows.append(["ipTM", *(_cell(best.iptm, 3) for best in bests)])
        rows.append(["ranking score", *(_cell(best.ranking_score, 3) for best in bests)])
        for other in names:
            against = [self._against(best.engine, other) for best in bests]
            rows.append([f"TM-score vs {other}", *(tm for tm, _ in against)])
            rows.append([f"RMSD vs {other} (Å)", *(rmsd for _, rmsd in against)])
        if self.reference is not None:
            scores = [self._to_reference(best.engine) for best in bests]
            rows.append(
                [f"TM-score vs {self.reference}", *(_cell(s.tm_score_b, 4) for s in scores)]
            )
            rows.append([f"RMSD vs {self.reference} (Å)", *(_cell(s.rmsd, 2) for s in scores)])
        return ["engine", *names], rows

    def _against(self, engine: EngineName, other: EngineName) -> tuple[str, str]:
        """TM-score (by ``other``'s length) and RMSD of ``engine``'s best model against
        ``other``'s; dashes on the diagonal."""
        for pair in self.pairs:
            if (pair.a, pair.b) == (engine, other):
                return _cell(pair.tm_score_b, 4), _cell(pair.rmsd, 2)
            if (pair.a, pair.b) == (other, engine):
                return _cell(pair.tm_score_a, 4), _cell(pair.rmsd, 2)
        return "-", "-"


def _cell(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def compare_engines(
    predictions: Sequence[tuple[EngineName, PredictionDir]],
    reference: Path | None = None,
    reference_chain: str | None = None,
) -> tuple[EnginesComparison, list[Comparison]]:
    """Each engine's best model against every later engine's and against the reference; the
    summary, and the comparisons themselves (``a`` and ``b`` named by engine) for the report.
    """
    names = [engine for engine, _ in predictions]
    ref = read_compared(reference, reference_chain) if reference is not None else None
    compared = compare_all([read_compared(p.models[0].path) for _, p in predictions], ref)
    # compare_all lists the pairs in order, then every structure against the reference.
    # The pairs' b is the later engine, the reference's keeps its label.
    labels: list[tuple[str, str | None]] = [
        (a, b) for i, a in enumerate(names) for b in names[i + 1 :]
    ]
    pairs = len(labels)
    labels += [(name, None) for name in names] if ref is not None else []
    comparisons = [replace(c, a=a, b=b or c.b) for c, (a, b) in zip(compared, labels, strict=True)]
    summary = EnginesComparison(
        engines=tuple(_best(engine, prediction) for engine, prediction in predictions),
        pairs=tuple(Scores.of(c) for c in comparisons[:pairs]),
        reference=reference.name if reference is not None else None,
        to_reference=tuple(Scores.of(c) for c in comparisons[pairs:]),
    )
    return summary, comparisons


def _best(engine: EngineName, prediction: PredictionDir) -> EngineBest:
    best = prediction.models[0]
    plddt = plddt_of(best.path)
    return EngineBest(
        engine=engine,
        prediction=prediction.path.name,
        model=best.label,
        run=best.name,
        mean_plddt=best.mean_plddt,
        ptm=best.ptm,
        iptm=best.iptm,
        ranking_score=(
            best.ranking_score if best.ranking_score is not None else best.ranking_confidence
        ),
        plddt=() if plddt is None else tuple(round(float(v), 2) for v in plddt),
        test_weights=prediction.test_weights,
    )

"""The progress a running job reports: ``/status``'s ``output`` while it runs, ``/stream``'s
chunks, and what the RunPod worker sends with ``progress_update``."""

from __future__ import annotations

from foldserve.fold.results import ProgressEvent
from foldserve.jobs.wire import WireModel


class JobProgress(WireModel):
    """One step of a running job: its stage and, while predicting, model, recycle and scores.

    Every field but ``stage`` is there only when it applies.
    """

    stage: str
    """parse, features, templates, compile, predict, done, relax or write (a string, not an
    enum, so that a client still reads the progress of an engine with stages of its own)."""
    elapsed: float | None = None
    """Seconds since the job started."""
    model: str | None = None
    seed: int | None = None
    recycle: int | None = None
    num_recycles: int | None = None
    run: int | None = None
    """The model run under way, from 1 to ``runs``."""
    runs: int | None = None
    """Model runs in the job: models times seeds."""
    mean_plddt: float | None = None
    ptm: float | None = None
    iptm: float | None = None
    """Interface pTM, from the multimer models."""

    @classmethod
    def from_event(cls, event: ProgressEvent) -> JobProgress:
        """A prediction's progress event as the job reports it, rounded for display."""
        predicting = event.recycle is not None
        return cls(
            stage=event.stage,
            elapsed=round(event.elapsed, 1),
            model=event.model,
            seed=event.seed,
            recycle=event.recycle,
            num_recycles=event.num_recycles if predicting else None,
            run=event.run_index + 1 if event.num_runs else None,
            runs=event.num_runs or None,
            mean_plddt=None if event.mean_plddt is None else round(event.mean_plddt, 2),
            ptm=None if event.ptm is None else round(event.ptm, 4),
            iptm=None if event.iptm is None else round(event.iptm, 4),
        )


def describe_progress(progress: JobProgress) -> list[str]:
    """A prediction's progress as short parts: model and seed, run i/n, recycle r/N, scores."""
    parts = []
    if progress.model is not None:
        seed = "" if progress.seed is None else f" seed {progress.seed}"
        parts.append(f"{progress.model}{seed}")
    if progress.run is not None and progress.runs is not None:
        parts.append(f"run {progress.run}/{progress.runs}")
    if progress.recycle is not None:
        total = "?" if progress.num_recycles is None else progress.num_recycles
        parts.append(f"recycle {progress.recycle}/{total}")
    if progress.mean_plddt is not None:
        parts.append(f"pLDDT {progress.mean_plddt:.1f}")
    if progress.ptm is not None:
        parts.append(f"pTM {progress.ptm:.2f}")
    return parts

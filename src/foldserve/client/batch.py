"""Many MSAs, one endpoint: submit, follow and download each, a few at a time.

Layout of the output directory, for an input ``DIR/family.a3m``::

    OUT/family.pdb                   the best model (ranked_0.pdb), once the job is complete
    OUT/family/                      every file of the job (the run_alphafold layout)
    OUT/family/foldserve_job.json    the job record: id, endpoint, last known status

The record is written when the job is submitted and marked COMPLETED last, after every file is
in place. It carries the job's :class:`~foldserve.client.records.InputKey` (the SHA-256 of the
MSA file, the engine and the prediction settings). Running the same batch again skips
completed MSAs, picks up jobs still queued or running on the same endpoint instead of
submitting them again, and resubmits the rest; an MSA whose file, engine or settings changed
since (or whose record has no key) is submitted again whatever its record says, and the reason
reported.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from foldserve.client import records
from foldserve.client.client import JobClient, save_best_model
from foldserve.client.records import InputKey, JobRecord
from foldserve.client.request import build_request
from foldserve.errors import FoldserveError, InputError, JobNotFound
from foldserve.fold.engine import DEFAULT_ENGINE
from foldserve.fold.results import EngineName, PredictOptions
from foldserve.jobs.schema import JobOutput, JobState, JobStatus

RECORD_NAME = "foldserve_job.json"
MAX_CONCURRENCY = 64
_COMPRESSION = (".gz", ".bz2", ".xz")


@dataclass(frozen=True)
class BatchItem:
    """One MSA of the batch and where its results go."""

    name: str
    msa: Path
    out_dir: Path
    best: Path

    @property
    def record(self) -> Path:
        return self.out_dir / RECORD_NAME


#: ``rerun``: the item's record was made from another MSA or other settings (``message`` says
#: which); its job is neither skipped nor followed, but submitted again.
EventKind = Literal["rerun", "skipped", "submitted", "resumed", "update", "done", "failed"]


@dataclass(frozen=True)
class BatchEvent:
    """What happened to one item; ``message`` is the error of a failed one, ``output`` the
    job output of a done one."""

    item: BatchItem
    kind: EventKind
    job_id: str | None = None
    state: JobState | None = None
    output: JobOutput | None = None
    message: str | None = None
    warnings: tuple[str, ...] = ()


@dataclass
class BatchSummary:
    done: list[BatchItem] = field(default_factory=list)
    skipped: list[BatchItem] = field(default_factory=list)
    failed: list[tuple[BatchItem, str]] = field(default_factory=list)


def batch_items(msa_dir: Path, out_dir: Path) -> list[BatchItem]:
    """Every regular, non-hidden file of ``msa_dir``, sorted by name, with its output places.

    The name drops a compression suffix and then the format suffix (``a.sto.gz`` -> ``a``);
    two files with the same name are an error rather than one overwriting the other.
    """
    if not msa_dir.is_dir():
        raise InputError("not a directory", where=str(msa_dir), fix="give a folder of MSAs")
    items: dict[str, BatchItem] = {}
    for path in sorted(msa_dir.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        name = path.name
        for suffix in _COMPRESSION:
            name = name.removesuffix(suffix)
        name = Path(name).stem or name
        if name in items:
            raise InputError(
                f"{items[name].msa.name} and {path.name} would both write {out_dir / name}",
                where=str(msa_dir),
                fix="rename one of them",
            )
        items[name] = BatchItem(name, path, out_dir / name, out_dir / f"{name}.pdb")
    if not items:
        raise InputError("no MSA files found", where=str(msa_dir), fix="add MSA files")
    return list(items.values())


def run_batch(
    client: JobClient,
    items: list[BatchItem],
    *,
    options: PredictOptions,
    execution_timeout_s: float,
    concurrency: int,
    report: Callable[[BatchEvent], None],
    engine: EngineName = DEFAULT_ENGINE,
) -> BatchSummary:
    """Run every item with ``concurrency`` worker threads; ``report`` is called in this thread.

    An item that fails (its MSA, its job, its download) is reported and the others go on.
    Workers are daemon threads: when the caller is interrupted (Ctrl-C) they end with the
    process, and the jobs they followed keep running on the endpoint, to be picked up by the
    next run of the same batch.
    """
    check_concurrency(concurrency, where="concurrency")
    todo: queue.SimpleQueue[BatchItem] = queue.SimpleQueue()
    for item in items:
        todo.put(item)
    events: queue.SimpleQueue[BatchEvent | BaseException | None] = queue.SimpleQueue()

    def work() -> None:
        while True:
            try:
                item = todo.get_nowait()
            except queue.Empty:
                events.put(None)
                return
            try:
                _run_one(client, item, options, engine, execution_timeout_s, events.put)
            except (FoldserveError, OSError) as exc:
                message = exc.one_line() if isinstance(exc, FoldserveError) else str(exc)
                events.put(BatchEvent(item, "failed", message=message))
            except BaseException as exc:  # a bug: re-raised in the caller's thread
                events.put(exc)

    count = min(concurrency, len(items))
    workers = [threading.Thread(target=work, daemon=True) for _ in range(count)]
    for worker in workers:
        worker.start()
    summary = BatchSummary()
    running = len(workers)
    while running:
        event = events.get()
        if event is None:
            running -= 1
            continue
        if isinstance(event, BaseException):
            raise event
        if event.kind == "done":
            summary.done.append(event.item)
        elif event.kind == "skipped":
            summary.skipped.append(event.item)
        elif event.kind == "failed":
            summary.failed.append((event.item, event.message or "failed"))
        report(event)
    return summary


def _run_one(
    client: JobClient,
    item: BatchItem,
    options: PredictOptions,
    engine: EngineName,
    execution_timeout_s: float,
    emit: Callable[[BatchEvent], None],
) -> None:
    key = InputKey.of(item.msa, options, engine)
    previous = records.read(item.record) if item.record.exists() else None
    if previous is not None:
        changed = key.changes_from(previous.key)
        if changed is not None:
            emit(BatchEvent(item, "rerun", job_id=previous.id, message=changed))
            previous = None
    if previous and previous.status == JobStatus.COMPLETED and item.best.exists():
        emit(BatchEvent(item, "skipped", job_id=previous.id))
        return
    record = _resumable(client, previous)
    if record is not None:
        emit(BatchEvent(item, "resumed", job_id=record.id))
    else:
        request = build_request(
            item.msa, options, execution_timeout_s=execution_timeout_s, engine=engine
        )
        job_id = client.submit_request(request, output=item.best, out_dir=item.out_dir)
        record = replace(records.load(job_id), key=key)  # written by the client, without key
        records.save(record, item.record)
        emit(BatchEvent(item, "submitted", job_id=job_id, warnings=request.warnings))

    def update(state: JobState) -> None:
        emit(BatchEvent(item, "update", job_id=state.id, state=state))

    state = client.wait(record.id, on_update=update)
    records.update_status(record, state.status.value)
    if state.status is not JobStatus.COMPLETED:
        records.update_status(record, state.status.value, item.record)
    output = state.completed_output()
    files = client.download(output, item.out_dir)
    save_best_model(files, item.best)
    records.update_status(record, JobStatus.COMPLETED.value, item.record)
    emit(BatchEvent(item, "done", job_id=record.id, state=state, output=output))


def check_concurrency(concurrency: int, *, where: str) -> None:
    """Refuse a number of jobs followed at once outside 1 to :data:`MAX_CONCURRENCY`."""
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise InputError(
            f"{concurrency} is out of range", where=where, fix=f"give 1 to {MAX_CONCURRENCY}"
        )


def _resumable(client: JobClient, previous: JobRecord | None) -> JobRecord | None:
    """The previous run's job when it is on this endpoint and still queued, running or
    complete (so it is followed, not submitted again)."""
    if previous is None or previous.base_url != client.records_url:
        return None
    try:
        state = client.status(previous.id)
    except JobNotFound:
        return None
    failed = state.status.finished and state.status is not JobStatus.COMPLETED
    return None if failed else previous

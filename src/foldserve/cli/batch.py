"""``foldserve submit --msa-dir``: many MSAs on one endpoint, with overall progress.

The work (and the output layout) is :mod:`foldserve.client.batch`; this module checks the
flags and shows progress.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from foldserve.cli.console import err
from foldserve.client.batch import (
    BatchEvent,
    BatchItem,
    batch_items,
    check_concurrency,
    run_batch,
)
from foldserve.client.client import JobClient
from foldserve.errors import InputError
from foldserve.fold.engine import DEFAULT_ENGINE
from foldserve.fold.results import EngineName, PredictOptions
from foldserve.jobs.schema import JobStatus


def check_batch_flags(
    output: Path | None,
    out_dir: Path | None,
    no_wait: bool,
    concurrency: int,
    msa_format: str,
    query: str | None,
) -> None:
    def refuse(flag: str, problem: str, fix: str) -> InputError:
        return InputError(problem, where=flag, fix=fix)

    if out_dir is None:
        raise refuse("--out-dir", "--msa-dir needs --out-dir", "add --out-dir OUT")
    if output is not None:
        raise refuse("--output", "not used with --msa-dir", "each best model goes to OUT/NAME.pdb")
    if no_wait:
        raise refuse("--no-wait", "not available with --msa-dir", "leave it out")
    if msa_format != "auto" or query is not None:
        raise refuse(
            "--format",
            "--format and --query are not used with --msa-dir",
            "leave them out: each file's format is recognised and its first row is the query",
        )
    check_concurrency(concurrency, where="--concurrency")


def submit_batch(
    client: JobClient,
    msa_dir: Path,
    out_dir: Path,
    options: PredictOptions,
    timeout: float,
    concurrency: int,
    *,
    plots: bool,
    engine: EngineName = DEFAULT_ENGINE,
) -> None:
    items = batch_items(msa_dir, out_dir)
    states: dict[str, JobStatus] = {}
    warned_test_weights = False
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err(),
    ) as bar:
        task = bar.add_task("starting", total=len(items))

        def report(event: BatchEvent) -> None:
            nonlocal warned_test_weights
            name = event.item.name
            if event.kind == "submitted":
                states[name] = JobStatus.IN_QUEUE
                bar.console.print(
                    f"{name}: job {event.job_id} submitted", highlight=False, soft_wrap=True
                )
                for warning in event.warnings:
                    bar.console.print(
                        f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True
                    )
            elif event.kind == "rerun":
                bar.console.print(
                    f"{name}: {event.message}: running again", highlight=False, soft_wrap=True
                )
            elif event.kind == "resumed":
                bar.console.print(
                    f"{name}: following job {event.job_id} again", highlight=False, soft_wrap=True
                )
            elif event.kind == "update" and event.state is not None:
                states[name] = event.state.status
            else:
                states.pop(name, None)
                if event.kind == "done" and plots:
                    from foldserve.pipeline.figures import write_figures_into  # matplotlib

                    write_figures_into(event.item.out_dir)
                bar.advance(task)
                bar.console.print(
                    _finished_line(event.item, event), highlight=False, soft_wrap=True
                )
                if event.output is not None and event.output.test_weights:
                    if not warned_test_weights:
                        bar.console.print(
                            "[bold red]made with random TEST WEIGHTS: not protein structures"
                            "[/bold red]"
                        )
                    warned_test_weights = True
            running = sum(s is JobStatus.IN_PROGRESS for s in states.values())
            bar.update(task, description=f"{running} running, {len(states) - running} queued")

        try:
            summary = run_batch(
                client,
                items,
                options=options,
                execution_timeout_s=timeout,
                concurrency=concurrency,
                report=report,
                engine=engine,
            )
        except KeyboardInterrupt:
            bar.stop()
            err().print(
                "stopped; submitted jobs keep running on the endpoint. Run the same command "
                "again to pick them up: finished MSAs are skipped, running jobs followed again.",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(130) from None
    err().print(
        f"{len(summary.done)} done, {len(summary.skipped)} already done, "
        f"{len(summary.failed)} failed; outputs in {out_dir}/",
        highlight=False,
        soft_wrap=True,
    )
    if summary.failed:
        for item, message in summary.failed:
            err().print(
                f"[red]failed:[/red] {item.msa}: {message}", highlight=False, soft_wrap=True
            )
        raise typer.Exit(1)


def _finished_line(item: BatchItem, event: BatchEvent) -> str:
    if event.kind == "skipped":
        return f"{item.name}: already done ({item.best})"
    if event.kind == "failed":
        return f"[red]✗[/red] {item.name}: {event.message}"
    ranking = event.output.ranking if event.output else ()
    score = f"  pLDDT {ranking[0].mean_plddt:.1f}" if ranking else ""
    return f"[green]✓[/green] {item.name}: {item.best}{score}"

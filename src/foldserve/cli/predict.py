"""``foldserve predict``: fold an MSA in this process, with a live progress display."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from foldserve.cli.console import err
from foldserve.cli.options import (
    TEST_WEIGHTS_WARNING,
    ModelsOption,
    MsaFormatOption,
    NumRecyclesOption,
    NumSeedsOption,
    QueryOption,
    RankByOption,
    SeedOption,
    ToleranceOption,
    predict_options,
)
from foldserve.fold.predictor import Precision, Predictor
from foldserve.fold.results import Prediction, PredictOptions, ProgressCallback, ProgressEvent
from foldserve.msa.model import Msa
from foldserve.msa.reading import read


def predict_command(
    msa_path: Annotated[str, typer.Option("--msa", help="MSA file in any supported format.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where the best model goes (PDB).")
    ],
    out_dir: Annotated[
        Path | None,
        typer.Option(
            help="Directory for all outputs (default: OUTPUT without .pdb + _prediction)."
        ),
    ] = None,
    models: ModelsOption = "1,2,3,4,5",
    num_recycles: NumRecyclesOption = 3,
    recycle_early_stop_tolerance: ToleranceOption = None,
    seed: SeedOption = 0,
    num_seeds: NumSeedsOption = 1,
    rank_by: RankByOption = "plddt",
    params_dir: Annotated[
        Path | None,
        typer.Option(help="Weights directory (default: $PARAM_DIR or ~/.cache/foldserve)."),
    ] = None,
    msa_format: MsaFormatOption = "auto",
    query: QueryOption = None,
    templates: Annotated[bool, typer.Option(help="Use templates (not supported yet).")] = False,
    precision: Annotated[
        str, typer.Option(help="auto (bfloat16 on GPU, float32 on CPU), bfloat16 or float32.")
    ] = "auto",
) -> None:
    """Predict structures from an MSA with AlphaFold2, in this process."""
    options = predict_options(
        models,
        num_recycles,
        recycle_early_stop_tolerance,
        seed,
        num_seeds,
        rank_by,
        templates=templates,
    )
    alignment = read(msa_path, format=msa_format, query=query)
    for warning in alignment.warnings:
        err().print(f"[yellow]warning:[/yellow] {msa_path}: {warning}", highlight=False)
    with err().status("Loading AlphaFold2 …", spinner="dots"):
        # An unknown precision is the Predictor's InputError (where="precision").
        predictor = Predictor(params_dir, precision=cast(Precision, precision))
        predictor.check_fits(alignment)
    if predictor.test_weights:
        err().print(Panel(TEST_WEIGHTS_WARNING, title="warning", border_style="bold red"))
    directory = out_dir or output.with_name(output.stem + "_prediction")
    with progress_bar(predictor, alignment, options) as show:
        prediction = predictor.predict_to_dir(
            alignment, directory, options, best_model=output, progress=show
        )
    print_summary(prediction, output, directory)


@contextmanager
def progress_bar(
    predictor: Predictor, alignment: Msa, options: PredictOptions
) -> Iterator[ProgressCallback]:
    """A Rich progress bar (model, recycle, elapsed time) and the callback that moves it."""
    steps = len(options.models) * options.num_seeds * (options.num_recycles + 1)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err(),
    ) as bar:
        task = bar.add_task("features", total=steps)

        def show(event: ProgressEvent) -> None:
            if event.stage == "compile":
                bar.update(task, description=f"compiling for {predictor.shape_for(alignment)}")
            elif event.stage == "predict" and event.recycle is not None:
                run_steps = options.num_recycles + 1
                done = event.run_index * run_steps + event.recycle + 1
                bar.update(
                    task,
                    completed=done,
                    description=(
                        f"{event.model} seed {event.seed} recycle {event.recycle}/"
                        f"{event.num_recycles}  pLDDT {event.mean_plddt:.1f} pTM {event.ptm:.2f}"
                    ),
                )
            elif event.stage == "done":
                bar.update(task, completed=steps, description="done")

        yield show


def print_summary(prediction: Prediction, output: Path, directory: Path) -> None:
    table = Table(title="ranking", title_justify="left")
    for column in ("rank", "model", "seed", "mean pLDDT", "pTM", "recycles", "seconds"):
        table.add_column(column, justify="right" if column != "model" else "left")
    for rank, run in enumerate(prediction.ranked):
        table.add_row(
            str(rank),
            run.model,
            str(run.seed),
            f"{run.mean_plddt:.1f}",
            f"{run.ptm:.3f}",
            str(run.recycles),
            f"{run.seconds:.1f}",
        )
    err().print(table)
    err().print(f"best model: {output}   all outputs: {directory}/", highlight=False)
    if prediction.test_weights:
        err().print("[bold red]made with random TEST WEIGHTS: not a protein structure[/bold red]")

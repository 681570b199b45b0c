"""``foldserve predict``: fold one MSA or many in this process, as ``colabfold_batch`` does.

``foldserve predict INPUT OUTPUT_DIR``: INPUT is an MSA file, a file holding several MSAs
(Stockholm blocks, NUL-separated A3M) or a folder of MSA files. One MSA is written to
OUTPUT_DIR itself; several to ``OUTPUT_DIR/NAME/`` with the best model as ``OUTPUT_DIR/NAME.pdb``
(the layout ``submit --msa-dir`` writes). Everything that can be refused (every MSA, every output
place, the weights, the memory) is refused before the first model runs. Each prediction folder
holds exactly one run (:mod:`foldserve.fold.run_dir`): its models, scores, plots, ``config.json``
and ``log.txt``.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TypeVar, cast

import typer
from rich.panel import Panel
from rich.table import Table

from foldserve.cli.console import err
from foldserve.cli.options import (
    TEST_WEIGHTS_WARNING,
    ModelsOption,
    MsaFormatOption,
    NumRecyclesOption,
    NumSeedsOption,
    PlotsOption,
    QueryOption,
    RankByOption,
    SeedOption,
    ToleranceOption,
    predict_options,
)
from foldserve.cli.run_log import RunLog
from foldserve.errors import InputError
from foldserve.files import atomic_write, write_text
from foldserve.fold import run_dir
from foldserve.fold.features import msa_sizes
from foldserve.fold.outputs import (
    best_model_source,
    write_best_model,
    write_config,
    write_prediction,
)
from foldserve.fold.predictor import Precision, Predictor
from foldserve.fold.results import Prediction, PredictOptions
from foldserve.fold.run_config import read_config
from foldserve.fold.run_dir import StagedRun
from foldserve.msa import stats
from foldserve.msa.model import Msa
from foldserve.msa.reading import read_each

T = TypeVar("T")


@dataclass(frozen=True)
class Query:
    """One MSA to fold and where its results go."""

    name: str
    msa: Msa
    target: Path
    best_model: Path | None


def predict_command(
    input_path: Annotated[
        str | None,
        typer.Argument(
            metavar="INPUT",
            help="MSA file (any format), a file of several MSAs, or a folder of MSA files.",
            show_default=False,
        ),
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Argument(
            metavar="OUTPUT_DIR",
            help="Folder for the results (one subfolder per MSA when there are several).",
            show_default=False,
        ),
    ] = None,
    msa_path: Annotated[
        str | None, typer.Option("--msa", help="Same as INPUT.", show_default=False)
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option(help="Same as OUTPUT_DIR.", show_default=False)
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Also write the best model here, in the format its name ends in "
            "(.pdb, .cif, .mmcif, .pdb.gz, .cif.gz); one MSA only.",
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an earlier run in OUTPUT_DIR whole.")
    ] = False,
    plots: PlotsOption = True,
    zip_results: Annotated[
        bool, typer.Option("--zip", help="Also pack each result folder as FOLDER.zip.")
    ] = False,
    sort_queries_by: Annotated[
        str, typer.Option(help="Order of several MSAs: length (shortest first) or none.")
    ] = "length",
    models: ModelsOption = "1,2,3,4,5",
    num_recycles: NumRecyclesOption = 3,
    recycle_early_stop_tolerance: ToleranceOption = None,
    stop_at_score: Annotated[
        float | None,
        typer.Option(
            help="Run no further model once one reaches this mean pLDDT (pTM x 100 with "
            "--rank-by ptm).",
            show_default=False,
        ),
    ] = None,
    seed: SeedOption = 0,
    num_seeds: NumSeedsOption = 1,
    rank_by: RankByOption = "plddt",
    max_msa: Annotated[
        str | None,
        typer.Option(
            help="CLUSTERS:EXTRA MSA rows the network reads (default 512:5120).",
            show_default=False,
        ),
    ] = None,
    save_all: Annotated[
        bool,
        typer.Option("--save-all", help="Also save each run's raw outputs (result_*.pkl)."),
    ] = False,
    params_dir: Annotated[
        Path | None,
        typer.Option(
            help="Weights directory (default: $PARAM_DIR or ~/.cache/foldserve).",
            show_default=False,
        ),
    ] = None,
    msa_format: MsaFormatOption = "auto",
    query: QueryOption = None,
    templates: Annotated[bool, typer.Option(help="Use templates (not supported yet).")] = False,
    precision: Annotated[
        str, typer.Option(help="auto (bfloat16 on GPU, float32 on CPU), bfloat16 or float32.")
    ] = "auto",
) -> None:
    """Predict structures from MSAs with AlphaFold2, in this process."""
    clusters, extra = _max_msa(max_msa)
    options = predict_options(
        models,
        num_recycles,
        recycle_early_stop_tolerance,
        seed,
        num_seeds,
        rank_by,
        templates=templates,
        stop_at_score=stop_at_score,
        max_msa_clusters=clusters,
        max_extra_msa=extra,
    )
    source = _one_of(input_path, msa_path, "INPUT", "--msa", "an MSA file or folder")
    if source is None:
        raise InputError(
            "no MSA given", where="INPUT", fix="run `foldserve predict MSA_FILE OUTPUT_DIR`"
        )
    directory = _one_of(output_dir, out_dir, "OUTPUT_DIR", "--out-dir", "a folder")
    if directory is None and output is not None:
        directory = output.with_name(output.stem + "_prediction")  # before OUTPUT_DIR existed
    if directory is None:
        raise InputError(
            "no output folder given",
            where="OUTPUT_DIR",
            fix="run `foldserve predict MSA_FILE OUTPUT_DIR`",
        )
    if sort_queries_by not in ("length", "none"):
        raise InputError(
            f"unknown order {sort_queries_by!r}",
            where="--sort-queries-by",
            fix="use length or none",
        )
    if output is not None:
        _check_best_model_path(output)
    queries = _queries(source, directory, output, msa_format, query)
    if sort_queries_by == "length":
        queries.sort(key=lambda q: q.msa.query_length)
    for item in queries:
        run_dir.check_target(item.target, overwrite=overwrite)
    with err().status("Loading AlphaFold2 …", spinner="dots"):
        # An unknown precision is the Predictor's InputError (where="precision").
        predictor = Predictor(params_dir, precision=cast(Precision, precision))
        for item in queries:
            predictor.check_input(item.msa, options)
    if predictor.test_weights:
        err().print(Panel(TEST_WEIGHTS_WARNING, title="warning", border_style="bold red"))
    for number, item in enumerate(queries, start=1):
        log = RunLog(err(highlight=False))
        if len(queries) > 1:
            heading = f"query {number}/{len(queries)}: {item.name}"
            log.note(heading, markup=f"[bold]{heading}[/bold]")
        neff = _describe_msa(item.msa, options, log)
        staged = run_dir.prepare(item.target, overwrite=overwrite)
        try:
            with log.following(options, predictor.shape_for(item.msa, options)) as show:
                prediction = predictor.predict(item.msa, options, progress=show, keep_raw=save_all)
        except BaseException:
            run_dir.discard(staged)
            raise
        _log_ranking(prediction, log)
        _write_run(prediction, staged, item, log, neff=neff, plots=plots, save_all=save_all)
        if zip_results:
            _zip(item.target)
        _print_summary(prediction, item, log)


def _one_of(a: T | None, b: T | None, name_a: str, name_b: str, what: str) -> T | None:
    """The value given as a positional argument or as its option, not both."""
    if a is not None and b is not None and a != b:
        raise InputError(f"both {name_a} and {name_b} given", where=name_b, fix=f"give {what} once")
    return a if a is not None else b


def _max_msa(text: str | None) -> tuple[int | None, int | None]:
    """``--max-msa 512:5120`` → (512, 5120)."""
    if text is None:
        return None, None
    parts = text.split(":")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise InputError(
            f"cannot read {text!r}", where="--max-msa", fix="write CLUSTERS:EXTRA, e.g. 512:5120"
        )
    return int(parts[0]), int(parts[1])


def _check_best_model_path(path: Path) -> None:
    """Refuse, before any work, a best-model path that cannot be written."""
    if path.is_dir():
        raise InputError("is a folder", where=str(path), fix="give a file name such as best.pdb")
    best_model_source(path)
    parent = path.parent
    if not parent.is_dir():
        raise InputError("no such folder", where=str(parent), fix="create it, or fix the path")
    if not os.access(parent, os.W_OK):
        raise InputError(
            "cannot write in this folder", where=str(parent), fix="choose a folder you can write"
        )


def _queries(
    source: str,
    directory: Path,
    output: Path | None,
    msa_format: str,
    query: str | None,
) -> list[Query]:
    """Every MSA of ``source``, read and checked, with where its results go."""
    path = Path(source)
    if path.is_dir():
        files = sorted(str(p) for p in path.iterdir() if p.is_file() and p.name[0] != ".")
        if not files:
            raise InputError("no MSA files here", where=source, fix="give a folder of MSA files")
    else:
        files = [source]  # also "-" for standard input
    found = [
        (named.name, named.msa)
        for file in files
        for named in read_each(file, format=msa_format, query=query)
    ]
    if len(found) == 1:
        name, alignment = found[0]
        return [Query(name, alignment, directory, output)]
    if output is not None:
        raise InputError(
            f"{len(found)} MSAs given",
            where="--output",
            fix="leave it out: each best model goes to OUTPUT_DIR/NAME.pdb",
        )
    queries: dict[str, Query] = {}
    for name, alignment in found:
        if name in queries:
            raise InputError(
                f"{queries[name].msa.source} and {alignment.source} would both write "
                f"{directory / name}",
                where=source,
                fix="rename one of them",
            )
        queries[name] = Query(name, alignment, directory / name, directory / f"{name}.pdb")
    return list(queries.values())


def _describe_msa(msa: Msa, options: PredictOptions, log: RunLog) -> float:
    """Say what the user should know about the MSA before GPU time is spent on it (the
    warnings ``msa inspect`` gives); return its Neff."""
    report = stats.inspect(msa)
    clusters, extra = msa_sizes(len(msa), options.max_msa_clusters, options.max_extra_msa)
    used = min(len(msa), clusters + extra)
    log.note(
        f"{report.query_name}: {report.query_length} residues, {report.depth} rows "
        f"({report.unique} unique), Neff {report.neff:.1f}; the network reads {used} of them "
        f"({clusters} cluster centres + {used - clusters} extra)"
    )
    for warning in report.warnings:
        log.note(f"warning: {warning}", markup=f"[yellow]warning:[/yellow] {warning}")
    return report.neff


def _write_run(
    prediction: Prediction,
    staged: StagedRun,
    item: Query,
    log: RunLog,
    *,
    neff: float,
    plots: bool,
    save_all: bool,
) -> None:
    """Every file of the run into the staging folder, then the folder into place; on a write
    failure the results are rescued and the error names where."""

    def write_all(folder: Path) -> None:
        write_prediction(prediction, folder, neff=neff, save_all=save_all)
        if plots:
            from foldserve.pipeline.figures import write_figures_into  # matplotlib: only here

            for path in write_figures_into(folder).values():
                log.note(f"plot {path.name}", show=False)
        write_text(folder / "log.txt", log.text())
        config = read_config(folder)
        assert config is not None  # write_prediction wrote it
        write_config(folder, config)  # now listing the plots and the log too

    try:
        write_all(staged.staging)
        run_dir.commit(staged)
        if item.best_model is not None:
            write_best_model(item.target, item.best_model)
    except OSError as exc:
        run_dir.discard(staged)
        raise run_dir.rescue(write_all, exc, item.target) from None


def _zip(folder: Path) -> Path:
    archive = folder.with_name(folder.name + ".zip")
    with atomic_write(archive, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, f"{folder.name}/{path.name}")
    return archive


def _log_ranking(prediction: Prediction, log: RunLog) -> None:
    for rank, run in enumerate(prediction.ranked):
        log.note(
            f"rank {rank}: {run.name} pLDDT {run.mean_plddt:.1f} pTM {run.ptm:.3f} "
            f"recycles {run.recycles} ({run.seconds:.1f} s)",
            show=False,
        )


def _print_summary(prediction: Prediction, item: Query, log: RunLog) -> None:
    table = Table(title=f"ranking: {item.name}", title_justify="left")
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
    log.console.print(table)
    if prediction.skipped_runs:
        log.console.print(
            f"{prediction.skipped_runs} run(s) skipped: a model reached --stop-at-score "
            f"{prediction.options.stop_at_score:g}",
            highlight=False,
        )
    best = f"best model: {item.best_model}   " if item.best_model else ""
    log.console.print(f"{best}all outputs: {item.target}/", highlight=False, soft_wrap=True)
    plots = sorted(item.target.glob("*.png"))
    if plots:
        log.console.print(
            "plots: " + ", ".join(str(p) for p in plots), highlight=False, soft_wrap=True
        )
    if prediction.test_weights:
        log.console.print(
            "[bold red]made with random TEST WEIGHTS: not a protein structure[/bold red]"
        )

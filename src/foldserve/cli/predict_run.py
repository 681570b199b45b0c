"""The steps of ``foldserve predict`` for one MSA after another: collect and check the MSAs and
where each goes, say what will be folded, write a finished run into place (plots, log and
``config.json`` included), summarise it."""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from rich import box
from rich.table import Table

from foldserve.cli.run_log import RunLog
from foldserve.errors import InputError
from foldserve.files import atomic_write, write_text
from foldserve.fold import run_dir
from foldserve.fold.alphafold2.features import msa_sizes
from foldserve.fold.outputs import (
    best_model_source,
    write_best_model,
    write_config,
    write_prediction,
)
from foldserve.fold.relax import Relaxation, relax_prediction
from foldserve.fold.results import EngineName, Prediction, PredictOptions
from foldserve.fold.run_config import RelaxMode, read_config
from foldserve.fold.run_dir import StagedRun
from foldserve.msa import stats
from foldserve.msa.model import Msa
from foldserve.msa.reading import NamedMsa, read_each
from foldserve.msa.search.results import SearchResult, hits_file_name


@dataclass(frozen=True)
class Placement:
    """Where one query's results go: its folder and, when asked for, its best model."""

    name: str
    target: Path
    best_model: Path | None


@dataclass(frozen=True)
class Query:
    """One MSA to fold, where its results go, and the search that built it (if one did)."""

    place: Placement
    msa: Msa
    search: SearchResult | None = None


def check_best_model_path(path: Path) -> None:
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


def read_msas(source: str, msa_format: str, query: str | None) -> list[NamedMsa]:
    """Every MSA of ``source`` (a file, a file of several, a folder of files), read and checked."""
    path = Path(source)
    if path.is_dir():
        files = sorted(str(p) for p in path.iterdir() if p.is_file() and p.name[0] != ".")
        if not files:
            raise InputError("no MSA files here", where=source, fix="give a folder of MSA files")
    else:
        files = [source]  # also "-" for standard input
    return [named for file in files for named in read_each(file, format=msa_format, query=query)]


def place(names: list[str], directory: Path, output: Path | None, where: str) -> list[Placement]:
    """One query's results go to ``directory`` (its best model to ``output``); several go to
    ``directory/NAME/`` with the best model as ``directory/NAME.pdb``."""
    if len(names) == 1:
        return [Placement(names[0], directory, output)]
    if output is not None:
        raise InputError(
            f"{len(names)} queries given",
            where="--output",
            fix="leave it out: each best model goes to OUTPUT_DIR/NAME.pdb",
        )
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(
                f"two inputs are named {name}: both would write {directory / name}",
                where=where,
                fix="rename one of them",
            )
        seen.add(name)
    return [Placement(name, directory / name, directory / f"{name}.pdb") for name in names]


def describe_msa(msa: Msa, options: PredictOptions, log: RunLog, engine: EngineName) -> float:
    """Say what the user should know about the MSA before GPU time is spent on it (the
    warnings ``msa inspect`` gives) and what ``engine`` reads of it; return its Neff."""
    report = stats.inspect(msa)
    if engine == "openfold3":
        reads = "openfold3 reads its distinct rows"
    elif msa.complex is not None:
        # The multimer samples its rows inside the network from the merged chains' MSA.
        reads = f"a {msa.complex.describe()}"
    else:
        clusters, extra = msa_sizes(len(msa), options.max_msa_clusters, options.max_extra_msa)
        used = min(len(msa), clusters + extra)
        reads = (
            f"the network reads {used} of them ({clusters} cluster centres + "
            f"{used - clusters} extra)"
        )
    log.note(
        f"{report.query_name}: {report.query_length} residues, {report.depth} rows "
        f"({report.unique} unique), Neff {report.neff:.1f}; {reads}"
    )
    for warning in report.warnings:
        log.warn(warning)
    return report.neff


def write_run(
    prediction: Prediction,
    staged: StagedRun,
    item: Query,
    log: RunLog,
    *,
    neff: float,
    plots: bool,
    save_all: bool,
    relaxation: Relaxation,
) -> None:
    """Every file of the run into the staging folder, then the folder into place; on a write
    failure the results are rescued and the error names where."""

    search = item.search

    def write_all(folder: Path) -> None:
        summary = search.summary() if search else None
        write_prediction(
            prediction,
            folder,
            neff=neff,
            save_all=save_all,
            search=summary,
            relaxation=relaxation,
        )
        for database in search.hits if search else ():
            write_text(folder / hits_file_name(database.database), database.a3m)
        if plots:
            from foldserve.pipeline.figures import write_figures_into  # matplotlib: only here

            for path in write_figures_into(folder).values():
                log.note(f"plot {path.name}", show=False)
        write_text(folder / "log.txt", log.text())
        config = read_config(folder)
        assert config is not None  # write_prediction wrote it
        write_config(folder, config)  # now listing the plots and the log too

    place = item.place
    try:
        write_all(staged.staging)
        run_dir.commit(staged)
        if place.best_model is not None:
            write_best_model(place.target, place.best_model)
    except OSError as exc:
        run_dir.discard(staged)
        raise run_dir.rescue(write_all, exc, place.target) from None


def zip_folder(folder: Path) -> Path:
    archive = folder.with_name(folder.name + ".zip")
    with atomic_write(archive, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, f"{folder.name}/{path.name}")
    return archive


def relax_runs(prediction: Prediction, mode: RelaxMode, log: RunLog) -> Relaxation:
    """Amber-relax the runs ``mode`` names, one line each before and after."""

    def starting(name: str, index: int, count: int) -> None:
        log.note(f"relaxing {name} ({index}/{count}) …")

    relaxation = relax_prediction(prediction, mode, progress=starting)
    for name, result in relaxation.models.items():
        log.note(
            f"relaxed {name} on {result.platform} in {result.seconds:.1f} s: residues in "
            f"violation {result.violations_before} -> {result.violations_after}, moved "
            f"{result.rmsd:.2f} Å RMSD"
        )
    for warning in relaxation.warnings():
        log.note(f"warning: {warning}", markup=f"[yellow]warning:[/yellow] {warning}")
    return relaxation


#: How the table and the log name each ranking metric.
RANKING_NAMES = {
    "plddt": "mean pLDDT",
    "ptm": "pTM",
    "iptm": "ipTM",
    "multimer": "0.8 ipTM + 0.2 pTM",
    "auto": "mean pLDDT",
    "engine": "the engine's own ranking score",
}


def _has_iptm(prediction: Prediction) -> bool:
    return any(run.iptm is not None for run in prediction.ranked)


def _has_engine_score(prediction: Prediction) -> bool:
    """Whether the runs carry the engine's own ranking score (OpenFold3's)."""
    return any(run.engine_score is not None for run in prediction.ranked)


def log_ranking(prediction: Prediction, log: RunLog, relaxation: Relaxation) -> None:
    metric = RANKING_NAMES.get(prediction.rank_by, prediction.rank_by)
    log.note(f"{prediction.engine.name}: ranked by {metric}", show=False)
    for rank, run in enumerate(prediction.ranked):
        relaxed = ", relaxed" if run.name in relaxation.models else ""
        interface = ""
        if run.iptm is not None:
            interface = f" ipTM {run.iptm:.3f}"
            if run.engine_score is None:
                interface += f" confidence {run.ranking_confidence:.3f}"
        score = "" if run.engine_score is None else f" score {run.engine_score:.3f}"
        log.note(
            f"rank {rank}: {run.name} pLDDT {run.mean_plddt:.1f} pTM {run.ptm:.3f}{interface}"
            f"{score} recycles {run.recycles} ({run.seconds:.1f} s{relaxed})",
            show=False,
        )


def print_summary(
    prediction: Prediction, place: Placement, log: RunLog, relaxation: Relaxation
) -> None:
    metric = RANKING_NAMES.get(prediction.rank_by, prediction.rank_by)
    chains = prediction.chain_list
    caption = f"ranked by {metric}"
    multimer = _has_iptm(prediction)
    # OpenFold3's own ranking score takes the place of AlphaFold-multimer's confidence.
    scored = _has_engine_score(prediction)
    if scored and prediction.rank_by == "engine":
        caption = "ranked by score, the engine's own ranking score"
    elif multimer and not scored and prediction.rank_by == "multimer":
        caption = "ranked by conf = 0.8 ipTM + 0.2 pTM"
    elif multimer and not scored:
        caption += "; conf = 0.8 ipTM + 0.2 pTM"
    if prediction.is_complex:
        caption += "; chains " + ", ".join(f"{c.id} ({c.length})" for c in chains)
    table = Table(
        title=f"ranking: {place.name} ({prediction.engine.name})",
        title_justify="left",
        caption=caption,
        caption_justify="left",
        # A complex's more columns (or the engine's score) still fit 80 characters, model
        # names whole.
        box=box.SIMPLE_HEAD if multimer or scored else box.HEAVY_HEAD,
        pad_edge=not (multimer or scored),
        collapse_padding=multimer or scored,
    )
    columns = ["rank", "model", "seed", "mean pLDDT", "pTM"]
    if multimer:
        columns = ["rank", "model", "seed", "pLDDT", "pTM", "ipTM"]
    if multimer and not scored:
        columns.append("conf")
    if scored:
        columns.append("score")
    columns += ["recycles", "seconds"]
    if relaxation.mode != "none":
        columns.append("relaxed")
    for column in columns:
        if column == "model":
            table.add_column(column, no_wrap=True)
        else:
            table.add_column(column, justify="right")
    for rank, run in enumerate(prediction.ranked):
        row = [str(rank), run.model, str(run.seed), f"{run.mean_plddt:.1f}", f"{run.ptm:.3f}"]
        if multimer:
            row.append("-" if run.iptm is None else f"{run.iptm:.3f}")
        if multimer and not scored:
            row.append(f"{run.ranking_confidence:.3f}")
        if scored:
            row.append("-" if run.engine_score is None else f"{run.engine_score:.3f}")
        row += [str(run.recycles), f"{run.seconds:.1f}"]
        if relaxation.mode != "none":
            result = relaxation.models.get(run.name)
            row.append(f"{result.seconds:.1f} s" if result else "no")
        table.add_row(*row)
    log.console.print(table)
    if prediction.skipped_runs:
        log.console.print(
            f"{prediction.skipped_runs} run(s) skipped: a model reached --stop-at-score "
            f"{prediction.options.stop_at_score:g}",
            highlight=False,
        )
    best = f"best model: {place.best_model}   " if place.best_model else ""
    log.console.print(f"{best}all outputs: {place.target}/", highlight=False, soft_wrap=True)
    plots = sorted(place.target.glob("*.png"))
    if plots:
        log.console.print(
            "plots: " + ", ".join(str(p) for p in plots), highlight=False, soft_wrap=True
        )
    if prediction.test_weights:
        log.console.print(
            "[bold red]made with random TEST WEIGHTS: not a protein structure[/bold red]"
        )

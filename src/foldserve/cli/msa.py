"""``foldserve msa inspect | convert | filter | search``."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.table import Table

from foldserve import msa
from foldserve.cli.console import err, out
from foldserve.cli.search_options import (
    CpusOption,
    DatabaseOption,
    EmailOption,
    MaxHitsOption,
    NoCacheOption,
    SequenceOption,
    ServerOption,
    ToolOption,
    search_settings,
)
from foldserve.errors import InputError
from foldserve.files import write_text
from foldserve.msa.search.settings import DEFAULT_MAX_HITS, DEFAULT_TIMEOUT_S, PairMode
from foldserve.msa.stats import MsaReport

if TYPE_CHECKING:
    pass

app = typer.Typer(
    help="Inspect, convert, filter and search MSAs (A3M, Stockholm, FASTA, A2M, Clustal).",
    no_args_is_help=True,
)

InputPath = Annotated[str, typer.Argument(help="MSA file (gzip/bzip2/xz fine), or - for stdin.")]
FormatOption = Annotated[
    str, typer.Option("--format", "-f", help="Input format: auto, a3m, fasta, a2m, sto, clustal.")
]
QueryOption = Annotated[
    str | None, typer.Option("--query", "-q", help="Name of the query row (default: the first).")
]

SPARK = " ▁▂▃▄▅▆▇█"


def _read(path: str, fmt: str, query: str | None) -> msa.Msa:
    with err().status(f"Reading {path} …", spinner="dots"):
        return msa.read(path, format=fmt, query=query)


def _sparkline(values: list[float], width: int = 80) -> str:
    if len(values) > width:
        edges = [round(i * len(values) / width) for i in range(width + 1)]
        values = [min(values[a:b]) for a, b in itertools.pairwise(edges)]
    return "".join(SPARK[min(len(SPARK) - 1, round(v * (len(SPARK) - 1)))] for v in values)


def _print_report(report: MsaReport) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    cover = report.coverage
    table.add_row("file", report.source)
    table.add_row("format", report.format)
    table.add_row("query", f"{report.query_name} ({report.query_length} residues)")
    if report.complex is not None:
        table.add_row("chains", report.complex.describe())
    table.add_row("depth", f"{report.depth} rows (query included)")
    table.add_row("unique", f"{report.unique} rows")
    sampled = "" if report.neff_rows == report.depth else f" (estimated on {report.neff_rows} rows)"
    table.add_row("Neff (80% id)", f"{report.neff:.1f}{sampled}")
    table.add_row(
        "coverage",
        f"min {cover.min:.0%}  mean {cover.mean:.0%}  max {cover.max:.0%}  "
        f"({cover.low_positions} positions below 30%)",
    )
    table.add_row("per position", _sparkline(cover.per_position))
    out().print(table)
    for warning in report.warnings:
        err().print(f"[yellow]warning:[/yellow] {warning}")


@app.command("inspect")
def inspect_command(
    path: InputPath,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    fmt: FormatOption = "auto",
    query: QueryOption = None,
) -> None:
    """Format, query, depth, unique rows, Neff, coverage and warnings of an MSA."""
    alignment = _read(path, fmt, query)
    with err().status("Computing Neff …", spinner="dots"):
        report = msa.inspect(alignment)
    if as_json:
        sys.stdout.write(json.dumps(report.to_json()) + "\n")
    else:
        _print_report(report)


def _warn_all(alignment: msa.Msa) -> None:
    for warning in alignment.warnings:
        err().print(f"[yellow]warning:[/yellow] {warning}")


ToOption = Annotated[
    str | None,
    typer.Option("--to", "-t", help="Output format: a3m, fasta or sto (default: from OUT's name)."),
]
NoInsertions = Annotated[
    bool,
    typer.Option("--no-insertions", help="Write query columns only (drop inserted residues)."),
]


def _require_format_for_stdout(destination: str, to: str | None) -> None:
    """Standard output has no file name to take the format from."""
    if destination == "-" and to is None:
        raise InputError(
            "writing to stdout needs a format",
            where="--to",
            fix="add --to a3m, --to fasta or --to sto",
        )


@app.command("convert")
def convert_command(
    source: InputPath,
    destination: Annotated[str, typer.Argument(help="Output file, or - for stdout.")],
    to: ToOption = None,
    fmt: FormatOption = "auto",
    query: QueryOption = None,
    no_insertions: NoInsertions = False,
) -> None:
    """Convert an MSA to A3M, aligned FASTA or Stockholm."""
    _require_format_for_stdout(destination, to)
    alignment = _read(source, fmt, query)
    _warn_all(alignment)
    written = msa.write(alignment, destination, format=to, keep_insertions=not no_insertions)
    if destination != "-":
        err().print(
            f"wrote {len(alignment)} rows x {alignment.query_length} columns "
            f"as {written} to {destination}"
        )


def _percentage(value: float | None, option: str) -> float | None:
    """Read a percentage (0 to 100, as hhfilter's -id, -cov and -qid take it) as a fraction.

    A value above 0 and up to 1 is refused: hhfilter reads ``-cov 1`` as 1%, while 1 as a
    fraction would be 100%, and thresholds that low are no use as percentages anyway.
    """
    if value is None:
        return None
    if not 0.0 <= value <= 100.0:
        raise InputError(
            f"{value:g} is not a percentage",
            where=option,
            fix="give a percentage from 0 to 100, as hhfilter takes it (90 for 90%)",
        )
    if 0.0 < value <= 1.0:
        raise InputError(
            f"{value:g} is ambiguous: hhfilter reads it as {value:g}%, a fraction would be "
            f"{value * 100:g}%",
            where=option,
            fix=f"give a percentage: {value * 100:g} for {value * 100:g}%",
        )
    return value / 100.0


PERCENT_HELP = "A percentage, 0-100; values above 0 and up to 1 are refused as ambiguous."


@app.command("filter")
def filter_command(
    source: InputPath,
    destination: Annotated[str, typer.Argument(help="Output file, or - for stdout.")],
    max_seq_id: Annotated[
        float | None,
        typer.Option(
            help="Drop rows more than this % identical to a row kept before them "
            f"(hhfilter -id; 90 for 90%). {PERCENT_HELP}"
        ),
    ] = None,
    min_coverage: Annotated[
        float | None,
        typer.Option(
            help="Drop rows covering less than this % of the query "
            f"(hhfilter -cov; 50 for 50%). {PERCENT_HELP}"
        ),
    ] = None,
    min_query_id: Annotated[
        float | None,
        typer.Option(
            help="Drop rows less than this % identical to the query "
            f"(hhfilter -qid; 30 for 30%). {PERCENT_HELP}"
        ),
    ] = None,
    max_seqs: Annotated[
        int | None, typer.Option(help="Keep at most this many rows, the most diverse, query first.")
    ] = None,
    keep_duplicates: Annotated[
        bool, typer.Option("--keep-duplicates", help="Do not remove identical rows.")
    ] = False,
    to: ToOption = None,
    fmt: FormatOption = "auto",
    query: QueryOption = None,
) -> None:
    """Remove duplicates and redundant, partial or distant rows (like hhfilter)."""
    if max_seqs is not None and max_seqs < 1:
        raise InputError(
            f"{max_seqs} rows would drop the query", where="--max-seqs", fix="give at least 1"
        )
    settings = msa.FilterSettings(
        remove_duplicates=not keep_duplicates,
        max_seq_id=_percentage(max_seq_id, "--max-seq-id"),
        min_coverage=_percentage(min_coverage, "--min-coverage"),
        min_query_id=_percentage(min_query_id, "--min-query-id"),
        max_seqs=max_seqs,
    )
    _require_format_for_stdout(destination, to)
    alignment = _read(source, fmt, query)
    _warn_all(alignment)
    with err().status("Filtering …", spinner="dots"):
        filtered, report = msa.filter_msa(alignment, settings)
    msa.write(filtered, destination, format=to)
    for step, count in report.steps:
        err().print(f"  {count:>8}  {step}")
    if destination != "-":
        err().print(f"wrote {len(filtered)} of {len(alignment)} rows to {destination}")


# -- search ---------------------------------------------------------------------------------------
#: ``msa search`` takes the server's mode and wait as ``--mode`` and ``--timeout`` (it has no other
#: timeout), and the names ``predict`` uses for them as well.
SearchModeOption = Annotated[
    str,
    typer.Option(
        "--mode", "--search-mode", help="Server mode: env, all, env-nofilter or nofilter."
    ),
]
SearchTimeoutOption = Annotated[
    float,
    typer.Option("--timeout", "--search-timeout", help="Longest wait for the server, in seconds."),
]
PairOption = Annotated[
    str | None,
    typer.Option(
        help="Pair the chains of a complex on the server: pairgreedy or paircomplete.",
        show_default=False,
    ),
]


@app.command("search")
def search_command(
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="A3M file to write; a folder for several queries (FOLDER/NAME.a3m each).",
            show_default=False,
        ),
    ],
    sequence: SequenceOption = None,
    databases: DatabaseOption = None,
    tool: ToolOption = "jackhmmer",
    server: ServerOption = None,
    mode: SearchModeOption = "env",
    max_hits: MaxHitsOption = DEFAULT_MAX_HITS,
    cpus: CpusOption = None,
    timeout: SearchTimeoutOption = DEFAULT_TIMEOUT_S,
    email: EmailOption = None,
    no_cache: NoCacheOption = False,
    pair: PairOption = None,
) -> None:
    """Build the MSA of each protein of a FASTA: jackhmmer or MMseqs2 on local databases, or
    ColabFold's MMseqs2 server. Writes an A3M whose first row is the query."""
    settings = search_settings(
        databases, tool, server, mode, max_hits, cpus, email, no_cache, timeout
    )
    if pair is not None:
        try:
            settings = dataclasses.replace(settings, pair=cast(PairMode, pair))
        except InputError as exc:
            raise InputError(exc.problem, where="--pair", fix=exc.fix) from None
    if sequence is None:
        raise InputError(
            "no query given", where="--sequence", fix="give a FASTA file of the protein(s)"
        )
    from foldserve.cli.search_run import hits_table, run_search
    from foldserve.msa.search.queries import read_queries

    queries = read_queries(sequence)
    targets = _search_outputs([query.name for query in queries], output)
    results = run_search(queries, settings, table=False)  # its table says where each went
    targets[0].parent.mkdir(parents=True, exist_ok=True)
    for result, target in zip(results, targets, strict=True):
        write_text(target, result.a3m())
    out().print(hits_table(results, targets))


def _search_outputs(names: Sequence[str], output: Path) -> list[Path]:
    """Where each query's A3M goes, checked before any search: one query to ``output`` (or
    ``output/NAME.a3m`` when it is a folder), several to ``output/NAME.a3m`` (the folder is
    made when the search is done, so a refused search leaves nothing behind)."""
    several = len(names) > 1
    if output.is_dir() or (several and not output.exists() and output.suffix != ".a3m"):
        targets = [output / f"{name}.a3m" for name in names]
    elif several:
        raise InputError(
            f"{'is a file' if output.exists() else 'names a file'}, but the FASTA holds "
            f"{len(names)} sequences",
            where=f"--output {output}",
            fix="give a folder: each query's MSA goes to FOLDER/NAME.a3m",
        )
    else:
        targets = [output]
    folder = targets[0].parent
    # A folder still to be made (several queries) needs the nearest folder above it writable.
    existing = next(p for p in (folder, *folder.parents) if p.exists()) if several else folder
    if not existing.is_dir():
        missing = not existing.exists()
        raise InputError(
            "no such folder" if missing else "is a file, not a folder",
            where=f"--output {existing}",
            fix="create it first" if missing else "give a folder",
        )
    if not os.access(existing, os.W_OK):
        raise InputError(
            "cannot write in this folder", where=f"--output {existing}", fix="choose another"
        )
    for target in targets:
        if target.is_dir():
            raise InputError("is a folder", where=f"--output {target}", fix="rename or move it")
    return targets

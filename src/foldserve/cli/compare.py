"""``foldserve compare``: two structures, or every ranked model of a prediction directory
(foldserve's, ColabFold's or AlphaFold's)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, cast

import typer
from rich import box
from rich.table import Table

from foldserve.cli.console import err, out
from foldserve.errors import InputError
from foldserve.pipeline import prediction_dir
from foldserve.structure.compare import Align, Comparison, compare, compare_all
from foldserve.structure.reading import Chain, read_chain

Paths = Annotated[
    list[Path],
    typer.Argument(
        help="Two PDB/mmCIF files A B, or one prediction directory.", show_default=False
    ),
]
ReferenceOption = Annotated[
    Path | None, typer.Option("--reference", "-r", help="Experimental or reference structure.")
]
JobOption = Annotated[
    str | None,
    typer.Option("--job", help="The job to read, in a ColabFold folder of several."),
]


def comparison_table(comparisons: list[Comparison], title: str | None = None) -> Table:
    """A Rich table with one row per comparison; the alignment method goes in the caption."""
    methods = sorted({c.alignment for c in comparisons})
    table = Table(
        title=title,
        title_justify="left",
        caption=f"aligned by {' and '.join(methods)}; GDT-TS and lDDT against B",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for column in ("A", "B", "TM (A)", "TM (B)", "RMSD Å", "pairs", "GDT-TS", "lDDT"):
        if column in "AB":
            table.add_column(column, overflow="fold")
        else:
            table.add_column(column, justify="right", no_wrap=True, min_width=len(column))
    for c in comparisons:
        table.add_row(
            c.a,
            c.b,
            f"{c.tm_score_a:.4f}",
            f"{c.tm_score_b:.4f}",
            f"{c.rmsd:.2f}",
            str(c.aligned_length),
            f"{c.gdt_ts:.4f}",
            f"{c.lddt:.4f}",
        )
    return table


def _model_index(number: int, option: str) -> int:
    if number < 1:
        raise InputError(f"model {number}", where=option, fix="models are numbered from 1")
    return number - 1


def compare_command(
    paths: Paths,
    reference: ReferenceOption = None,
    chain_a: Annotated[str | None, typer.Option(help="Chain of A (default: the first).")] = None,
    chain_b: Annotated[str | None, typer.Option(help="Chain of B (default: the first).")] = None,
    reference_chain: Annotated[
        str | None, typer.Option(help="Chain of the reference (default: the first).")
    ] = None,
    model_a: Annotated[int, typer.Option(help="Model of A in a multi-model file.")] = 1,
    model_b: Annotated[int, typer.Option(help="Model of B in a multi-model file.")] = 1,
    align: Annotated[
        str,
        typer.Option(
            help="auto (residue i to i when the sequences are identical, else TM-align), "
            "structure (always TM-align) or sequence (always residue i to i)."
        ),
    ] = "auto",
    in_place: Annotated[
        bool,
        typer.Option(
            "--in-place", help="Score without superposing (structures already superposed)."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    job: JobOption = None,
) -> None:
    """TM-score (by each length), RMSD, aligned length, GDT-TS and lDDT of structures."""
    how = cast(Align, align)
    ref = read_chain(reference, reference_chain) if reference else None
    if len(paths) == 1 and paths[0].is_dir():
        prediction = prediction_dir.load(paths[0], job=job)
        for warning in prediction.warnings:
            err().print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
        chains = [read_chain(model.path) for model in prediction.models]
        _print(compare_all(chains, ref, align=how), as_json, title=str(paths[0]))
        return
    if job is not None:
        raise InputError(
            "--job picks a job in a ColabFold folder",
            where="--job",
            fix="give the ColabFold folder as the one path, or leave --job out",
        )
    if len(paths) != 2:
        raise InputError(
            f"{len(paths)} paths given",
            where="compare",
            fix="give two structure files A B, or one prediction directory",
        )
    a = read_chain(paths[0], chain_a, model=_model_index(model_a, "--model-a"))
    b = read_chain(paths[1], chain_b, model=_model_index(model_b, "--model-b"))
    if ref is None:
        result = compare(a, b, align=how, superpose=not in_place)
        if as_json:
            sys.stdout.write(json.dumps(result.to_json()) + "\n")
        else:
            out().print(comparison_table([result]))
        return
    pairs: list[tuple[Chain, Chain]] = [(a, b), (a, ref), (b, ref)]
    _print([compare(x, y, align=how, superpose=not in_place) for x, y in pairs], as_json)


def _print(comparisons: list[Comparison], as_json: bool, title: str | None = None) -> None:
    if as_json:
        sys.stdout.write(json.dumps({"comparisons": [c.to_json() for c in comparisons]}) + "\n")
    else:
        out().print(comparison_table(comparisons, title))

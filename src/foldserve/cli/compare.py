"""``foldserve compare``: two structures, or every ranked model of a prediction directory
(foldserve's, ColabFold's or AlphaFold's). Each structure is a chain or a complex: complexes
are scored as a whole and chain by chain (a second table, or ``chains`` in the JSON), one chain
against a complex against its chain of the most similar sequence (``--chain-b`` picks one)."""

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
from foldserve.structure.compare import Align, Comparison, Structure, compare_all, read_compared
from foldserve.structure.compare import compare_structures as compare

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
        table.add_row(c.a + (" (complex)" if c.is_complex else ""), c.b, *c.score_cells())
    return table


def chains_table(comparisons: list[Comparison], title: str | None = None) -> Table | None:
    """The complexes' chain pairs, one row each; None when no comparison is of complexes."""
    rows = [(c, match) for c in comparisons for match in c.chains]
    if not rows:
        return None
    table = Table(
        title=title or "per chain",
        title_justify="left",
        caption="chains paired by id, else by the most similar sequence; each pair superposed "
        "on its own",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
    )
    columns = ("A", "B", "by", "TM (A)", "TM (B)", "RMSD Å", "pairs", "GDT-TS", "lDDT")
    for column in columns:
        if column in ("A", "B", "by"):
            table.add_column(column, overflow="fold")
        else:
            table.add_column(column, justify="right", no_wrap=True, min_width=len(column))
    for _, match in rows:
        c = match.comparison
        table.add_row(c.a, c.b, match.matched_by, *c.score_cells())
    return table


def _model_index(number: int, option: str) -> int:
    if number < 1:
        raise InputError(f"model {number}", where=option, fix="models are numbered from 1")
    return number - 1


def compare_command(
    paths: Paths,
    reference: ReferenceOption = None,
    chain_a: Annotated[
        str | None, typer.Option(help="Chain of A (default: all its chains).")
    ] = None,
    chain_b: Annotated[
        str | None, typer.Option(help="Chain of B (default: all its chains).")
    ] = None,
    reference_chain: Annotated[
        str | None, typer.Option(help="Chain of the reference (default: all its chains).")
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
    """TM-score (by each length), RMSD, aligned length, GDT-TS and lDDT of structures;
    complexes also chain by chain."""
    how = cast(Align, align)
    ref = read_compared(reference, reference_chain) if reference else None
    if len(paths) == 1 and paths[0].is_dir():
        prediction = prediction_dir.load(paths[0], job=job)
        for warning in prediction.warnings:
            err().print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
        structures = [read_compared(model.path, None) for model in prediction.models]
        _print(compare_all(structures, ref, align=how), as_json, title=str(paths[0]))
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
    a = read_compared(paths[0], chain_a, model=_model_index(model_a, "--model-a"))
    b = read_compared(paths[1], chain_b, model=_model_index(model_b, "--model-b"))
    if ref is None:
        result = compare(a, b, align=how, superpose=not in_place)
        _notes([result])
        if as_json:
            sys.stdout.write(json.dumps(result.to_json()) + "\n")
        else:
            _tables([result])
        return
    pairs: list[tuple[Structure, Structure]] = [(a, b), (a, ref), (b, ref)]
    _print([compare(x, y, align=how, superpose=not in_place) for x, y in pairs], as_json)


def _notes(comparisons: list[Comparison]) -> None:
    """Say which chain of a complex a single chain was scored against, and which chains of
    two complexes found no partner."""
    stderr = err(highlight=False, markup=False, soft_wrap=True)
    for c in comparisons:
        if c.picked is not None:
            stderr.print(f"{c.a} vs {c.b}: {c.picked} (--chain-a/--chain-b pick another)")
        for side, left in (("A", c.unmatched_a), ("B", c.unmatched_b)):
            if left:
                stderr.print(
                    f"{c.a} vs {c.b}: chain(s) {', '.join(left)} of {side} matched no chain "
                    "of the other: left out"
                )


def _tables(comparisons: list[Comparison], title: str | None = None) -> None:
    out().print(comparison_table(comparisons, title))
    chains = chains_table(comparisons)
    if chains is not None:
        out().print(chains)


def _print(comparisons: list[Comparison], as_json: bool, title: str | None = None) -> None:
    _notes(comparisons)
    if as_json:
        sys.stdout.write(json.dumps({"comparisons": [c.to_json() for c in comparisons]}) + "\n")
    else:
        _tables(comparisons, title)

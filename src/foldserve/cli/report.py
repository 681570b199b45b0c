"""``foldserve report``: one offline HTML page (and PNG plots) for a prediction directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from foldserve.cli.compare import JobOption
from foldserve.cli.console import err
from foldserve.pipeline import prediction_dir
from foldserve.pipeline.report import write_report


def report_command(
    directory: Annotated[
        Path,
        typer.Argument(help="Prediction directory: foldserve's, ColabFold's or AlphaFold's."),
    ],
    reference: Annotated[
        Path | None,
        typer.Option("--reference", "-r", help="Structure to superpose on and compare with."),
    ] = None,
    reference_chain: Annotated[
        str | None, typer.Option(help="Chain of the reference (default: the first).")
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")] = Path(
        "report.html"
    ),
    figures: Annotated[
        Path | None,
        typer.Option(
            help="Directory for the PNG plots (default: OUTPUT without .html + _figures)."
        ),
    ] = None,
    job: JobOption = None,
) -> None:
    """Write a self-contained HTML report: run settings, 3D models, pLDDT, PAE, MSA coverage,
    comparisons."""
    prediction = prediction_dir.load(directory, job=job)
    stderr = err(highlight=False)
    for warning in prediction.warnings:
        stderr.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)
    with stderr.status("Writing the report …", spinner="dots"):
        report = write_report(
            prediction,
            output,
            reference=reference,
            reference_chain=reference_chain,
            figures_dir=figures,
        )
    stderr.print(f"wrote {report.html}")
    for path in report.figures.values():
        stderr.print(f"  plot {path}")

"""``foldserve weights``: fetch and check the AlphaFold2 weights in PARAM_DIR.

The logic lives in :mod:`foldserve.fold.weights`; user errors are raised as
:class:`foldserve.errors.InputError` for ``foldserve.cli`` to print as one line.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from foldserve.cli.console import err, out
from foldserve.errors import InputError
from foldserve.fold import weights
from foldserve.fold.test_weights import FULL_EVOFORMER_BLOCKS, make_test_weights

app = typer.Typer(
    help="Fetch and check the AlphaFold2 weights (PARAM_DIR/params/params_model_N_ptm.npz).",
    no_args_is_help=True,
)


ParamsDirOption = Annotated[
    Path | None,
    typer.Option(
        "--params-dir",
        help="Weights folder (default: $PARAM_DIR, else ~/.cache/foldserve).",
        show_default=False,
    ),
]


@app.command("fetch")
def fetch_command(
    params_dir: ParamsDirOption = None,
    source: Annotated[
        str, typer.Option(help="The params archive: http(s) URL, s3://bucket/key or local file.")
    ] = weights.DEFAULT_PARAMS_URL,
    sha256: Annotated[
        str | None,
        typer.Option(
            "--sha256",
            help="Expected SHA-256 of the archive (default: the published one, for the default "
            "URL only).",
        ),
    ] = None,
    size: Annotated[
        int | None, typer.Option("--size", help="Expected size of the archive in bytes.")
    ] = None,
) -> None:
    """Download, verify and install the weights, once: a second fetch finds them installed."""
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise InputError(
            f"{sha256!r} is not a SHA-256 checksum",
            where="--sha256",
            fix="give the 64 hex digits that sha256sum prints",
        )
    if size is not None and size < 1:
        raise InputError(
            f"{size} is not an archive size", where="--size", fix="give the size in bytes"
        )
    param_dir = weights.resolve_param_dir(params_dir)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err(), transient=True) as bar:
        task = bar.add_task(f"fetching {source}", total=None)

        def report(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        result = weights.fetch(
            param_dir, source, expected_sha256=sha256, expected_size=size, progress=report
        )
    verb = "installed" if result.downloaded else "already installed"
    note = _checksum_note(result.archive_sha256, result.sha256_verified)
    err().print(
        f"{verb}: {param_dir / 'params'} from {result.source}\n"
        f"  archive {result.archive_bytes:,} bytes, sha256 {result.archive_sha256} ({note})",
        highlight=False,
        soft_wrap=True,
    )


def _checksum_note(sha256: object, verified: object) -> str:
    """Whether the archive's checksum was compared with an expected one, or only recorded."""
    if verified:
        return "verified"
    if sha256 == weights.DEFAULT_PARAMS_SHA256:
        return "matches the published checksum"
    return "recorded, no expected value to check it against"


@app.command("check")
def check_command(
    params_dir: ParamsDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Which model files are present and whether they match their checksums; exit 1 if not ok."""
    with err().status("Checking the weights …", spinner="dots"):
        report = weights.check(weights.resolve_param_dir(params_dir))
    if as_json:
        sys.stdout.write(json.dumps(report.to_json()) + "\n")
    else:
        _print_report(report)
    if not report.ok:
        raise typer.Exit(1)


@app.command("make-test")
def make_test_command(
    out: Annotated[Path, typer.Option("--out", help="Folder to write params/ into (a PARAM_DIR).")],
    blocks: Annotated[
        int, typer.Option(help="Evoformer blocks: 48 as published, fewer for fast tests.")
    ] = FULL_EVOFORMER_BLOCKS,
    seed: Annotated[int, typer.Option(help="Random seed of the values.")] = 0,
    multimer: Annotated[
        bool,
        typer.Option(
            "--multimer", help="Also write the AlphaFold2-multimer v3 models (complexes)."
        ),
    ] = False,
) -> None:
    """Write random weights with the official keys and shapes, for tests and offline demos."""
    if not 1 <= blocks <= FULL_EVOFORMER_BLOCKS:
        raise InputError(
            f"{blocks} evoformer blocks", where="--blocks", fix="give between 1 and 48"
        )
    with err().status(f"Writing random test weights ({blocks} evoformer blocks) …", spinner="dots"):
        info = make_test_weights(out, evoformer_blocks=blocks, seed=seed, multimer=multimer)
    err().print(
        f"wrote {len(info.files)} test-weight files to {out / 'params'} "
        "[bold red](random values: predictions made with them are not structures)[/bold red]"
    )


VERIFIED = {True: "[green]ok[/green]", False: "[red]MISMATCH[/red]", None: "no checksum"}


def _print_report(report: weights.WeightsReport) -> None:
    table = Table(
        title=f"AlphaFold2 weights in {report.param_dir / 'params'}", title_justify="left"
    )
    for column in ("model", "file", "bytes", "sha256"):
        table.add_column(column, justify="right" if column == "bytes" else "left")
    labelled = [(str(model.number), model) for model in report.models]
    labelled += [(f"{model.number} multimer", model) for model in report.multimer_models]
    for label, model in labelled:
        table.add_row(
            label,
            model.path.name,
            f"{model.bytes:,}" if model.bytes is not None else "[red]missing[/red]",
            VERIFIED[model.verified] if model.present else "",
        )
    out().print(table)
    if report.multimer_models and not report.multimer_ok:
        err().print(
            "[yellow]warning:[/yellow] the multimer v3 files are incomplete or do not match "
            "their checksums: complexes need all five",
            highlight=False,
        )
    source = report.source
    if source:
        sha256 = source.get("archive_sha256")
        note = _checksum_note(sha256, source.get("sha256_verified"))
        out().print(
            f"source   {source.get('source')} (fetched {source.get('fetched_at')})\n"
            f"archive  sha256 {sha256} ({note})",
            highlight=False,
            soft_wrap=True,
        )
    elif any(model.present for model in report.models):
        out().print("source   unknown: no SOURCE.json (files placed by hand?)")
    if not report.manifest and any(model.present for model in report.models):
        err().print(
            f"[yellow]warning:[/yellow] no {weights.MANIFEST}: the files cannot be verified"
        )
    if report.test_weights:
        info = json.dumps(report.test_weights_info) if report.test_weights_info else "unreadable"
        err().print(
            "[yellow]warning:[/yellow] these are random TEST weights: predictions made with them "
            f"are not protein structures ({weights.TEST_WEIGHTS_MARKER}: {info})",
            highlight=False,
            soft_wrap=True,
        )
    if report.ok:
        out().print("[green]ok[/green]")
    else:
        out().print(
            "[red]not ok[/red]: run `foldserve weights fetch`, or `foldserve weights fetch "
            "--source` with a copy of alphafold_params_2022-12-06.tar"
        )

"""``foldserve weights``: fetch, check and make (random) the weights of each engine in
PARAM_DIR: AlphaFold2's ``params/`` and OpenFold3's ``openfold3/`` checkpoint (``--engine``).

The logic lives in :mod:`foldserve.fold.weights` and :mod:`foldserve.fold.openfold3`; user
errors are raised as :class:`foldserve.errors.InputError` for ``foldserve.cli`` to print as
one line.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated, Any

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
from foldserve.cli.options import as_flag_error, parse_engine
from foldserve.errors import InputError
from foldserve.fold import weights
from foldserve.fold.alphafold2.test_weights import FULL_EVOFORMER_BLOCKS, make_test_weights
from foldserve.fold.openfold3.layout import (
    DEFAULT_CHECKPOINT_URL,
    checkpoint_dir,
)
from foldserve.fold.openfold3.weights import CheckpointReport, check_checkpoint

app = typer.Typer(
    help="Fetch, check and make the weights of AlphaFold2 (PARAM_DIR/params/) and OpenFold3 "
    "(PARAM_DIR/openfold3/).",
    no_args_is_help=True,
)

WeightsEngineOption = Annotated[
    str, typer.Option("--engine", help="Whose weights: alphafold2 or openfold3.")
]


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
    engine: WeightsEngineOption = "alphafold2",
    source: Annotated[
        str | None,
        typer.Option(
            help="AlphaFold2's params archive or OpenFold3's checkpoint: http(s) URL, "
            "s3://bucket/key or local file (default: the published one).",
            show_default=False,
        ),
    ] = None,
    sha256: Annotated[
        str | None,
        typer.Option(
            "--sha256",
            help="Expected SHA-256 of the archive or checkpoint (default: AlphaFold2's "
            "published one, for its default URL only).",
        ),
    ] = None,
    size: Annotated[
        int | None,
        typer.Option("--size", help="Expected size of the archive or checkpoint in bytes."),
    ] = None,
) -> None:
    """Download, verify and install the weights, once: a second fetch finds them installed."""
    chosen = parse_engine(engine)
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
    if chosen == "openfold3":
        from foldserve.fold.openfold3.weights import fetch_checkpoint

        fetch, folder, what = fetch_checkpoint, checkpoint_dir(param_dir), "checkpoint"
        source = source or DEFAULT_CHECKPOINT_URL
    else:
        fetch, folder, what = weights.fetch, param_dir / "params", "archive"
        source = source or weights.DEFAULT_PARAMS_URL
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

        result = fetch(
            param_dir, source, expected_sha256=sha256, expected_size=size, progress=report
        )
    verb = "installed" if result.downloaded else "already installed"
    note = _checksum_note(result.archive_sha256, result.sha256_verified)
    err().print(
        f"{verb}: {folder} from {result.source}\n"
        f"  {what} {result.archive_bytes:,} bytes, sha256 {result.archive_sha256} ({note})",
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
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="Check only this engine's weights: alphafold2 or openfold3 (default: "
            "AlphaFold2's, and OpenFold3's checkpoint when there is one).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Which weight files are present and whether they match their checksums; exit 1 if not
    ok."""
    chosen = parse_engine(engine) if engine is not None else None
    param_dir = weights.resolve_param_dir(params_dir)
    with err().status("Checking the weights …", spinner="dots"):
        report = weights.check(param_dir) if chosen != "openfold3" else None
        checkpoint = None
        if chosen == "openfold3" or (chosen is None and checkpoint_dir(param_dir).is_dir()):
            checkpoint = check_checkpoint(param_dir)
    if as_json:
        found: dict[str, Any] = (
            report.to_json() if report is not None else {"param_dir": str(param_dir)}
        )
        if checkpoint is not None:
            found["openfold3"] = checkpoint.to_json()
        sys.stdout.write(json.dumps(found) + "\n")
    else:
        if report is not None:
            _print_report(report)
        if checkpoint is not None:
            _print_checkpoint(checkpoint)
    if (report is not None and not report.ok) or (checkpoint is not None and not checkpoint.ok):
        raise typer.Exit(1)


@app.command("make-test")
def make_test_command(
    out: Annotated[
        Path,
        typer.Option("--out", help="Folder to write params/ (or openfold3/) into (a PARAM_DIR)."),
    ],
    engine: WeightsEngineOption = "alphafold2",
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
    """Write random weights with the official keys and shapes, for tests and offline demos
    (OpenFold3's for a reduced configuration that runs on a CPU in about a minute)."""
    if parse_engine(engine) == "openfold3":
        _make_openfold3_test(out, seed, blocks=blocks, multimer=multimer)
        return
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


def _make_openfold3_test(out: Path, seed: int, *, blocks: int, multimer: bool) -> None:
    """``make-test --engine openfold3``: AlphaFold2's flags refused, the extra named when
    missing."""
    for flag, given in (("--blocks", blocks != FULL_EVOFORMER_BLOCKS), ("--multimer", multimer)):
        if given:
            raise InputError(
                "an AlphaFold2 option, which openfold3 does not take",
                where=flag,
                fix="leave it out: OpenFold3's test weights have one block per stack and fold "
                "monomers and complexes alike",
            )
    from foldserve.fold.openfold3.test_weights import make_test_checkpoint

    with err().status("Writing random OpenFold3 test weights …", spinner="dots"):
        try:
            made = make_test_checkpoint(out, seed=seed)
        except InputError as exc:
            if exc.where != "engine":
                raise
            raise as_flag_error(exc, {"engine": "--engine"}) from None
    err().print(
        f"wrote OpenFold3 test weights ({made.parameters:,} parameters) to {made.checkpoint} "
        "[bold red](random values: predictions made with them are not structures)[/bold red]",
        soft_wrap=True,
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


def _print_checkpoint(report: CheckpointReport) -> None:
    checkpoint = report.checkpoint
    if checkpoint is None:
        out().print(
            f"OpenFold3 checkpoint: [red]missing[/red] in {report.folder}: run `foldserve "
            "weights fetch --engine openfold3`, or `foldserve weights make-test --engine "
            "openfold3` for random test weights",
            highlight=False,
            soft_wrap=True,
        )
        return
    out().print(
        f"OpenFold3 checkpoint: {checkpoint} ({report.bytes:,} bytes, sha256 "
        f"{VERIFIED[report.verified]})",
        highlight=False,
        soft_wrap=True,
    )
    if report.source:
        out().print(
            f"source   {report.source.get('source')} (fetched {report.source.get('fetched_at')})",
            highlight=False,
            soft_wrap=True,
        )
    if report.test_weights_info is not None:
        err().print(
            "[yellow]warning:[/yellow] the OpenFold3 checkpoint holds random TEST weights: "
            "predictions made with them are not protein structures",
            highlight=False,
            soft_wrap=True,
        )
    out().print("[green]ok[/green]" if report.ok else "[red]not ok[/red]")

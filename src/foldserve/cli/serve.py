"""``foldserve serve``: run the self-hosted, RunPod-compatible endpoint."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.console import Console

from foldserve.config import server_api_keys
from foldserve.errors import InputError
from foldserve.fold.predictor import Precision
from foldserve.jobs.ids import JOB_ID
from foldserve.server.serve import ServeSettings, check_auth, serve

err = Console(stderr=True)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "foldserve" / "server"


def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Job store, results and logs (default ~/.local/share/foldserve/server)."),
    ] = None,
    workers: Annotated[int, typer.Option(help="Worker processes, one per GPU.")] = 1,
    endpoint_id: Annotated[str, typer.Option(help="Serve under /v2/ENDPOINT_ID.")] = "local",
    params_dir: Annotated[
        Path | None,
        typer.Option(help="Weights directory (default: $PARAM_DIR or ~/.cache/foldserve)."),
    ] = None,
    precision: Annotated[
        str, typer.Option(help="auto (bfloat16 on GPU, float32 on CPU), bfloat16 or float32.")
    ] = "auto",
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Accept requests without a key (loopback only).")
    ] = False,
    retention: Annotated[
        float, typer.Option(help="Hours to keep finished jobs and their results.")
    ] = 24.0,
    inline_limit: Annotated[
        float, typer.Option(help="MB of output JSON returned inline; larger files by URL.")
    ] = 2.0,
    stop_grace: Annotated[
        float,
        typer.Option(
            help="Seconds a cancelled or timed-out job has to stop before its worker is killed."
        ),
    ] = 30.0,
) -> None:
    """Serve RunPod's job API on this machine, with warm AlphaFold2 workers.

    The API key comes from FOLDSERVE_API_KEY or the config file, never from a flag.
    """
    if not JOB_ID.fullmatch(endpoint_id):
        raise InputError(
            f"{endpoint_id!r} is not an endpoint id",
            where="--endpoint-id",
            fix="use letters, digits, '-' and '_'",
        )
    if not 0 <= workers <= 64:
        raise InputError(f"{workers} workers", where="--workers", fix="give 1 to 64")
    if precision not in ("auto", "bfloat16", "float32"):
        raise InputError(
            f"unknown precision {precision!r}",
            where="--precision",
            fix="use auto, bfloat16 or float32",
        )
    for flag, value in (("--retention", retention), ("--inline-limit", inline_limit)):
        if value <= 0:
            raise InputError(f"{value} is not positive", where=flag, fix="give a number > 0")
    keys = check_auth(host, server_api_keys(), no_auth)
    settings = ServeSettings(
        data_dir=data_dir or default_data_dir(),
        host=host,
        port=port,
        workers=workers,
        endpoint_id=endpoint_id,
        params_dir=params_dir,
        precision=cast(Precision, precision),
        retention=retention * 3600,
        inline_limit=int(inline_limit * (1 << 20)),
        stop_grace=stop_grace,
    )

    def ready(settings: ServeSettings, recovered: int) -> None:
        err.print(
            f"foldserve endpoint [bold]{settings.url}[/bold] · {settings.workers} worker(s) · "
            f"data in {settings.data_dir}" + ("" if keys else " · [red]no authentication[/red]"),
            highlight=False,
            soft_wrap=True,
        )
        if recovered:
            err.print(f"{recovered} job(s) were running when the server last stopped: requeued")
        base = settings.url.rsplit("/v2/", 1)[0]
        err.print(
            f"submit with: foldserve submit --url {base} --msa MSA --output OUT.pdb",
            highlight=False,
            soft_wrap=True,
        )

    serve(settings, keys, on_ready=ready)

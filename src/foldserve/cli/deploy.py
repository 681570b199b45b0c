"""``foldserve deploy runpod``: create a RunPod serverless endpoint for the worker image.

The logic lives in :mod:`foldserve.cloud.runpod.deploy`; the API key comes from
``RUNPOD_API_KEY`` or the configuration file, never from a flag, and is never printed.
"""

from __future__ import annotations

from typing import Annotated

import typer

from foldserve.cli.console import err, out
from foldserve.cloud.runpod.deploy import (
    DEFAULT_DATACENTER,
    DEFAULT_EXECUTION_TIMEOUT,
    DEFAULT_GPU,
    DEFAULT_VOLUME_GB,
    DeployOptions,
    RunpodRest,
    api_key,
    deploy,
    dry_run,
    rest_url,
)
from foldserve.config import missing_key_fix
from foldserve.errors import InputError

app = typer.Typer(help="Deploy foldserve's worker to serverless GPUs.", no_args_is_help=True)


def _parse_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name.isidentifier():
            raise InputError(
                f"{pair.split('=')[0]!r} is not NAME=VALUE",
                where="--env",
                fix="give e.g. --env BUCKET_NAME=my-results (repeat --env for more)",
            )
        env[name] = value
    return env


@app.command("runpod")
def runpod_command(
    image: Annotated[
        str,
        typer.Option(help="Worker image built from docker/Dockerfile, in a registry RunPod reads."),
    ],
    gpu: Annotated[
        list[str] | None,
        typer.Option(
            "--gpu",
            help=f"GPU type, in order of preference; repeat for fallbacks ({DEFAULT_GPU}).",
        ),
    ] = None,
    volume_size: Annotated[
        int, typer.Option("--volume-size", help="Network volume for the weights, in GB.")
    ] = DEFAULT_VOLUME_GB,
    volume_id: Annotated[
        str | None,
        typer.Option(help="Use this existing network volume (weights already on it) instead."),
    ] = None,
    datacenter: Annotated[
        str, typer.Option(help="RunPod data centre of a new volume, and of the workers.")
    ] = DEFAULT_DATACENTER,
    min_workers: Annotated[int, typer.Option(help="Workers kept running (0: scale to zero).")] = 0,
    max_workers: Annotated[int, typer.Option(help="Most workers running at once.")] = 3,
    idle_timeout: Annotated[
        int, typer.Option(help="Seconds an idle worker stays warm for the next job.")
    ] = 60,
    execution_timeout: Annotated[
        int, typer.Option(help="Seconds a job may run (RunPod's own default is 600).")
    ] = DEFAULT_EXECUTION_TIMEOUT,
    name: Annotated[str, typer.Option(help="Name of the endpoint (and prefix of the rest).")] = (
        "foldserve"
    ),
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env", help="NAME=VALUE for the worker, e.g. the BUCKET_* settings; repeat."
        ),
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help="Profile in the config file whose api_key to use.")
    ] = None,
    dry: Annotated[
        bool, typer.Option("--dry-run", help="Print the API requests; send nothing.")
    ] = False,
) -> None:
    """Create a network volume, a template and a serverless endpoint on RunPod."""
    options = DeployOptions(
        image=image,
        name=name,
        gpus=tuple(gpu or [DEFAULT_GPU]),
        datacenter=datacenter,
        volume_gb=volume_size,
        volume_id=volume_id,
        min_workers=min_workers,
        max_workers=max_workers,
        idle_timeout=idle_timeout,
        execution_timeout=execution_timeout,
        env=_parse_env(env or []),
    )
    base_url = rest_url()
    stdout = out(highlight=False, soft_wrap=True)
    if dry:
        stdout.print(dry_run(options, base_url), markup=False)
        return
    key = api_key(profile)
    if not key:
        raise InputError("no RunPod API key", where="RUNPOD_API_KEY", fix=missing_key_fix("runpod"))
    with RunpodRest(base_url, key) as api, err().status("Creating the endpoint on RunPod …"):
        done = deploy(options, api)
    volume_note = "new" if done.volume_created else "existing"
    stdout.print(f"network volume  {done.volume_id}  ({volume_note}, {done.datacenter})")
    stdout.print(f"template        {done.template_id}  ({options.image})")
    stdout.print(f"endpoint        {done.endpoint_id}")
    stdout.print()
    stdout.print("The first worker downloads the AlphaFold2 weights (5.3 GB) into the volume; its")
    stdout.print("first job waits for that. Submit a prediction with:")
    stdout.print()
    stdout.print(
        f"  foldserve submit --endpoint-id {done.endpoint_id} "
        "--msa your_msa.a3m --output your_structure.pdb",
        markup=False,
    )

"""``foldserve serve``: run the self-hosted, RunPod-compatible endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from foldserve.cli.console import err
from foldserve.cloud.sagemaker.container_settings import (
    DEFAULT_INLINE_LIMIT_MB,
    DEFAULT_PORT,
    MODEL_DIR,
    ContainerSettings,
)
from foldserve.config import server_api_keys
from foldserve.errors import InputError
from foldserve.fold.engine import parse_engine_names
from foldserve.server.auth import required_keys
from foldserve.server.serve import serve
from foldserve.server.settings import ServeSettings


def _setting(field: str, help: str, default: str | None = None) -> Any:
    """An option that sets ``field``, None unless given: then the environment or the model's
    default applies, so no default is written twice."""
    shown = default if default is not None else ServeSettings.model_fields[field].default
    env = ServeSettings.env_name(field)
    return typer.Option(help=f"{help} (default {shown}; env {env})", show_default=False)


def serve_command(
    host: Annotated[str | None, _setting("host", "Address to listen on")] = None,
    port: Annotated[int | None, _setting("port", "Port to listen on")] = None,
    data_dir: Annotated[
        Path | None,
        _setting("data_dir", "Job store, results and logs", "~/.local/share/foldserve/server"),
    ] = None,
    workers: Annotated[int | None, _setting("workers", "Worker processes, one per GPU")] = None,
    endpoint_id: Annotated[
        str | None, _setting("endpoint_id", "Serve under /v2/ENDPOINT_ID")
    ] = None,
    params_dir: Annotated[
        Path | None, _setting("params_dir", "Weights directory", "~/.cache/foldserve")
    ] = None,
    engines: Annotated[
        str | None,
        _setting(
            "engines",
            "Engines every worker holds warm: alphafold2, openfold3 or alphafold2,openfold3",
            "alphafold2",
        ),
    ] = None,
    precision: Annotated[
        str | None,
        _setting("precision", "auto (bfloat16 on GPU, float32 on CPU), bfloat16 or float32"),
    ] = None,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Accept requests without a key (loopback only).")
    ] = False,
    retention: Annotated[
        float | None,
        _setting("retention_hours", "Hours to keep finished jobs and their results"),
    ] = None,
    inline_limit: Annotated[
        float | None,
        _setting("inline_limit_mb", "MB of output JSON returned inline; larger files by URL"),
    ] = None,
    stop_grace: Annotated[
        float | None,
        _setting(
            "stop_grace",
            "Seconds a cancelled or timed-out job has to stop before its worker is killed",
        ),
    ] = None,
    max_msa_rows: Annotated[
        int | None, _setting("max_msa_rows", "Most rows a job's MSA may hold, refused at /run")
    ] = None,
    max_query_length: Annotated[
        int | None,
        _setting("max_query_length", "Longest query (residues) a job may have, refused at /run"),
    ] = None,
    allow_http: Annotated[
        bool | None,
        _setting("allow_http", "Let msa_url and webhooks use http://, not only https://", "off"),
    ] = None,
    allow_url_prefix: Annotated[
        list[str] | None,
        _setting(
            "allow_url_prefixes",
            "Fetch URLs under this prefix even on a private address (an internal mirror); "
            "repeatable",
            "none",
        ),
    ] = None,
    s3_bucket: Annotated[
        list[str] | None,
        _setting("s3_buckets", "Read s3:// msa_url from this bucket; repeatable", "none"),
    ] = None,
    backend: Annotated[
        str | None,
        _setting(
            "backend",
            "local (worker processes here) or ray (replicas on a Ray cluster; extra 'ray')",
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        _setting(
            "ray_address", "Ray cluster to use (auto, HOST:PORT); none starts one here", "none"
        ),
    ] = None,
    gpus_per_replica: Annotated[
        float | None,
        _setting("gpus_per_replica", "Ray: GPUs per replica (0.5 shares one; 0 runs on CPUs)"),
    ] = None,
    min_replicas: Annotated[
        int | None, _setting("min_replicas", "Ray: replicas kept warm when idle (0: none)")
    ] = None,
    max_replicas: Annotated[
        int | None, _setting("max_replicas", "Ray: most replicas, and jobs run at once")
    ] = None,
    upscale_delay: Annotated[
        float | None, _setting("upscale_delay", "Ray: seconds of demand before adding a replica")
    ] = None,
    downscale_delay: Annotated[
        float | None,
        _setting("downscale_delay", "Ray: seconds idle before a replica is removed"),
    ] = None,
    sagemaker: Annotated[
        bool,
        typer.Option(
            "--sagemaker",
            help="Answer SageMaker's inference container contract instead: GET /ping, POST "
            f"/invocations, one job at a time; on 0.0.0.0:{DEFAULT_PORT}, weights in {MODEL_DIR}, "
            f"files inline up to {DEFAULT_INLINE_LIMIT_MB:g} MB. Takes --host, --port, "
            "--params-dir, --engines, --precision, --inline-limit and the URL options.",
        ),
    ] = False,
) -> None:
    """Serve RunPod's job API on this machine, with warm AlphaFold2 and/or OpenFold3 workers,
    here or (--backend ray) on a Ray cluster's GPU nodes.

    Flags beat the environment, which beats the defaults.

    The API key comes from FOLDSERVE_API_KEY or the config file, never from a flag; so does the
    webhook signing secret, FOLDSERVE_WEBHOOK_SECRET.

    With --sagemaker it is the SageMaker container instead (docker run IMAGE serve runs it).
    """
    flags = {
        "host": ("--host", host),
        "port": ("--port", port),
        "data_dir": ("--data-dir", data_dir),
        "workers": ("--workers", workers),
        "endpoint_id": ("--endpoint-id", endpoint_id),
        "params_dir": ("--params-dir", params_dir),
        "engines": (
            "--engines",
            parse_engine_names(engines, where="--engines") if engines is not None else None,
        ),
        "precision": ("--precision", precision),
        "retention_hours": ("--retention", retention),
        "inline_limit_mb": ("--inline-limit", inline_limit),
        "stop_grace": ("--stop-grace", stop_grace),
        "max_msa_rows": ("--max-msa-rows", max_msa_rows),
        "max_query_length": ("--max-query-length", max_query_length),
        "allow_http": ("--allow-http", allow_http),
        "allow_url_prefixes": ("--allow-url-prefix", allow_url_prefix or None),
        "s3_buckets": ("--s3-bucket", s3_bucket or None),
        "backend": ("--backend", backend),
        "ray_address": ("--ray-address", ray_address),
        "gpus_per_replica": ("--gpus-per-replica", gpus_per_replica),
        "min_replicas": ("--min-replicas", min_replicas),
        "max_replicas": ("--max-replicas", max_replicas),
        "upscale_delay": ("--upscale-delay", upscale_delay),
        "downscale_delay": ("--downscale-delay", downscale_delay),
    }
    given = {field: (flag, value) for field, (flag, value) in flags.items() if value is not None}
    if sagemaker:
        _serve_sagemaker(given, no_auth)
        return
    settings = ServeSettings.load(
        {field: value for field, (_, value) in given.items()},
        {field: flag for field, (flag, _) in given.items()},
    )
    keys = required_keys(settings.host, server_api_keys(), no_auth)

    def ready(backend: str, recovered: int) -> None:
        err().print(
            f"foldserve endpoint [bold]{settings.url}[/bold] · {backend} · "
            f"{','.join(settings.engines)} · data in {settings.data_dir}"
            + ("" if keys else " · [red]no authentication[/red]"),
            highlight=False,
            soft_wrap=True,
        )
        if recovered:
            err().print(f"{recovered} job(s) were running when the server last stopped: requeued")
        err().print(
            f"submit with: foldserve submit --url {settings.public_url} --msa MSA --output OUT.pdb",
            highlight=False,
            soft_wrap=True,
        )

    serve(settings, keys, on_ready=ready)


#: The flags ``serve --sagemaker`` takes, by their field here and the container's setting.
_CONTAINER_FIELDS = {
    "host": "host",
    "port": "port",
    "params_dir": "param_dir",
    "engines": "engines",
    "precision": "precision",
    "inline_limit_mb": "inline_limit_mb",
    "allow_http": "allow_http",
    "allow_url_prefixes": "allow_url_prefixes",
    "s3_buckets": "s3_buckets",
}


def _serve_sagemaker(given: dict[str, tuple[str, Any]], no_auth: bool) -> None:
    """The SageMaker container, with the settings the given flags name; a flag of the job
    server's alone is refused rather than ignored."""
    from foldserve.cloud.sagemaker.container import serve_container  # loads JAX

    refused = [flag for field, (flag, _) in given.items() if field not in _CONTAINER_FIELDS]
    refused += ["--no-auth"] if no_auth else []
    if refused:
        raise InputError(
            "does not apply to the SageMaker container",
            where=refused[0],
            fix="leave it out with --sagemaker: the container runs one job at a time, "
            "with no job store and no API key (SageMaker's endpoint stands for them)",
        )
    settings = ContainerSettings.load(
        {_CONTAINER_FIELDS[field]: value for field, (_, value) in given.items()},
        {_CONTAINER_FIELDS[field]: flag for field, (flag, _) in given.items()},
    )
    serve_container(settings)

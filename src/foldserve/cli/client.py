"""``foldserve submit``, ``status``, ``fetch`` and ``cancel``: fold on a remote endpoint.

One code path for RunPod (``--endpoint-id``), a self-hosted ``foldserve serve`` (``--url``) and
a SageMaker asynchronous endpoint (``--sagemaker-endpoint``): each has its client
(:class:`~foldserve.client.client.JobClient`). API keys come from the environment or the
configuration file, never from a flag (``ps`` would show it); AWS credentials are boto3's.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.panel import Panel
from rich.table import Table

from foldserve.cli.batch import check_batch_flags, submit_batch
from foldserve.cli.complex_input import complex_chains
from foldserve.cli.console import err, say_retrying
from foldserve.cli.options import (
    CopiesOption,
    EngineOption,
    MaxTemplateDateOption,
    ModelsOption,
    ModelTypeOption,
    MsaFormatOption,
    NumDiffusionSamplesOption,
    NumPredictionsPerModelOption,
    NumRecyclesOption,
    NumSeedsOption,
    PairedMsaOption,
    PlotsOption,
    QueryOption,
    RankByOption,
    RelaxOption,
    SeedOption,
    TemplatesOption,
    ToleranceOption,
    as_flag_error,
    parse_engine,
    predict_options,
    random_weights_warning,
)
from foldserve.cli.search_options import (
    CpusOption,
    DatabaseOption,
    EmailOption,
    MaxHitsOption,
    ModeOption,
    NoCacheOption,
    SearchTimeoutOption,
    SequenceOption,
    ServerOption,
    ToolOption,
    search_settings,
)
from foldserve.cli.template_options import template_request
from foldserve.client import records
from foldserve.client.client import Client, JobClient, check_job_id, save_best_model
from foldserve.client.records import JobRecord
from foldserve.client.request import ChainSpec, JobRequest, build_request, policy_milliseconds
from foldserve.config import SageMakerEndpoint, Target, resolve_target
from foldserve.errors import InputError
from foldserve.fold.outputs import best_model_source
from foldserve.fold.run_config import check_relax
from foldserve.jobs.progress import describe_progress
from foldserve.jobs.schema import JobOutput, JobState, JobStatus
from foldserve.msa.model import Msa
from foldserve.msa.search.settings import DEFAULT_MAX_HITS, DEFAULT_TIMEOUT_S, SearchSettings

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="Self-hosted endpoint (foldserve serve), e.g. http://gpu-box:8000; "
        "key from FOLDSERVE_API_KEY or the config file.",
    ),
]
EndpointIdOption = Annotated[
    str | None,
    typer.Option(
        "--endpoint-id", help="RunPod endpoint id; key from RUNPOD_API_KEY or the config file."
    ),
]
ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="Endpoint profile from ~/.config/foldserve/config.toml ($FOLDSERVE_CONFIG).",
    ),
]
SageMakerOption = Annotated[
    str | None,
    typer.Option(
        "--sagemaker-endpoint",
        help="SageMaker asynchronous endpoint name; AWS credentials as for the AWS CLI.",
    ),
]
RegionOption = Annotated[
    str | None,
    typer.Option("--region", help="AWS region of --sagemaker-endpoint (default: AWS_REGION)."),
]
S3InputOption = Annotated[
    str | None,
    typer.Option(
        "--s3-input",
        help="s3://BUCKET/PREFIX for the job's input (default: under the endpoint's output path).",
    ),
]
JobArgument = Annotated[str, typer.Argument(help="Job id, as printed by foldserve submit.")]


def connect(target: Target) -> JobClient:
    """A client of ``target`` that says on stderr when it retries."""
    if isinstance(target, SageMakerEndpoint):
        from foldserve.client.sagemaker import SageMakerClient  # boto3: only here

        return SageMakerClient(target=target, on_retry=say_retrying)
    return Client(endpoint=target, on_retry=say_retrying)


def submit_command(
    msa_paths: Annotated[
        list[str] | None,
        typer.Option(
            "--msa",
            help="MSA file in any supported format (a ColabFold complex A3M too); repeat it "
            "for a complex, one MSA per distinct chain.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where the best model goes (PDB).")
    ] = None,
    endpoint_id: EndpointIdOption = None,
    url: UrlOption = None,
    sagemaker_endpoint: SageMakerOption = None,
    region: RegionOption = None,
    s3_input: S3InputOption = None,
    profile: ProfileOption = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            help="Directory for all outputs (default: OUTPUT without .pdb + _prediction). "
            "With --msa-dir: OUT/NAME/ per MSA and OUT/NAME.pdb for its best model."
        ),
    ] = None,
    msa_dir: Annotated[
        Path | None,
        typer.Option(help="Submit every MSA file in this folder (needs --out-dir)."),
    ] = None,
    concurrency: Annotated[
        int, typer.Option(help="With --msa-dir: jobs followed at the same time.")
    ] = 4,
    engine: EngineOption = "alphafold2",
    models: ModelsOption = "1,2,3,4,5",
    num_recycles: NumRecyclesOption = 3,
    recycle_early_stop_tolerance: ToleranceOption = None,
    seed: SeedOption = 0,
    num_seeds: NumSeedsOption = 1,
    rank_by: RankByOption = "auto",
    model_type: ModelTypeOption = "auto",
    num_predictions_per_model: NumPredictionsPerModelOption = None,
    num_diffusion_samples: NumDiffusionSamplesOption = None,
    copies: CopiesOption = None,
    paired_msa: PairedMsaOption = None,
    templates: TemplatesOption = None,
    max_template_date: MaxTemplateDateOption = None,
    msa_format: MsaFormatOption = "auto",
    query: QueryOption = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Execution timeout on the endpoint, in seconds.")
    ] = 3600.0,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Print the job id and return at once.")
    ] = False,
    plots: PlotsOption = True,
    relax: RelaxOption = "none",
    sequence: SequenceOption = None,
    databases: DatabaseOption = None,
    tool: ToolOption = "jackhmmer",
    server: ServerOption = None,
    search_mode: ModeOption = "env",
    max_hits: MaxHitsOption = DEFAULT_MAX_HITS,
    cpus: CpusOption = None,
    email: EmailOption = None,
    no_cache: NoCacheOption = False,
    search_timeout: SearchTimeoutOption = DEFAULT_TIMEOUT_S,
) -> None:
    """Predict structures on a RunPod, self-hosted or SageMaker endpoint; the MSA is checked
    here first (or searched here, on this machine's CPU, with --sequence). A complex: --msa per
    distinct chain with --copies, or one ColabFold complex A3M."""
    msa_path = msa_paths[0] if msa_paths else None
    if sum(x is not None for x in (msa_path, msa_dir, sequence)) != 1:
        raise InputError(
            "give one of --msa, --msa-dir and --sequence",
            where="--msa",
            fix="--msa FILE, --msa-dir DIR, or --sequence FASTA with --db or --server",
        )
    chosen = parse_engine(engine)
    policy_milliseconds(timeout, where="--timeout")  # refused before the MSA is read
    chain_flags = _chain_flags(msa_paths or [], copies, paired_msa)
    if chain_flags and msa_path is None:
        raise InputError(
            f"{chain_flags[0]} goes with --msa",
            where=chain_flags[0],
            fix="give the chains' MSAs with --msa (one per distinct chain)",
        )
    if templates and msa_dir is not None:
        raise InputError(
            "not available with --msa-dir yet",
            where="--templates",
            fix="submit each MSA with --msa and its templates",
        )
    options = predict_options(
        models,
        num_recycles,
        recycle_early_stop_tolerance,
        seed,
        num_seeds,
        rank_by,
        model_type=model_type,
        num_predictions_per_model=num_predictions_per_model,
        templates=bool(templates),
        engine=chosen,
        num_diffusion_samples=num_diffusion_samples,
    )
    chains = _chains(msa_paths or [], copies, paired_msa, msa_format, query)
    template_paths = _template_paths(templates, max_template_date)
    target = resolve_target(
        url,
        endpoint_id,
        profile,
        sagemaker_endpoint=sagemaker_endpoint,
        region=region,
        s3_input=s3_input,
    )
    if isinstance(target, SageMakerEndpoint):
        from foldserve.client.sagemaker import invocation_seconds

        invocation_seconds(timeout, where="--timeout")
    relax_mode = check_relax(relax, where="--relax")
    if msa_dir is not None and relax_mode != "none":
        raise InputError(
            "not available with --msa-dir yet",
            where="--relax",
            fix="submit each MSA with --msa, or relax the downloaded models",
        )
    if msa_dir is not None:
        check_batch_flags(output, out_dir, no_wait, concurrency, msa_format, query)
        assert out_dir is not None
        with connect(target) as client:
            submit_batch(
                client, msa_dir, out_dir, options, timeout, concurrency, plots=plots, engine=chosen
            )
        return
    if output is not None:
        best_model_source(output)  # a name that says no format is refused before any upload
    if output is None and not no_wait:
        raise InputError(
            "--output is needed", where="--output", fix="add --output OUT.pdb for the best model"
        )
    if sequence is not None:
        settings = search_settings(
            databases, tool, server, search_mode, max_hits, cpus, email, no_cache, search_timeout
        )
        msa: str | Msa = _searched(sequence, settings)
    else:
        assert msa_path is not None
        msa = msa_path
    what = " + ".join(msa_paths) if msa_paths else sequence
    with err().status(f"Checking {what} …", spinner="dots"):
        try:
            request = build_request(
                None if chains else msa,
                options,
                chains=chains,
                paired_msa=paired_msa,
                templates=template_paths,
                max_template_date=max_template_date,
                execution_timeout_s=timeout,
                msa_format=msa_format,
                query=query,
                relax=relax_mode,
                engine=chosen,
            )
        except InputError as exc:
            if exc.where not in _REQUEST_FLAGS:
                raise
            raise as_flag_error(exc, _REQUEST_FLAGS) from None
    _submit_one(target, request, output, out_dir, no_wait=no_wait, plots=plots)


#: build_request's parameters, as submit's flags.
_REQUEST_FLAGS = {
    "msa": "--msa",
    "chains": "--msa",
    "paired_msa": "--paired-msa",
    "templates": "--templates",
    "max_template_date": "--max-template-date",
}


def _chain_flags(msa_paths: list[str], copies: str | None, paired_msa: Path | None) -> list[str]:
    """The flags given that make a complex of --msa: a second --msa, --copies, --paired-msa."""
    given = [
        ("--msa", len(msa_paths) > 1),
        ("--copies", copies is not None),
        ("--paired-msa", paired_msa is not None),
    ]
    return [flag for flag, present in given if present]


def _chains(
    msa_paths: list[str],
    copies: str | None,
    paired_msa: Path | None,
    msa_format: str,
    query: str | None,
) -> list[ChainSpec] | None:
    """The chains of a complex given as --msa per chain (with --copies, --paired-msa); None
    for one --msa in one copy, sent as it always was (a complex A3M is read as such)."""
    found = complex_chains(msa_paths, copies, paired_msa)
    if found is None:
        return None
    if len(found.paths) > 1 and (query is not None or msa_format != "auto"):
        raise InputError(
            "applies to one MSA; with several --msa each is read by its content, its first row "
            "the query",
            where="--query" if query is not None else "--format",
            fix="leave it out, or submit each chain's MSA with its first row the query",
        )
    return [
        ChainSpec(path, count, msa_format=msa_format, query=query)
        for path, count in zip(found.paths, found.copies, strict=True)
    ]


def _template_paths(templates: list[str] | None, max_template_date: str | None) -> list[Path]:
    """--templates as the files sent with the job, each found and checked."""
    request = template_request(
        templates,
        max_template_date,
        server=False,
        server_fix="give template structure files or folders; they are sent with the job",
    )
    return list(request.files) if request is not None else []


def _searched(sequence: Path, settings: SearchSettings) -> Msa:
    """The MSA of the one query in ``sequence``, searched on this machine (never on the GPU
    worker): the endpoint gets an MSA like any other."""
    from foldserve.cli.search_run import run_search
    from foldserve.msa.search.queries import read_queries

    queries = read_queries(sequence)
    if len(queries) != 1:
        raise InputError(
            f"{len(queries)} sequences; submit sends one job",
            where=str(sequence),
            fix="search them with `foldserve msa search --output DIR`, then "
            "`foldserve submit --msa-dir DIR`",
        )
    (result,) = run_search(queries, settings)
    return result.msa()


def _submit_one(
    target: Target,
    request: JobRequest,
    output: Path | None,
    out_dir: Path | None,
    *,
    no_wait: bool,
    plots: bool,
) -> None:
    directory = out_dir or (output.with_name(output.stem + "_prediction") if output else None)
    for warning in request.warnings:
        err().print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
    with connect(target) as client:
        with err().status(f"Submitting to {client.destination} …", spinner="dots"):
            job_id = client.submit_request(request, output=output, out_dir=directory)
        record = records.load(job_id)  # written by the client
        err().print(
            f"job {job_id} submitted to {client.destination}; "
            f"follow it with: foldserve status {job_id}",
            highlight=False,
            soft_wrap=True,
        )
        if no_wait:
            sys.stdout.write(job_id + "\n")
            return
        assert output is not None and directory is not None
        result = _follow(client, record, offer_cancel=True)
        _save_results(client, result, directory, output, plots=plots)


def _follow(client: JobClient, record: JobRecord, *, offer_cancel: bool) -> JobOutput:
    """Wait for the job with a live status line; its output once COMPLETED (the final status
    saved in the record), else :class:`~foldserve.errors.JobFailed`.

    Ctrl-C stops following. With ``offer_cancel`` and a terminal it asks whether to cancel the
    job (on an endpoint that cannot cancel: whether to give up on its result); otherwise the
    job keeps running and the commands to follow it are printed.
    """
    since = datetime.fromisoformat(record.submitted_at).timestamp()
    try:
        with err().status(f"job {record.id}: waiting …", spinner="dots") as line:
            logged: tuple[JobStatus, str | None, str | None] | None = None

            def show(state: JobState) -> None:
                nonlocal logged
                waited = time.time() - since
                text = f"job {record.id}: {describe(state, waited, client.reports_progress)}"
                line.update(text)
                progress = state.progress
                step = (
                    state.status,
                    progress.stage if progress else None,
                    progress.model if progress else None,
                )
                if not err().is_terminal and step != logged:
                    err().print(
                        text, highlight=False, soft_wrap=True
                    )  # a log gets a line per step, no spinner
                    logged = step

            state = client.wait(record.id, on_update=show)
    except KeyboardInterrupt:
        err().print(f"stopped following job {record.id}", highlight=False, soft_wrap=True)
        question = (
            f"Cancel job {record.id} on the endpoint?"
            if client.cancels_remotely
            else f"Discard the result of job {record.id}? (the endpoint cannot stop it)"
        )
        if offer_cancel and sys.stdin.isatty() and typer.confirm(question, default=False, err=True):
            status = client.cancel(record.id)
            records.update_status(record, status.value)
            _say_cancelled(client, record.id, status)
        else:
            err().print(
                f"job {record.id} keeps running. follow: foldserve status {record.id}   "
                f"results: foldserve fetch {record.id}   stop: foldserve cancel {record.id}",
                highlight=False,
                soft_wrap=True,
            )
        raise typer.Exit(130) from None
    records.update_status(record, state.status.value)
    return state.completed_output()


def describe(state: JobState, waited_s: float, reports_progress: bool = True) -> str:
    """One status line: queued for, stage, model, run i/n, recycle r/N, pLDDT; of an endpoint
    that does not report progress, how long the job has been queued or running."""
    if state.status is JobStatus.IN_QUEUE and not reports_progress:
        return f"queued or running for {_duration(waited_s)} (the endpoint tells no more)"
    if state.status is JobStatus.IN_QUEUE:
        return f"queued for {_duration(state.delay_time_s or waited_s)}"
    parts = [] if state.delay_time_s is None else [f"queued {_duration(state.delay_time_s)}"]
    progress = state.progress
    if state.status is JobStatus.IN_PROGRESS:
        parts.insert(0, progress.stage if progress else "starting")
    else:
        parts.insert(0, state.status.value)
    if progress is not None:
        parts += describe_progress(progress)
    if state.execution_time_s is not None:
        parts.append(f"running {_duration(state.execution_time_s)}")
    return " · ".join(parts)


def _duration(seconds: float) -> str:
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _save_results(
    client: JobClient, result: JobOutput, directory: Path, output: Path | None, *, plots: bool
) -> None:
    """Download a COMPLETED job into ``directory``, copy its best model, draw its plots,
    print the ranking."""
    with err().status(f"Downloading results to {directory} …", spinner="dots"):
        files = client.download(result, directory)
    best = save_best_model(files, output) if output is not None else None
    if plots:
        from foldserve.pipeline.figures import write_figures_into  # matplotlib: only here

        with err().status("Drawing plots …", spinner="dots"):
            drawn = write_figures_into(directory)
        if drawn:
            names = ", ".join(str(path) for path in drawn.values())
            err().print(f"plots: {names}", highlight=False, soft_wrap=True)
    for warning in result.warnings:
        err().print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
    if result.test_weights:
        warning = random_weights_warning(result.engine)
        err().print(Panel(warning, title="warning", border_style="bold red"))
    print_ranking(result)
    where = f"best model: {best}   " if best else ""
    err().print(f"{where}all outputs: {directory}/", highlight=False, soft_wrap=True)
    if result.test_weights:
        err().print("[bold red]made with random TEST WEIGHTS: not a protein structure[/bold red]")


def print_ranking(result: JobOutput) -> None:
    """The ranking table of a job's output, as ``foldserve predict`` prints it; with the
    engine's own ranking score (OpenFold3's) when the runs carry one."""
    scored = any(run.ranking_score is not None for run in result.ranking)
    table = Table(
        title=f"ranking ({result.engine})",
        title_justify="left",
        # The score's column still fits 80 characters, model names whole.
        box=box.SIMPLE_HEAD if scored else box.HEAVY_HEAD,
        pad_edge=not scored,
        collapse_padding=scored,
    )
    columns = ["rank", "model", "seed", "mean pLDDT", "pTM", "max PAE", "recycles"]
    if scored:
        columns.insert(5, "score")
    for column in columns:
        if column == "model":
            table.add_column(column, no_wrap=True)
        else:
            table.add_column(column, justify="right")
    for run in result.ranking:
        row = [
            str(run.rank),
            run.model,
            str(run.seed),
            f"{run.mean_plddt:.1f}",
            f"{run.ptm:.3f}",
            f"{run.max_pae:.1f}",
            str(run.recycles),
        ]
        if scored:
            row.insert(5, "-" if run.ranking_score is None else f"{run.ranking_score:.3f}")
        table.add_row(*row)
    err().print(table)


def _job_target(
    job_id: str, url: str | None, endpoint_id: str | None, profile: str | None
) -> tuple[JobRecord | None, Target]:
    """The job's record (None when there is none) and its endpoint; flags override the record.
    A SageMaker job is followed through its record only, which must exist."""
    check_job_id(job_id)
    if url is None and endpoint_id is None and profile is None:
        record = records.load(job_id)
        return record, record.target()
    target = resolve_target(url, endpoint_id, profile)
    found = records.load(job_id) if isinstance(target, SageMakerEndpoint) else records.find(job_id)
    return found, target


def status_command(
    job_id: JobArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    url: UrlOption = None,
    endpoint_id: EndpointIdOption = None,
    profile: ProfileOption = None,
) -> None:
    """Show a job's status: queued, running (stage, model, recycle), finished."""
    record, target = _job_target(job_id, url, endpoint_id, profile)
    with connect(target) as client:
        state = client.status(job_id)
    if record is not None:
        records.update_status(record, state.status.value)
    if as_json:
        sys.stdout.write(json.dumps(state_json(state)) + "\n")
        return
    since = datetime.fromisoformat(record.submitted_at).timestamp() if record else time.time()
    if state.status is JobStatus.COMPLETED:
        ranking = state.completed_output().ranking
        best = f"; best {ranking[0].model} pLDDT {ranking[0].mean_plddt:.1f}" if ranking else ""
        took = f" in {_duration(state.execution_time_s)}" if state.execution_time_s else ""
        line = f"COMPLETED{took}{best}; get the files with: foldserve fetch {job_id}"
    elif state.status.finished:
        line = f"{state.status.value}: {state.error or 'no reason given'}"
    else:
        waited = time.time() - since
        line = f"{state.status.value} · {describe(state, waited, client.reports_progress)}"
    sys.stdout.write(f"job {job_id}: {line}\n")


def state_json(state: JobState) -> dict[str, Any]:
    """A job's state for ``status --json``: file names instead of file contents."""
    summary: dict[str, Any] = {
        "id": state.id,
        "status": state.status.value,
        "delay_time_s": state.delay_time_s,
        "execution_time_s": state.execution_time_s,
    }
    if state.error is not None:
        summary["error"] = state.error
    if state.progress is not None:
        summary["progress"] = state.progress.to_wire()
    if state.status is JobStatus.COMPLETED:
        output = state.completed_output()
        summary["ranking"] = [entry.to_wire() for entry in output.ranking]
        summary["files"] = sorted(output.files)
        summary["warnings"] = list(output.warnings)
        summary["test_weights"] = output.test_weights
    return summary


def fetch_command(
    job_id: JobArgument,
    out_dir: Annotated[
        Path | None,
        typer.Option(help="Directory for all outputs (default: as given at submission)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Where the best model goes (default: as submitted)."),
    ] = None,
    url: UrlOption = None,
    endpoint_id: EndpointIdOption = None,
    profile: ProfileOption = None,
    plots: PlotsOption = True,
) -> None:
    """Download a job's results (waiting for it to finish first)."""
    record, target = _job_target(job_id, url, endpoint_id, profile)
    if record is None:
        record = JobRecord.new(job_id, target, msa=None, output=output, out_dir=out_dir)
    best = output or (Path(record.output) if record.output else None)
    directory = (
        out_dir
        or (output.with_name(output.stem + "_prediction") if output else None)
        or (Path(record.out_dir) if record.out_dir else None)
        or Path(f"{job_id}_prediction")
    )
    with connect(target) as client:
        result = _follow(client, record, offer_cancel=False)
        _save_results(client, result, directory, best, plots=plots)


def cancel_command(
    job_id: JobArgument,
    url: UrlOption = None,
    endpoint_id: EndpointIdOption = None,
    profile: ProfileOption = None,
) -> None:
    """Cancel a queued or running job (a SageMaker one: discard its result)."""
    record, target = _job_target(job_id, url, endpoint_id, profile)
    with connect(target) as client:
        status = client.cancel(job_id)
    if record is not None:
        records.update_status(record, status.value)
    _say_cancelled(client, job_id, status)


def _say_cancelled(client: JobClient, job_id: str, status: JobStatus) -> None:
    """What cancelling did; plainly, where the endpoint could not stop the job."""
    if status is not JobStatus.CANCELLED:
        line = f"job {job_id} had already finished: {status.value}"
    elif client.cancels_remotely:
        line = f"job {job_id}: CANCELLED"
    else:
        line = (
            f"job {job_id}: marked CANCELLED here only. {client.destination} cannot stop an "
            "asynchronous request: it may still run (and cost) there, and its result will be "
            "discarded"
        )
    err().print(line, highlight=False, soft_wrap=True)

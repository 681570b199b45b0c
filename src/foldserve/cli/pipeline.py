"""``foldserve pipeline run``, ``foldserve pipeline export sagemaker`` and ``foldserve runs
list|compare``."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.table import Table

from foldserve.cli.complex_input import complex_chains
from foldserve.cli.console import err, out, say_retrying
from foldserve.cli.options import CopiesOption, PairedMsaOption, as_flag_error, parse_models
from foldserve.cli.search_options import (
    DatabaseOption,
    MaxHitsOption,
    ModeOption,
    SequenceOption,
    ServerOption,
    ToolOption,
)
from foldserve.cli.template_options import server_or_files
from foldserve.cloud.sagemaker import pipeline_aws
from foldserve.cloud.sagemaker.pipeline import (
    DEFAULT_NAME,
    PARAMETER_HELP,
    InputKind,
    Workflow,
    build_definition,
    check_name,
    execution_parameters,
)
from foldserve.errors import InputError
from foldserve.files import write_text
from foldserve.fold.engine import parse_engine_names
from foldserve.jobs.progress import JobProgress, describe_progress
from foldserve.msa.search.settings import DEFAULT_MAX_HITS
from foldserve.pipeline import tracking
from foldserve.pipeline.comparison import EnginesComparison
from foldserve.pipeline.config import ChainConfig, PipelineConfig, load_toml
from foldserve.pipeline.run import run_pipeline

pipeline_app = typer.Typer(
    help="Multi-step runs: MSA search, check, predict, compare, report.",
    no_args_is_help=True,
)
runs_app = typer.Typer(help="The record of pipeline runs (MLflow).", no_args_is_help=True)

TrackingOption = Annotated[
    str | None,
    typer.Option(help="MLflow tracking URI (default: SQLite under the output directory)."),
]
LABELS = {"ran": "[green]done[/green]", "cached": "[dim]cached[/dim]"}


@pipeline_app.command("run")
def run_command(
    msa: Annotated[
        list[Path] | None,
        typer.Option(
            help="MSA file in any supported format; once per distinct chain of a complex.",
            show_default=False,
        ),
    ] = None,
    copies: CopiesOption = None,
    paired_msa: PairedMsaOption = None,
    sequence: SequenceOption = None,
    databases: DatabaseOption = None,
    tool: ToolOption = "jackhmmer",
    server: ServerOption = None,
    search_mode: ModeOption = "env",
    max_hits: MaxHitsOption = DEFAULT_MAX_HITS,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output directory.")] = None,
    config: Annotated[
        Path | None, typer.Option(help="TOML file describing the run (flags override it).")
    ] = None,
    engines: Annotated[
        str | None,
        typer.Option(
            help="The engines that predict, each on the same MSA: alphafold2 (the default), "
            "openfold3, or alphafold2,openfold3 to compare their best models.",
            show_default=False,
        ),
    ] = None,
    models: Annotated[str | None, typer.Option(help="AlphaFold2 models, e.g. 1,2,3.")] = None,
    num_recycles: Annotated[int | None, typer.Option(help="Recycling iterations.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    model_type: Annotated[
        str | None,
        typer.Option(
            help="auto (multimer for more than one chain or copy; the default), monomer_ptm "
            "or multimer (AlphaFold2-multimer v3).",
            show_default=False,
        ),
    ] = None,
    rank_by: Annotated[
        str | None,
        typer.Option(
            help="Rank models by auto (multimer for a complex, plddt for one chain; the "
            "default), plddt, ptm, iptm or multimer (0.8 ipTM + 0.2 pTM).",
            show_default=False,
        ),
    ] = None,
    templates: Annotated[
        list[str] | None,
        typer.Option(
            help="Template structures (mmCIF or PDB files, or folders of them), or `server` "
            "for the --server's template hits.",
            show_default=False,
        ),
    ] = None,
    max_template_date: Annotated[
        str | None,
        typer.Option(
            help="Drop templates released after this date (YYYY-MM-DD), when their mmCIF says.",
            show_default=False,
        ),
    ] = None,
    relax: Annotated[
        str | None,
        typer.Option(
            help="Amber-relax none, the best model or all (default none).", show_default=False
        ),
    ] = None,
    reference: Annotated[
        Path | None, typer.Option(help="Experimental structure to compare with.")
    ] = None,
    reference_chain: Annotated[str | None, typer.Option(help="Chain of the reference.")] = None,
    params_dir: Annotated[
        Path | None, typer.Option(help="Weights directory for in-process predictions.")
    ] = None,
    endpoint_id: Annotated[
        str | None, typer.Option(help="Predict on this RunPod endpoint.")
    ] = None,
    url: Annotated[str | None, typer.Option(help="Predict on this foldserve endpoint.")] = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """Run MSA search, MSA check, predictions, comparison and report; finished steps are
    skipped."""
    chains = complex_chains([str(path) for path in msa or []], copies, paired_msa)
    flags: dict[str, Any] = {
        "msa": msa[0] if msa and chains is None else None,
        "chains": (
            tuple(
                ChainConfig(Path(path), count)
                for path, count in zip(chains.paths, chains.copies, strict=True)
            )
            if chains is not None
            else None
        ),
        "paired_msa": chains.paired if chains is not None else None,
        "sequence": sequence,
        "databases": tuple(databases) if databases else None,
        "search_tool": tool if tool != "jackhmmer" else None,
        "server": server,
        "search_mode": search_mode if search_mode != "env" else None,
        "max_hits": max_hits if max_hits != DEFAULT_MAX_HITS else None,
        "out": out_dir,
        "engines": parse_engine_names(engines, where="--engines") if engines else None,
        "models": parse_models(models) if models else None,
        "num_recycles": num_recycles,
        "seed": seed,
        "model_type": model_type,
        "rank_by": rank_by,
        "templates": server_or_files(templates),
        "max_template_date": max_template_date,
        "relax": relax,
        "reference": reference,
        "reference_chain": reference_chain,
        "params_dir": params_dir,
        "endpoint_id": endpoint_id,
        "url": url,
        "tracking_uri": tracking_uri,
    }
    if config is not None:
        settings = load_toml(config, flags)
    else:
        if (not msa and sequence is None) or out_dir is None:
            raise InputError(
                "no MSA (or sequence) or output directory",
                where="--msa/--out",
                fix="give --msa FILE (or --sequence FASTA --db DB) and --out DIR, or --config",
            )
        settings = PipelineConfig(**{k: v for k, v in flags.items() if v is not None})

    def show(step: str, status: str) -> None:
        if status == "start":
            err().print(f"  {step} …", highlight=False)
        else:
            err().print(f"  {step}: {LABELS[status]}", highlight=False)

    def progress(event: JobProgress) -> None:
        parts = [event.stage, *describe_progress(event)]
        err().print("    " + " · ".join(parts), highlight=False, soft_wrap=True)

    result = run_pipeline(settings, on_step=show, on_progress=progress, on_retry=say_retrying)
    with err().status("Recording the run in MLflow …", spinner="dots"):
        logged = tracking.log_run(result, settings.tracking_uri)
    uri = _uri(settings.out, settings.tracking_uri)
    if len(settings.engines) > 1:
        comparison = EnginesComparison.model_validate_json(
            result.output("compare", "comparison").read_bytes()
        )
        header, rows = comparison.table()
        table = Table(title="the engines' best models", title_justify="left")
        table.add_column(header[0], no_wrap=True)
        for engine in header[1:]:
            table.add_column(engine, justify="right")
        for row in rows:
            table.add_row(*row)
        out().print(table)
    err().print(f"report: {result.output('report', 'report')}", highlight=False, soft_wrap=True)
    if logged.new:
        err().print(f"MLflow run {logged.run_id} in {uri}", highlight=False, soft_wrap=True)
        for engine, run_id in logged.engine_runs.items():
            err().print(f"  {engine}: MLflow run {run_id}", highlight=False, soft_wrap=True)
        if logged.engine_runs:
            err().print(
                f"side by side: foldserve runs compare {logged.run_id[:8]} --dir {settings.out}",
                highlight=False,
                soft_wrap=True,
            )
    else:
        err().print(
            f"unchanged since MLflow run {logged.run_id} in {uri}: nothing new logged",
            highlight=False,
            soft_wrap=True,
        )


def _uri(directory: Path, tracking_uri: str | None) -> str:
    return tracking_uri or tracking.default_uri(directory)


DirArgument = Annotated[
    Path, typer.Option("--dir", help="Pipeline output directory holding the default store.")
]


def _when(milliseconds: int) -> str:
    moment = datetime.datetime.fromtimestamp(milliseconds / 1000)
    return moment.strftime("%Y-%m-%d %H:%M")


def _number(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


@runs_app.command("list")
def list_command(directory: DirArgument = Path("."), tracking_uri: TrackingOption = None) -> None:
    """Every recorded pipeline run, newest first."""
    uri = _uri(directory, tracking_uri)
    runs = tracking.list_runs(uri)
    if not runs:
        err().print(
            f"no runs in {uri}: `foldserve pipeline run` records one "
            "(--dir names a pipeline's output directory)",
            highlight=False,
            soft_wrap=True,
        )
        return
    table = Table(title=uri, title_justify="left")
    columns = ("run", "name", "started", "engine", "models", "chains", "test wts", "pLDDT")
    for column in (*columns, "pTM", "ipTM", "TM ref"):
        table.add_column(column, no_wrap=column in ("run", "started"))
    listed = {run.run_id for run in runs}
    for run in runs:
        if run.parent_id in listed:
            continue  # listed under its parent
        table.add_row(*_list_row(run, run.params.get("engines", "")))
        for child in tracking.engine_runs(runs, run):
            table.add_row(*_list_row(child, "└ " + child.params.get("engine", "")))
    out().print(table)


def _list_row(run: tracking.RunRow, engine: str) -> list[str]:
    return [
        run.run_id[:8],
        run.name,
        _when(run.start_time),
        engine,
        run.params.get("models", ""),
        run.params.get("chains", ""),
        run.params.get("test_weights", ""),
        _number(run.metrics.get("mean_plddt"), 1),
        _number(run.metrics.get("ptm"), 3),
        _number(run.metrics.get("iptm"), 3),
        _number(run.metrics.get("tm_score_to_reference"), 3),
    ]


@runs_app.command("compare")
def compare_runs_command(
    run_ids: Annotated[list[str], typer.Argument(help="Run ids or unique prefixes.")],
    directory: DirArgument = Path("."),
    tracking_uri: TrackingOption = None,
) -> None:
    """Parameters and metrics of runs side by side; differing rows are highlighted. A run of
    several engines shows each engine's run, with the engines' comparison below."""
    compared = tracking.side_by_side(_uri(directory, tracking_uri), run_ids)
    runs = compared.columns
    caption = "\n".join(
        f"{parent.run_id[:8]} {parent.name}: "
        + ", ".join(f"{k} {v:.4g}" for k, v in sorted(tracking.pair_metrics(parent).items()))
        for parent in compared.parents
    )
    table = Table(title_justify="left", caption=caption or None, caption_justify="left")
    table.add_column("", no_wrap=True)
    for run in runs:
        table.add_column(f"{run.run_id[:8]}\n{run.name}", justify="right")
    for kind, values in (
        ("param", [r.params for r in runs]),
        ("metric", [r.metrics for r in runs]),
    ):
        for name in sorted({key for v in values for key in v}):
            cells = [v.get(name) for v in values]
            text = ["" if c is None else (f"{c:.4g}" if isinstance(c, float) else c) for c in cells]
            style = "bold" if len(set(text)) > 1 else None
            table.add_row(f"{kind} {name}", *text, style=style)
    out().print(table)


# -- pipeline export sagemaker --------------------------------------------------------------------
export_app = typer.Typer(
    help="Write the folding workflow for another orchestrator: a SageMaker Pipeline.",
    no_args_is_help=True,
)
pipeline_app.add_typer(export_app, name="export")


@export_app.command("sagemaker")
def export_sagemaker_command(
    out_file: Annotated[
        Path,
        typer.Option("--out", help="File for the pipeline definition (JSON).", show_default=False),
    ],
    name: Annotated[
        str, typer.Option(help="Pipeline name, for --upsert and --start.")
    ] = DEFAULT_NAME,
    role: Annotated[
        str | None,
        typer.Option(
            help="IAM role ARN the pipeline and its jobs run as (the RoleArn parameter's "
            "default); --upsert needs it.",
            show_default=False,
        ),
    ] = None,
    image: Annotated[
        str | None,
        typer.Option(
            help="The foldserve image in ECR (the ImageUri parameter's default).",
            show_default=False,
        ),
    ] = None,
    engines: Annotated[
        str, typer.Option(help="The engines that predict, each in a GPU step of its own.")
    ] = "alphafold2,openfold3",
    input_kind: Annotated[
        str,
        typer.Option(
            help="fasta (the first step searches the MSA on the MMseqs2 server) or msa (it "
            "checks the MSA given)."
        ),
    ] = "fasta",
    templates: Annotated[
        bool,
        typer.Option(
            "--templates",
            help="AlphaFold2 reads templates from TemplatesS3Uri, up to MaxTemplateDate.",
        ),
    ] = False,
    upsert: Annotated[
        bool, typer.Option("--upsert", help="Create the pipeline in the account, or update it.")
    ] = False,
    start: Annotated[
        bool, typer.Option("--start", help="Start an execution; prints its ARN.")
    ] = False,
    params: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            help="NAME=VALUE of a pipeline parameter for --start; repeat for more.",
            show_default=False,
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            help="AWS region (default: AWS_REGION or the AWS config).", show_default=False
        ),
    ] = None,
) -> None:
    """Write the folding workflow as a SageMaker Pipeline definition: an MSA step on a CPU
    instance, a prediction step per engine on GPU instances, and a compare and report step,
    each running foldserve in the foldserve image. Builds offline; only --upsert and --start
    call AWS."""
    try:
        check_name(name)
        workflow = Workflow(
            engines=parse_engine_names(engines, where="engines"),
            input_kind=cast(InputKind, input_kind),
            templates=templates,
            image=image,
            role=role,
        )
    except InputError as exc:
        raise as_flag_error(exc, {}) from None
    if params and not start:
        raise InputError("parameters are for an execution", where="--param", fix="add --start")
    if upsert and role is None:
        raise InputError(
            "a pipeline needs a role to run as", where="--upsert", fix="add --role ARN"
        )
    definition = build_definition(workflow)
    given = _parameter_values(params or [])
    values = execution_parameters(definition, given) if start else {}
    write_text(out_file, definition.to_json())
    steps = ", ".join(step.name for step in definition.steps)
    lines = [f"wrote {out_file}: steps {steps}", "parameters (--start --param NAME=VALUE):"]
    for parameter in definition.parameters:
        default = "" if parameter.default_value is None else f" = {parameter.default_value}"
        lines.append(f"  {parameter.name}{default}: {PARAMETER_HELP[parameter.name]}")
    err().print("\n".join(lines), highlight=False, soft_wrap=True)
    if upsert:
        assert role is not None
        done = pipeline_aws.upsert(name, definition.to_json(), role, region)
        err().print(f"{done.action} pipeline {done.arn}", highlight=False, soft_wrap=True)
    if start:
        arn = pipeline_aws.start(name, values, region)
        err().print("started an execution:", highlight=False)
        out().print(arn, highlight=False, soft_wrap=True)


def _parameter_values(pairs: list[str]) -> dict[str, str]:
    """``--param NAME=VALUE`` as given, each name once."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key or key in values:
            raise InputError(
                f"{pair!r} is not NAME=VALUE" if not equals or not key else f"{key} given twice",
                where="--param",
                fix="give e.g. --param InputS3Uri=s3://bucket/T1030.fasta, once per name",
            )
        values[key] = value
    return values

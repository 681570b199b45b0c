"""``foldserve predict``: fold one MSA or many in this process, as ``colabfold_batch`` does.

``foldserve predict INPUT OUTPUT_DIR``: INPUT is an MSA file, a file holding several MSAs
(Stockholm blocks, NUL-separated A3M) or a folder of MSA files. One MSA is written to
OUTPUT_DIR itself; several to ``OUTPUT_DIR/NAME/`` with the best model as ``OUTPUT_DIR/NAME.pdb``
(the layout ``submit --msa-dir`` writes). ``--engine`` picks AlphaFold2 (the default) or
OpenFold3; a flag of the other engine alone is refused. Everything that can be refused (every
MSA, every output place, the engine's weights or extra, the memory, ``--relax`` without
OpenMM) is refused before the first model runs. Each prediction folder
holds exactly one run (:mod:`foldserve.fold.run_dir`): its models, scores, plots, ``config.json``
and ``log.txt``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, TypeVar, cast

import typer
from rich.panel import Panel

from foldserve.cli.complex_input import complex_chains
from foldserve.cli.console import err
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
from foldserve.cli.predict_run import (
    Query,
    check_best_model_path,
    describe_msa,
    log_ranking,
    place,
    print_summary,
    read_msas,
    relax_runs,
    write_run,
    zip_folder,
)
from foldserve.cli.run_log import RunLog
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
from foldserve.cli.search_run import run_search
from foldserve.cli.template_options import TemplateRequest, fetch_from_server, template_request
from foldserve.errors import InputError
from foldserve.fold import run_dir
from foldserve.fold.alphafold2.features import InputShape
from foldserve.fold.alphafold2.predictor import Predictor
from foldserve.fold.engine import ENGINE_TITLES, Engine, Precision, load_engine
from foldserve.fold.relax import check_relax_available
from foldserve.fold.results import EngineName, PredictOptions, TemplateSource
from foldserve.fold.run_config import check_relax
from foldserve.msa.model import Msa
from foldserve.msa.search.queries import read_queries
from foldserve.msa.search.settings import DEFAULT_MAX_HITS, DEFAULT_TIMEOUT_S, SearchSettings

T = TypeVar("T")


def predict_command(
    input_path: Annotated[
        str | None,
        typer.Argument(
            metavar="INPUT",
            help="MSA file (any format), a file of several MSAs, or a folder of MSA files.",
            show_default=False,
        ),
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Argument(
            metavar="OUTPUT_DIR",
            help="Folder for the results (one subfolder per MSA when there are several).",
            show_default=False,
        ),
    ] = None,
    msa_paths: Annotated[
        list[str] | None,
        typer.Option(
            "--msa",
            help="Same as INPUT; given once per distinct chain (--msa A.a3m --msa B.sto), the "
            "chains of one complex.",
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
    cpus: CpusOption = None,
    email: EmailOption = None,
    no_cache: NoCacheOption = False,
    search_timeout: SearchTimeoutOption = DEFAULT_TIMEOUT_S,
    out_dir: Annotated[
        Path | None, typer.Option(help="Same as OUTPUT_DIR.", show_default=False)
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Also write the best model here, in the format its name ends in "
            "(.pdb, .cif, .mmcif, .pdb.gz, .cif.gz); one MSA only.",
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an earlier run in OUTPUT_DIR whole.")
    ] = False,
    plots: PlotsOption = True,
    zip_results: Annotated[
        bool, typer.Option("--zip", help="Also pack each result folder as FOLDER.zip.")
    ] = False,
    sort_queries_by: Annotated[
        str, typer.Option(help="Order of several MSAs: length (shortest first) or none.")
    ] = "length",
    engine: EngineOption = "alphafold2",
    models: ModelsOption = "1,2,3,4,5",
    num_recycles: NumRecyclesOption = 3,
    recycle_early_stop_tolerance: ToleranceOption = None,
    stop_at_score: Annotated[
        float | None,
        typer.Option(
            help="Run no further model once one reaches this mean pLDDT (pTM x 100 with "
            "--rank-by ptm).",
            show_default=False,
        ),
    ] = None,
    seed: SeedOption = 0,
    num_seeds: NumSeedsOption = 1,
    rank_by: RankByOption = "auto",
    model_type: ModelTypeOption = "auto",
    num_predictions_per_model: NumPredictionsPerModelOption = None,
    num_diffusion_samples: NumDiffusionSamplesOption = None,
    max_msa: Annotated[
        str | None,
        typer.Option(
            help="CLUSTERS:EXTRA MSA rows the network reads (default 512:5120; the multimer "
            "models read at most 508:2048, ColabFold's).",
            show_default=False,
        ),
    ] = None,
    save_all: Annotated[
        bool,
        typer.Option("--save-all", help="Also save each run's raw outputs (result_*.pkl)."),
    ] = False,
    relax: RelaxOption = "none",
    params_dir: Annotated[
        Path | None,
        typer.Option(
            help="Weights directory (default: $PARAM_DIR or ~/.cache/foldserve).",
            show_default=False,
        ),
    ] = None,
    msa_format: MsaFormatOption = "auto",
    query: QueryOption = None,
    templates: TemplatesOption = None,
    max_template_date: MaxTemplateDateOption = None,
    precision: Annotated[
        str, typer.Option(help="auto (bfloat16 on GPU, float32 on CPU), bfloat16 or float32.")
    ] = "auto",
) -> None:
    """Predict structures from MSAs with AlphaFold2 or OpenFold3, in this process."""
    chosen = parse_engine(engine)
    clusters, extra = _max_msa(max_msa)
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
        stop_at_score=stop_at_score,
        max_msa_clusters=clusters,
        max_extra_msa=extra,
        num_diffusion_samples=num_diffusion_samples,
    )
    msa_list = msa_paths or []
    if (sequence is not None or msa_list) and input_path is not None and output_dir is None:
        # `predict --sequence Q.fasta OUT/`, `predict --msa A --msa B OUT/`: the one
        # positional is the output.
        output_dir = Path(input_path)
        input_path = None
    chains = complex_chains(msa_list, copies, paired_msa)
    single = msa_list[0] if len(msa_list) == 1 and chains is None else None
    source = _one_of(input_path, single, "INPUT", "--msa", "an MSA file or folder")
    if chains is not None and input_path is not None:
        raise InputError(
            "both INPUT and the chains of a complex (--msa …) given",
            where="INPUT",
            fix="give the complex's chains with --msa only",
        )
    if chains is not None:
        source = chains.where
    if source is not None and sequence is not None:
        raise InputError(
            "both an MSA and --sequence given",
            where="--sequence",
            fix="fold the MSA you have, or search one for the sequence",
        )
    if source is None and sequence is None:
        raise InputError(
            "no MSA given",
            where="INPUT",
            fix="run `foldserve predict MSA_FILE OUTPUT_DIR`, or search one with --sequence",
        )
    directory = _one_of(output_dir, out_dir, "OUTPUT_DIR", "--out-dir", "a folder")
    if directory is None and output is not None:
        directory = output.with_name(output.stem + "_prediction")  # before OUTPUT_DIR existed
    if directory is None:
        raise InputError(
            "no output folder given",
            where="OUTPUT_DIR",
            fix="run `foldserve predict MSA_FILE OUTPUT_DIR`",
        )
    if sort_queries_by not in ("length", "none"):
        raise InputError(
            f"unknown order {sort_queries_by!r}",
            where="--sort-queries-by",
            fix="use length or none",
        )
    if output is not None:
        check_best_model_path(output)
    relax_mode = check_relax(relax, where="--relax")
    if relax_mode != "none":
        check_relax_available(where="--relax")
    settings = None
    if sequence is not None:
        settings = search_settings(
            databases, tool, server, search_mode, max_hits, cpus, email, no_cache, search_timeout
        )
    wanted_templates = template_request(
        templates, max_template_date, server=settings is not None and settings.server is not None
    )
    if sequence is not None:
        to_search = read_queries(sequence)
        names = [q.name for q in to_search]
    elif chains is not None:
        found = [chains.read(msa_format)]
        names = [found[0].name]
    else:
        assert source is not None
        found = read_msas(source, msa_format, query)
        names = [named.name for named in found]
    places = place(names, directory, output, where=str(sequence or source))
    for placed in places:
        run_dir.check_target(placed.target, overwrite=overwrite)
    with err().status(f"Loading {ENGINE_TITLES[chosen]} …", spinner="dots"):
        predictor = _load(chosen, params_dir, cast(Precision, precision), options)
    if sequence is not None:
        assert settings is not None
        # Searched on this CPU once everything else is known to be right, then folded.
        results = run_search(to_search, settings)
        queries = [Query(p, r.msa(), r) for p, r in zip(places, results, strict=True)]
    else:
        queries = [Query(p, named.msa) for p, named in zip(places, found, strict=True)]
    for item in queries:
        predictor.check_input(item.msa, options, where="--models")
    if sort_queries_by == "length":
        queries.sort(key=lambda q: q.msa.query_length)
    if predictor.engine.test_weights:
        err().print(Panel(random_weights_warning(chosen), title="warning", border_style="bold red"))
    for number, item in enumerate(queries, start=1):
        log = RunLog(err(highlight=False))
        if len(queries) > 1:
            heading = f"query {number}/{len(queries)}: {item.place.name}"
            log.note(heading, markup=f"[bold]{heading}[/bold]")
        neff = describe_msa(item.msa, options, log, chosen)
        staged = run_dir.prepare(item.place.target, overwrite=overwrite)
        try:
            template_source = _templates_for(item, wanted_templates, settings, staged.staging)
            with log.following(options, _shape(predictor, item.msa, options)) as show:
                prediction = predictor.predict(
                    item.msa, options, templates=template_source, progress=show, keep_raw=save_all
                )
        except BaseException:
            run_dir.discard(staged)
            raise
        for warning in prediction.warnings:
            log.warn(warning)
        try:
            relaxation = relax_runs(prediction, relax_mode, log)
        except BaseException:
            run_dir.discard(staged)
            raise
        log_ranking(prediction, log, relaxation)
        write_run(
            prediction,
            staged,
            item,
            log,
            neff=neff,
            plots=plots,
            save_all=save_all,
            relaxation=relaxation,
        )
        if zip_results:
            zip_folder(item.place.target)
        print_summary(prediction, item.place, log, relaxation)


def _load(
    name: EngineName, params_dir: Path | None, precision: Precision, options: PredictOptions
) -> Engine:
    """The engine, its weights loaded; AlphaFold2's models checked against those installed.
    An unknown precision is the engine's InputError (where="precision"); a missing extra
    names --engine."""
    try:
        engine = load_engine(name, params_dir, precision=precision)
    except InputError as exc:
        if exc.where != "engine":
            raise
        raise as_flag_error(exc, {"engine": "--engine"}) from None
    if isinstance(engine, Predictor):
        engine.check_models(options.models, where="--models")
    return engine


def _shape(engine: Engine, msa: Msa, options: PredictOptions) -> InputShape:
    """The input shape progress lines name: AlphaFold2's padded shape; for OpenFold3, which
    compiles nothing, the residues and every MSA row."""
    if isinstance(engine, Predictor):
        return engine.shape_for(msa, options)
    return InputShape(length=msa.query_length, clusters=len(msa), extra=0)


def _templates_for(
    item: Query,
    wanted: TemplateRequest | None,
    settings: SearchSettings | None,
    staging: Path,
) -> TemplateSource | None:
    """The templates of one query: the user's files, or the server's hits for its sequence
    (fetched into the staged run, so they are kept with it)."""
    if wanted is None:
        return None
    if not wanted.from_server:
        return wanted.source()
    assert settings is not None
    return fetch_from_server(wanted, [item.msa.query_sequence], settings, staging / "templates")


def _one_of(a: T | None, b: T | None, name_a: str, name_b: str, what: str) -> T | None:
    """The value given as a positional argument or as its option, not both."""
    if a is not None and b is not None and a != b:
        raise InputError(f"both {name_a} and {name_b} given", where=name_b, fix=f"give {what} once")
    return a if a is not None else b


def _max_msa(text: str | None) -> tuple[int | None, int | None]:
    """``--max-msa 512:5120`` → (512, 5120)."""
    if text is None:
        return None, None
    parts = text.split(":")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise InputError(
            f"cannot read {text!r}", where="--max-msa", fix="write CLUSTERS:EXTRA, e.g. 512:5120"
        )
    return int(parts[0]), int(parts[1])

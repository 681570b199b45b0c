"""Prediction flags shared by ``foldserve predict`` and ``foldserve submit``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer

from foldserve.errors import InputError
from foldserve.fold.engine import (
    DEFAULT_ENGINE,
    ENGINE_TITLES,
    check_engine_options,
    parse_engine_names,
)
from foldserve.fold.results import EngineName, ModelType, PredictOptions, RankBy

EngineOption = Annotated[
    str,
    typer.Option(
        help="The engine that predicts: alphafold2 or openfold3 (options of the other engine "
        "alone are refused)."
    ),
]
NumDiffusionSamplesOption = Annotated[
    int | None,
    typer.Option(
        help="OpenFold3: structures its diffusion module samples per seed (default 5, "
        "OpenFold3's).",
        show_default=False,
    ),
]

ModelsOption = Annotated[str, typer.Option(help="AlphaFold2 models to run.")]
NumRecyclesOption = Annotated[int, typer.Option(help="Recycling iterations.")]
ToleranceOption = Annotated[
    float | None, typer.Option(help="Stop recycling once CA positions move less (Å).")
]
SeedOption = Annotated[int, typer.Option(help="First random seed.")]
NumSeedsOption = Annotated[int, typer.Option(help="Seeds per model.")]
RankByOption = Annotated[
    str,
    typer.Option(
        help="Rank models by auto (AlphaFold2: multimer for a complex, plddt for one chain; "
        "OpenFold3: its own ranking score), plddt, ptm, iptm, multimer (0.8 ipTM + 0.2 pTM) "
        "or engine (the engine's own score)."
    ),
]
ModelTypeOption = Annotated[
    str,
    typer.Option(
        help="auto (multimer for more than one chain or copy), monomer_ptm or multimer "
        "(AlphaFold2-multimer v3)."
    ),
]
NumPredictionsPerModelOption = Annotated[
    int | None,
    typer.Option(
        help="Predictions (seeds) per model: the workflow's NumMultimerPredictionsPerModel; "
        "the same as --num-seeds.",
        show_default=False,
    ),
]
CopiesOption = Annotated[
    str | None,
    typer.Option(
        help="Copies of each --msa chain in the complex, e.g. 2,1 (default one each).",
        show_default=False,
    ),
]
PairedMsaOption = Annotated[
    Path | None,
    typer.Option(
        help="A3M of the chains' paired rows side by side (e.g. ColabFold's pair.a3m); "
        "without it rows are paired by species.",
        show_default=False,
    ),
]
TemplatesOption = Annotated[
    list[str] | None,
    typer.Option(
        help="Template structures (mmCIF or PDB files, or folders of them), or `server` for "
        "the --server's template hits; used by models 1 and 2 (every multimer model).",
        show_default=False,
    ),
]
MaxTemplateDateOption = Annotated[
    str | None,
    typer.Option(
        help="Drop templates released after this date (YYYY-MM-DD), when their mmCIF says.",
        show_default=False,
    ),
]
MsaFormatOption = Annotated[str, typer.Option("--format", "-f", help="MSA format or auto.")]
PlotsOption = Annotated[
    bool, typer.Option(help="Draw pLDDT, PAE and MSA coverage plots (PNG) beside the models.")
]
RelaxOption = Annotated[
    str,
    typer.Option(
        help="Amber-relax none, the best model or all models (AlphaFold's protocol; "
        "needs foldserve[relax] where the prediction runs).",
    ),
]
QueryOption = Annotated[str | None, typer.Option(help="Name of the query row.")]


def random_weights_warning(engine: str) -> str:
    """What a run on ``engine``'s random test weights says before its results."""
    title = ENGINE_TITLES.get(engine, engine)
    flag = "" if engine == DEFAULT_ENGINE else f" --engine {engine}"
    return (
        f"[bold]These are random TEST WEIGHTS, not {title}'s parameters.[/bold]\n"
        "The models below exercise the real network but are not protein structures.\n"
        f"Install the real weights with `foldserve weights fetch{flag}`."
    )


#: Option fields whose flag is not their name with dashes.
_FLAGS = {"max_msa_clusters": "--max-msa", "max_extra_msa": "--max-msa"}


def as_flag_error(error: InputError, flags: dict[str, str]) -> InputError:
    """``error`` of a settings object (``where`` names its field) as the command line says it:
    ``where`` becomes the flag the user typed, ``flags[field]`` or ``--field-with-dashes``."""
    field = error.where or ""
    flag = flags.get(field, f"--{field.replace('_', '-')}")
    return InputError(error.problem, where=flag, fix=error.fix)


def parse_engine(text: str, *, where: str = "--engine") -> EngineName:
    """``--engine openfold3`` → ``"openfold3"``; one engine, as the flag takes."""
    names = parse_engine_names(text, where=where)
    if len(names) > 1:
        raise InputError(
            f"{len(names)} engines given; this runs one",
            where=where,
            fix="give alphafold2 or openfold3 (`foldserve pipeline run --engines "
            "alphafold2,openfold3` runs both and compares them)",
        )
    return names[0]


def parse_models(text: str) -> tuple[int, ...]:
    """``"1,2,3"`` → ``(1, 2, 3)``; a clear error for anything else."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InputError(
            f"cannot read model list {text!r}", where="--models", fix="write e.g. --models 1,2,3"
        ) from None


def parse_copies(text: str | None, chains: int) -> tuple[int, ...]:
    """``"2,1"`` → ``(2, 1)``, one count per ``--msa`` chain; None → one copy of each."""
    if text is None:
        return (1,) * chains
    example = ",".join(["1"] * chains)
    try:
        copies = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise InputError(
            f"cannot read {text!r} as copy counts",
            where="--copies",
            fix=f"give whole numbers separated by commas, one per --msa, e.g. --copies {example}",
        ) from None
    if len(copies) != chains:
        raise InputError(
            f"{len(copies)} copy count(s) for {chains} --msa chain(s)",
            where="--copies",
            fix=f"give one count per --msa, in their order, e.g. --copies {example}",
        )
    if min(copies) < 1:
        raise InputError(
            f"a chain in {min(copies)} copies",
            where="--copies",
            fix="give each chain 1 copy or more",
        )
    return copies


def predict_options(
    models: str,
    num_recycles: int,
    recycle_early_stop_tolerance: float | None,
    seed: int,
    num_seeds: int,
    rank_by: str,
    *,
    model_type: str = "auto",
    num_predictions_per_model: int | None = None,
    templates: bool = False,
    engine: EngineName = DEFAULT_ENGINE,
    **defaulted: float | int | None,
) -> PredictOptions:
    """The options the flags ask for, for ``engine`` (an option of the other engine alone is
    refused); errors name the flag the user typed. ``defaulted`` options
    (``stop_at_score=…``) left None keep PredictOptions' default."""
    model_numbers = parse_models(models)
    if num_predictions_per_model is not None:
        if num_seeds not in (1, num_predictions_per_model):
            raise InputError(
                f"--num-seeds {num_seeds} and --num-predictions-per-model "
                f"{num_predictions_per_model} disagree",
                where="--num-predictions-per-model",
                fix="give one of them: both set the seeds each model runs with",
            )
        num_seeds = num_predictions_per_model
    given = {name: value for name, value in defaulted.items() if value is not None}
    try:
        options = PredictOptions(
            models=model_numbers,
            num_recycles=num_recycles,
            recycle_early_stop_tolerance=recycle_early_stop_tolerance,
            seed=seed,
            num_seeds=num_seeds,
            rank_by=cast(RankBy, rank_by),
            model_type=cast(ModelType, model_type),
            templates=templates,
            **given,  # type: ignore[arg-type]
        )
        check_engine_options(engine, options)
    except InputError as exc:
        raise as_flag_error(exc, _FLAGS) from None
    return options

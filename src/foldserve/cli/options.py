"""Prediction flags shared by ``foldserve predict`` and ``foldserve submit``."""

from __future__ import annotations

from typing import Annotated, cast

import typer

from foldserve.errors import InputError
from foldserve.fold.results import PredictOptions, RankBy

ModelsOption = Annotated[str, typer.Option(help="AlphaFold2 pTM models to run.")]
NumRecyclesOption = Annotated[int, typer.Option(help="Recycling iterations.")]
ToleranceOption = Annotated[
    float | None, typer.Option(help="Stop recycling once CA positions move less (Å).")
]
SeedOption = Annotated[int, typer.Option(help="First random seed.")]
NumSeedsOption = Annotated[int, typer.Option(help="Seeds per model.")]
RankByOption = Annotated[str, typer.Option(help="Rank models by plddt or ptm.")]
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

TEST_WEIGHTS_WARNING = (
    "[bold]These are random TEST WEIGHTS, not AlphaFold's parameters.[/bold]\n"
    "The models below exercise the real network but are not protein structures.\n"
    "Install the real weights with `foldserve weights fetch`."
)


#: Option fields whose flag is not their name with dashes.
_FLAGS = {"max_msa_clusters": "--max-msa", "max_extra_msa": "--max-msa"}


def as_flag_error(error: InputError, flags: dict[str, str]) -> InputError:
    """``error`` of a settings object (``where`` names its field) as the command line says it:
    ``where`` becomes the flag the user typed, ``flags[field]`` or ``--field-with-dashes``."""
    field = error.where or ""
    flag = flags.get(field, f"--{field.replace('_', '-')}")
    return InputError(error.problem, where=flag, fix=error.fix)


def parse_models(text: str) -> tuple[int, ...]:
    """``"1,2,3"`` → ``(1, 2, 3)``; a clear error for anything else."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InputError(
            f"cannot read model list {text!r}", where="--models", fix="write e.g. --models 1,2,3"
        ) from None


def predict_options(
    models: str,
    num_recycles: int,
    recycle_early_stop_tolerance: float | None,
    seed: int,
    num_seeds: int,
    rank_by: str,
    *,
    templates: bool = False,
    **defaulted: float | int | None,
) -> PredictOptions:
    """The options the flags ask for; errors name the flag the user typed. ``defaulted``
    options (``stop_at_score=…``) left None keep PredictOptions' default."""
    model_numbers = parse_models(models)
    given = {name: value for name, value in defaulted.items() if value is not None}
    try:
        return PredictOptions(
            models=model_numbers,
            num_recycles=num_recycles,
            recycle_early_stop_tolerance=recycle_early_stop_tolerance,
            seed=seed,
            num_seeds=num_seeds,
            rank_by=cast(RankBy, rank_by),
            templates=templates,
            **given,  # type: ignore[arg-type]
        )
    except InputError as exc:
        raise as_flag_error(exc, _FLAGS) from None

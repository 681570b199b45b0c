"""The body of ``POST /run``, built and checked on the client before anything is uploaded.

The MSA is parsed and validated here, so a bad file never costs GPU time. When the packed
request would exceed the endpoint's 10 MB ``/run`` limit the MSA is reduced to what the model
can use (ColabFold reads at most 512 cluster + 5,120 extra rows) and, if that is still too
large, to ever fewer of its most diverse rows; the caller is told in ``warnings``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from foldserve.errors import InputError
from foldserve.fold.results import PredictOptions
from foldserve.fold.run_config import RelaxMode
from foldserve.jobs.input import (
    DEFAULT_OUTPUTS,
    MAX_POLICY_MS,
    RUN_BODY_LIMIT,
    FoldJobInput,
    OutputKind,
    Policy,
    RunRequest,
    validation_error,
)
from foldserve.jobs.payload import pack_msa
from foldserve.msa.filtering import FilterSettings, filter_msa
from foldserve.msa.model import Msa
from foldserve.msa.reading import read
from foldserve.msa.stats import MODEL_MAX_ROWS


@dataclass(frozen=True)
class JobRequest:
    """A checked ``/run`` body: ``content`` is exactly the bytes sent.

    ``source`` is the MSA file it was read from, kept in the job's local record; None for an
    :class:`Msa` given as such, or standard input (``-``).
    """

    content: bytes
    msa: Msa
    warnings: tuple[str, ...]
    source: str | None = None


def policy_milliseconds(seconds: float, *, where: str) -> int:
    """``seconds`` as the milliseconds of an execution policy, which allows up to 7 days.

    Out of range is an :class:`~foldserve.errors.InputError` naming ``where`` (the parameter,
    or the command line's flag).
    """
    if not 0 < seconds <= MAX_POLICY_MS / 1000:
        raise InputError(
            f"{seconds:g} s is out of range",
            where=where,
            fix=f"give more than 0 and at most {MAX_POLICY_MS // 1000} seconds (7 days)",
        )
    return max(1, round(seconds * 1000))


def build_request(
    msa: Msa | str | Path,
    options: PredictOptions | None = None,
    *,
    execution_timeout_s: float = 3600.0,
    ttl_s: float | None = None,
    outputs: list[OutputKind] | None = None,
    msa_format: str = "auto",
    query: str | None = None,
    limit: int = RUN_BODY_LIMIT,
    relax: RelaxMode = "none",
) -> JobRequest:
    """Read ``msa`` (a path, or an :class:`Msa` already read) and build the request body.

    Raises :class:`~foldserve.errors.InputError` for an MSA that cannot be used or
    options the endpoint would refuse; ``where`` names the parameter or the MSA line.
    Fields left at their default (``ttl_s``, ``outputs``, ``relax``) are not sent, so the
    endpoint's default applies and an endpoint older than the field takes the job.
    """
    timeout_ms = policy_milliseconds(execution_timeout_s, where="execution_timeout_s")
    policy = Policy(executionTimeout=timeout_ms)
    if ttl_s is not None:
        policy = Policy(executionTimeout=timeout_ms, ttl=policy_milliseconds(ttl_s, where="ttl_s"))
    warnings: list[str] = []
    source = None
    if not isinstance(msa, Msa):
        source = None if str(msa) == "-" else str(msa)
        msa = read(msa, format=msa_format, query=query)
        warnings += [f"{msa.source}: {warning}" for warning in msa.warnings]
    options = options or PredictOptions()
    newer: dict[str, Any] = _changed(
        options, ("stop_at_score", "max_msa_clusters", "max_extra_msa")
    )
    if relax != "none":
        newer["relax"] = relax
    try:
        job_input = FoldJobInput(
            msa_gz_b64=pack_msa(msa),
            msa_format="a3m",  # the query is row 0 of the packed A3M, so no query field
            models=list(options.models),
            num_recycles=options.num_recycles,
            recycle_early_stop_tolerance=options.recycle_early_stop_tolerance,
            seed=options.seed,
            num_seeds=options.num_seeds,
            rank_by=options.rank_by,
            outputs=list(DEFAULT_OUTPUTS if outputs is None else outputs),
            **newer,
        )
    except ValidationError as exc:
        raise validation_error(exc, prefix=("input",)) from None
    # Only what was set is sent, and outputs only when asked for: the JSON foldserve has
    # always sent, whatever the endpoint's version.
    unsent = {"input": {"outputs"}} if outputs is None else {}

    def encode(job: FoldJobInput) -> bytes:
        body = RunRequest(input=job, policy=policy)
        return body.model_dump_json(exclude_unset=True, exclude=unsent).encode()

    def encode_msa(alignment: Msa) -> bytes:
        return encode(job_input.model_copy(update={"msa_gz_b64": pack_msa(alignment)}))

    content = encode(job_input)
    if len(content) <= limit:
        return JobRequest(content, msa, tuple(warnings), source)
    sent, content = _reduce(msa, encode_msa, limit)
    megabytes = limit / 1e6
    note = (
        "the most the model can use"
        if len(sent) == min(MODEL_MAX_ROWS, len(msa))
        else f"fewer than the {MODEL_MAX_ROWS} the model can use"
    )
    warnings.append(
        f"{msa.source}: the request would exceed the endpoint's {megabytes:.3g} MB limit; "
        f"sending the {len(sent)} most diverse of {len(msa)} rows ({note})"
    )
    return JobRequest(content, sent, tuple(warnings), source)


def _changed(options: PredictOptions, names: tuple[str, ...]) -> dict[str, Any]:
    """The options among ``names`` that differ from their defaults: newer fields are sent only
    when used, so an endpoint that predates them still takes every job that does not."""
    default = PredictOptions()
    return {n: getattr(options, n) for n in names if getattr(options, n) != getattr(default, n)}


def _reduce(msa: Msa, encode: Callable[[Msa], bytes], limit: int) -> tuple[Msa, bytes]:
    """The model's share of ``msa``, then halves of it, until the request fits."""
    max_seqs = MODEL_MAX_ROWS
    current = msa
    while True:
        current, _ = filter_msa(current, FilterSettings(max_seqs=max_seqs))
        content = encode(current)
        if len(content) <= limit:
            return current, content
        if len(current) == 1:
            raise InputError(
                f"the query alone makes a request over the {limit / 1e6:g} MB limit",
                where=msa.source,
                fix="check the query sequence; it should be a protein chain",
            )
        max_seqs = max(1, min(max_seqs, len(current)) // 2)

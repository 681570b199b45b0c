"""The body of ``POST /run``, built and checked on the client before anything is uploaded.

The MSA is parsed and validated here, so a bad file never costs GPU time. When the packed
request would exceed the endpoint's 10 MB ``/run`` limit the MSA is reduced to what the model
can use (ColabFold reads at most 512 cluster + 5,120 extra rows) and, if that is still too
large, to ever fewer of its most diverse rows; the caller is told in ``warnings``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from foldserve.errors import InputError
from foldserve.fold.results import PredictOptions
from foldserve.jobs.payload import pack_msa
from foldserve.jobs.schema import RUN_BODY_LIMIT, OutputKind, RunRequest, validation_error
from foldserve.msa.filtering import FilterSettings, filter_msa
from foldserve.msa.model import Msa
from foldserve.msa.reading import read
from foldserve.msa.stats import MODEL_MAX_ROWS


@dataclass(frozen=True)
class JobRequest:
    """A checked ``/run`` body: ``content`` is exactly the bytes sent."""

    content: bytes
    msa: Msa
    warnings: tuple[str, ...]


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
) -> JobRequest:
    """Read ``msa`` (a path, or an :class:`Msa` already read) and build the request body.

    Raises :class:`~foldserve.errors.InputError` for an MSA that cannot be used or
    options the endpoint would refuse.
    """
    warnings: list[str] = []
    if not isinstance(msa, Msa):
        msa = read(msa, format=msa_format, query=query)
        warnings += [f"{msa.source}: {warning}" for warning in msa.warnings]
    options = options or PredictOptions()
    job_input: dict[str, Any] = {
        "msa_format": "a3m",  # the query is row 0 of the packed A3M, so no query field
        "models": list(options.models),
        "num_recycles": options.num_recycles,
        "recycle_early_stop_tolerance": options.recycle_early_stop_tolerance,
        "seed": options.seed,
        "num_seeds": options.num_seeds,
        "rank_by": options.rank_by,
    }
    if outputs is not None:
        job_input["outputs"] = list(outputs)
    policy: dict[str, int] = {"executionTimeout": round(execution_timeout_s * 1000)}
    if ttl_s is not None:
        policy["ttl"] = round(ttl_s * 1000)

    def encode(alignment: Msa) -> bytes:
        body = {"input": {**job_input, "msa_gz_b64": pack_msa(alignment)}, "policy": policy}
        try:
            RunRequest.model_validate(body)  # what the endpoint would refuse, refused here
        except ValidationError as exc:
            raise validation_error(exc) from None
        return json.dumps(body, separators=(",", ":")).encode("ascii")

    content = encode(msa)
    if len(content) <= limit:
        return JobRequest(content, msa, tuple(warnings))
    sent, content = _reduce(msa, encode, limit)
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
    return JobRequest(content, sent, tuple(warnings))


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

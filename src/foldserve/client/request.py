"""The body of ``POST /run``, built and checked on the client before anything is uploaded.

The MSA is parsed and validated here, so a bad file never costs GPU time. When the packed
request would exceed the endpoint's 10 MB ``/run`` limit the MSA is reduced to what the model
can use (ColabFold reads at most 512 cluster + 5,120 extra rows) and, if that is still too
large, to ever fewer of its most diverse rows; the caller is told in ``warnings``.

A complex is sent as ``chains`` (version 2 of the job input): each :class:`ChainSpec`'s MSA is
read and checked here, the complex MSA is built here once (as the endpoint will build it) so
that a paired MSA that does not fit the chains is refused before upload, and the chains go out
packed like a single MSA. Template structure files go with the job, gzip-compressed.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from foldserve.errors import InputError
from foldserve.fold.engine import DEFAULT_ENGINE
from foldserve.fold.results import EngineName, PredictOptions
from foldserve.fold.run_config import RelaxMode
from foldserve.jobs.input import (
    DEFAULT_OUTPUTS,
    MAX_POLICY_MS,
    MAX_TEMPLATES,
    RUN_BODY_LIMIT,
    FoldJobInput,
    OutputKind,
    Policy,
    RunRequest,
    TemplateInput,
    check_date,
    validation_error,
)
from foldserve.jobs.payload import pack_msa
from foldserve.msa.filtering import FilterSettings, filter_msa
from foldserve.msa.model import Msa
from foldserve.msa.pairing import ChainMsa, pair_chains
from foldserve.msa.reading import read
from foldserve.msa.stats import MODEL_MAX_ROWS


@dataclass(frozen=True)
class ChainSpec:
    """One distinct chain of a complex: its MSA (a file path, or an :class:`Msa` already read,
    e.g. from text with :func:`foldserve.msa.read`) and its copies in the complex.

    ``id`` is a label sent with the job and echoed as ``name`` in the output's
    ``query.chains``; the structure's chains are A, B, … in order, copies one after another.
    """

    msa: Msa | str | Path
    copies: int = 1
    id: str | None = None
    msa_format: str = "auto"
    query: str | None = None


@dataclass(frozen=True)
class JobRequest:
    """A checked ``/run`` body: ``content`` is exactly the bytes sent.

    ``msa`` is what the model will read: for ``chains``, the complex MSA built from them (the
    endpoint builds the same). ``source`` is the MSA file it was read from, kept in the job's
    local record (for chains, the first chain's); None for an :class:`Msa` given as such, or
    standard input (``-``).
    """

    content: bytes
    msa: Msa
    warnings: tuple[str, ...]
    source: str | None = None

    def job_input(self) -> bytes:
        """The ``input`` object of :attr:`content` alone: the body SageMaker's
        ``/invocations`` takes."""
        return json.dumps(json.loads(self.content)["input"], separators=(",", ":")).encode()

    def policy(self) -> Policy:
        """The execution policy of :attr:`content`; its ``model_fields_set`` are the fields
        sent (the rest are the endpoint's defaults)."""
        return Policy.model_validate(json.loads(self.content).get("policy", {}))


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
    msa: Msa | str | Path | None = None,
    options: PredictOptions | None = None,
    *,
    chains: Sequence[ChainSpec] | None = None,
    paired_msa: Msa | str | Path | None = None,
    templates: Sequence[str | Path] = (),
    max_template_date: str | None = None,
    execution_timeout_s: float = 3600.0,
    ttl_s: float | None = None,
    outputs: list[OutputKind] | None = None,
    msa_format: str = "auto",
    query: str | None = None,
    limit: int = RUN_BODY_LIMIT,
    relax: RelaxMode = "none",
    engine: EngineName = DEFAULT_ENGINE,
) -> JobRequest:
    """Read ``msa`` (a path, or an :class:`Msa` already read) or the ``chains`` of a complex
    (with an optional ``paired_msa``), check them and build the request body.

    ``templates`` are structure files or folders of them (mmCIF or PDB), sent with the job;
    ``max_template_date`` (YYYY-MM-DD) drops those released later. ``engine`` is the one that
    predicts (alphafold2 or openfold3). Raises :class:`~foldserve.errors.InputError` for an
    MSA that cannot be used or options the endpoint would refuse (an option of the other
    engine too); ``where`` names the parameter, the file, the MSA line or the ``input.``
    field. Fields left at their default (``ttl_s``, ``outputs``, ``relax``, ``engine``,
    ``model_type`` …) are not sent, so the endpoint's default applies and an endpoint older
    than the field takes the job.
    """
    timeout_ms = policy_milliseconds(execution_timeout_s, where="execution_timeout_s")
    policy = Policy(executionTimeout=timeout_ms)
    if ttl_s is not None:
        policy = Policy(executionTimeout=timeout_ms, ttl=policy_milliseconds(ttl_s, where="ttl_s"))
    if (msa is None) == (chains is None):
        raise InputError(
            "give either msa or chains" if msa is None else "give msa or chains, not both",
            where="msa",
            fix="msa=FILE for one MSA (one chain, or a ColabFold complex A3M); "
            "chains=[ChainSpec(FILE, copies), …] for one MSA per chain",
        )
    if paired_msa is not None and chains is None:
        raise InputError(
            "a paired MSA goes with chains",
            where="paired_msa",
            fix="give the complex as chains=[…], or leave out paired_msa",
        )
    if max_template_date is not None:
        check_date(max_template_date, where="max_template_date")
        if not templates:
            raise InputError(
                "there are no templates to date",
                where="max_template_date",
                fix="give templates too, or leave out max_template_date",
            )
    warnings: list[str] = []
    template_entries = _template_entries(templates)
    options = options or PredictOptions()
    newer: dict[str, Any] = _changed(
        options,
        (
            "stop_at_score",
            "max_msa_clusters",
            "max_extra_msa",
            "model_type",
            "rank_by",
            "num_diffusion_samples",
        ),
    )
    if engine != DEFAULT_ENGINE:
        newer["engine"] = engine
    if relax != "none":
        newer["relax"] = relax
    if template_entries:
        newer["templates"] = template_entries
    if max_template_date is not None:
        newer["max_template_date"] = max_template_date
    # Only what was set is sent, and outputs only when asked for: the JSON foldserve has
    # always sent, whatever the endpoint's version.
    unsent = {"input": {"outputs"}} if outputs is None else {}

    def job_input(**fields: Any) -> FoldJobInput:
        try:
            built = FoldJobInput(
                **fields,
                models=list(options.models),
                num_recycles=options.num_recycles,
                recycle_early_stop_tolerance=options.recycle_early_stop_tolerance,
                seed=options.seed,
                num_seeds=options.num_seeds,
                outputs=list(DEFAULT_OUTPUTS if outputs is None else outputs),
                **newer,
            )
        except ValidationError as exc:
            raise validation_error(exc, prefix=("input",)) from None
        built.options()  # every check the endpoint makes of the fields, the engine's too
        return built

    def encode(job: FoldJobInput) -> bytes:
        body = RunRequest(input=job, policy=policy)
        return body.model_dump_json(exclude_unset=True, exclude=unsent).encode()

    if chains is not None:
        return _complex_request(chains, paired_msa, job_input, encode, limit, warnings)
    assert msa is not None
    source = None
    if not isinstance(msa, Msa):
        source = None if str(msa) == "-" else str(msa)
        msa = read(msa, format=msa_format, query=query)
        warnings += [f"{msa.source}: {warning}" for warning in msa.warnings]
    # the query is row 0 of the packed A3M, so no query field
    single = job_input(msa_gz_b64=pack_msa(msa), msa_format="a3m")

    def encode_msa(alignments: list[Msa]) -> bytes:
        return encode(single.model_copy(update={"msa_gz_b64": pack_msa(alignments[0])}))

    content = encode(single)
    if len(content) <= limit:
        return JobRequest(content, msa, tuple(warnings), source)
    (sent,), content = _reduce([msa], encode_msa, limit)
    warnings.append(_reduced_warning(msa, sent, limit))
    return JobRequest(content, sent, tuple(warnings), source)


def _complex_request(
    chains: Sequence[ChainSpec],
    paired_msa: Msa | str | Path | None,
    job_input: Callable[..., FoldJobInput],
    encode: Callable[[FoldJobInput], bytes],
    limit: int,
    warnings: list[str],
) -> JobRequest:
    """The request of a complex given as one MSA per chain."""
    if not chains:
        raise InputError("no chains", where="chains", fix="give one ChainSpec per distinct chain")
    msas: list[Msa] = []
    for index, chain in enumerate(chains):
        if chain.copies < 1:
            raise InputError(
                f"{chain.copies} copies",
                where=f"chains[{index}].copies",
                fix="give each chain 1 copy or more",
            )
        msas.append(_read(chain.msa, chain.msa_format, chain.query, warnings))
    paired = None if paired_msa is None else _read(paired_msa, "auto", None, warnings)
    try:
        # The complex MSA the endpoint will build: refused here, not after the upload.
        complex_msa = pair_chains(
            [ChainMsa(m, c.copies) for m, c in zip(msas, chains, strict=True)], paired=paired
        ).msa
    except InputError as exc:
        flags = {"--paired-msa": "paired_msa", "--msa": "chains", "--copies": "chains"}
        where = flags.get(exc.where or "", exc.where)
        raise InputError(exc.problem, where=where, fix=exc.fix) from None
    warnings += [f"complex: {warning}" for warning in complex_msa.warnings]

    def entries(alignments: list[Msa]) -> FoldJobInput:
        sent: list[dict[str, Any]] = [
            {
                "msa_gz_b64": pack_msa(m),
                "msa_format": "a3m",  # the query is row 0 of the packed A3M
                **({"copies": c.copies} if c.copies != 1 else {}),
                **({"id": c.id} if c.id is not None else {}),
            }
            for m, c in zip(alignments, chains, strict=True)
        ]
        pairs = {}
        if paired is not None:
            pairs["paired_msa"] = {"msa_gz_b64": pack_msa(paired), "msa_format": "a3m"}
        return job_input(chains=sent, **pairs)

    content = encode(entries(msas))
    source = next((str(c.msa) for c in chains if not isinstance(c.msa, Msa)), None)
    source = None if source == "-" else source
    if len(content) <= limit:
        return JobRequest(content, complex_msa, tuple(warnings), source)
    sent, content = _reduce(msas, lambda alignments: encode(entries(alignments)), limit)
    for before, after in zip(msas, sent, strict=True):
        if len(after) < len(before):
            warnings.append(_reduced_warning(before, after, limit))
    rebuilt = pair_chains(
        [ChainMsa(m, c.copies) for m, c in zip(sent, chains, strict=True)], paired=paired
    ).msa
    return JobRequest(content, rebuilt, tuple(warnings), source)


def _read(msa: Msa | str | Path, msa_format: str, query: str | None, warnings: list[str]) -> Msa:
    if isinstance(msa, Msa):
        return msa
    read_msa = read(msa, format=msa_format, query=query)
    warnings += [f"{read_msa.source}: {warning}" for warning in read_msa.warnings]
    return read_msa


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def _template_entries(templates: Sequence[str | Path]) -> list[TemplateInput]:
    """The structure files among ``templates`` (folders listed), checked here and packed:
    gzip + base64 of their text, under a plain name that says their format."""
    if not templates:
        return []
    from foldserve.fold.alphafold2.template_files import (
        find_template_files,  # the templates' own checks
    )

    files = find_template_files([Path(t) for t in templates])
    if len(files) > MAX_TEMPLATES:
        raise InputError(
            f"{len(files)} template files; a job takes at most {MAX_TEMPLATES}",
            where="templates",
            fix="give the templates most like the query (AlphaFold uses up to 4 per chain)",
        )
    entries = []
    taken: set[str] = set()
    for file in files:
        data = file.read_bytes()
        name = file.name
        if name.lower().endswith(".gz"):
            data, name = gzip.decompress(data), name[:-3]
        name = _UNSAFE_NAME.sub("_", name).lstrip("._-") or "template.cif"
        stem, dot, suffix = name.rpartition(".")
        unique, number = name, 1
        while unique.lower() in taken:
            number += 1
            unique = f"{stem}_{number}{dot}{suffix}"
        taken.add(unique.lower())
        packed = base64.b64encode(gzip.compress(data, compresslevel=6, mtime=0)).decode("ascii")
        entries.append(TemplateInput(name=unique, data_gz_b64=packed))
    return entries


def _reduced_warning(msa: Msa, sent: Msa, limit: int) -> str:
    note = (
        "the most the model can use"
        if len(sent) == min(MODEL_MAX_ROWS, len(msa))
        else f"fewer than the {MODEL_MAX_ROWS} the model can use"
    )
    return (
        f"{msa.source}: the request would exceed the endpoint's {limit / 1e6:.3g} MB limit; "
        f"sending the {len(sent)} most diverse of {len(msa)} rows ({note})"
    )


def _changed(options: PredictOptions, names: tuple[str, ...]) -> dict[str, Any]:
    """The options among ``names`` that differ from their defaults: newer fields are sent only
    when used, so an endpoint that predates them still takes every job that does not."""
    default = PredictOptions()
    return {n: getattr(options, n) for n in names if getattr(options, n) != getattr(default, n)}


def _reduce(
    msas: list[Msa], encode: Callable[[list[Msa]], bytes], limit: int
) -> tuple[list[Msa], bytes]:
    """The model's share of each of ``msas``, then halves of it, until the request fits."""
    max_seqs = MODEL_MAX_ROWS
    current = msas
    while True:
        current = [filter_msa(m, FilterSettings(max_seqs=max_seqs))[0] for m in current]
        content = encode(current)
        if len(content) <= limit:
            return current, content
        if all(len(m) == 1 for m in current):
            raise InputError(
                f"the query alone makes a request over the {limit / 1e6:g} MB limit",
                where=" + ".join(m.source for m in msas),
                fix="check the query sequence; it should be a protein chain",
            )
        max_seqs = max(1, min(max_seqs, max(len(m) for m in current)) // 2)

"""What a client sends: the fold job input, the execution policy and the ``/run`` body.

Requests are validated with pydantic; unknown fields are errors, not ignored. A bad request
becomes one :class:`~foldserve.errors.InputError` whose ``where`` is the JSON field path
(``input.num_recycles``) and whose text says the reason and the fix.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from foldserve.errors import InputError
from foldserve.fold.features import MAX_EXTRA_MSA, MAX_MSA_CLUSTERS
from foldserve.fold.results import (
    LIMIT_EXTRA_MSA,
    LIMIT_MSA_CLUSTERS,
    MAX_RECYCLES,
    MAX_SEED,
    MAX_SEEDS,
    PredictOptions,
)
from foldserve.fold.run_config import RelaxMode
from foldserve.fold.weights import MODEL_NUMBERS

#: RunPod's default execution timeout; a prediction often needs more, so clients send their own.
DEFAULT_EXECUTION_TIMEOUT_MS = 600_000
#: RunPod's default time to live of a job, from submission.
DEFAULT_TTL_MS = 24 * 3600_000
MAX_POLICY_MS = 7 * 24 * 3600_000
#: RunPod's request body limits ("10 MB" and "20 MB" read as powers of ten, the smaller
#: reading, so every endpoint accepts what foldserve sends).
RUN_BODY_LIMIT = 10_000_000
RUNSYNC_BODY_LIMIT = 20_000_000

OutputKind = Literal["pdb", "cif", "scores", "pae", "msa"]
DEFAULT_OUTPUTS: tuple[OutputKind, ...] = ("pdb", "cif", "scores", "pae")

#: Strict types: no ``"3"`` or ``true`` for a number, no coercion of any kind.
_STRICT = ConfigDict(extra="forbid", frozen=True, strict=True, use_attribute_docstrings=True)


def _encodable(text: str) -> str:
    """``text`` if it is valid Unicode: JSON's ``\\ud800`` escapes can make lone surrogates."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PydanticCustomError(
            "unicode_surrogate",
            "holds a lone surrogate {code} at position {position}, which is not Unicode text",
            {"code": f"U+{ord(text[exc.start]):04X}", "position": exc.start + 1},
        ) from None
    return text


#: A string that can be stored, logged and encoded as UTF-8.
Text = Annotated[str, AfterValidator(_encodable)]


class FoldJobInput(BaseModel):
    """Version 1 of the fold job input: exactly one of ``msa``, ``msa_gz_b64``, ``msa_url``."""

    model_config = _STRICT

    msa: Text | None = None
    """The MSA as text."""
    msa_gz_b64: Text | None = None
    """The MSA text, gzip-compressed, then base64."""
    msa_url: Text | None = None
    """An http(s):// or s3:// URL of the MSA (plain or gzip)."""
    msa_format: Text = "auto"
    """a3m, sto, fasta, ... or auto (recognised from the content)."""
    query: Text | None = None
    """Name of the query row (default: the first row)."""
    models: list[int] = Field(default_factory=lambda: list(MODEL_NUMBERS))
    """AlphaFold2 pTM models to run, of 1 to 5."""
    num_recycles: Annotated[int, Field(ge=0, le=MAX_RECYCLES)] = 3
    recycle_early_stop_tolerance: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    """Stop recycling once CA positions move less than this (Å)."""
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 0
    """The first seed; seed + num_seeds - 1 is at most 2**32 - 1 (JAX's PRNG)."""
    num_seeds: Annotated[int, Field(ge=1, le=MAX_SEEDS)] = 1
    """Seeds per model."""
    rank_by: Literal["plddt", "ptm"] = "plddt"
    stop_at_score: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] | None = None
    """Run no further model once one scores this much: mean pLDDT, or pTM x 100 when ranking
    by pTM (ColabFold's --stop-at-score)."""
    max_msa_clusters: Annotated[int, Field(ge=1, le=LIMIT_MSA_CLUSTERS)] = MAX_MSA_CLUSTERS
    """MSA cluster centres the network reads (ColabFold's --max-msa CLUSTERS:EXTRA)."""
    max_extra_msa: Annotated[int, Field(ge=1, le=LIMIT_EXTRA_MSA)] = MAX_EXTRA_MSA
    """Extra MSA rows the network reads."""
    outputs: list[OutputKind] = Field(default_factory=lambda: list(DEFAULT_OUTPUTS))
    """The files to return."""
    relax: RelaxMode = "none"
    """Amber-relax no model, the best one or all (AlphaFold's protocol): a relaxed model is
    its ranked_{i} file. The endpoint needs OpenMM (foldserve[relax])."""

    @model_validator(mode="after")
    def _one_msa_source(self) -> FoldJobInput:
        given = [n for n in ("msa", "msa_gz_b64", "msa_url") if getattr(self, n) is not None]
        if len(given) != 1:
            raise PydanticCustomError(
                "msa_source",
                "give exactly one of msa, msa_gz_b64 and msa_url ({found})",
                {"found": f"got {' and '.join(given)}" if given else "got none"},
            )
        return self

    def options(self) -> PredictOptions:
        """The prediction options, checked; errors name the ``input.`` field."""
        try:
            return PredictOptions(
                models=tuple(self.models),
                num_recycles=self.num_recycles,
                recycle_early_stop_tolerance=self.recycle_early_stop_tolerance,
                seed=self.seed,
                num_seeds=self.num_seeds,
                rank_by=self.rank_by,
                stop_at_score=self.stop_at_score,
                max_msa_clusters=self.max_msa_clusters,
                max_extra_msa=self.max_extra_msa,
            )
        except InputError as exc:
            raise InputError(exc.problem, where=f"input.{exc.where}", fix=exc.fix) from None


class Policy(BaseModel):
    """RunPod's execution policy, in milliseconds."""

    model_config = _STRICT

    executionTimeout: Annotated[int, Field(gt=0, le=MAX_POLICY_MS)] = DEFAULT_EXECUTION_TIMEOUT_MS
    """How long the job may run once started, in ms."""
    ttl: Annotated[int, Field(gt=0, le=MAX_POLICY_MS)] = DEFAULT_TTL_MS
    """How long the job and its result are kept from submission, in ms."""


class RunRequest(BaseModel):
    """The body of ``/run`` and ``/runsync``."""

    model_config = _STRICT

    input: FoldJobInput
    policy: Policy = Field(default_factory=Policy)
    webhook: Annotated[Text, Field(pattern=r"^https?://", max_length=2048)] | None = None
    """A URL that is POSTed the job's status object when the job finishes."""


def parse_run_request(body: Any) -> RunRequest:
    """Validate a request body; a bad one raises one :class:`InputError` naming the field."""
    try:
        request = RunRequest.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc) from None
    request.input.options()
    return request


def parse_job_input(payload: Any) -> FoldJobInput:
    """Validate a job's ``input`` object alone (as a RunPod worker receives it)."""
    try:
        job_input = FoldJobInput.model_validate(payload)
    except ValidationError as exc:
        raise validation_error(exc, prefix=("input",)) from None
    job_input.options()
    return job_input


#: Where the whole contract is written down for the user: the installed command prints it.
SCHEMA_HINT = "`foldserve jobs schema` prints the JSON Schema of the request"

_FIXES = {
    "extra_forbidden": "remove it; version 1 of the job input knows only {known}",
    "missing": "add it",
    "int_type": "give a whole number",
    "int_parsing": "give a whole number",
    "float_type": "give a number",
    "float_parsing": "give a number",
    "finite_number": "give a finite number (not NaN or Infinity)",
    "string_type": "give a string",
    "list_type": "give a JSON array",
    "model_type": "give a JSON object",
    "model_attributes_type": "give a JSON object",
    "dict_type": "give a JSON object",
    "literal_error": "use one of the values listed",
    "bool_type": "give true or false",
    "greater_than": "give a number greater than {gt}",
    "greater_than_equal": "give {ge} or more",
    "less_than_equal": "give at most {le}",
    "string_pattern_mismatch": "give an http:// or https:// URL",
    "unicode_surrogate": "send valid Unicode text (UTF-8; no \\ud800-\\udfff escapes alone)",
    "string_unicode": "send valid Unicode text (UTF-8; no \\ud800-\\udfff escapes alone)",
    "msa_source": "send the MSA once, as msa (text), msa_gz_b64 or msa_url",
}


def validation_error(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> InputError:
    """The first problem pydantic found, as a field path, the reason and the fix."""
    error = exc.errors()[0]
    where = json_path(prefix + tuple(error["loc"]))
    reason = str(error["msg"]).removeprefix("Value error, ")
    known = ", ".join(FoldJobInput.model_fields)
    fix = _FIXES.get(error["type"], SCHEMA_HINT).format(known=known, **error.get("ctx", {}))
    if error["type"] == "extra_forbidden":
        reason = "unknown field"
    return InputError(reason, where=where, fix=fix)


def json_path(location: tuple[str | int, ...]) -> str:
    """``input.models[0]``; a key that is not printable text is shown escaped."""
    where = ""
    for part in location:
        if isinstance(part, int):
            where += f"[{part}]"
            continue
        name = part if part.isprintable() else ascii(part)
        where += f".{name}" if where else name
    return where or "body"

"""What a client sends: the fold job input, the execution policy and the ``/run`` body.

Requests are validated with pydantic; unknown fields are errors, not ignored. A bad request
becomes one :class:`~foldserve.errors.InputError` whose ``where`` is the JSON field path
(``input.num_recycles``, ``input.chains[1].copies``) and whose text says the reason and the fix.

Version 2 of the input (DESIGN.md, "Fold job input") keeps every version-1 field and adds
``engine`` (alphafold2 or openfold3) with OpenFold3's ``num_diffusion_samples``,
``model_type``, ``chains`` with an optional ``paired_msa`` (a complex, one MSA per distinct
chain), ``templates`` and ``max_template_date``, and ``num_predictions_per_model``. A
version-1 job is a valid version-2 job and means the same. An option of one engine only
(AlphaFold2's ``models``, OpenFold3's ``num_diffusion_samples``, …) given for the other is
refused, not ignored (:func:`foldserve.fold.engine.check_engine_options`).
"""

from __future__ import annotations

import datetime
import re
import types
import typing
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
from foldserve.fold.alphafold2.features import MAX_EXTRA_MSA, MAX_MSA_CLUSTERS
from foldserve.fold.engine import check_engine_options
from foldserve.fold.results import (
    LIMIT_EXTRA_MSA,
    LIMIT_MSA_CLUSTERS,
    MAX_DIFFUSION_SAMPLES,
    MAX_RECYCLES,
    MAX_SEED,
    MAX_SEEDS,
    EngineName,
    ModelType,
    PredictOptions,
    RankBy,
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

#: Chains a complex may have, copies counted: AlphaFold names them with the 62 letters and
#: digits of ``PDB_CHAIN_IDS`` (A-Z, a-z, 0-9), in order.
MAX_CHAINS = 62
#: Template structure files one job may carry, and the most each may hold once inflated.
MAX_TEMPLATES = 20
MAX_TEMPLATE_BYTES = 32_000_000
#: A chain's label: letters, digits and ``_ . : -``, as a file name or a PDB/UniProt id has.
CHAIN_LABEL = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
#: A template's file name: plain (no folders), ending in what says its format.
TEMPLATE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\.(cif|mmcif|pdb|ent|CIF|MMCIF|PDB|ENT)$"
DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"

#: The options only one engine has, by that engine: given (not at their default) for the
#: other engine they are refused, never silently ignored.
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


def check_date(text: str, *, where: str) -> str:
    """``text`` if it is a date as YYYY-MM-DD; an :class:`InputError` naming ``where`` if not."""
    try:
        if re.fullmatch(DATE, text):
            datetime.date.fromisoformat(text)
            return text
    except ValueError:
        pass
    raise InputError(
        f"{text!r} is not a date as YYYY-MM-DD", where=where, fix="give e.g. 2021-11-01"
    )


def _real_date(text: str) -> str:
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        raise PydanticCustomError("date", "{text} is not a date", {"text": text}) from None
    return text


def _one_of(model: BaseModel, names: tuple[str, ...], what: str) -> None:
    given = [n for n in names if getattr(model, n) is not None]
    if len(given) != 1:
        raise PydanticCustomError(
            f"{what}_source",
            "give exactly one of {names} ({found})",
            {
                "names": ", ".join(names[:-1]) + f" and {names[-1]}",
                "found": f"got {' and '.join(given)}" if given else "got none",
            },
        )


class ChainInput(BaseModel):
    """One distinct chain of a complex: its own MSA (query first) and its number of copies.

    The structure's chains are named as AlphaFold names them, ``A``, ``B``, … in the order of
    ``chains`` with each chain's copies one after another (``copies: 2`` then ``1``: chains A
    and B are the first chain, C the second); ``id`` is a label of the user's, echoed back as
    ``name`` in the output's ``query.chains``.
    """

    model_config = _STRICT

    id: Annotated[Text, Field(pattern=CHAIN_LABEL)] | None = None
    """A label for this chain (e.g. a UniProt or PDB id), unique in the job; up to 64 letters,
    digits and _ . : -."""
    msa: Text | None = None
    """The chain's MSA as text."""
    msa_gz_b64: Text | None = None
    """The chain's MSA text, gzip-compressed, then base64."""
    msa_url: Text | None = None
    """An http(s):// or s3:// URL of the chain's MSA (plain or gzip)."""
    msa_format: Text = "auto"
    """a3m, sto, fasta, ... or auto (recognised from the content)."""
    query: Text | None = None
    """Name of the chain's query row (default: the first row)."""
    copies: Annotated[int, Field(ge=1, le=MAX_CHAINS)] = 1
    """Copies of this chain in the complex (2 for a homodimer)."""

    @model_validator(mode="after")
    def _one_msa_source(self) -> ChainInput:
        _one_of(self, ("msa", "msa_gz_b64", "msa_url"), "msa")
        return self


class PairedMsaInput(BaseModel):
    """The chains' paired rows, side by side in the order of ``chains`` (e.g. ColabFold's
    ``pair.a3m``): its query row is the chains' queries joined."""

    model_config = _STRICT

    msa: Text | None = None
    msa_gz_b64: Text | None = None
    msa_url: Text | None = None
    msa_format: Text = "auto"

    @model_validator(mode="after")
    def _one_msa_source(self) -> PairedMsaInput:
        _one_of(self, ("msa", "msa_gz_b64", "msa_url"), "msa")
        return self


class TemplateInput(BaseModel):
    """A template structure sent with the job: an mmCIF or PDB file."""

    model_config = _STRICT

    name: Annotated[Text, Field(pattern=TEMPLATE_NAME)]
    """Its file name, ending in .cif, .mmcif, .pdb or .ent (the format); unique in the job."""
    data: Text | None = None
    """The file's text."""
    data_gz_b64: Text | None = None
    """The file's text, gzip-compressed, then base64."""
    url: Text | None = None
    """An http(s):// or s3:// URL of the file (plain or gzip)."""

    @model_validator(mode="after")
    def _one_data_source(self) -> TemplateInput:
        _one_of(self, ("data", "data_gz_b64", "url"), "data")
        return self


class FoldJobInput(BaseModel):
    """The fold job input, version 2: exactly one of ``msa``, ``msa_gz_b64``, ``msa_url`` (one
    MSA: a single chain, or a ColabFold complex A3M) and ``chains`` (one MSA per chain)."""

    model_config = _STRICT

    engine: EngineName = "alphafold2"
    """The structure predictor: alphafold2 or openfold3. The endpoint must serve it
    (``foldserve serve --engines``, ``FOLDSERVE_ENGINES`` on RunPod); a job for an engine it
    does not serve fails, naming this field."""
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
    chains: Annotated[list[ChainInput], Field(min_length=1, max_length=MAX_CHAINS)] | None = None
    """A complex: one entry per distinct chain, each with its own MSA and copies, instead of
    msa. Rows are paired by species (AlphaFold-multimer's pairing) unless paired_msa is given."""
    paired_msa: PairedMsaInput | None = None
    """With chains: the chains' paired rows side by side, used as the paired block as it is."""
    model_type: ModelType = "auto"
    """auto (multimer for more than one chain or copy), monomer_ptm or multimer
    (AlphaFold2-multimer v3)."""
    models: list[int] = Field(default_factory=lambda: list(MODEL_NUMBERS))
    """AlphaFold2 models to run, of 1 to 5."""
    num_recycles: Annotated[int, Field(ge=0, le=MAX_RECYCLES)] = 3
    recycle_early_stop_tolerance: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    """Stop recycling once CA positions move less than this (Å)."""
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 0
    """The first seed; seed + num_seeds - 1 is at most 2**32 - 1 (JAX's PRNG)."""
    num_seeds: Annotated[int, Field(ge=1, le=MAX_SEEDS)] = 1
    """Seeds per model."""
    num_predictions_per_model: Annotated[int, Field(ge=1, le=MAX_SEEDS)] | None = None
    """The workflow's NumMultimerPredictionsPerModel: another name for num_seeds (give one, or
    both equal)."""
    num_diffusion_samples: Annotated[int, Field(ge=1, le=MAX_DIFFUSION_SAMPLES)] | None = None
    """OpenFold3 only: structures its diffusion module samples per seed (default 5,
    OpenFold3's own)."""
    rank_by: RankBy = "auto"
    """auto (for alphafold2 multimer for a complex, plddt for one chain; for openfold3 its own
    ranking score), plddt, ptm, iptm, multimer (0.8 ipTM + 0.2 pTM, AlphaFold-multimer's
    ranking confidence) or engine (the engine's own score)."""
    stop_at_score: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] | None = None
    """Run no further model once one scores this much: mean pLDDT, or pTM x 100 when ranking
    by pTM (ColabFold's --stop-at-score)."""
    max_msa_clusters: Annotated[int, Field(ge=1, le=LIMIT_MSA_CLUSTERS)] = MAX_MSA_CLUSTERS
    """MSA cluster centres the network reads (ColabFold's --max-msa CLUSTERS:EXTRA)."""
    max_extra_msa: Annotated[int, Field(ge=1, le=LIMIT_EXTRA_MSA)] = MAX_EXTRA_MSA
    """Extra MSA rows the network reads."""
    templates: (
        Annotated[list[TemplateInput], Field(min_length=1, max_length=MAX_TEMPLATES)] | None
    ) = None
    """Template structures (mmCIF or PDB), aligned to the query or to each chain; used by the
    models that take templates (models 1 and 2; every multimer model)."""
    max_template_date: Annotated[Text, Field(pattern=DATE), AfterValidator(_real_date)] | None = (
        None
    )
    """With templates: drop those released after this date (YYYY-MM-DD), when their mmCIF
    gives it."""
    outputs: list[OutputKind] = Field(default_factory=lambda: list(DEFAULT_OUTPUTS))
    """The files to return."""
    relax: RelaxMode = "none"
    """Amber-relax no model, the best one or all (AlphaFold's protocol): a relaxed model is
    its ranked_{i} file. The endpoint needs OpenMM (foldserve[relax])."""

    @model_validator(mode="after")
    def _one_msa_source(self) -> FoldJobInput:
        _one_of(self, ("msa", "msa_gz_b64", "msa_url", "chains"), "msa")
        return self

    @property
    def num_predictions(self) -> int:
        """Seeds per model: num_predictions_per_model when given, else num_seeds."""
        return self.num_predictions_per_model or self.num_seeds

    def check(self) -> None:
        """What one field alone cannot say: fields that need or exclude each other, labels and
        names given twice, too many chains. Errors name the ``input.`` field."""

        def bad(where: str, problem: str, fix: str) -> InputError:
            return InputError(problem, where=f"input.{where}", fix=fix)

        chains = self.chains or []
        if self.paired_msa is not None and len(chains) < 2:
            raise bad(
                "paired_msa",
                "a paired MSA pairs the rows of different chains, and "
                + ("there are no chains" if not chains else "there is only one"),
                "give the complex as chains (two or more), or leave out paired_msa",
            )
        if chains:
            for name in ("msa_format", "query"):
                if name in self.model_fields_set:
                    raise bad(name, "applies to msa, not to chains", f"give each chain its {name}")
            total = sum(chain.copies for chain in chains)
            if total > MAX_CHAINS:
                raise bad(
                    "chains",
                    f"{total} chains with their copies; AlphaFold names at most {MAX_CHAINS}",
                    f"give at most {MAX_CHAINS} chains, copies counted",
                )
            labels: dict[str, int] = {}
            for index, chain in enumerate(chains):
                if chain.id is None:
                    continue
                if chain.id in labels:
                    raise bad(
                        f"chains[{index}].id",
                        f"{chain.id!r} is also the id of chains[{labels[chain.id]}]",
                        "give each chain its own id, or give the same MSA once with copies",
                    )
                labels[chain.id] = index
        names: dict[str, int] = {}
        for index, template in enumerate(self.templates or []):
            key = template.name.lower()
            if key in names:
                raise bad(
                    f"templates[{index}].name",
                    f"{template.name!r} is also the name of templates[{names[key]}]",
                    "give each template file its own name",
                )
            names[key] = index
        if self.max_template_date is not None and not self.templates:
            raise bad(
                "max_template_date",
                "there are no templates to date",
                "send the templates with the job, or leave out max_template_date",
            )
        nppm = self.num_predictions_per_model
        if nppm is not None and "num_seeds" in self.model_fields_set and nppm != self.num_seeds:
            raise bad(
                "num_predictions_per_model",
                f"{nppm} disagrees with num_seeds {self.num_seeds}",
                "give one of them: both set the seeds each model runs with",
            )

    def options(self) -> PredictOptions:
        """The prediction options, checked (for :attr:`engine` too); errors name the
        ``input.`` field."""
        self.check()
        try:
            options = PredictOptions(
                models=tuple(self.models),
                num_recycles=self.num_recycles,
                recycle_early_stop_tolerance=self.recycle_early_stop_tolerance,
                seed=self.seed,
                num_seeds=self.num_predictions,
                rank_by=self.rank_by,
                model_type=self.model_type,
                templates=bool(self.templates),
                stop_at_score=self.stop_at_score,
                max_msa_clusters=self.max_msa_clusters,
                max_extra_msa=self.max_extra_msa,
                num_diffusion_samples=self.num_diffusion_samples,
            )
            check_engine_options(self.engine, options)
        except InputError as exc:
            where = exc.where
            if where == "num_seeds" and self.num_predictions_per_model is not None:
                where = "num_predictions_per_model"
            raise InputError(exc.problem, where=f"input.{where}", fix=exc.fix) from None
        return options

    def urls(self) -> list[tuple[str, str]]:
        """Every URL the job names, with its field: ``("input.chains[0].msa_url", url)``."""
        found = [("input.msa_url", self.msa_url)]
        found += [
            (f"input.chains[{i}].msa_url", c.msa_url) for i, c in enumerate(self.chains or [])
        ]
        if self.paired_msa is not None:
            found.append(("input.paired_msa.msa_url", self.paired_msa.msa_url))
        found += [(f"input.templates[{i}].url", t.url) for i, t in enumerate(self.templates or [])]
        return [(where, url) for where, url in found if url is not None]


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
    "extra_forbidden": "remove it; {model} knows only {known}",
    "missing": "add it",
    "int_type": "give a whole number",
    "int_parsing": "give a whole number",
    "float_type": "give a number",
    "float_parsing": "give a number",
    "finite_number": "give a finite number (not NaN or Infinity)",
    "string_type": "give a string",
    "list_type": "give a JSON array",
    "too_short": "give at least {min_length} item(s), or leave the field out",
    "too_long": "give at most {max_length} items",
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
    "msa_source": "send the MSA once, as msa (text), msa_gz_b64 or msa_url, or send chains "
    "(one MSA per chain of a complex)",
    "data_source": "send the file once, as data (text), data_gz_b64 or url",
    "date": "give a real date, YYYY-MM-DD",
}

#: ``string_pattern_mismatch``'s fix, by the field whose pattern failed.
_PATTERN_FIXES = {
    "webhook": "give an http:// or https:// URL",
    "id": "give 1 to 64 letters, digits, _ . : or -, starting with a letter or digit",
    "name": "give a plain file name ending in .cif, .mmcif, .pdb or .ent",
    "max_template_date": "give the date as YYYY-MM-DD, e.g. 2021-11-01",
}


def validation_error(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> InputError:
    """The first problem pydantic found, as a field path, the reason and the fix."""
    error = exc.errors()[0]
    location = prefix + tuple(error["loc"])
    where = json_path(location)
    reason = str(error["msg"]).removeprefix("Value error, ")
    model = _model_at(location[:-1])
    fix = _FIXES.get(error["type"], SCHEMA_HINT)
    if error["type"] == "string_pattern_mismatch":
        field = next((p for p in reversed(location) if isinstance(p, str)), "")
        fix = _PATTERN_FIXES.get(field, SCHEMA_HINT)
    fix = fix.format(
        known=", ".join(model.model_fields),
        model=_MODEL_NAMES.get(model, model.__name__),
        **error.get("ctx", {}),
    )
    if error["type"] == "extra_forbidden":
        reason = "unknown field"
    return InputError(reason, where=where, fix=fix)


_MODEL_NAMES: dict[type[BaseModel], str] = {
    RunRequest: "the request body",
    FoldJobInput: "the job input (version 2)",
    ChainInput: "a chain",
    PairedMsaInput: "paired_msa",
    TemplateInput: "a template",
    Policy: "the policy",
}


def _model_at(location: tuple[str | int, ...]) -> type[BaseModel]:
    """The model whose field ``location`` names, from the ``/run`` body down; the body itself
    when the path leads nowhere known."""
    model: type[BaseModel] = RunRequest
    for part in location:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        inner = _model_in(field.annotation) if field is not None else None
        if inner is None:
            return model
        model = inner
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``annotation`` (``list[ChainInput] | None`` → ChainInput), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


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

"""What every cloud worker reads from its environment: the engines it holds warm, where their
weights are and where to fetch them from when they are not, and how much output goes inline.

The RunPod worker (:mod:`foldserve.cloud.runpod.settings`) and the SageMaker container
(:mod:`foldserve.cloud.sagemaker.container_settings`) each add their own variables and give
``PARAM_DIR`` its default. A bad value stops the worker at start with one line naming the
variable (or the flag that gave it), rather than failing the first job: the validators raise
:class:`~foldserve.errors.InputError` themselves (pydantic lets any exception but
``ValueError`` through), so the message names the variable and the fix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Self, get_args

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from foldserve.errors import InputError
from foldserve.fold.engine import DEFAULT_ENGINE, Precision, parse_engine_names
from foldserve.fold.openfold3.layout import DEFAULT_CHECKPOINT_URL
from foldserve.fold.results import EngineName
from foldserve.fold.weights import DEFAULT_PARAMS_URL
from foldserve.jobs.output import DEFAULT_INLINE_LIMIT
from foldserve.outbound import OutboundSettings

MB = 1 << 20


class WorkerSettings(OutboundSettings, BaseSettings):
    """Each field is read from the variable its alias names (the outbound ones with the
    ``FOLDSERVE_`` prefix); an empty variable is unset."""

    model_config = SettingsConfigDict(
        env_prefix="FOLDSERVE_", env_ignore_empty=True, extra="ignore", frozen=True
    )

    #: Where the variables are documented: the fix of a value pydantic refuses.
    documented_in: ClassVar[str]

    #: The weights (``params/``, ``openfold3/``); each kind of worker gives its default.
    param_dir: Path = Field(alias="PARAM_DIR")
    #: The engines this worker holds warm, e.g. ``alphafold2,openfold3``.
    engines: Annotated[tuple[EngineName, ...], NoDecode] = Field(
        default=(DEFAULT_ENGINE,), alias="FOLDSERVE_ENGINES"
    )
    params_url: str = Field(default=DEFAULT_PARAMS_URL, alias="FOLDSERVE_PARAMS_URL")
    params_sha256: str | None = Field(default=None, alias="FOLDSERVE_PARAMS_SHA256")
    #: OpenFold3's checkpoint: http(s) URL, s3://bucket/key or a file on the volume.
    openfold3_url: str = Field(default=DEFAULT_CHECKPOINT_URL, alias="FOLDSERVE_OPENFOLD3_URL")
    openfold3_sha256: str | None = Field(default=None, alias="FOLDSERVE_OPENFOLD3_SHA256")
    precision: Precision = Field(default="auto", alias="FOLDSERVE_PRECISION")
    inline_limit_mb: float = Field(
        default=DEFAULT_INLINE_LIMIT / MB, alias="FOLDSERVE_INLINE_LIMIT_MB"
    )

    @classmethod
    def load(
        cls, given: Mapping[str, Any] | None = None, flags: Mapping[str, str] | None = None
    ) -> Self:
        """The settings from ``given`` values (by field name) and the environment; a bad value
        is one :class:`InputError` naming its flag (``flags``, by field name) when a flag gave
        it, else its variable."""
        by_variable = {cls.variable(name): flag for name, flag in (flags or {}).items()}
        values = {cls.model_fields[name].alias or name: v for name, v in (given or {}).items()}
        try:
            return cls(**values)
        except InputError as exc:  # a validator's, naming the variable
            if exc.where not in by_variable:
                raise
            raise InputError(exc.problem, where=by_variable[exc.where], fix=exc.fix) from None
        except ValidationError as exc:
            error = exc.errors()[0]
            name = str(error["loc"][0]) if error["loc"] else ""
            variable = cls.variable(name) if name in cls.model_fields else name or "environment"
            raise InputError(
                f"{error['msg']}, not {error['input']!r}",
                where=by_variable.get(variable, variable),
                fix=f"see {cls.documented_in}",
            ) from None

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable ``field`` is read from."""
        return cls.model_fields[field].alias or f"FOLDSERVE_{field.upper()}"

    @classmethod
    def number(cls, value: Any, field: str, minimum: float) -> float:
        """``value`` as a finite number of at least ``minimum``, else one :class:`InputError`
        naming ``field``'s variable."""
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not (math.isfinite(number) and number >= minimum):
            raise InputError(
                f"{value!r} is not a number of at least {minimum:g}",
                where=cls.variable(field),
                fix=f"give a number such as {cls.model_fields[field].default:g}, or leave it unset",
            )
        return number

    @property
    def inline_limit(self) -> int:
        """Bytes of output JSON returned inline."""
        return int(self.inline_limit_mb * MB)

    @field_validator("precision", mode="before")
    @classmethod
    def _known_precision(cls, value: Any) -> Any:
        if value not in get_args(Precision):
            raise InputError(
                f"unknown precision {value!r}",
                where=cls.variable("precision"),
                fix="use auto, bfloat16 or float32",
            )
        return value

    @field_validator("engines", mode="before")
    @classmethod
    def _engine_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_engine_names(value, where=cls.variable("engines"))
        return value

    @field_validator("params_sha256", "openfold3_sha256")
    @classmethod
    def _sha256(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            assert info.field_name is not None
            raise InputError(
                "not a SHA-256 (64 hexadecimal digits)",
                where=cls.variable(info.field_name),
                fix="give the file's sha256sum, or leave it unset",
            )
        return value

    @field_validator("inline_limit_mb", mode="before")
    @classmethod
    def _inline_limit(cls, value: Any) -> float:
        return cls.number(value, "inline_limit_mb", 0.0)

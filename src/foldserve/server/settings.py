"""The settings of ``foldserve serve``: one model for the server and, passed whole, its workers.

:class:`ServeSettings` reads the environment (``FOLDSERVE_PORT``, ``FOLDSERVE_WORKERS``, ...,
and ``PARAM_DIR`` for the weights, as everywhere in foldserve); ``foldserve serve`` passes only
the flags that were given, so flags beat the environment. Each worker process gets the same
model as JSON in one environment variable (:class:`WorkerLaunch`), so no setting is spelled
again between the server and its workers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from foldserve.errors import InputError
from foldserve.fold.engine import DEFAULT_ENGINE, Precision
from foldserve.fold.results import EngineName
from foldserve.jobs.ids import JOB_ID
from foldserve.jobs.output import DEFAULT_INLINE_LIMIT
from foldserve.jobs.payload import MAX_MSA_ROWS, MAX_QUERY_LENGTH
from foldserve.msa.builder import MsaLimits
from foldserve.outbound import OutboundSettings

_MB = 1 << 20
#: Where jobs run: worker processes on this machine, or replicas on a Ray cluster.
Backend = Literal["local", "ray"]
#: The environment variable that carries a worker's :class:`WorkerLaunch`.
WORKER_VARIABLE = "FOLDSERVE_WORKER"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "foldserve" / "server"


class ServeSettings(OutboundSettings, BaseSettings):
    """Everything the server and its workers are told, in the units of the command's flags."""

    model_config = SettingsConfigDict(
        env_prefix="FOLDSERVE_",
        env_ignore_empty=True,
        extra="forbid",
        frozen=True,
        validate_by_name=True,
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    endpoint_id: Annotated[str, Field(pattern=f"^{JOB_ID.pattern}$")] = "local"
    params_dir: Path | None = Field(default=None, validation_alias="PARAM_DIR")
    #: The engines every worker holds warm (``alphafold2,openfold3`` from the environment).
    engines: Annotated[tuple[EngineName, ...], NoDecode, Field(min_length=1)] = (DEFAULT_ENGINE,)
    precision: Precision = "auto"
    retention_hours: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 24.0
    inline_limit_mb: Annotated[float, Field(gt=0, allow_inf_nan=False)] = DEFAULT_INLINE_LIMIT / _MB
    stop_grace: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 30.0
    max_msa_rows: Annotated[int, Field(ge=1)] = MAX_MSA_ROWS
    max_query_length: Annotated[int, Field(ge=1)] = MAX_QUERY_LENGTH
    #: Signs webhooks (HMAC-SHA256); from the environment only, never a flag, never to workers.
    webhook_secret: SecretStr | None = None
    # -- the Ray backend (``--backend ray``); ``workers`` is the local backend's alone ----------
    backend: Backend = "local"
    #: A running cluster (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``); none starts one here.
    ray_address: str | None = None
    #: GPUs each replica holds; fractions share a GPU between small replicas, 0 runs on CPUs.
    gpus_per_replica: Annotated[float, Field(ge=0, le=8, allow_inf_nan=False)] = 1.0
    min_replicas: Annotated[int, Field(ge=0, le=1000)] = 0
    max_replicas: Annotated[int, Field(ge=1, le=1000)] = 1
    #: Seconds of sustained demand before replicas are added, and of idleness before removed.
    upscale_delay: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    downscale_delay: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 300.0

    @model_validator(mode="after")
    def _replica_bounds(self) -> ServeSettings:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) is above max_replicas ({self.max_replicas})"
            )
        return self

    @field_validator("engines", mode="before")
    @classmethod
    def _engine_list(cls, value: Any) -> Any:
        """``alphafold2,openfold3`` (the environment's form) as a list, each engine once."""
        if isinstance(value, str):
            value = [part.strip().lower() for part in value.split(",") if part.strip()]
        return list(dict.fromkeys(value)) if isinstance(value, list | tuple) else value

    @property
    def url(self) -> str:
        """The endpoint's base URL: ``http://host:port/v2/ENDPOINT_ID``."""
        return f"{self.public_url}/v2/{self.endpoint_id}"

    @property
    def public_url(self) -> str:
        """``http://host:port``, the root that webhooks make result URLs absolute against."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def msa_limits(self) -> MsaLimits:
        """What a job's MSA may hold, decided at ``/run`` (and again by the worker)."""
        return MsaLimits(max_rows=self.max_msa_rows, max_query_length=self.max_query_length)

    @property
    def retention_s(self) -> float:
        return self.retention_hours * 3600

    @property
    def inline_limit(self) -> int:
        """Bytes of output JSON returned inline."""
        return int(self.inline_limit_mb * _MB)

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable a field is read from."""
        alias = cls.model_fields[field].validation_alias
        return alias if isinstance(alias, str) else f"FOLDSERVE_{field.upper()}"

    @classmethod
    def load(cls, given: Mapping[str, Any], names: Mapping[str, str]) -> ServeSettings:
        """The settings from ``given`` values and the environment; a bad one raises one
        :class:`InputError` naming ``names[field]`` (a flag) or else the variable."""
        try:
            return cls(**given)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = _field_of(str(error["loc"][0]) if error["loc"] else _REPLICA_BOUNDS)
            known = field in cls.model_fields
            where = names.get(field) or (cls.env_name(field) if known else "settings")
            reason = str(error["msg"]).removeprefix("Value error, ")
            # A whole-model check has no one input to show; its message names the values.
            shown = f", not {error['input']!r}" if error["loc"] else ""
            raise InputError(
                f"{reason[:1].lower()}{reason[1:]}{shown}",
                where=where,
                fix=_FIXES.get(field),
            ) from None


class WorkerLaunch(BaseModel):
    """What one worker process is started with, as JSON in :data:`WORKER_VARIABLE`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    #: The server's pid: the worker ends when its parent is no longer this process.
    server_pid: int
    settings: ServeSettings


_FIXES = {
    "port": "give 1 to 65535",
    "workers": "give 1 to 64",
    "endpoint_id": "use letters, digits, '-' and '_'",
    "engines": "give alphafold2, openfold3 or both: alphafold2,openfold3",
    "precision": "use auto, bfloat16 or float32",
    "retention_hours": "give a number of hours > 0",
    "inline_limit_mb": "give a number of MB > 0",
    "stop_grace": "give a number of seconds >= 0",
    "max_msa_rows": "give a number of rows >= 1",
    "max_query_length": "give a number of residues >= 1",
    "backend": "use local (worker processes here) or ray (replicas on a Ray cluster)",
    "gpus_per_replica": "give 0 to 8 (fractions share a GPU)",
    "min_replicas": "give 0 (scale to zero when idle) to --max-replicas",
    "max_replicas": "give 1 to 1000",
    "upscale_delay": "give a number of seconds >= 0",
    "downscale_delay": "give a number of seconds >= 0",
    "allow_url_prefixes": "give an http(s)://host[:port]/path prefix, without credentials",
    "s3_buckets": "give an S3 bucket name (3-63 lowercase letters, digits, '.' and '-')",
}


#: Where a whole-model check (min above max replicas) is reported.
_REPLICA_BOUNDS = "min_replicas"


def _field_of(location: str) -> str:
    """The field an error location names, also when it names the field's alias."""
    for name, info in ServeSettings.model_fields.items():
        if location in (name, info.validation_alias):
            return name
    return location

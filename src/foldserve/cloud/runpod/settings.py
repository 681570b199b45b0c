"""The RunPod worker's settings, read once from its environment (the template's env vars).

Every variable is documented in the README ("Serverless on RunPod"). A bad value stops the
worker at start with one line naming the variable, rather than failing the first job: the
validators raise :class:`~foldserve.errors.InputError` themselves (pydantic lets any exception
but ``ValueError`` through), so the message names the variable and the fix.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, get_args

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from foldserve.errors import InputError
from foldserve.fold.engine import DEFAULT_ENGINE, Precision, parse_engine_names
from foldserve.fold.openfold3.layout import DEFAULT_CHECKPOINT_URL
from foldserve.fold.results import EngineName
from foldserve.fold.weights import DEFAULT_PARAMS_URL
from foldserve.jobs.output import DEFAULT_INLINE_LIMIT
from foldserve.outbound import OutboundSettings

#: Where RunPod mounts an endpoint's network volume on every serverless worker.
VOLUME_MOUNT = Path("/runpod-volume")
DEFAULT_PROGRESS_INTERVAL = 2.0
DEFAULT_URL_EXPIRY = 24 * 3600
#: Presigned (SigV4) URLs cannot be valid for longer than a week.
MAX_URL_EXPIRY = 7 * 24 * 3600
_MB = 1 << 20


@dataclass(frozen=True)
class BucketSettings:
    """An S3-compatible bucket for files that do not fit inline; keys stay out of reprs."""

    name: str
    endpoint_url: str | None
    region: str | None
    url_expiry: int
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)


class RunpodSettings(OutboundSettings, BaseSettings):
    """Each field is read from the variable its alias names (the outbound ones with the
    ``FOLDSERVE_`` prefix); an empty variable is unset."""

    model_config = SettingsConfigDict(
        env_prefix="FOLDSERVE_", env_ignore_empty=True, extra="ignore", frozen=True
    )

    param_dir: Path = Field(default=VOLUME_MOUNT, alias="PARAM_DIR")
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
        default=DEFAULT_INLINE_LIMIT / _MB, alias="FOLDSERVE_INLINE_LIMIT_MB"
    )
    progress_interval: float = Field(
        default=DEFAULT_PROGRESS_INTERVAL, alias="FOLDSERVE_PROGRESS_INTERVAL"
    )
    bucket_name: str | None = Field(default=None, alias="BUCKET_NAME")
    bucket_endpoint_url: str | None = Field(default=None, alias="BUCKET_ENDPOINT_URL")
    bucket_region: str | None = Field(default=None, alias="BUCKET_REGION")
    bucket_access_key_id: SecretStr | None = Field(default=None, alias="BUCKET_ACCESS_KEY_ID")
    bucket_secret_access_key: SecretStr | None = Field(
        default=None, alias="BUCKET_SECRET_ACCESS_KEY"
    )
    bucket_url_expiry: float = Field(default=DEFAULT_URL_EXPIRY, alias="BUCKET_URL_EXPIRY")

    @classmethod
    def load(cls) -> RunpodSettings:
        """The settings from the environment; a bad value is one :class:`InputError` naming
        its variable (the field validators name theirs themselves)."""
        try:
            return cls()
        except ValidationError as exc:
            error = exc.errors()[0]
            name = str(error["loc"][0]) if error["loc"] else ""
            field = cls.model_fields.get(name)
            if field is None:
                variable = name or "environment"
            else:  # an alias is the variable; the other fields take the FOLDSERVE_ prefix
                variable = field.alias or f"FOLDSERVE_{name.upper()}"
            raise InputError(
                f"{error['msg']}, not {error['input']!r}",
                where=variable,
                fix="see the worker's variables in the README (Serverless on RunPod)",
            ) from None

    @property
    def inline_limit(self) -> int:
        """Bytes of output JSON returned inline."""
        return int(self.inline_limit_mb * _MB)

    @property
    def bucket(self) -> BucketSettings | None:
        """The bucket, when ``BUCKET_NAME`` is set."""
        if self.bucket_name is None:
            return None
        return BucketSettings(
            name=self.bucket_name,
            endpoint_url=self.bucket_endpoint_url,
            region=self.bucket_region,
            url_expiry=int(self.bucket_url_expiry),
            access_key_id=_revealed(self.bucket_access_key_id),
            secret_access_key=_revealed(self.bucket_secret_access_key),
        )

    @field_validator("precision", mode="before")
    @classmethod
    def _known_precision(cls, value: Any) -> Any:
        if value not in get_args(Precision):
            raise InputError(
                f"unknown precision {value!r}",
                where="FOLDSERVE_PRECISION",
                fix="use auto, bfloat16 or float32",
            )
        return value

    @field_validator("engines", mode="before")
    @classmethod
    def _engine_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_engine_names(value, where="FOLDSERVE_ENGINES")
        return value

    @field_validator("params_sha256", "openfold3_sha256")
    @classmethod
    def _sha256(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            assert info.field_name is not None
            raise InputError(
                "not a SHA-256 (64 hexadecimal digits)",
                where=str(cls.model_fields[info.field_name].alias),
                fix="give the file's sha256sum, or leave it unset",
            )
        return value

    @field_validator("bucket_endpoint_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://", value):
            raise InputError(
                f"{value!r} is not an http(s) URL",
                where="BUCKET_ENDPOINT_URL",
                fix="give the S3 API URL, e.g. https://<account>.r2.cloudflarestorage.com",
            )
        return value

    @field_validator("inline_limit_mb", "progress_interval", "bucket_url_expiry", mode="before")
    @classmethod
    def _number(cls, value: Any, info: ValidationInfo) -> float:
        assert info.field_name is not None
        variable = str(cls.model_fields[info.field_name].alias)
        minimum = 1.0 if info.field_name == "bucket_url_expiry" else 0.0
        default = cls.model_fields[info.field_name].default
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not (math.isfinite(number) and number >= minimum):
            raise InputError(
                f"{value!r} is not a number of at least {minimum:g}",
                where=variable,
                fix=f"give a number such as {default:g}, or leave it unset",
            )
        if info.field_name == "bucket_url_expiry" and number > MAX_URL_EXPIRY:
            raise InputError(
                f"{number:g} seconds is longer than presigned URLs can live",
                where=variable,
                fix=f"give at most {MAX_URL_EXPIRY} (7 days)",
            )
        return number

    @model_validator(mode="after")
    def _whole_bucket(self) -> RunpodSettings:
        if self.bucket_name is None and self.bucket_endpoint_url is not None:
            raise InputError(
                "BUCKET_ENDPOINT_URL is set but no bucket is named",
                where="BUCKET_NAME",
                fix="set BUCKET_NAME to the bucket that receives large results",
            )
        key_id, secret = self.bucket_access_key_id, self.bucket_secret_access_key
        if self.bucket_name is not None and (key_id is None) != (secret is None):
            missing = "BUCKET_SECRET_ACCESS_KEY" if secret is None else "BUCKET_ACCESS_KEY_ID"
            raise InputError(
                "only half of the bucket's key pair is set",
                where=missing,
                fix="set both BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY, or neither "
                "(then boto3 finds credentials as usual)",
            )
        return self


def _revealed(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()

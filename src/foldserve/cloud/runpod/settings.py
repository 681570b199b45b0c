"""The RunPod worker's settings, read once from its environment (the template's env vars).

Every variable is documented in the README ("Serverless on RunPod"). Those every cloud worker
reads (engines, weights, inline limit, outbound policy) are
:class:`~foldserve.cloud.settings.WorkerSettings`; a bad value stops the worker at start with
one line naming the variable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from foldserve.cloud.settings import WorkerSettings
from foldserve.errors import InputError

#: Where RunPod mounts an endpoint's network volume on every serverless worker.
VOLUME_MOUNT = Path("/runpod-volume")
DEFAULT_PROGRESS_INTERVAL = 2.0
DEFAULT_URL_EXPIRY = 24 * 3600
#: Presigned (SigV4) URLs cannot be valid for longer than a week.
MAX_URL_EXPIRY = 7 * 24 * 3600


@dataclass(frozen=True)
class BucketSettings:
    """An S3-compatible bucket for files that do not fit inline; keys stay out of reprs."""

    name: str
    endpoint_url: str | None
    region: str | None
    url_expiry: int
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)


class RunpodSettings(WorkerSettings):
    """The shared worker settings (:class:`~foldserve.cloud.settings.WorkerSettings`), the
    weights on the network volume, progress updates and the bucket for large files."""

    documented_in: ClassVar[str] = "the worker's variables in the README (Serverless on RunPod)"

    param_dir: Path = Field(default=VOLUME_MOUNT, alias="PARAM_DIR")
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

    @field_validator("progress_interval", "bucket_url_expiry", mode="before")
    @classmethod
    def _number(cls, value: Any, info: ValidationInfo) -> float:
        assert info.field_name is not None
        expiry = info.field_name == "bucket_url_expiry"
        number = cls.number(value, info.field_name, 1.0 if expiry else 0.0)
        if expiry and number > MAX_URL_EXPIRY:
            raise InputError(
                f"{number:g} seconds is longer than presigned URLs can live",
                where=cls.variable(info.field_name),
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

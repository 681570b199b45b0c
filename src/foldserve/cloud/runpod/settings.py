"""The RunPod worker's settings, read once from its environment (the template's env vars).

Every variable is documented in the README ("Serverless on RunPod"). A bad value stops the
worker at start with one line naming the variable, rather than failing the first job.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_args

from foldserve.errors import InputError
from foldserve.fold.predictor import Precision
from foldserve.fold.weights import DEFAULT_PARAMS_URL
from foldserve.jobs.output import DEFAULT_INLINE_LIMIT

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


@dataclass(frozen=True)
class WorkerSettings:
    param_dir: Path = VOLUME_MOUNT
    params_url: str = DEFAULT_PARAMS_URL
    params_sha256: str | None = None
    precision: Precision = "auto"
    inline_limit: int = DEFAULT_INLINE_LIMIT
    progress_interval: float = DEFAULT_PROGRESS_INTERVAL
    bucket: BucketSettings | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WorkerSettings:
        """Read and check every setting; a bad one raises :class:`InputError` naming it."""
        precision = env.get("FOLDSERVE_PRECISION") or "auto"
        if precision not in get_args(Precision):
            raise InputError(
                f"unknown precision {precision!r}",
                where="FOLDSERVE_PRECISION",
                fix="use auto, bfloat16 or float32",
            )
        sha256 = env.get("FOLDSERVE_PARAMS_SHA256") or None
        if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
            raise InputError(
                "not a SHA-256 (64 hexadecimal digits)",
                where="FOLDSERVE_PARAMS_SHA256",
                fix="give the archive's sha256sum, or leave it unset",
            )
        inline_mb = _number(env, "FOLDSERVE_INLINE_LIMIT_MB", DEFAULT_INLINE_LIMIT / _MB)
        return cls(
            param_dir=Path(env.get("PARAM_DIR") or VOLUME_MOUNT),
            params_url=env.get("FOLDSERVE_PARAMS_URL") or DEFAULT_PARAMS_URL,
            params_sha256=sha256,
            precision=precision,  # type: ignore[arg-type]  # checked against Precision above
            inline_limit=int(inline_mb * _MB),
            progress_interval=_number(
                env, "FOLDSERVE_PROGRESS_INTERVAL", DEFAULT_PROGRESS_INTERVAL, minimum=0.0
            ),
            bucket=_bucket(env),
        )


def _bucket(env: Mapping[str, str]) -> BucketSettings | None:
    """The bucket, when ``BUCKET_NAME`` or ``BUCKET_ENDPOINT_URL`` is set."""
    name = env.get("BUCKET_NAME") or None
    endpoint = env.get("BUCKET_ENDPOINT_URL") or None
    if name is None and endpoint is None:
        return None
    if name is None:
        raise InputError(
            "BUCKET_ENDPOINT_URL is set but no bucket is named",
            where="BUCKET_NAME",
            fix="set BUCKET_NAME to the bucket that receives large results",
        )
    if endpoint is not None and not re.match(r"^https?://", endpoint):
        raise InputError(
            f"{endpoint!r} is not an http(s) URL",
            where="BUCKET_ENDPOINT_URL",
            fix="give the S3 API URL, e.g. https://<account>.r2.cloudflarestorage.com",
        )
    key_id = env.get("BUCKET_ACCESS_KEY_ID") or None
    secret = env.get("BUCKET_SECRET_ACCESS_KEY") or None
    if (key_id is None) != (secret is None):
        missing = "BUCKET_SECRET_ACCESS_KEY" if secret is None else "BUCKET_ACCESS_KEY_ID"
        raise InputError(
            "only half of the bucket's key pair is set",
            where=missing,
            fix="set both BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY, or neither "
            "(then boto3 finds credentials as usual)",
        )
    expiry = _number(env, "BUCKET_URL_EXPIRY", DEFAULT_URL_EXPIRY, minimum=1.0)
    if expiry > MAX_URL_EXPIRY:
        raise InputError(
            f"{expiry:g} seconds is longer than presigned URLs can live",
            where="BUCKET_URL_EXPIRY",
            fix=f"give at most {MAX_URL_EXPIRY} (7 days)",
        )
    return BucketSettings(
        name=name,
        endpoint_url=endpoint,
        region=env.get("BUCKET_REGION") or None,
        url_expiry=int(expiry),
        access_key_id=key_id,
        secret_access_key=secret,
    )


def _number(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    text = env.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value >= minimum):
        raise InputError(
            f"{text!r} is not a number of at least {minimum:g}",
            where=name,
            fix=f"give a number such as {default:g}, or leave it unset",
        )
    return value

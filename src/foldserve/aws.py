"""AWS's failures as foldserve's one-line errors, for every caller of boto3 (``deploy
sagemaker``, ``pipeline export sagemaker``, the SageMaker client).

A refusal names the call, AWS's error code and message and what to fix: 4xx answers are the
caller's to fix (:class:`~foldserve.errors.Refused`, exit 2; refused credentials are
:class:`~foldserve.errors.KeyRefused`), 5xx answers AWS's (:class:`~foldserve.errors.Unavailable`).
No credentials, no region or a request boto3 itself rejects are input errors. botocore is
imported only when a failure is translated: nothing here loads it at import.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from foldserve.errors import FoldserveError, InputError, KeyRefused, Refused, Unavailable
from foldserve.remote import first_line

#: Error codes that are about the credentials rather than the request.
CREDENTIALS_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    }
)
CREDENTIALS_FIX = (
    "check the AWS credentials (aws configure, AWS_PROFILE or AWS_ACCESS_KEY_ID) and that "
    "they allow this"
)
REGION_FIX = "give --region, or set AWS_REGION"


@dataclass(frozen=True)
class AwsError:
    """What AWS answered to a refused request (a botocore ``ClientError``)."""

    code: str
    status: int
    message: str  # one line

    @classmethod
    def of(cls, exc: Any) -> AwsError:
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 400)
        code = str(error.get("Code") or status)
        lines = str(error.get("Message") or "").strip().splitlines()
        return cls(code, status, " ".join(lines[0].split())[:300] if lines else code)

    @property
    def reason(self) -> str:
        return self.message if self.message == self.code else f"{self.code}: {self.message}"


def refusal(what: str, exc: Any, fix: str | None = None) -> FoldserveError:
    """AWS's refusal of ``what`` (a ``ClientError``) in one line, ``fix`` added."""
    error = AwsError.of(exc)
    if error.code in CREDENTIALS_CODES or error.status in (401, 403):
        return KeyRefused(
            f"AWS refused {what} ({error.reason})",
            status_code=error.status,
            fix=f"{CREDENTIALS_FIX}; {fix}" if fix else CREDENTIALS_FIX,
        )
    if error.status >= 500:
        return Unavailable(f"{what} failed ({error.reason})", fix=fix or "try again later")
    return Refused(f"AWS refused {what} ({error.reason})", status_code=error.status, fix=fix)


def failure(what: str, exc: Exception) -> FoldserveError:
    """A botocore failure of ``what`` that is not AWS's answer, in one line."""
    from botocore.exceptions import (
        NoCredentialsError,
        NoRegionError,
        ParamValidationError,
        PartialCredentialsError,
    )

    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return InputError("no usable AWS credentials found", where=what, fix=CREDENTIALS_FIX)
    if isinstance(exc, NoRegionError):
        return InputError("no AWS region given", where=what, fix=REGION_FIX)
    if isinstance(exc, ParamValidationError):  # boto3's own check of the request's shape
        return InputError(" ".join(str(exc).split()), where=what)
    return Unavailable(f"{what} failed ({first_line(exc)})", fix="check the network and the region")


@contextmanager
def aws_errors(what: str, fix: str | None = None) -> Iterator[None]:
    """Raise boto3's failures while doing ``what`` as foldserve's one-line errors."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        raise refusal(what, exc, fix) from None
    except BotoCoreError as exc:
        raise failure(what, exc) from None

"""The AWS calls of the SageMaker client: boto3 loaded on first use, each call retried with
foldserve's policy, each failure one line.

botocore's own retries are off, so one policy (:class:`foldserve.retry.RetryPolicy`) governs
AWS as it governs HTTP endpoints (:mod:`foldserve.client.transport`): throttling, 5xx answers
and dropped connections are retried with backoff, and whoever made the client hears when a
call starts retrying. ``invoke_endpoint_async`` submits a job, so it is retried only when it
certainly did not reach AWS (no connection, throttled, 503): a job is never submitted twice.
Until AWS has answered once, failures to connect are retried for ``first_connect_s`` at most: a
wrong ``AWS_ENDPOINT_URL`` or no network should be said in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import tenacity

from foldserve.aws import AwsError, failure, refusal
from foldserve.client.transport import OnRetry, RetryNotice, longest_waits
from foldserve.errors import (
    InputError,
    Refused,
    RemoteError,
    Unavailable,
)
from foldserve.remote import first_line
from foldserve.retry import RetryPolicy

T = TypeVar("T")

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
#: Error codes that say AWS did not do the request now, but will later.
_THROTTLED = {
    "RequestLimitExceeded",
    "RequestThrottled",
    "ServiceUnavailable",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
}


def split_s3(location: str) -> tuple[str, str]:
    """``s3://bucket/key`` as its bucket and key."""
    parts = urlsplit(location)
    if parts.scheme != "s3" or not parts.netloc or not parts.path.strip("/"):
        raise RemoteError(f"{location!r} is not the location of an S3 object")
    return parts.netloc, parts.path.lstrip("/")


class _Retry(Exception):
    """A transient failure of one attempt, worth trying again."""


class Aws:
    """The S3, SageMaker and SageMaker Runtime clients of one region (None: boto3's own, from
    ``AWS_REGION`` or ``~/.aws/config``), with :attr:`region` the one in use."""

    def __init__(
        self,
        region: str | None,
        *,
        retry: RetryPolicy,
        first_connect_s: float,
        on_retry: OnRetry | None = None,
    ) -> None:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import NoRegionError

        config = Config(
            region_name=region,
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
            retries={"total_max_attempts": 1, "mode": "standard"},
        )
        session = boto3.session.Session()
        try:
            self.runtime: Any = session.client("sagemaker-runtime", config=config)
        except NoRegionError:
            raise InputError(
                "no AWS region given",
                where="--region",
                fix="give --region, region in the profile, or set AWS_REGION",
            ) from None
        self.region: str = self.runtime.meta.region_name
        self.s3: Any = session.client("s3", config=config)
        self.sagemaker: Any = session.client("sagemaker", config=config)
        self._retry = retry
        self._first_connect_retries = max(
            n for n in range(retry.max_retries + 1) if longest_waits(retry, n) <= first_connect_s
        )
        self._on_retry = on_retry
        #: Whether AWS has answered any call (an error too).
        self.answered = False

    def close(self) -> None:
        for client in (self.runtime, self.s3, self.sagemaker):
            client.close()

    def put(self, location: str, body: bytes) -> None:
        bucket, key = split_s3(location)
        self.call(
            f"uploading {location}",
            lambda: self.s3.put_object(
                Bucket=bucket, Key=key, Body=body, ContentType="application/json"
            ),
            fix="check the bucket exists in this region and the credentials may write to it",
        )

    def exists(self, location: str) -> bool:
        """Whether the object at ``location`` is there (``head_object``)."""
        bucket, key = split_s3(location)
        try:
            self.call(
                f"looking for {location}",
                lambda: self.s3.head_object(Bucket=bucket, Key=key),
                fix="S3 answers 403 for a missing object to those who may not list the bucket: "
                "allow s3:ListBucket and s3:GetObject on it",
            )
        except Refused as exc:
            if exc.status_code == 404:
                return False
            raise
        return True

    def read(self, location: str) -> bytes:
        bucket, key = split_s3(location)
        body: bytes = self.call(
            f"reading {location}",
            lambda: self.s3.get_object(Bucket=bucket, Key=key)["Body"].read(),
        )
        return body

    def call(
        self,
        what: str,
        call: Callable[[], T],
        *,
        unsent_only: bool = False,
        fix: str | None = None,
    ) -> T:
        """``call()`` (one boto3 request: ``what`` says what it does), retried while it fails
        in passing; a refusal is :class:`Refused` (:class:`KeyRefused` for the credentials)
        with ``fix`` (:func:`foldserve.aws.refusal`). ``unsent_only`` marks a request that must
        not reach AWS twice."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionError,
            HTTPClientError,
        )

        def once() -> T:
            try:
                answer = call()
            except ClientError as exc:
                self.answered = True
                error = AwsError.of(exc)
                if (
                    error.code in _THROTTLED
                    or error.status in (429, 503)
                    or (error.status >= 500 and not unsent_only)
                ):
                    raise _Retry(
                        f"AWS answered {what} with {error.code} (HTTP {error.status})"
                    ) from None
                raise
            except ConnectionError as exc:  # no connection: the request was not sent
                raise _Retry(f"cannot reach AWS for {what} ({first_line(exc)})") from None
            except HTTPClientError as exc:
                if unsent_only:
                    raise Unavailable(
                        f"no answer from AWS to {what} ({first_line(exc)}); it was not sent "
                        "again, so the job may or may not exist",
                        fix="check the endpoint's S3 output path before submitting again",
                    ) from None
                raise _Retry(f"{what} failed ({first_line(exc)})") from None
            self.answered = True
            return answer

        def retries() -> int:
            return self._retry.max_retries if self.answered else self._first_connect_retries

        def stop(state: tenacity.RetryCallState) -> bool:
            return state.attempt_number > retries()

        def notify(state: tenacity.RetryCallState) -> None:
            problem = state.outcome.exception() if state.outcome is not None else None
            if self._on_retry is not None and state.attempt_number == 1:
                within = longest_waits(self._retry, retries())
                self._on_retry(RetryNotice(str(problem), within))

        retrying = self._retry.retrying(_Retry).copy(stop=stop, before_sleep=notify)
        try:
            return retrying(once)
        except _Retry as last:
            raise Unavailable(
                f"{last}; gave up after {retries() + 1} attempts",
                fix="check the network and AWS_ENDPOINT_URL, then try again",
            ) from None
        except ClientError as exc:
            raise refusal(what, exc, fix) from None
        except BotoCoreError as exc:
            raise failure(what, exc) from None

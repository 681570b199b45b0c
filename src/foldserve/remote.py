"""Streaming bytes from an http(s) URL, an ``s3://`` object or a local file.

Used unrestricted for the operator's own sources (the weights); a user's ``msa_url`` goes
through :mod:`foldserve.outbound` first. Every failure, even one in mid-stream, surfaces as
:class:`SourceFailed` with a one-line reason that never quotes what the source sent (a
protocol error's text can hold the first bytes of the answer); callers add where it happened
and what to do. Connection attempts are short and not retried, so an offline
machine fails in seconds rather than minutes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from urllib.parse import urlparse

import httpx

CHUNK = 1 << 20
READ_TIMEOUT = 60.0

#: The bytes as they arrive, and their total size when the source says.
Opened = tuple[Iterator[bytes], int | None]


class SourceFailed(Exception):
    """A source that could not be read; the message is one line."""


def first_line(exc: BaseException) -> str:
    """The exception's kind and first line: for failures of our own requests, not a source's."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


#: What each kind of httpx failure means, in words that quote nothing the other side sent.
_HTTP_FAILURES: tuple[tuple[type[httpx.HTTPError], str], ...] = (
    (httpx.ConnectTimeout, "the connection timed out"),
    (httpx.ConnectError, "could not connect (no route, refused, or TLS failed)"),
    (httpx.ReadTimeout, "the source stopped sending"),
    (httpx.TimeoutException, "timed out"),
    (httpx.ProtocolError, "the answer was not valid HTTP"),
    (httpx.TooManyRedirects, "too many redirects"),
)


def describe(exc: httpx.HTTPError) -> str:
    """A one-line reason for an httpx failure, by its kind only."""
    return next(
        (text for kind, text in _HTTP_FAILURES if isinstance(exc, kind)),
        f"the request failed ({type(exc).__name__})",
    )


def status_reason(code: int) -> str:
    """``HTTP 404 Not Found``: the standard phrase, not the one the server chose to send."""
    return f"HTTP {code} {httpx.codes.get_reason_phrase(code)}".rstrip()


def supported(source: str) -> bool:
    """Whether :func:`open_source` can read ``source``."""
    return urlparse(source).scheme in _OPENERS


def open_source(
    source: str, *, connect_timeout: float = 10.0, read_timeout: float = READ_TIMEOUT
) -> AbstractContextManager[Opened]:
    """Open ``source`` for streaming; raise :class:`SourceFailed` when it cannot be read."""
    scheme = urlparse(source).scheme
    if scheme not in _OPENERS:
        raise SourceFailed(f"cannot read a {scheme}:// source")
    return _OPENERS[scheme](source, connect_timeout, read_timeout)


@contextlib.contextmanager
def _http(url: str, connect_timeout: float, read_timeout: float) -> Iterator[Opened]:
    timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=True) as client,
            # Identity encoding keeps Content-Length the size of the object itself.
            client.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response,
        ):
            response.raise_for_status()
            length = response.headers.get("Content-Length")
            yield response.iter_bytes(), int(length) if length else None
    except httpx.HTTPStatusError as exc:
        raise SourceFailed(status_reason(exc.response.status_code)) from exc
    except httpx.HTTPError as exc:
        raise SourceFailed(describe(exc)) from exc
    except httpx.InvalidURL as exc:
        raise SourceFailed("not a valid URL") from exc


@contextlib.contextmanager
def _s3(url: str, connect_timeout: float, read_timeout: float) -> Iterator[Opened]:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    parsed = urlparse(url)
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    if not bucket or not key:
        raise SourceFailed("an S3 source is s3://bucket/key")
    endpoint = os.environ.get("BUCKET_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"total_max_attempts": 1, "mode": "standard"},
    )
    try:
        client = boto3.client("s3", endpoint_url=endpoint or None, config=config)
        response = client.get_object(Bucket=bucket, Key=key)
        with contextlib.closing(response["Body"]) as body:
            yield body.iter_chunks(CHUNK), int(response["ContentLength"])
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "unknown")
        raise SourceFailed(f"S3 error {code}") from exc
    except BotoCoreError as exc:
        raise SourceFailed(f"S3 request failed ({type(exc).__name__})") from exc


@contextlib.contextmanager
def _local(path: str, connect_timeout: float, read_timeout: float) -> Iterator[Opened]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise SourceFailed(exc.strerror or str(exc)) from exc
    with handle:
        yield iter(lambda: handle.read(CHUNK), b""), os.fstat(handle.fileno()).st_size


_OPENERS: dict[str, Callable[[str, float, float], AbstractContextManager[Opened]]] = {
    "http": _http,
    "https": _http,
    "s3": _s3,
    "": _local,
}

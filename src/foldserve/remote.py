"""Streaming bytes from an http(s) URL, an ``s3://`` object or a local file.

Shared by the weights fetcher and by jobs whose MSA comes as ``msa_url``. Every failure, even
one in mid-stream, surfaces as :class:`SourceFailed` with a one-line reason; callers add where
it happened and what to do. Connection attempts are short and not retried, so an offline
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
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def supported(source: str, *, allow_local: bool = True) -> bool:
    """Whether :func:`open_source` can read ``source``."""
    scheme = urlparse(source).scheme
    return scheme in _OPENERS and (allow_local or scheme != "")


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
        response = exc.response
        raise SourceFailed(f"HTTP {response.status_code} {response.reason_phrase}") from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise SourceFailed(first_line(exc)) from exc


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
    except (BotoCoreError, ClientError) as exc:
        raise SourceFailed(first_line(exc)) from exc


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

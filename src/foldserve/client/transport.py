"""HTTP to one endpoint: the key sent only where it belongs, transient failures retried.

Transient failures (connection errors, 5xx, 429 with ``Retry-After``) are retried with
exponential backoff and jitter (:class:`foldserve.retry.RetryPolicy`). A request that must not
be repeated (``POST /run``) is retried only when it certainly did not reach the server (no
connection, 429, 503), so a job is never submitted twice. The API key goes only to the
endpoint's own origin, never to a bucket that serves result files. Refusals become the typed
errors of :mod:`foldserve.errors`.

Until a host has answered at all, its connection failures are retried only for
:data:`FIRST_CONNECT_S` in all: nothing answering yet is most likely a wrong URL or a server
not started, and a user should hear so in seconds. A host that has answered before gets the
whole policy, to ride out a restart or a network drop in the middle of a job. Whoever made the
transport hears of each request that starts retrying (``on_retry``), to tell its user.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import httpx
import tenacity

from foldserve._version import __version__
from foldserve.config import Endpoint, missing_key_fix
from foldserve.errors import (
    IntegrityError,
    JobNotFound,
    KeyRefused,
    Refused,
    RemoteError,
    Unavailable,
)
from foldserve.files import write_hashed
from foldserve.remote import first_line
from foldserve.retry import DEFAULT_RETRY, RetryPolicy

RETRY_AFTER_MAX_S = 300.0
CONNECT_TIMEOUT_S = 10.0
#: The most a request waits between retries in all while its host has never answered.
FIRST_CONNECT_S = 5.0
_CONNECT_FAILURES = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

T = TypeVar("T")
Origin = tuple[str, str, int | None]


@dataclass(frozen=True)
class RetryNotice:
    """A request failed and is being retried: ``problem`` says what failed, in one line naming
    the host; the retries wait ``within_s`` seconds at most in all (unless the server asks for
    longer with ``Retry-After``)."""

    problem: str
    within_s: float


#: Hears of each request that starts retrying (its first failure), e.g. to tell the user.
OnRetry = Callable[[RetryNotice], None]


class _Retry(Exception):
    """A transient failure of one attempt: worth trying again after ``after`` seconds."""

    def __init__(self, problem: str, after: float | None = None) -> None:
        self.problem = problem
        self.after = after
        super().__init__(problem)


class Transport:
    """One ``httpx.Client`` speaking to ``endpoint``, with explicit timeouts and retries.

    ``retry`` is the policy for hosts that have answered; before a host answers, its
    connection failures get as many of the policy's retries as wait ``first_connect_s`` at most
    in all. ``on_retry`` hears of each request that starts retrying.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        timeout: float,
        retry: RetryPolicy = DEFAULT_RETRY,
        first_connect_s: float = FIRST_CONNECT_S,
        on_retry: OnRetry | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.retry = retry
        self.first_connect_retries = max(
            n for n in range(retry.max_retries + 1) if longest_waits(retry, n) <= first_connect_s
        )
        self._on_retry = on_retry
        self._origin = _origin(httpx.URL(endpoint.base_url))
        self._answered: set[Origin] = set()
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_S)),
            headers={"User-Agent": f"foldserve/{__version__}"},
            event_hooks={"response": [self._heard_from]},
        )

    def _heard_from(self, answer: httpx.Response) -> None:
        self._answered.add(_origin(answer.request.url))

    @property
    def answered(self) -> bool:
        """Whether the endpoint has answered any request of this transport (any HTTP status)."""
        return self._origin in self._answered

    def close(self) -> None:
        self._http.close()

    def _auth_headers(self, url: httpx.URL) -> dict[str, str]:
        """The key goes only to the endpoint's own origin, never to a bucket's URL."""
        key = self.endpoint.api_key
        return {"Authorization": f"Bearer {key}"} if key and _origin(url) == self._origin else {}

    def call(
        self,
        method: str,
        route: str,
        *,
        content: bytes | None = None,
        job_id: str | None = None,
        unsent_only: bool = False,
    ) -> Any:
        """``METHOD {base}/{route}``: the JSON answer, or the typed error of a refusal.

        ``job_id`` names the job a 404 is about; ``unsent_only`` marks a request that must not
        reach the server twice.
        """
        url = httpx.URL(f"{self.endpoint.base_url}/{route}")
        headers = self._auth_headers(url)
        if content is not None:
            headers["Content-Type"] = "application/json"

        def attempt() -> httpx.Response:
            answer = self._http.request(method, url, content=content, headers=headers)
            self._raise_if_transient(answer, unsent_only=unsent_only)
            return answer

        answer = self._retrying(attempt, url, unsent_only=unsent_only)
        if answer.is_success:
            try:
                return answer.json()
            except ValueError:
                raise RemoteError(
                    f"{url} answered with something that is not JSON",
                    fix="check the URL points at a foldserve or RunPod endpoint (.../v2/ID)",
                ) from None
        self._refused(answer, route, job_id)

    def fetch(self, url: str, target: Path, expected: Any) -> None:
        """Download ``url`` into ``target`` (see :func:`write_checked`), retrying transient
        failures; the key goes along only to the endpoint's own origin."""
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https"):
            raise RemoteError(f"{target.name}: cannot fetch a {parsed.scheme or 'relative'} URL")

        def attempt() -> None:
            headers = self._auth_headers(parsed)
            with self._http.stream("GET", parsed, headers=headers, follow_redirects=True) as answer:
                self._raise_if_transient(answer, unsent_only=False)
                if answer.status_code != 200:
                    answer.read()
                    raise RemoteError(
                        f"{target.name}: download failed (HTTP {answer.status_code}: "
                        f"{_message(answer)})",
                        fix="result URLs expire: run foldserve fetch JOB again for fresh ones",
                    )
                write_checked(target, answer.iter_bytes(), expected)

        self._retrying(attempt, parsed, unsent_only=False)

    def _refused(self, answer: httpx.Response, route: str, job_id: str | None) -> NoReturn:
        code, message = answer.status_code, _message(answer)
        base = self.endpoint.base_url
        if code in (401, 403):
            fix = (
                missing_key_fix(self.endpoint.kind)
                if self.endpoint.api_key is None
                else "check the API key; " + missing_key_fix(self.endpoint.kind)
            )
            raise KeyRefused(
                f"{base} refused the key (HTTP {code}: {message})", status_code=code, fix=fix
            )
        if code == 404 and job_id is not None:
            raise JobNotFound(
                f"job {job_id} is not known to {base} ({message})",
                status_code=code,
                fix="check the id and the endpoint; finished jobs are kept only for a while "
                "(RunPod: 30 minutes)",
            )
        if code == 404:
            raise Refused(
                f"{base}/{route} not found ({message})",
                status_code=code,
                fix="check --url (it ends in /v2/ENDPOINT_ID) or --endpoint-id",
            )
        if code == 413:
            raise Refused(
                f"the endpoint refused the request as too large ({message})",
                status_code=code,
                fix="reduce the MSA first: foldserve msa filter --max-seqs 5632",
            )
        if 400 <= code < 500:
            raise Refused(f"the endpoint refused the request: {message}", status_code=code)
        raise Unavailable(f"{base}/{route} failed (HTTP {code}: {message})")

    def _raise_if_transient(self, answer: httpx.Response, *, unsent_only: bool) -> None:
        """Raise :class:`_Retry` for answers worth retrying.

        429 and 503 say the request was not processed; other 5xx only allow retrying requests
        that are safe to repeat.
        """
        code = answer.status_code
        if code in (429, 503) or (code >= 500 and not unsent_only):
            answer.read()
            asked = answer.request.url.copy_with(query=None, fragment=None)
            raise _Retry(f"{asked} answered HTTP {code}: {_message(answer)}", _retry_after(answer))

    def _retrying(self, attempt: Callable[[], T], url: httpx.URL, *, unsent_only: bool) -> T:
        """Run ``attempt`` (a request to ``url``) until it succeeds, retrying transient failures
        with backoff; as many times as the policy says once the host has answered, else as many
        as :attr:`first_connect_retries`.

        With ``unsent_only`` a failure after the request may have reached the server (a read
        timeout, a dropped connection) is not retried: repeating ``POST /run`` would submit the
        job twice. A failure that names its own wait (``Retry-After``) gets that wait.
        """
        origin = _origin(url)

        def retries() -> int:
            answered = origin in self._answered
            return self.retry.max_retries if answered else self.first_connect_retries

        def once() -> T:
            try:
                return attempt()
            except _CONNECT_FAILURES as exc:
                raise _Retry(f"cannot reach {_host(url)} ({_connect_failure(exc)})") from None
            except httpx.TransportError as exc:
                if unsent_only:
                    raise Unavailable(
                        f"{self.endpoint.base_url}: no answer to the submission "
                        f"({first_line(exc)}); it was not resent, so the job may or may not "
                        "exist",
                        fix="check the endpoint before submitting again",
                    ) from None
                raise _Retry(f"{_host(url)}: {first_line(exc)}") from None

        def stop(state: tenacity.RetryCallState) -> bool:
            return state.attempt_number > retries()

        def notify(state: tenacity.RetryCallState) -> None:
            failure = state.outcome.exception() if state.outcome is not None else None
            if self._on_retry is not None and state.attempt_number == 1:
                within = longest_waits(self.retry, retries())
                self._on_retry(RetryNotice(str(failure), within))

        retrying = self.retry.retrying(_Retry, wait_hint=lambda failure: failure.after)
        try:
            return retrying.copy(stop=stop, before_sleep=notify)(once)
        except _Retry as failure:
            answered = origin in self._answered
            raise Unavailable(
                f"{failure.problem}; gave up after {retries() + 1} attempts",
                fix="check the endpoint is up and reachable, then try again"
                if answered
                else "nothing has answered there yet: check the URL or endpoint id, and that "
                "the server is running",
            ) from None


def longest_waits(policy: RetryPolicy, retries: int) -> float:
    """The longest the first ``retries`` backoffs of ``policy`` can wait in all."""
    longest = replace(policy, jitter=lambda low, high: high)
    return sum(longest.backoff(n) for n in range(retries))


def _origin(url: httpx.URL) -> Origin:
    default_port = {"http": 80, "https": 443}.get(url.scheme)
    return (url.scheme, url.host, url.port or default_port)


def _host(url: httpx.URL) -> str:
    """``scheme://host:port`` of ``url``: what a failure to connect is about."""
    return str(url.copy_with(path="/", query=None, fragment=None)).removesuffix("/")


def _connect_failure(exc: httpx.TransportError) -> str:
    """Why a connection failed, in a few words: ``connection refused``, ``timed out``."""
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    lines = str(exc).strip().splitlines()
    reason = re.sub(r"^\[Errno -?\d+\]\s*", "", lines[0]) if lines else type(exc).__name__
    return reason[:1].lower() + reason[1:]


def _message(answer: httpx.Response) -> str:
    """The server's one-line reason: ``{"error": ...}`` (RunPod, foldserve) or the text."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("error", "detail", "message"):
            if isinstance(body.get(key), str):
                return str(body[key])
    lines = answer.text.strip().splitlines()
    return lines[0][:200] if lines else answer.reason_phrase or "no message"


def _retry_after(answer: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), capped; None when absent."""
    value = answer.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_S)


def write_checked(target: Path, chunks: Iterable[bytes], expected: Any) -> None:
    """Write ``chunks`` to ``target`` atomically; a SHA-256 other than ``expected`` (when the job
    gave one) raises :class:`IntegrityError` and leaves no file."""

    def check(found: str) -> None:
        if isinstance(expected, str) and found != expected.lower():
            raise IntegrityError(
                f"{target.name}: SHA-256 {found} does not match the job's {expected}",
                fix="fetch the results again; if it persists the endpoint's storage is damaged",
            )

    write_hashed(target, chunks, check=check)

"""Every error foldserve raises on purpose, in one tree (httpx-style).

Each carries what went wrong, where (``file:line``, a JSON field path, a flag) and how to fix
it, and prints as one line. No class here knows an exit code or an HTTP status: the command
line (:mod:`foldserve.cli`) and the server (:mod:`foldserve.server.app`) map classes to those.
Anything else that escapes is a bug in foldserve and keeps its traceback.

::

    FoldserveError
    ├── InputError            the user's file, flag or JSON field          exit 2, HTTP 400
    │   ├── MsaError          an MSA that cannot be read or used (file:line)
    │   ├── TooLarge          a body or MSA over its size limit            HTTP 413
    │   ├── NotFound          an unknown job, endpoint or file             HTTP 404
    │   └── Unauthorized      a missing or wrong API key                   HTTP 401
    ├── RemoteError           an endpoint or a job that did not do what was asked   exit 1
    │   ├── Unavailable       no usable answer, after retrying
    │   ├── Refused           the endpoint refused the request (4xx)       exit 2
    │   │   ├── KeyRefused    401/403
    │   │   └── JobNotFound   404 for a job id
    │   ├── JobFailed         the job ended FAILED, TIMED_OUT or CANCELLED
    │   ├── IntegrityError    a result file whose SHA-256 does not match
    │   └── WaitTimedOut      waiting gave up; the job keeps running
    ├── WeightsError          model weights missing, damaged or not fetchable
    ├── StorageError          a result bucket that cannot be written
    ├── OutputNotWritten      a finished run that could not be put in its folder (kept elsewhere)
    ├── StoreUnavailable      the server's job store cannot be used now    HTTP 503
    │   └── StoreFull         its disk is full                             HTTP 503
    └── Cancelled             a prediction stopped at a recycle boundary on request
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from foldserve.jobs.schema import JobState


class FoldserveError(Exception):
    """Base class of every error foldserve raises on purpose.

    ``where`` is ``file:line``, a JSON field path or a flag; ``fix`` says what to do about it.
    """

    def __init__(self, problem: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.problem = problem
        self.where = where
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = f"{self.where}: {self.problem}" if self.where else self.problem
        if self.fix:
            text = f"{text.rstrip('.')}. Fix: {self.fix}"
        return text


class InputError(FoldserveError):
    """Bad input from the user: a file, a flag, a setting or a JSON field."""


class MsaError(InputError):
    """An MSA that cannot be read or used, located by file and line."""

    def __init__(
        self, problem: str, *, source: str, line: int | None = None, fix: str | None = None
    ) -> None:
        self.source = source
        self.line = line
        where = f"{source}:{line}" if line is not None else source
        super().__init__(problem, where=where, fix=fix)


class TooLarge(InputError):
    """A request body, an MSA or a job over its size limit."""


class NotFound(InputError):
    """An unknown job, endpoint or file."""


class Unauthorized(InputError):
    """A missing or wrong API key, as the server sees it."""


class RemoteError(FoldserveError):
    """A job or an endpoint that did not do what was asked."""


class Unavailable(RemoteError):
    """No usable answer from the endpoint (or a source), after retrying."""


class Refused(RemoteError):
    """The endpoint refused the request (4xx); the message is the server's."""

    def __init__(
        self, problem: str, *, status_code: int, where: str | None = None, fix: str | None = None
    ) -> None:
        self.status_code = status_code
        super().__init__(problem, where=where, fix=fix)


class KeyRefused(Refused):
    """401 or 403: a missing or wrong API key, as the client sees it."""


class JobNotFound(Refused):
    """404 for a job: an unknown job, or one whose results have expired."""


class IntegrityError(RemoteError):
    """A result file whose SHA-256 does not match the one the job reported."""


class WaitTimedOut(RemoteError):
    """Waiting for a job gave up; the job itself keeps running."""


class JobFailed(RemoteError):
    """The job finished FAILED, TIMED_OUT or CANCELLED; ``state`` holds its status and error."""

    def __init__(self, state: JobState) -> None:
        self.state = state
        reason = f": {state.error}" if state.error else ""
        super().__init__(f"job {state.id} {state.status.value}{reason}")


class WeightsError(FoldserveError):
    """Model weights that are missing, damaged, or cannot be fetched."""


class StorageError(FoldserveError):
    """A bucket for large results that cannot be written or signed."""


class OutputNotWritten(FoldserveError):
    """A prediction was computed but could not be written where asked; ``kept_in`` (named in
    the fix) holds it when it could be written anywhere."""

    def __init__(self, problem: str, *, where: str, kept_in: Path | None) -> None:
        fix = (
            f"the results are kept in {kept_in}; move them where you want them"
            if kept_in is not None
            else "free space or fix permissions, then run again"
        )
        super().__init__(problem, where=where, fix=fix)
        self.kept_in = kept_in


class StoreUnavailable(FoldserveError):
    """The server's job store cannot be read or written now (a damaged file, an I/O error)."""


class StoreFull(StoreUnavailable):
    """The disk under the server's job store or results is full."""


class Cancelled(FoldserveError):
    """A prediction stopped at a recycle boundary because it was cancelled or timed out."""

    def __init__(self, problem: str = "the prediction was cancelled") -> None:
        super().__init__(problem)

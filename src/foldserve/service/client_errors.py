"""What the job API client raises: one line each, with the fix, and an exit code.

All are :class:`~foldserve.errors.UserInputError` subclasses, so the command line prints them
as one line. Failures of a job or an endpoint exit with 1; requests the endpoint refused (a bad
key, an unknown job, an invalid input) with 2, as other user errors do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from foldserve.errors import UserInputError

if TYPE_CHECKING:
    from foldserve.service.client import JobState


class ClientError(UserInputError):
    """A job or an endpoint that did not do what was asked; one line, exit code 1."""

    exit_code = 1


class EndpointUnavailable(ClientError):
    """No usable answer from the endpoint, after retrying."""


class EndpointError(ClientError):
    """The endpoint refused the request (4xx); the message is the server's."""

    exit_code = 2

    def __init__(
        self, problem: str, *, status_code: int, where: str | None = None, fix: str | None = None
    ) -> None:
        self.status_code = status_code
        super().__init__(problem, where=where, fix=fix)


class AuthError(EndpointError):
    """401 or 403: a missing or wrong API key."""


class JobNotFound(EndpointError):
    """404: an unknown job, or one whose results have expired."""


class IntegrityError(ClientError):
    """A result file whose SHA-256 does not match the one the job reported."""


class WaitTimedOut(ClientError):
    """:meth:`Client.wait` gave up; the job itself keeps running."""


class JobFailed(ClientError):
    """The job finished FAILED, TIMED_OUT or CANCELLED; ``state`` holds its status and error."""

    def __init__(self, state: JobState) -> None:
        self.state = state
        reason = f": {state.error}" if state.error else ""
        super().__init__(f"job {state.id} {state.status.value}{reason}")

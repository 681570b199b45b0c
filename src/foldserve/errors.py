"""Errors a user can cause, each carrying where it happened and how to fix it.

Every layer raises these; the CLI turns them into one line on stderr and exit code 2. Anything
else that escapes is a bug in foldserve and keeps its traceback.
"""

from __future__ import annotations


class FoldserveError(Exception):
    """Base class of every error foldserve raises on purpose."""


class UserInputError(FoldserveError):
    """Bad input from the user: a file, a flag or a JSON field.

    ``where`` is ``file:line`` or a JSON field path; ``fix`` says what to do about it.
    """

    exit_code = 2

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


class MsaError(UserInputError):
    """An MSA that cannot be read or used, located by file and line."""

    def __init__(
        self, problem: str, *, source: str, line: int | None = None, fix: str | None = None
    ) -> None:
        self.source = source
        self.line = line
        where = f"{source}:{line}" if line is not None else source
        super().__init__(problem, where=where, fix=fix)

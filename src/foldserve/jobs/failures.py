"""How a job that failed through no fault of its input is described to the person who sent it.

Shared by the self-hosted worker processes and the RunPod handler: one line, the exception's
type and first line, and for the commonest cause (device memory) what to do about it. The
server's own file paths (weights, data folder) never reach the job's sender: each absolute path
is cut to its last part.
"""

from __future__ import annotations

import re

#: An absolute path, not inside a URL or a relative path: ``/a/b/c.npz`` (the first ``/``
#: follows neither a word character nor ``:``, ``/``, ``.``, ``~`` or ``-``).
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])(?:~?/)(?:[^\s'\"/]+/)*([^\s'\"/]+)")


def without_paths(text: str) -> str:
    """``text`` with every absolute path cut to its last part: ``…/params_model_1_ptm.npz``."""
    return _ABSOLUTE_PATH.sub(lambda match: f"…/{match.group(1)}", text)


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, or its type's name when it has none."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def crash_message(exc: BaseException, then: str) -> str:
    """One line for ``exc``, without the server's paths; ``then`` says what became of the
    worker."""
    first = without_paths(first_line(exc))
    if "RESOURCE_EXHAUSTED" in str(exc) or isinstance(exc, MemoryError):
        return (
            f"out of memory on the device ({first[:300]}); reduce the MSA "
            "(foldserve msa filter --max-seqs 512) or use a GPU with more memory"
        )
    return f"the worker crashed ({type(exc).__name__}: {first[:300]}); {then}"

"""How a job that failed through no fault of its input is described to the person who sent it.

Shared by the self-hosted worker processes and the RunPod handler: one line, the exception's
type and first line, and for the commonest cause (device memory) what to do about it.
"""

from __future__ import annotations


def crash_message(exc: BaseException, then: str) -> str:
    """One line for ``exc``; ``then`` says what became of the worker."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    if "RESOURCE_EXHAUSTED" in str(exc) or isinstance(exc, MemoryError):
        return (
            f"out of memory on the device ({first[:300]}); reduce the MSA "
            "(foldserve msa filter --max-seqs 512) or use a GPU with more memory"
        )
    return f"the worker crashed ({type(exc).__name__}: {first[:300]}); {then}"

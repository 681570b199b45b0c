"""The body of ``POST /invocations``: the fold job's input, as RunPod's handler is given it, or
the same object wrapped as ``{"input": {...}}`` (the ``/run`` body, without the policy and the
webhook that SageMaker's endpoint configuration stands for), so that one file serves every
endpoint. Errors name the field as everywhere: ``input.models``, or the MSA's line."""

from __future__ import annotations

from foldserve.errors import InputError
from foldserve.jobs.input import FoldJobInput, parse_job_input
from foldserve.jobs.wire import json_body

_FIX = (
    'send the job input as JSON, alone or as {"input": {...}}; '
    "`foldserve jobs schema` prints the JSON Schema"
)


def job_input_of(body: bytes) -> FoldJobInput:
    """The validated job input in ``body``; one :class:`InputError` naming the field if not."""
    payload = json_body(body, fix=_FIX)
    if isinstance(payload, dict) and "input" in payload:
        beside = sorted(set(payload) - {"input"})
        if beside:
            raise InputError(
                "unknown field beside input",
                where=beside[0],
                fix=f"{_FIX} (timeouts and notifications are the endpoint's settings)",
            )
        payload = payload["input"]
    return parse_job_input(payload)

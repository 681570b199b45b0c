"""The body of ``POST /invocations``: the fold job's input, as RunPod's handler is given it, or
the same object wrapped as ``{"input": {...}}`` (the ``/run`` body, without the policy and the
webhook that SageMaker's endpoint configuration stands for), so that one file serves every
endpoint. Errors name the field as everywhere: ``input.models``, or the MSA's line."""

from __future__ import annotations

import json
from typing import Any

from foldserve.errors import InputError
from foldserve.jobs.input import FoldJobInput, parse_job_input

_FIX = (
    'send the job input as JSON, alone or as {"input": {...}}; '
    "`foldserve jobs schema` prints the JSON Schema"
)


def job_input_of(body: bytes) -> FoldJobInput:
    """The validated job input in ``body``; one :class:`InputError` naming the field if not."""
    payload = _json(body)
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


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except UnicodeDecodeError as exc:
        reason = f"not UTF-8 at byte {exc.start}"
    except json.JSONDecodeError as exc:
        reason = f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    except (ValueError, RecursionError) as exc:  # nesting too deep, a number too long
        reason = str(exc).split(":")[0][:100]
    raise InputError(f"not valid JSON ({reason})", where="body", fix=_FIX)

"""The job contract in one place: every model of the job JSON, and its published JSON Schema.

The models live in one module per concern and are importable from here:
:mod:`~foldserve.jobs.input` (what a client sends: input, policy, the ``/run`` body),
:mod:`~foldserve.jobs.output` (what a COMPLETED job returns), :mod:`~foldserve.jobs.progress`
(what a running job reports) and :mod:`~foldserve.jobs.status` (statuses, a client's view of a
job). :func:`job_schema` is what ``foldserve jobs schema`` prints and ``docs/job-schema.json``
holds, so clients in other languages can be written against it.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic.json_schema import models_json_schema

from foldserve.jobs.input import (
    DEFAULT_EXECUTION_TIMEOUT_MS,
    DEFAULT_OUTPUTS,
    DEFAULT_TTL_MS,
    MAX_POLICY_MS,
    RUN_BODY_LIMIT,
    RUNSYNC_BODY_LIMIT,
    FoldJobInput,
    OutputKind,
    Policy,
    RunRequest,
    parse_job_input,
    parse_run_request,
    validation_error,
)
from foldserve.jobs.output import (
    FileEntry,
    InlineFile,
    JobOutput,
    LinkedFile,
    MsaSummary,
    QuerySummary,
    RankingEntry,
)
from foldserve.jobs.progress import JobProgress
from foldserve.jobs.status import JobState, JobStatus

__all__ = [
    "DEFAULT_EXECUTION_TIMEOUT_MS",
    "DEFAULT_OUTPUTS",
    "DEFAULT_TTL_MS",
    "MAX_POLICY_MS",
    "RUNSYNC_BODY_LIMIT",
    "RUN_BODY_LIMIT",
    "SCHEMA_ID",
    "FileEntry",
    "FoldJobInput",
    "InlineFile",
    "JobOutput",
    "JobProgress",
    "JobState",
    "JobStatus",
    "LinkedFile",
    "MsaSummary",
    "OutputKind",
    "Policy",
    "QuerySummary",
    "RankingEntry",
    "RunRequest",
    "job_schema",
    "job_schema_text",
    "parse_job_input",
    "parse_run_request",
    "validation_error",
]

SCHEMA_ID = "urn:foldserve:job-contract:1"


def job_schema() -> dict[str, Any]:
    """The JSON Schema of the ``/run`` body, the job output and a progress event.

    One document: ``run_request``, ``output`` and ``progress`` refer to the models in its
    ``$defs``, so each is a complete schema when read with the document as its base.
    """
    refs, definitions = models_json_schema(
        [(RunRequest, "validation"), (JobOutput, "validation"), (JobProgress, "validation")],
        ref_template="#/$defs/{model}",
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "foldserve job contract",
        "description": (
            "POST /run and /runsync take run_request; GET /status answers the job's output "
            "once COMPLETED and its latest progress while IN_PROGRESS; GET /stream answers "
            "progress events. Fields a client does not know are ignored in what endpoints "
            "send, and refused in what they receive."
        ),
        "run_request": refs[(RunRequest, "validation")],
        "output": refs[(JobOutput, "validation")],
        "progress": refs[(JobProgress, "validation")],
        "$defs": definitions["$defs"],
    }


def job_schema_text() -> str:
    """:func:`job_schema` as the text ``foldserve jobs schema`` prints."""
    return json.dumps(job_schema(), indent=2) + "\n"

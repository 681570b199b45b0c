"""Create or update the pipeline in the account, and start executions of it, with boto3.

boto3 is imported on first use: exporting the definition needs no AWS library, account or
network. Every failure is one line: the service's refusal (its error code and message), or
what to set when no credentials or region are found.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from foldserve.aws import aws_errors


@dataclass(frozen=True)
class Upserted:
    action: Literal["created", "updated"]
    arn: str


def _client(region: str | None) -> Any:
    """A client of a session of its own: boto3's default session keeps the credentials it
    found first, for the life of the process."""
    import boto3

    return boto3.session.Session().client("sagemaker", region_name=region)


def upsert(name: str, definition: str, role: str, region: str | None = None) -> Upserted:
    """Create pipeline ``name`` with ``definition`` (JSON) run by ``role``, or update it if the
    account has it already."""
    with aws_errors(f"pipeline {name}"):
        client = _client(region)
        pages = client.get_paginator("list_pipelines").paginate(PipelineNamePrefix=name)
        exists = any(p["PipelineName"] == name for page in pages for p in page["PipelineSummaries"])
        request = {"PipelineName": name, "PipelineDefinition": definition, "RoleArn": role}
        if exists:
            return Upserted("updated", client.update_pipeline(**request)["PipelineArn"])
        return Upserted("created", client.create_pipeline(**request)["PipelineArn"])


def start(name: str, parameters: dict[str, str], region: str | None = None) -> str:
    """Start an execution of pipeline ``name`` with ``parameters``; its ARN."""
    with aws_errors(f"pipeline {name}"):
        answer = _client(region).start_pipeline_execution(
            PipelineName=name,
            PipelineParameters=[{"Name": k, "Value": v} for k, v in parameters.items()],
        )
    arn: str = answer["PipelineExecutionArn"]
    return arn

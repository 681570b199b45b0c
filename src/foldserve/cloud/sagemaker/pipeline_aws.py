"""Create or update the pipeline in the account, and start executions of it, with boto3.

boto3 is imported on first use: exporting the definition needs no AWS library, account or
network. Every failure is one line: the service's refusal (its error code and message), or
what to set when no credentials or region are found.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from foldserve.errors import InputError, Refused, Unavailable
from foldserve.remote import first_line


@dataclass(frozen=True)
class Upserted:
    action: Literal["created", "updated"]
    arn: str


@contextmanager
def _aws(action: str) -> Iterator[None]:
    """Turn boto3's failures while doing ``action`` into foldserve's one-line errors."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        NoRegionError,
    )

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
        raise Refused(
            f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": "),
            status_code=status,
            where=action,
        ) from None
    except NoCredentialsError:
        raise InputError(
            "no AWS credentials found",
            where=action,
            fix="run `aws configure` (or set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY)",
        ) from None
    except NoRegionError:
        raise InputError(
            "no AWS region given", where=action, fix="add --region, or set AWS_REGION"
        ) from None
    except BotoCoreError as exc:
        raise Unavailable(first_line(exc), where=action) from None


def _client(region: str | None) -> Any:
    """A client of a session of its own: boto3's default session keeps the credentials it
    found first, for the life of the process."""
    import boto3

    return boto3.session.Session().client("sagemaker", region_name=region)


def upsert(name: str, definition: str, role: str, region: str | None = None) -> Upserted:
    """Create pipeline ``name`` with ``definition`` (JSON) run by ``role``, or update it if the
    account has it already."""
    with _aws(f"pipeline {name}"):
        client = _client(region)
        pages = client.get_paginator("list_pipelines").paginate(PipelineNamePrefix=name)
        exists = any(p["PipelineName"] == name for page in pages for p in page["PipelineSummaries"])
        request = {"PipelineName": name, "PipelineDefinition": definition, "RoleArn": role}
        if exists:
            return Upserted("updated", client.update_pipeline(**request)["PipelineArn"])
        return Upserted("created", client.create_pipeline(**request)["PipelineArn"])


def start(name: str, parameters: dict[str, str], region: str | None = None) -> str:
    """Start an execution of pipeline ``name`` with ``parameters``; its ARN."""
    with _aws(f"pipeline {name}"):
        answer = _client(region).start_pipeline_execution(
            PipelineName=name,
            PipelineParameters=[{"Name": k, "Value": v} for k, v in parameters.items()],
        )
    arn: str = answer["PipelineExecutionArn"]
    return arn

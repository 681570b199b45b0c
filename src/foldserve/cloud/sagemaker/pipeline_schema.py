"""The parts of the SageMaker Pipelines definition schema (version ``2020-12-01``) that the
folding workflow uses, as typed models that write (and read back) the documented JSON.

A Processing step's ``Arguments`` are a CreateProcessingJob request in which any value may be
an expression the service resolves when the step runs: ``{"Get": "Parameters.Name"}`` (a
pipeline parameter), ``{"Get": "Execution.PipelineExecutionId"}``, ``{"Get":
"Steps.S.ProcessingOutputConfig.Outputs['o'].S3Output.S3Uri"}`` (a property of step ``S``, which
also makes the step that reads it wait for ``S``) and ``{"Std:Join": {"On": "/", "Values":
[...]}}``. Building these few shapes here, instead of with the ``sagemaker`` SDK (about 1 GB),
keeps the definition buildable offline with no optional dependency.
"""

from __future__ import annotations

import re
from typing import Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_pascal


class _Model(BaseModel):
    """Fields named in snake_case here, in PascalCase in the JSON, as the API spells them."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_pascal,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


class Get(_Model):
    """A value read when the step runs: ``Parameters.X``, ``Execution.X`` or ``Steps.S.X``."""

    get: str


class JoinArguments(_Model):
    on: str
    values: tuple[Value, ...]


class Join(_Model):
    """The ``values`` (expressions among them) joined by ``on``, as one string."""

    join: JoinArguments = Field(validation_alias="Std:Join", serialization_alias="Std:Join")


#: A string the service takes as it is or resolves when the step runs.
Value: TypeAlias = "str | Get | Join"
JoinArguments.model_rebuild()

EXECUTION_ID = Get(get="Execution.PipelineExecutionId")


def join(*values: Value, on: str = "/") -> Join:
    return Join(join=JoinArguments(on=on, values=values))


class Parameter(_Model):
    """A pipeline parameter; without a default, each execution must give it."""

    name: str
    type: Literal["String", "Integer"]
    default_value: str | int | None = None

    @property
    def ref(self) -> Get:
        return Get(get=f"Parameters.{self.name}")

    def text(self) -> Value:
        """The parameter as a string: a container argument must be one, and the service does
        not turn an Integer into a string by itself (the SDK's ``to_string()`` is this Join)."""
        return self.ref if self.type == "String" else join(self.ref, on="")


class S3Input(_Model):
    s3_uri: Value
    local_path: str
    s3_data_type: Literal["S3Prefix"] = "S3Prefix"
    s3_input_mode: Literal["File"] = "File"
    s3_data_distribution_type: Literal["FullyReplicated"] = "FullyReplicated"
    s3_compression_type: Literal["None"] = "None"


class ProcessingInput(_Model):
    input_name: str
    app_managed: bool = False
    s3_input: S3Input


class S3Output(_Model):
    s3_uri: Value
    local_path: str
    s3_upload_mode: Literal["EndOfJob"] = "EndOfJob"


class ProcessingOutput(_Model):
    output_name: str
    app_managed: bool = False
    s3_output: S3Output


class ProcessingOutputConfig(_Model):
    outputs: tuple[ProcessingOutput, ...]


class ClusterConfig(_Model):
    instance_count: int = 1
    instance_type: Value
    volume_size_in_gb: int = Field(
        validation_alias="VolumeSizeInGB", serialization_alias="VolumeSizeInGB"
    )


class ProcessingResources(_Model):
    cluster_config: ClusterConfig


class AppSpecification(_Model):
    image_uri: Value
    container_entrypoint: tuple[str, ...]
    container_arguments: tuple[Value, ...]


class StoppingCondition(_Model):
    max_runtime_in_seconds: int


class ProcessingJobArguments(_Model):
    """The CreateProcessingJob request, less the job name the service gives each run."""

    processing_resources: ProcessingResources
    app_specification: AppSpecification
    role_arn: Value
    processing_inputs: tuple[ProcessingInput, ...]
    processing_output_config: ProcessingOutputConfig
    stopping_condition: StoppingCondition


class ProcessingStep(_Model):
    name: str
    type: Literal["Processing"] = "Processing"
    arguments: ProcessingJobArguments

    def output_uri(self, output: str) -> Get:
        """Where this step's ``output`` goes in S3: reading it makes a step wait for this one."""
        return Get(
            get=f"Steps.{self.name}.ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri"
        )


class PipelineDefinition(_Model):
    version: Literal["2020-12-01"] = "2020-12-01"
    parameters: tuple[Parameter, ...]
    steps: tuple[ProcessingStep, ...]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, exclude_none=True) + "\n"


_REFERENCE = re.compile(r'"Get":\s*"Parameters\.([A-Za-z0-9]+)"')


def referenced_parameters(steps: tuple[ProcessingStep, ...]) -> set[str]:
    """The names of the parameters that ``steps`` read."""
    return {name for step in steps for name in _REFERENCE.findall(step.model_dump_json())}

"""What ``foldserve deploy sagemaker`` deploys, checked before any request is sent.

Each check raises :class:`~foldserve.errors.InputError` itself (pydantic lets any exception but
``ValueError`` through), ``where`` naming the field; the command line turns that into its flag
(``s3_output`` → ``--s3-output``). Checking shapes up front (an ARN, an ``s3://`` URI, an
instance type) turns what AWS would refuse halfway through a deployment, with some resources
already created, into one line before the first.

The region is the image's: SageMaker pulls the container from Amazon ECR in the endpoint's own
region, so an endpoint anywhere else could not start.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from foldserve.config import aws_region, s3_prefix, sagemaker_name
from foldserve.errors import InputError

DEFAULT_NAME = "foldserve"
#: One NVIDIA A10G (24 GB).
DEFAULT_INSTANCE_TYPE = "ml.g5.xlarge"
DEFAULT_MAX_INSTANCES = 1
#: Where SageMaker unpacks the model data (``ModelDataUrl``) in the container: the weights.
MODEL_DIR = "/opt/ml/model"
#: Folder of ``--s3-output`` that takes the failures when ``--s3-failure`` is not given.
FAILURE_FOLDER = "failures"

_PARTITION = r"aws(-cn|-us-gov)?"
_REGION = r"[a-z]{2}(-[a-z]+)+-[0-9]"
# ACCOUNT.dkr.ecr.REGION.amazonaws.com[.cn]/REPOSITORY[:TAG|@sha256:DIGEST]
_ECR_IMAGE = re.compile(
    rf"[0-9]{{12}}\.dkr\.ecr(-fips)?\.(?P<region>{_REGION})\.amazonaws\.com(\.cn)?"
    r"/[a-z0-9]([a-z0-9._/-]*[a-z0-9])?(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})?"
)
_ROLE_ARN = re.compile(rf"arn:{_PARTITION}:iam::[0-9]{{12}}:role/[A-Za-z0-9+=,.@_/-]{{1,512}}")
_SNS_ARN = re.compile(
    rf"arn:{_PARTITION}:sns:(?P<region>{_REGION}):[0-9]{{12}}:[A-Za-z0-9_-]{{1,256}}"
)
_INSTANCE_TYPE = re.compile(r"ml\.[a-z0-9-]+\.[a-z0-9]+")


def role_arn(role: str, *, where: str = "role") -> str:
    """``role`` when it has the shape of an IAM role's ARN (SageMaker would refuse it halfway)."""
    if not _ROLE_ARN.fullmatch(role):
        raise InputError(
            f"{role!r} is not an IAM role ARN",
            where=where,
            fix="give the ARN of a role SageMaker may assume, e.g. "
            "arn:aws:iam::123456789012:role/foldserve-sagemaker",
        )
    return role


def _sns_region(arn: str, where: str) -> str:
    match = _SNS_ARN.fullmatch(arn)
    if match is None:
        raise InputError(
            f"{arn!r} is not an SNS topic ARN",
            where=where,
            fix="give e.g. arn:aws:sns:us-east-1:123456789012:foldserve-done",
        )
    return match["region"]


class SagemakerSettings(BaseModel):
    """An asynchronous SageMaker endpoint of one variant, scaling between 0 and
    ``max_instances``; S3 URIs are kept without a trailing ``/``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image: str
    role: str
    s3_output: str
    name: str = DEFAULT_NAME
    instance_type: str = DEFAULT_INSTANCE_TYPE
    max_instances: int = DEFAULT_MAX_INSTANCES
    model_data: str | None = None
    s3_failure: str | None = None
    sns_success: str | None = None
    sns_error: str | None = None
    region: str | None = None
    #: More variables for the container, besides ``PARAM_DIR``.
    env: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def checked(cls, **values: Any) -> SagemakerSettings:
        """The settings from ``values``; a missing one is an :class:`InputError` naming it."""
        try:
            return cls(**values)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0]) if error["loc"] else "settings"
            missing = error["type"] == "missing"
            raise InputError(
                "needed to deploy" if missing else error["msg"],
                where=field,
                fix="see `foldserve deploy sagemaker --help`",
            ) from None

    @field_validator("image")
    @classmethod
    def _ecr_image(cls, image: str) -> str:
        if not _ECR_IMAGE.fullmatch(image):
            raise InputError(
                f"{image!r} is not an Amazon ECR image URI",
                where="image",
                fix="push the image to ECR and give e.g. "
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/foldserve:0.1.0",
            )
        return image

    @field_validator("role")
    @classmethod
    def _role_arn(cls, role: str) -> str:
        return role_arn(role)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return sagemaker_name(name, where="name")

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, instance_type: str) -> str:
        if not _INSTANCE_TYPE.fullmatch(instance_type):
            raise InputError(
                f"{instance_type!r} is not a SageMaker instance type",
                where="instance_type",
                fix=f"give an ml. type with a GPU, e.g. {DEFAULT_INSTANCE_TYPE}",
            )
        return instance_type

    @field_validator("max_instances")
    @classmethod
    def _max_instances(cls, count: int) -> int:
        if count < 1:
            raise InputError(
                f"{count} instances",
                where="max_instances",
                fix="give at least 1 (the endpoint still scales to zero when idle)",
            )
        return count

    @field_validator("s3_output", "s3_failure")
    @classmethod
    def _s3_path(cls, uri: str | None, info: ValidationInfo) -> str | None:
        return None if uri is None else s3_prefix(uri, where=str(info.field_name))

    @field_validator("model_data")
    @classmethod
    def _model_archive(cls, uri: str | None) -> str | None:
        if uri is None:
            return None
        if not uri.endswith(".tar.gz"):
            raise InputError(
                f"{uri!r} is not a .tar.gz archive",
                where="model_data",
                fix="give the S3 URI of a tar.gz holding params/ (the weights' layout), e.g. "
                "s3://my-bucket/foldserve/model.tar.gz",
            )
        return s3_prefix(uri, where="model_data")

    @field_validator("region")
    @classmethod
    def _region(cls, region: str | None) -> str | None:
        return None if region is None else aws_region(region, where="region")

    @field_validator("env")
    @classmethod
    def _env(cls, env: dict[str, str]) -> dict[str, str]:
        if "PARAM_DIR" in env:
            raise InputError(
                "PARAM_DIR is set by the deployment",
                where="env",
                fix=f"leave it out: SageMaker unpacks --model-data into {MODEL_DIR}",
            )
        return env

    @model_validator(mode="after")
    def _one_region(self) -> SagemakerSettings:
        image_region = self.aws_region
        if self.region is not None and self.region != image_region:
            raise InputError(
                f"the image is in {image_region}, and SageMaker pulls it from its own region",
                where="region",
                fix=f"push the image to ECR in {self.region}, or leave --region out",
            )
        for field in ("sns_success", "sns_error"):
            arn = getattr(self, field)
            if arn is not None and _sns_region(arn, field) != image_region:
                raise InputError(
                    f"the topic is not in the endpoint's region, {image_region}",
                    where=field,
                    fix=f"give a topic in {image_region}",
                )
        return self

    @property
    def aws_region(self) -> str:
        """The region of the endpoint: the image's."""
        match = _ECR_IMAGE.fullmatch(self.image)
        assert match is not None  # checked on creation
        return match["region"]

    @property
    def failure_path(self) -> str:
        """Where failed invocations' errors go: ``--s3-failure``, or under the output path."""
        return self.s3_failure or f"{self.s3_output}/{FAILURE_FOLDER}"

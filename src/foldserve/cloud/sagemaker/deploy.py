"""``foldserve deploy sagemaker``: an asynchronous inference endpoint that scales to zero, made
with boto3 in the endpoint's region (the image's); and its removal.

The requests, in order:

1. sagemaker ``CreateModel``: the image, the model data (unpacked in ``/opt/ml/model``), the
   execution role, and the environment: ``PARAM_DIR=/opt/ml/model`` and the ``--env`` pairs.
2. sagemaker ``CreateEndpointConfig``: one variant (``AllTraffic``) starting with one instance,
   and ``AsyncInferenceConfig``: output and failure paths, SNS topics when given, and one
   invocation at a time per instance (a prediction takes the whole GPU).
3. sagemaker ``CreateEndpoint``, then the ``endpoint_in_service`` waiter: Application Auto
   Scaling registers only an endpoint that is InService.
4. application-autoscaling ``RegisterScalableTarget`` (0 to ``--max-instances``), a
   target-tracking ``PutScalingPolicy`` on ``ApproximateBacklogSizePerInstance``, and a
   step-scaling ``PutScalingPolicy`` that adds one instance;
5. cloudwatch ``PutMetricAlarm`` on ``HasBacklogWithoutCapacity``, whose action is that step
   policy. Without it an endpoint at zero instances starts one only once the backlog exceeds
   the tracking target.

Steps 4 and 5 take their values from AWS's recipe, "Autoscale an asynchronous endpoint" in the
SageMaker developer guide (async-inference-autoscale). A failure halfway names what was created;
``--delete`` removes it all, in reverse, passing over what is already gone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from foldserve.aws import REGION_FIX, AwsError, failure, refusal
from foldserve.cloud.sagemaker.settings import MODEL_DIR, SagemakerSettings
from foldserve.errors import FoldserveError, InputError, RemoteError

Service = Literal["sagemaker", "application-autoscaling", "cloudwatch"]
#: Called with what is being done now, e.g. to update a status line.
Progress = Callable[[str], None]

VARIANT = "AllTraffic"
#: Seconds SageMaker waits for the model data (the weights' archive, 5.3 GB) to be unpacked,
#: then for ``/ping`` to answer 200, which the container does only once its engines are loaded.
STARTUP_TIMEOUT_S = 1200
DOWNLOAD_TIMEOUT_S = 1200
#: How the ``endpoint_in_service`` waiter polls: every 30 s, for at most an hour.
WAIT_DELAY_S = 30
WAIT_ATTEMPTS = 120

# AWS's recipe (async-inference-autoscale): the tracking target, the step policy and its alarm.
BACKLOG_PER_INSTANCE = "ApproximateBacklogSizePerInstance"
BACKLOG_WITHOUT_CAPACITY = "HasBacklogWithoutCapacity"
BACKLOG_TARGET = 5.0
STEP_COOLDOWN_S = 300
ALARM_PERIOD_S = 60
ALARM_PERIODS = 2
TRACKING_POLICY = f"{BACKLOG_PER_INSTANCE}-ScalingPolicy"
STEP_POLICY = f"{BACKLOG_WITHOUT_CAPACITY}-ScalingPolicy"
#: Stands for the step policy's ARN, which only AWS's answer holds, in a dry run.
STEP_POLICY_ARN_PLACEHOLDER = f"<PolicyARN of {STEP_POLICY}>"

_SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD", re.IGNORECASE)
_HIDDEN = "<hidden>"
#: Error codes that, for a removal, mean the thing is already gone.
_ABSENT_CODES = {"ObjectNotFoundException", "ResourceNotFound", "ResourceNotFoundException"}
_ABSENT_MESSAGE = re.compile(r"could not find|no scal(ing policy|able target) found", re.IGNORECASE)


@dataclass(frozen=True)
class Request:
    """One AWS API call: the service, the operation as AWS's reference names it, and its
    parameters; ``target`` says what it creates or removes, for messages."""

    service: Service
    operation: str
    parameters: dict[str, Any]
    target: str

    @property
    def call(self) -> str:
        """The call, for messages: ``sagemaker CreateModel``."""
        return f"{self.service} {self.operation}"

    def as_dict(self) -> dict[str, Any]:
        return {"service": self.service, "operation": self.operation, "parameters": self.parameters}


@dataclass(frozen=True)
class Deployment:
    """What :func:`deploy` made: the endpoint's ARN and region, and each resource, in order."""

    endpoint_arn: str
    region: str
    created: tuple[str, ...]


@dataclass(frozen=True)
class Teardown:
    """What :func:`teardown` removed, and what was already gone."""

    removed: tuple[str, ...]
    absent: tuple[str, ...]


def resource_id(name: str) -> str:
    """How Application Auto Scaling names the endpoint's variant."""
    return f"endpoint/{name}/variant/{VARIANT}"


def alarm_name(name: str) -> str:
    """The alarm's name: alarms share one namespace per account and region, unlike policies."""
    return f"{name}-{BACKLOG_WITHOUT_CAPACITY}"


def _scalable_target(name: str) -> dict[str, str]:
    return {
        "ServiceNamespace": "sagemaker",
        "ResourceId": resource_id(name),
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
    }


def _endpoint_metric(name: str, metric: str) -> dict[str, Any]:
    return {
        "MetricName": metric,
        "Namespace": "AWS/SageMaker",
        "Dimensions": [{"Name": "EndpointName", "Value": name}],
        "Statistic": "Average",
    }


def _environment(settings: SagemakerSettings, *, hide_secrets: bool) -> dict[str, str]:
    env = {"PARAM_DIR": MODEL_DIR, **settings.env}
    if hide_secrets:
        env = {key: _HIDDEN if _SECRET_NAME.search(key) else value for key, value in env.items()}
    return env


def endpoint_requests(
    settings: SagemakerSettings, *, hide_secrets: bool = False
) -> tuple[Request, ...]:
    """The model, the endpoint configuration and the endpoint; ``hide_secrets`` replaces the
    values of secret-looking variables, for showing."""
    name = settings.name
    container: dict[str, Any] = {
        "Image": settings.image,
        "Environment": _environment(settings, hide_secrets=hide_secrets),
    }
    if settings.model_data is not None:
        container["ModelDataUrl"] = settings.model_data
    notification = {
        key: arn
        for key, arn in (("SuccessTopic", settings.sns_success), ("ErrorTopic", settings.sns_error))
        if arn is not None
    }
    output: dict[str, Any] = {
        "S3OutputPath": settings.s3_output,
        "S3FailurePath": settings.failure_path,
    }
    if notification:
        output["NotificationConfig"] = notification
    variant = {
        "VariantName": VARIANT,
        "ModelName": name,
        "InstanceType": settings.instance_type,
        "InitialInstanceCount": 1,
        "ModelDataDownloadTimeoutInSeconds": DOWNLOAD_TIMEOUT_S,
        "ContainerStartupHealthCheckTimeoutInSeconds": STARTUP_TIMEOUT_S,
    }
    return (
        Request(
            "sagemaker",
            "CreateModel",
            {"ModelName": name, "PrimaryContainer": container, "ExecutionRoleArn": settings.role},
            f"model {name}",
        ),
        Request(
            "sagemaker",
            "CreateEndpointConfig",
            {
                "EndpointConfigName": name,
                "ProductionVariants": [variant],
                "AsyncInferenceConfig": {
                    "OutputConfig": output,
                    "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 1},
                },
            },
            f"endpoint configuration {name}",
        ),
        Request(
            "sagemaker",
            "CreateEndpoint",
            {"EndpointName": name, "EndpointConfigName": name},
            f"endpoint {name}",
        ),
    )


def scaling_requests(settings: SagemakerSettings) -> tuple[Request, ...]:
    """The scalable target (0 to ``max_instances``) and its two policies, as AWS's recipe."""
    name = settings.name
    target = _scalable_target(name)
    return (
        Request(
            "application-autoscaling",
            "RegisterScalableTarget",
            {**target, "MinCapacity": 0, "MaxCapacity": settings.max_instances},
            f"scalable target {resource_id(name)} (0 to {settings.max_instances} instances)",
        ),
        Request(
            "application-autoscaling",
            "PutScalingPolicy",
            {
                "PolicyName": TRACKING_POLICY,
                **target,
                "PolicyType": "TargetTrackingScaling",
                "TargetTrackingScalingPolicyConfiguration": {
                    "TargetValue": BACKLOG_TARGET,
                    "CustomizedMetricSpecification": _endpoint_metric(name, BACKLOG_PER_INSTANCE),
                },
            },
            f"scaling policy {TRACKING_POLICY}",
        ),
        Request(
            "application-autoscaling",
            "PutScalingPolicy",
            {
                "PolicyName": STEP_POLICY,
                **target,
                "PolicyType": "StepScaling",
                "StepScalingPolicyConfiguration": {
                    "AdjustmentType": "ChangeInCapacity",
                    "MetricAggregationType": "Average",
                    "Cooldown": STEP_COOLDOWN_S,
                    "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
                },
            },
            f"scaling policy {STEP_POLICY}",
        ),
    )


def alarm_request(name: str, step_policy_arn: str) -> Request:
    """The alarm that starts the step policy while requests wait and no instance runs."""
    return Request(
        "cloudwatch",
        "PutMetricAlarm",
        {
            "AlarmName": alarm_name(name),
            **_endpoint_metric(name, BACKLOG_WITHOUT_CAPACITY),
            "EvaluationPeriods": ALARM_PERIODS,
            "DatapointsToAlarm": ALARM_PERIODS,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "missing",
            "Period": ALARM_PERIOD_S,
            "AlarmActions": [step_policy_arn],
        },
        f"alarm {alarm_name(name)}",
    )


def deploy_requests(settings: SagemakerSettings) -> tuple[Request, ...]:
    """Every request :func:`deploy` sends, for showing: secrets hidden, the policy ARN a
    placeholder."""
    return (
        *endpoint_requests(settings, hide_secrets=True),
        *scaling_requests(settings),
        alarm_request(settings.name, STEP_POLICY_ARN_PLACEHOLDER),
    )


def teardown_requests(name: str) -> tuple[Request, ...]:
    """The removal of everything :func:`deploy` makes, in reverse order."""
    target = _scalable_target(name)
    return (
        Request(
            "cloudwatch",
            "DeleteAlarms",
            {"AlarmNames": [alarm_name(name)]},
            f"alarm {alarm_name(name)}",
        ),
        *(
            Request(
                "application-autoscaling",
                "DeleteScalingPolicy",
                {"PolicyName": policy, **target},
                f"scaling policy {policy}",
            )
            for policy in (STEP_POLICY, TRACKING_POLICY)
        ),
        Request(
            "application-autoscaling",
            "DeregisterScalableTarget",
            target,
            f"scalable target {resource_id(name)}",
        ),
        Request("sagemaker", "DeleteEndpoint", {"EndpointName": name}, f"endpoint {name}"),
        Request(
            "sagemaker",
            "DeleteEndpointConfig",
            {"EndpointConfigName": name},
            f"endpoint configuration {name}",
        ),
        Request("sagemaker", "DeleteModel", {"ModelName": name}, f"model {name}"),
    )


def show(requests: Sequence[Request], region: str | None) -> str:
    """The requests as JSON, for a dry run; ``region`` None when none is configured."""
    document = {"region": region, "requests": [request.as_dict() for request in requests]}
    return json.dumps(document, indent=2)


class Aws:
    """boto3 clients of one region (the configured default when None), made on first use;
    every failure is one :class:`FoldserveError` line. Credentials are boto3's own chain."""

    def __init__(self, region: str | None) -> None:
        import boto3

        self._session = boto3.session.Session(region_name=region)
        self._clients: dict[str, Any] = {}

    @property
    def region(self) -> str | None:
        """The region the requests go to; None when none is given or configured."""
        region: str | None = self._session.region_name
        return region

    def _client(self, service: Service) -> Any:
        if service not in self._clients:
            if self.region is None:
                raise InputError(
                    "no AWS region given or configured",
                    where="--region",
                    fix=REGION_FIX,
                )
            self._clients[service] = self._session.client(service)
        return self._clients[service]

    def send(self, request: Request, *, absent_ok: bool = False) -> dict[str, Any] | None:
        """AWS's answer; None when ``absent_ok`` and the thing to remove is already gone."""
        from botocore import xform_name
        from botocore.exceptions import BotoCoreError, ClientError

        client = self._client(request.service)
        try:
            answer: dict[str, Any] = getattr(client, xform_name(request.operation))(
                **request.parameters
            )
        except ClientError as exc:
            if absent_ok and _is_absent(exc):
                return None
            raise refusal(request.call, exc) from None
        except BotoCoreError as exc:
            raise failure(request.call, exc) from None
        return answer

    def wait_in_service(self, name: str) -> None:
        """Return once the endpoint is InService; a :class:`RemoteError` if it fails or takes
        longer than an hour."""
        from botocore.exceptions import BotoCoreError, WaiterError

        waiter = self._client("sagemaker").get_waiter("endpoint_in_service")
        try:
            waiter.wait(
                EndpointName=name,
                WaiterConfig={"Delay": WAIT_DELAY_S, "MaxAttempts": WAIT_ATTEMPTS},
            )
        except WaiterError as exc:
            last = exc.last_response or {}
            reason = last.get("FailureReason") or last.get("Error", {}).get("Message")
            status = last.get("EndpointStatus", "not InService")
            raise RemoteError(
                f"endpoint {name} is {status}: {reason or exc.reason}",
                fix=f"read the container's log in CloudWatch, /aws/sagemaker/Endpoints/{name}",
            ) from None
        except BotoCoreError as exc:
            raise failure("sagemaker DescribeEndpoint", exc) from None


def deploy(settings: SagemakerSettings, aws: Aws, progress: Progress) -> Deployment:
    """Create the endpoint and its autoscaling; a failure names what was already created."""
    created: list[str] = []

    def send(request: Request) -> dict[str, Any]:
        progress(f"creating {request.target}")
        try:
            answer = aws.send(request)
        except FoldserveError as error:
            raise _halfway(error, created, settings) from None
        created.append(request.target)
        assert answer is not None  # only removals may find nothing
        return answer

    endpoint_arn = ""
    for request in endpoint_requests(settings):
        endpoint_arn = send(request).get("EndpointArn", endpoint_arn)
    progress(f"waiting for endpoint {settings.name} to be InService (often 5 to 10 minutes)")
    try:
        aws.wait_in_service(settings.name)
    except FoldserveError as error:
        raise _halfway(error, created, settings) from None
    step_policy_arn = ""
    for request in scaling_requests(settings):
        step_policy_arn = send(request).get("PolicyARN", step_policy_arn)
    send(alarm_request(settings.name, step_policy_arn))
    return Deployment(endpoint_arn, settings.aws_region, tuple(created))


def teardown(name: str, aws: Aws, progress: Progress) -> Teardown:
    """Remove what :func:`deploy` made for endpoint ``name``, passing over what is gone."""
    removed: list[str] = []
    absent: list[str] = []
    for request in teardown_requests(name):
        progress(f"removing {request.target}")
        found = aws.send(request, absent_ok=True) is not None
        (removed if found else absent).append(request.target)
    return Teardown(tuple(removed), tuple(absent))


def delete_command(name: str, region: str) -> str:
    """The command line that removes what :func:`deploy` made."""
    return f"foldserve deploy sagemaker --delete {name} --region {region}"


def _halfway(
    error: FoldserveError, created: list[str], settings: SagemakerSettings
) -> FoldserveError:
    """``error``, naming what was created before it and how to remove it."""
    if created:
        error.problem = f"{error.problem} (already created: {', '.join(created)})"
        removal = (
            f"remove them with `{delete_command(settings.name, settings.aws_region)}`, "
            "then deploy again"
        )
        error.fix = f"{error.fix.rstrip('.')}; then {removal}" if error.fix else removal
        error.args = (error.one_line(),)
    return error


def _is_absent(exc: Any) -> bool:
    """A removal's error that means the thing is not there: SageMaker says so only in words,
    with a ValidationException (as moto does for Application Auto Scaling too)."""
    error = AwsError.of(exc)
    return error.code in _ABSENT_CODES or (
        error.code == "ValidationException" and _ABSENT_MESSAGE.match(error.message) is not None
    )

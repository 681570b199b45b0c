"""``foldserve deploy sagemaker``, run as a user runs it, against a moto server on 127.0.0.1.

Every resource is read back through boto3 from moto. What moto cannot show: an endpoint that
takes minutes to become InService (moto's is at once), the scaling itself, and AWS's refusal of
a name already taken (moto overwrites). moto knows only old instance types: the tests deploy on
``ml.g4dn.xlarge``, and moto's refusal of the default ``ml.g5.xlarge`` stands for a failure
halfway.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from tests.aws import REGION, aws_env, moto_server
from tests.cli_runner import Ran, foldserve

pytestmark = pytest.mark.timeout(60)

ACCOUNT = "123456789012"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/foldserve:0.1.0"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/foldserve-sagemaker"
OUTPUT = "s3://fold-results/async/output"
TOPIC_OK = f"arn:aws:sns:{REGION}:{ACCOUNT}:folded"
TOPIC_ERROR = f"arn:aws:sns:{REGION}:{ACCOUNT}:fold-failed"
INSTANCE_TYPE = "ml.g4dn.xlarge"  # moto's list of instance types stops before ml.g5
NAME = "fold-async"
SECRET = "s3cr3t-t0ken-value"
RESOURCE_ID = f"endpoint/{NAME}/variant/AllTraffic"
#: What a deployment leaves behind, as ``--delete`` names it.
EVERYTHING = [
    f"alarm {NAME}-HasBacklogWithoutCapacity",
    "scaling policy HasBacklogWithoutCapacity-ScalingPolicy",
    "scaling policy ApproximateBacklogSizePerInstance-ScalingPolicy",
    f"scalable target {RESOURCE_ID}",
    f"endpoint {NAME}",
    f"endpoint configuration {NAME}",
    f"model {NAME}",
]


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def aws(moto_url: str) -> str:
    """The moto server's URL, emptied of what an earlier test made."""
    httpx.post(f"{moto_url}/moto-api/reset", timeout=10).raise_for_status()
    return moto_url


def client(url: str, service: str) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def sagemaker(url: str, tmp_path: Path, *args: str, **env: str | None) -> Ran:
    """``foldserve deploy sagemaker ARGS`` with AWS pointed at moto; ``env`` overrides."""
    return foldserve("deploy", "sagemaker", *args, env={**aws_env(url, tmp_path), **env})


def deploy_args(*extra: str) -> list[str]:
    return [
        *("--image", IMAGE, "--role", ROLE, "--s3-output", OUTPUT, "--name", NAME),
        *extra,
    ]


def assert_one_line_error(result: Ran, *fragments: str) -> None:
    assert result.exit_code == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def nothing_exists(url: str) -> bool:
    sm = client(url, "sagemaker")
    aas = client(url, "application-autoscaling")
    return not (
        sm.list_models()["Models"]
        or sm.list_endpoint_configs()["EndpointConfigs"]
        or sm.list_endpoints()["Endpoints"]
        or aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
        or aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
        or client(url, "cloudwatch").describe_alarms()["MetricAlarms"]
    )


def test_deploy_creates_the_async_endpoint_and_its_scale_to_zero_autoscaling(
    aws: str, tmp_path: Path
) -> None:
    result = sagemaker(
        aws,
        tmp_path,
        *deploy_args("--instance-type", INSTANCE_TYPE, "--max-instances", "3"),
        *("--model-data", "s3://fold-weights/alphafold2/model.tar.gz"),
        *("--sns-success", TOPIC_OK, "--sns-error", TOPIC_ERROR),
        *("--env", "FOLDSERVE_ENGINES=alphafold2", "--env", f"API_TOKEN={SECRET}"),
    )
    assert result.exit_code == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    sm = client(aws, "sagemaker")

    model = sm.describe_model(ModelName=NAME)
    assert model["ExecutionRoleArn"] == ROLE
    container = model["PrimaryContainer"]
    assert container["Image"] == IMAGE
    assert container["ModelDataUrl"] == "s3://fold-weights/alphafold2/model.tar.gz"
    assert container["Environment"] == {
        "PARAM_DIR": "/opt/ml/model",
        "FOLDSERVE_ENGINES": "alphafold2",
        "API_TOKEN": SECRET,
    }

    config = sm.describe_endpoint_config(EndpointConfigName=NAME)
    [variant] = config["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic"
    assert variant["ModelName"] == NAME
    assert variant["InstanceType"] == INSTANCE_TYPE
    assert variant["InitialInstanceCount"] == 1
    assert config["AsyncInferenceConfig"] == {
        "OutputConfig": {
            "S3OutputPath": OUTPUT,
            "S3FailurePath": f"{OUTPUT}/failures",
            "NotificationConfig": {"SuccessTopic": TOPIC_OK, "ErrorTopic": TOPIC_ERROR},
        },
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 1},
    }
    endpoint = sm.describe_endpoint(EndpointName=NAME)
    assert endpoint["EndpointConfigName"] == NAME
    assert endpoint["EndpointStatus"] == "InService"

    aas = client(aws, "application-autoscaling")
    [target] = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert target["ResourceId"] == RESOURCE_ID
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 3)
    policies = {
        policy["PolicyName"]: policy
        for policy in aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    }
    assert set(policies) == {
        "ApproximateBacklogSizePerInstance-ScalingPolicy",
        "HasBacklogWithoutCapacity-ScalingPolicy",
    }
    tracking = policies["ApproximateBacklogSizePerInstance-ScalingPolicy"]
    assert tracking["ResourceId"] == RESOURCE_ID
    assert tracking["PolicyType"] == "TargetTrackingScaling"
    assert tracking["TargetTrackingScalingPolicyConfiguration"] == {
        "TargetValue": 5.0,
        "CustomizedMetricSpecification": {
            "MetricName": "ApproximateBacklogSizePerInstance",
            "Namespace": "AWS/SageMaker",
            "Dimensions": [{"Name": "EndpointName", "Value": NAME}],
            "Statistic": "Average",
        },
    }
    step = policies["HasBacklogWithoutCapacity-ScalingPolicy"]
    assert step["ResourceId"] == RESOURCE_ID
    assert step["PolicyType"] == "StepScaling"
    assert step["StepScalingPolicyConfiguration"] == {
        "AdjustmentType": "ChangeInCapacity",
        "MetricAggregationType": "Average",
        "Cooldown": 300,
        "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
    }

    [alarm] = client(aws, "cloudwatch").describe_alarms()["MetricAlarms"]
    assert alarm["AlarmName"] == f"{NAME}-HasBacklogWithoutCapacity"
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        "AWS/SageMaker",
        "HasBacklogWithoutCapacity",
    )
    assert alarm["Dimensions"] == [{"Name": "EndpointName", "Value": NAME}]
    assert alarm["Statistic"] == "Average"
    assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (60, 2, 2)
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "missing"
    assert alarm["AlarmActions"] == [step["PolicyARN"]]

    for target_name in reversed(EVERYTHING[1:]):
        assert target_name in result.stdout
    assert f"foldserve submit --sagemaker-endpoint {NAME}" in result.stdout
    assert f"foldserve deploy sagemaker --delete {NAME} --region {REGION}" in result.stdout


def test_dry_run_prints_every_request_sends_none_and_needs_no_credentials(
    aws: str, tmp_path: Path
) -> None:
    no_credentials = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}
    result = sagemaker(
        aws,
        tmp_path,
        *deploy_args("--dry-run", "--env", f"API_TOKEN={SECRET}", "--sns-error", TOPIC_ERROR),
        **no_credentials,
    )
    assert result.exit_code == 0, result.stderr
    assert nothing_exists(aws)
    assert SECRET not in result.stdout
    shown = json.loads(result.stdout)
    assert shown["region"] == REGION
    requests = shown["requests"]
    assert [(r["service"], r["operation"]) for r in requests] == [
        ("sagemaker", "CreateModel"),
        ("sagemaker", "CreateEndpointConfig"),
        ("sagemaker", "CreateEndpoint"),
        ("application-autoscaling", "RegisterScalableTarget"),
        ("application-autoscaling", "PutScalingPolicy"),
        ("application-autoscaling", "PutScalingPolicy"),
        ("cloudwatch", "PutMetricAlarm"),
    ]
    model, config = requests[0]["parameters"], requests[1]["parameters"]
    assert model["PrimaryContainer"]["Environment"] == {
        "PARAM_DIR": "/opt/ml/model",
        "API_TOKEN": "<hidden>",
    }
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.g5.xlarge"
    assert config["AsyncInferenceConfig"]["OutputConfig"]["NotificationConfig"] == {
        "ErrorTopic": TOPIC_ERROR
    }
    assert requests[3]["parameters"]["MaxCapacity"] == 1
    assert requests[6]["parameters"]["AlarmActions"] == [
        "<PolicyARN of HasBacklogWithoutCapacity-ScalingPolicy>"
    ]

    # With credentials, the dry run still sends nothing, and shows none of them.
    marker = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY"
    again = sagemaker(aws, tmp_path, *deploy_args("--dry-run"), AWS_SECRET_ACCESS_KEY=marker)
    assert again.exit_code == 0, again.stderr
    assert marker not in again.stdout + again.stderr
    assert nothing_exists(aws)


def test_delete_removes_it_all_and_passes_over_what_is_gone(aws: str, tmp_path: Path) -> None:
    deployed = sagemaker(aws, tmp_path, *deploy_args("--instance-type", INSTANCE_TYPE))
    assert deployed.exit_code == 0, deployed.stderr

    shown = sagemaker(aws, tmp_path, "--delete", NAME, "--dry-run")
    assert shown.exit_code == 0, shown.stderr
    assert [r["operation"] for r in json.loads(shown.stdout)["requests"]] == [
        "DeleteAlarms",
        "DeleteScalingPolicy",
        "DeleteScalingPolicy",
        "DeregisterScalableTarget",
        "DeleteEndpoint",
        "DeleteEndpointConfig",
        "DeleteModel",
    ]
    assert not nothing_exists(aws)

    removed = sagemaker(aws, tmp_path, "--delete", NAME)
    assert removed.exit_code == 0, removed.stderr
    assert [line.split(maxsplit=1)[1] for line in removed.stdout.splitlines()] == EVERYTHING
    assert all(line.startswith("removed") for line in removed.stdout.splitlines())
    assert nothing_exists(aws)

    # moto deletes a missing alarm without complaint; AWS says ResourceNotFound.
    again = sagemaker(aws, tmp_path, "--delete", NAME)
    assert again.exit_code == 0, again.stderr
    for target in EVERYTHING[1:]:
        assert f"already gone   {target}" in again.stdout


def test_a_failure_halfway_names_what_was_created_and_how_to_remove_it(
    aws: str, tmp_path: Path
) -> None:
    result = sagemaker(aws, tmp_path, *deploy_args())  # moto refuses ml.g5.xlarge
    assert_one_line_error(
        result,
        "AWS refused sagemaker CreateEndpointConfig (ValidationException",
        f"already created: model {NAME})",
        f"foldserve deploy sagemaker --delete {NAME}",
    )
    assert [m["ModelName"] for m in client(aws, "sagemaker").list_models()["Models"]] == [NAME]

    removed = sagemaker(aws, tmp_path, "--delete", NAME)
    assert removed.exit_code == 0, removed.stderr
    assert f"removed        model {NAME}" in removed.stdout
    assert nothing_exists(aws)


def test_no_credentials_is_one_line_and_creates_nothing(aws: str, tmp_path: Path) -> None:
    result = sagemaker(
        aws,
        tmp_path,
        *deploy_args("--instance-type", INSTANCE_TYPE),
        AWS_ACCESS_KEY_ID=None,
        AWS_SECRET_ACCESS_KEY=None,
        AWS_EC2_METADATA_DISABLED="true",  # no look for an instance role off this machine
    )
    assert_one_line_error(result, "sagemaker CreateModel: no usable AWS credentials found")
    assert nothing_exists(aws)


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (["--image", "ghcr.io/example/foldserve:0.1.0"], "--image: "),
        (["--role", "foldserve-sagemaker"], "--role: "),
        (["--role", f"arn:aws:iam::{ACCOUNT}:user/me"], "--role: "),
        (["--s3-output", "https://fold-results.s3.amazonaws.com/out"], "--s3-output: "),
        (["--s3-failure", "fold-results/failures"], "--s3-failure: "),
        (["--model-data", "s3://fold-weights/params/"], "--model-data: "),
        (["--instance-type", "g5.xlarge"], "--instance-type: "),
        (["--max-instances", "0"], "--max-instances: "),
        (["--name", "fold_async"], "--name: "),
        (["--sns-success", "folded"], "--sns-success: "),
        (["--sns-error", f"arn:aws:sns:eu-west-1:{ACCOUNT}:fold-failed"], "--sns-error: "),
        (["--region", "eu-west-1"], "--region: the image is in us-east-1"),
        (["--env", "PARAM_DIR=/mnt/weights"], "--env: PARAM_DIR"),
        (["--env", "NOT A PAIR"], "--env: "),
    ],
)
def test_a_bad_flag_is_one_line_naming_it(
    aws: str, tmp_path: Path, args: list[str], where: str
) -> None:
    result = sagemaker(aws, tmp_path, *deploy_args(*args))
    assert_one_line_error(result, f"error: {where}")
    assert nothing_exists(aws)


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (["--role", ROLE, "--s3-output", OUTPUT], "--image: needed to deploy"),
        (["--image", IMAGE, "--role", ROLE], "--s3-output: needed to deploy"),
        (["--delete", NAME, "--image", IMAGE], "--image: applies to deploying only"),
        (["--delete", "fold_async"], "--delete: "),
        (["--delete", NAME, "--region", "the-moon"], "--region: 'the-moon' is not an AWS region"),
    ],
)
def test_a_missing_or_misplaced_flag_is_one_line(
    aws: str, tmp_path: Path, args: list[str], where: str
) -> None:
    assert_one_line_error(sagemaker(aws, tmp_path, *args), f"error: {where}")


def test_delete_needs_a_region_when_none_is_configured(aws: str, tmp_path: Path) -> None:
    result = sagemaker(aws, tmp_path, "--delete", NAME, AWS_REGION=None, AWS_DEFAULT_REGION=None)
    assert_one_line_error(result, "error: --region: no AWS region given or configured")

"""``foldserve pipeline export sagemaker``: the definition's steps, parameters and data flow
(its command lines parsed by the real CLI, so they cannot drift from it), built offline;
``--upsert`` and ``--start`` against a moto server on loopback."""

from __future__ import annotations

import json
import shlex
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import typer
from typer.core import TyperGroup

from foldserve.cli import app
from foldserve.cli.options import predict_options
from foldserve.cloud.sagemaker.pipeline_schema import PipelineDefinition
from tests.aws import aws_env, moto_server
from tests.cli_runner import Ran, foldserve

pytestmark = pytest.mark.timeout(60)

ROLE = "arn:aws:iam::123456789012:role/FoldingPipeline"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/foldserve:1.0"
#: What one execution is given for the parameters without a default.
GIVEN = {
    "InputS3Uri": "s3://inputs/T1030.fasta",
    "InputFileName": "T1030.fasta",
    "OutputS3Uri": "s3://results/runs",
    "WeightsS3Uri": "s3://weights/foldserve",
    "TemplatesS3Uri": "s3://templates/mmcif",
    "MaxTemplateDate": "2020-05-14",
}
#: What ``--start`` must be given (with --image and --role) for the default workflow.
START = [
    "--param",
    "InputS3Uri=s3://inputs/T1030.fasta",
    "--param",
    "OutputS3Uri=s3://results/runs",
]
START += ["--param", "WeightsS3Uri=s3://weights/foldserve"]
EXECUTION_ID = "exec0123"
MSA_STEPS = {"fasta": "SearchMSA", "msa": "CheckMSA"}
PREDICT_STEPS = {"alphafold2": "PredictAlphaFold2", "openfold3": "PredictOpenFold3"}
Step = dict[str, Any]


def export(tmp_path: Path, *flags: str, env: dict[str, str | None] | None = None) -> Ran:
    return foldserve(
        "pipeline", "export", "sagemaker", "--out", str(tmp_path / "pipeline.json"), *flags, env=env
    )


def definition(tmp_path: Path, *flags: str) -> dict[str, Any]:
    ran = export(tmp_path, *flags)
    assert ran.exit_code == 0, ran.stderr
    loaded: dict[str, Any] = json.loads((tmp_path / "pipeline.json").read_text())
    return loaded


def resolve(value: Any, parameters: dict[str, Any]) -> str:
    """``value`` as the service resolves it in one execution whose steps all write into
    ``OutputS3Uri/EXECUTION_ID``."""
    if isinstance(value, str):
        return value
    if "Get" in value:
        source, _, name = value["Get"].partition(".")
        if source == "Parameters":
            return str(parameters[name])
        if source == "Execution":
            assert name == "PipelineExecutionId"
            return EXECUTION_ID
        assert source == "Steps" and name.endswith(".S3Output.S3Uri"), value
        return f"{GIVEN['OutputS3Uri']}/{EXECUTION_ID}"
    join = value["Std:Join"]
    return str(join["On"]).join(resolve(item, parameters) for item in join["Values"])


def values_of(pipeline: dict[str, Any]) -> dict[str, Any]:
    """Every parameter's value in an execution given GIVEN."""
    return {p["Name"]: GIVEN.get(p["Name"], p.get("DefaultValue")) for p in pipeline["Parameters"]}


def commands(step: Step, parameters: dict[str, Any]) -> list[tuple[list[str], str | None]]:
    """The foldserve command lines a step's container runs, each with the file its standard
    output goes to: ``foldserve ARGS``, or a ``sh -c`` script of ``foldserve ARGS [> FILE]``
    joined by ``&&``."""
    app_spec = step["Arguments"]["AppSpecification"]
    words = [resolve(arg, parameters) for arg in app_spec["ContainerArguments"]]
    if app_spec["ContainerEntrypoint"] == ["foldserve"]:
        return [(words, None)]
    assert app_spec["ContainerEntrypoint"] == ["sh", "-c"] and len(words) == 1
    found: list[tuple[list[str], str | None]] = []
    for line in " ".join(shlex.split(words[0])).split(" && "):
        program, *args = line.split(" ")
        assert program == "foldserve", line
        stdout = None
        if ">" in args:
            args, (_, stdout) = args[: args.index(">")], args[args.index(">") :]
        found.append((args, stdout))
    return found


def parse(args: list[str]) -> tuple[str, dict[str, Any]]:
    """The command ``foldserve ARGS`` runs and its parameters, as the real CLI parses them
    (a usage error is raised)."""
    command: Any = typer.main.get_command(app)
    words, path = list(args), []
    while isinstance(command, TyperGroup):
        path.append(words.pop(0))
        command = command.get_command(typer.Context(command), path[-1])
        assert command is not None, path
    context = command.make_context(" ".join(["foldserve", *path]), words)
    return " ".join(path), context.params


def steps_read(value: Any) -> set[str]:
    """The steps whose properties ``value`` reads."""
    text = json.dumps(value)
    return {part.split(".")[1] for part in text.split('"Get": "')[1:] if part.startswith("Steps.")}


def check_workflow(pipeline: dict[str, Any]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """What every definition must be: a parameter for each value a step reads and none more,
    command lines the CLI accepts (a prediction's options, for its engine), and each step
    reading, through an earlier step's property, a file that step's commands wrote. Returns
    each step's parsed commands."""
    parameters = values_of(pipeline)
    declared = {p["Name"] for p in pipeline["Parameters"]}
    read = {
        part.split('"')[0]
        for part in json.dumps(pipeline["Steps"]).split('"Get": "Parameters.')[1:]
    }
    assert read == declared
    steps = {step["Name"]: step for step in pipeline["Steps"]}
    parsed: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    written: dict[str, set[str]] = {}
    for name, step in steps.items():
        assert step["Type"] == "Processing"
        ran = commands(step, parameters)
        parsed[name] = [parse(args) for args, _ in ran]
        for command, options in parsed[name]:
            if command == "predict":
                predict_options(  # what `foldserve predict` checks first, for its engine
                    options["models"],
                    options["num_recycles"],
                    options["recycle_early_stop_tolerance"],
                    options["seed"],
                    options["num_seeds"],
                    options["rank_by"],
                    model_type=options["model_type"],
                    num_predictions_per_model=options["num_predictions_per_model"],
                    templates=bool(options["templates"]),
                    engine=options["engine"],
                )
        words = {word for args, stdout in ran for word in [*args, stdout] if word}
        for item in step["Arguments"]["ProcessingInputs"]:
            uri, local = item["S3Input"]["S3Uri"], item["S3Input"]["LocalPath"]
            if not steps_read(uri):
                continue  # the user's: a parameter
            (upstream,) = steps_read(uri)
            assert list(steps).index(upstream) < list(steps).index(name)
            (output,) = steps[upstream]["Arguments"]["ProcessingOutputConfig"]["Outputs"]
            prefix = resolve(output["S3Output"]["S3Uri"], parameters) + "/"
            relative = resolve(uri, parameters).removeprefix(prefix)
            assert f"{output['S3Output']['LocalPath']}/{relative.rstrip('/')}" in written[upstream]
            # A file lands in LocalPath under its name; a folder's contents in LocalPath.
            where = local if relative.endswith("/") else f"{local}/{relative}"
            assert any(word == where or word.startswith(where + "/") for word in words), where
        written[name] = words
    return parsed


def by_command(parsed: list[tuple[str, dict[str, Any]]], command: str) -> list[dict[str, Any]]:
    return [options for name, options in parsed if name == command]


def test_the_workflow_searches_predicts_with_both_engines_and_compares(tmp_path: Path) -> None:
    pipeline = definition(tmp_path, "--image", IMAGE, "--role", ROLE)
    assert pipeline["Version"] == "2020-12-01"
    text = (tmp_path / "pipeline.json").read_text()
    assert PipelineDefinition.model_validate_json(text).to_json() == text  # typed round trip
    parameters = {p["Name"]: p for p in pipeline["Parameters"]}
    assert set(parameters) == {
        *("InputS3Uri", "InputFileName", "OutputS3Uri", "WeightsS3Uri", "MsaServer"),
        *("ModelPreset", "Models", "NumPredictionsPerModel", "MsaInstanceType"),
        *("InferenceInstanceType", "ImageUri", "RoleArn"),
    }
    assert parameters["NumPredictionsPerModel"] == {
        "Name": "NumPredictionsPerModel",
        "Type": "Integer",
        "DefaultValue": 1,
    }
    assert parameters["ImageUri"]["DefaultValue"] == IMAGE
    assert parameters["RoleArn"]["DefaultValue"] == ROLE
    assert "DefaultValue" not in parameters["InputS3Uri"]
    steps = {step["Name"]: step for step in pipeline["Steps"]}
    assert list(steps) == ["SearchMSA", "PredictAlphaFold2", "PredictOpenFold3", "CompareAndReport"]
    assert {name: steps_read(step) for name, step in steps.items()} == {
        "SearchMSA": set(),
        "PredictAlphaFold2": {"SearchMSA"},
        "PredictOpenFold3": {"SearchMSA"},
        "CompareAndReport": {"PredictAlphaFold2", "PredictOpenFold3"},
    }
    instance = {
        name: step["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceType"]["Get"]
        for name, step in steps.items()
    }
    assert instance == {
        "SearchMSA": "Parameters.MsaInstanceType",
        "PredictAlphaFold2": "Parameters.InferenceInstanceType",
        "PredictOpenFold3": "Parameters.InferenceInstanceType",
        "CompareAndReport": "Parameters.MsaInstanceType",
    }
    parsed = check_workflow(pipeline)
    (search,) = by_command(parsed["SearchMSA"], "msa search")
    assert str(search["sequence"]) == "/opt/ml/processing/input/query/T1030.fasta"
    assert search["server"] == parameters["MsaServer"]["DefaultValue"]
    (alphafold2,) = by_command(parsed["PredictAlphaFold2"], "predict")
    assert alphafold2["engine"] == "alphafold2" and alphafold2["models"] == "1,2,3,4,5"
    assert alphafold2["model_type"] == "auto" and alphafold2["num_predictions_per_model"] == 1
    assert str(alphafold2["params_dir"]) == "/opt/ml/processing/input/weights"
    assert not alphafold2["templates"] and alphafold2["max_template_date"] is None
    (openfold3,) = by_command(parsed["PredictOpenFold3"], "predict")
    assert openfold3["engine"] == "openfold3" and openfold3["num_predictions_per_model"] == 1
    (compare,) = by_command(parsed["CompareAndReport"], "compare")
    assert [p.name for p in compare["paths"]] == ["ranked_0.pdb", "ranked_0.pdb"]
    assert len(by_command(parsed["CompareAndReport"], "report")) == 2


def test_templates_go_to_alphafold2_up_to_the_max_template_date(tmp_path: Path) -> None:
    pipeline = definition(tmp_path, "--templates")
    parameters = {p["Name"] for p in pipeline["Parameters"]}
    assert {"TemplatesS3Uri", "MaxTemplateDate"} <= parameters
    parsed = check_workflow(pipeline)
    (alphafold2,) = by_command(parsed["PredictAlphaFold2"], "predict")
    assert [str(path) for path in alphafold2["templates"]] == ["/opt/ml/processing/input/templates"]
    assert alphafold2["max_template_date"] == GIVEN["MaxTemplateDate"]
    (openfold3,) = by_command(parsed["PredictOpenFold3"], "predict")
    assert not openfold3["templates"] and openfold3["max_template_date"] is None


def test_a_given_msa_is_checked_and_one_engine_compares_its_own_models(tmp_path: Path) -> None:
    pipeline = definition(tmp_path, "--engines", "openfold3", "--input-kind", "msa")
    assert [step["Name"] for step in pipeline["Steps"]] == [
        "CheckMSA",
        "PredictOpenFold3",
        "CompareAndReport",
    ]
    parameters = {p["Name"] for p in pipeline["Parameters"]}
    assert not parameters & {"MsaServer", "Models", "ModelPreset", "MaxTemplateDate"}
    parsed = check_workflow(pipeline)
    (check,) = by_command(parsed["CheckMSA"], "msa convert")
    assert check["destination"] == "/opt/ml/processing/output/msa.a3m" and check["to"] == "a3m"
    (compare,) = by_command(parsed["CompareAndReport"], "compare")
    assert [str(p) for p in compare["paths"]] == ["/opt/ml/processing/input/prediction-openfold3"]


def test_the_definition_builds_with_no_aws_and_no_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("export tried to connect")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    no_aws = dict.fromkeys(
        ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION"]
    )
    ran = export(tmp_path, env={**no_aws, "AWS_CONFIG_FILE": str(tmp_path / "none")})
    assert ran.exit_code == 0, ran.stderr
    assert "SearchMSA, PredictAlphaFold2, PredictOpenFold3, CompareAndReport" in ran.stderr


def test_help_of_the_export_command() -> None:
    ran = foldserve("pipeline", "export", "sagemaker", "--help")
    assert ran.exit_code == 0, ran.stderr
    for flag in ("--out", "--role", "--image", "--upsert", "--start", "--param", "--region"):
        assert flag in ran.stdout


@pytest.mark.parametrize(
    ("flags", "where"),
    [
        (["--role", "admin"], "--role"),
        (["--name", "folding_2"], "--name"),
        (["--engines", "alphafold3"], "--engines"),
        (["--input-kind", "pdb"], "--input-kind"),
        (["--upsert"], "--upsert"),
        (["--param", "Models=1"], "--param"),
        (["--start", "--param", "Models"], "--param"),
        (["--start", "--param", "Nope=1"], "--param"),
        (["--start", "--param", "Models=1", "--param", "Models=2"], "--param"),
        (["--start", "--param", "NumPredictionsPerModel=two"], "--param"),
        (["--start", "--param", "InputS3Uri=/data/T1030.fasta"], "--param"),
        (["--start", "--param", "InputS3Uri=s3://in/T1030.fasta"], "--param"),  # no others
    ],
)
def test_bad_flags_are_one_line_and_write_nothing(
    tmp_path: Path, flags: list[str], where: str
) -> None:
    ran = export(tmp_path, *flags)
    assert ran.exit_code == 2, ran.stderr
    assert ran.stderr.startswith(f"error: {where}: ") and ran.stderr.count("\n") == 1, ran.stderr
    assert not (tmp_path / "pipeline.json").exists()


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


def sagemaker(endpoint: str) -> Any:
    return boto3.session.Session().client(
        "sagemaker",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_upsert_creates_the_pipeline_then_updates_it(moto: str, tmp_path: Path) -> None:
    env = aws_env(moto, tmp_path)
    first = export(tmp_path, "--name", "folding-upsert", "--role", ROLE, "--upsert", env=env)
    assert first.exit_code == 0, first.stderr
    assert "created pipeline arn:aws:sagemaker:us-east-1:" in first.stderr
    described = sagemaker(moto).describe_pipeline(PipelineName="folding-upsert")
    written = json.loads((tmp_path / "pipeline.json").read_text())
    assert json.loads(described["PipelineDefinition"]) == written
    assert described["RoleArn"] == ROLE

    again = export(
        tmp_path, "--name", "folding-upsert", "--role", ROLE, "--image", IMAGE, "--upsert", env=env
    )
    assert again.exit_code == 0, again.stderr
    assert "updated pipeline" in again.stderr
    described = sagemaker(moto).describe_pipeline(PipelineName="folding-upsert")
    parameters = json.loads(described["PipelineDefinition"])["Parameters"]
    assert {"Name": "ImageUri", "Type": "String", "DefaultValue": IMAGE} in parameters


def test_start_runs_an_execution_with_the_parameters(moto: str, tmp_path: Path) -> None:
    ran = export(
        tmp_path,
        *("--name", "folding-start", "--role", ROLE, "--image", IMAGE, "--upsert", "--start"),
        *(*START, "--param", "NumPredictionsPerModel=2"),
        env=aws_env(moto, tmp_path),
    )
    assert ran.exit_code == 0, ran.stderr
    arn = ran.stdout.strip()
    client = sagemaker(moto)
    summaries = client.list_pipeline_executions(PipelineName="folding-start")
    assert [s["PipelineExecutionArn"] for s in summaries["PipelineExecutionSummaries"]] == [arn]
    sent = client.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)
    assert {p["Name"]: p["Value"] for p in sent["PipelineParameters"]} == {
        "InputS3Uri": "s3://inputs/T1030.fasta",
        "OutputS3Uri": "s3://results/runs",
        "WeightsS3Uri": "s3://weights/foldserve",
        "InputFileName": "T1030.fasta",  # taken from InputS3Uri
        "NumPredictionsPerModel": "2",
    }


def failure(ran: Ran) -> str:
    """The one line a failed command printed after its report of what it wrote."""
    assert ran.exit_code == 2 and "Traceback" not in ran.stderr, ran.stderr
    (line,) = [line for line in ran.stderr.splitlines() if line.startswith("error:")]
    assert ran.stderr.endswith(line + "\n")
    return line


def test_aws_failures_are_one_line(moto: str, tmp_path: Path) -> None:
    start = ("--name", "never-created", "--role", ROLE, "--image", IMAGE, "--start", *START)
    refused = export(tmp_path, *start, env=aws_env(moto, tmp_path))
    assert failure(refused).startswith(
        "error: AWS refused pipeline never-created (ValidationException: "
    )

    no_credentials = {
        **aws_env(moto, tmp_path),
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
    }
    ran = export(tmp_path, "--role", ROLE, "--upsert", env=no_credentials)
    assert failure(ran).startswith(
        "error: pipeline foldserve-folding: no usable AWS credentials found"
    )

    no_region = {**aws_env(moto, tmp_path), "AWS_REGION": None, "AWS_DEFAULT_REGION": None}
    ran = export(tmp_path, "--role", ROLE, "--upsert", env=no_region)
    assert failure(ran).endswith("no AWS region given. Fix: give --region, or set AWS_REGION")

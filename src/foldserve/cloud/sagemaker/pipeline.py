"""The folding workflow as a SageMaker Pipeline: the definition ``foldserve pipeline export
sagemaker`` writes, and the parameters an execution starts with.

Every step is a Processing job on the foldserve image whose container runs real ``foldserve``
command lines, so the steps do what ``foldserve pipeline run`` does on one machine::

    SearchMSA (CPU)       foldserve msa search --sequence QUERY --server …   → msa.a3m
      or CheckMSA (CPU)   foldserve msa convert MSA msa.a3m --to a3m         → msa.a3m
    PredictAlphaFold2 (GPU), PredictOpenFold3 (GPU), side by side
                          foldserve predict msa.a3m prediction-ENGINE --engine ENGINE …
    CompareAndReport (CPU)
                          foldserve compare … --json > comparison.json
                          foldserve report prediction-ENGINE --output report-ENGINE.html

Data passes through S3: each execution's steps all write into one folder,
``OutputS3Uri/EXECUTION_ID/``, laid out as ``pipeline run --out DIR`` lays out ``DIR``, and a
step reads what it needs from there through the earlier step's output property, which is also
what makes it wait for that step.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Literal

from foldserve.cloud.sagemaker.pipeline_schema import (
    EXECUTION_ID,
    AppSpecification,
    ClusterConfig,
    Parameter,
    PipelineDefinition,
    ProcessingInput,
    ProcessingJobArguments,
    ProcessingOutput,
    ProcessingOutputConfig,
    ProcessingResources,
    ProcessingStep,
    S3Input,
    S3Output,
    StoppingCondition,
    Value,
    join,
    referenced_parameters,
)
from foldserve.cloud.sagemaker.settings import role_arn
from foldserve.errors import InputError
from foldserve.fold.engine import ENGINE_TITLES
from foldserve.fold.results import ENGINE_NAMES, EngineName
from foldserve.msa.search.settings import DEFAULT_SERVER

DEFAULT_NAME = "foldserve-folding"
InputKind = Literal["fasta", "msa"]
INPUT_KINDS: tuple[InputKind, ...] = ("fasta", "msa")

# -- parameters: what each execution may change ---------------------------------------------------
INPUT_S3_URI = Parameter(name="InputS3Uri", type="String")
INPUT_FILE_NAME = Parameter(name="InputFileName", type="String")
OUTPUT_S3_URI = Parameter(name="OutputS3Uri", type="String")
WEIGHTS_S3_URI = Parameter(name="WeightsS3Uri", type="String")
TEMPLATES_S3_URI = Parameter(name="TemplatesS3Uri", type="String")
MAX_TEMPLATE_DATE = Parameter(name="MaxTemplateDate", type="String")
MSA_SERVER = Parameter(name="MsaServer", type="String", default_value=DEFAULT_SERVER)
MODEL_PRESET = Parameter(name="ModelPreset", type="String", default_value="auto")
MODELS = Parameter(name="Models", type="String", default_value="1,2,3,4,5")
PREDICTIONS_PER_MODEL = Parameter(name="NumPredictionsPerModel", type="Integer", default_value=1)
MSA_INSTANCE_TYPE = Parameter(name="MsaInstanceType", type="String", default_value="ml.m5.4xlarge")
INFERENCE_INSTANCE_TYPE = Parameter(
    name="InferenceInstanceType", type="String", default_value="ml.g5.4xlarge"
)
IMAGE_NAME, ROLE_NAME = "ImageUri", "RoleArn"  # their defaults are export's flags
_PARAMETERS = (
    INPUT_S3_URI,
    INPUT_FILE_NAME,
    OUTPUT_S3_URI,
    WEIGHTS_S3_URI,
    TEMPLATES_S3_URI,
    MAX_TEMPLATE_DATE,
    MSA_SERVER,
    MODEL_PRESET,
    MODELS,
    PREDICTIONS_PER_MODEL,
    MSA_INSTANCE_TYPE,
    INFERENCE_INSTANCE_TYPE,
)

#: What each parameter is, for ``--help`` and the README; the order the definition lists them.
PARAMETER_HELP = {
    INPUT_S3_URI.name: "S3 URI of the query FASTA (or, with --input-kind msa, of the MSA)",
    INPUT_FILE_NAME.name: "the last part of InputS3Uri (--start fills it in)",
    OUTPUT_S3_URI.name: "S3 folder; each execution writes OutputS3Uri/EXECUTION_ID/",
    WEIGHTS_S3_URI.name: "S3 folder laid out as PARAM_DIR (params/, openfold3/)",
    TEMPLATES_S3_URI.name: "S3 folder of template mmCIF files (with --templates)",
    MAX_TEMPLATE_DATE.name: "drop templates released after it, YYYY-MM-DD (with --templates)",
    MSA_SERVER.name: "ColabFold MMseqs2 server the MSA is searched on",
    MODEL_PRESET.name: "AlphaFold2 model type: auto, monomer_ptm or multimer",
    MODELS.name: "AlphaFold2 models to run",
    PREDICTIONS_PER_MODEL.name: "predictions (seeds) per model",
    MSA_INSTANCE_TYPE.name: "instance type of the CPU steps (MSA, compare and report)",
    INFERENCE_INSTANCE_TYPE.name: "instance type of the prediction steps (a GPU)",
    IMAGE_NAME: "the foldserve image in ECR (default: --image)",
    ROLE_NAME: "IAM role the steps' jobs run as (default: --role)",
}

# -- where things are in the container and in S3 --------------------------------------------------
PROCESSING = "/opt/ml/processing"
OUTPUT_DIR = f"{PROCESSING}/output"
RUN_OUTPUT = "run"
MSA_FILE = "msa.a3m"
COMPARISON_FILE = "comparison.json"
CPU_VOLUME_GB, GPU_VOLUME_GB = 30, 100
MAX_RUNTIME_S = 24 * 3600
#: The image's entrypoint starts a worker or a server; a step replaces it to run the CLI.
FOLDSERVE = ("foldserve",)
SHELL = ("sh", "-c")
PIPELINE_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}")


@dataclass(frozen=True)
class Workflow:
    """What ``export`` shapes: the engines that predict, whether the input is a FASTA to search
    or an MSA to check, whether AlphaFold2 reads templates, and the defaults of the image and
    role parameters (without them, each execution must give them)."""

    engines: tuple[EngineName, ...] = ENGINE_NAMES
    input_kind: InputKind = "fasta"
    templates: bool = False
    image: str | None = None
    role: str | None = None

    def __post_init__(self) -> None:
        if self.input_kind not in INPUT_KINDS:
            raise InputError(
                f"unknown input kind {self.input_kind!r}",
                where="input_kind",
                fix="give fasta (search the MSA) or msa (check the MSA given)",
            )
        if self.role is not None:
            role_arn(self.role)


def check_name(name: str) -> None:
    """Refuse a name SageMaker would refuse, before anything is written."""
    if not PIPELINE_NAME.fullmatch(name):
        raise InputError(
            f"{name!r} is not a SageMaker pipeline name",
            where="name",
            fix="use letters, digits and single hyphens, starting with a letter or digit",
        )


#: S3 URIs (expressions) of a step's inputs, by the folder each fills.
Inputs = dict[str, Value]


@dataclass(frozen=True)
class Command:
    """One ``foldserve`` command line of a step; ``stdout`` is a file for what it prints."""

    args: tuple[Value, ...]
    stdout: str | None = None


def input_dir(name: str) -> str:
    return f"{PROCESSING}/input/{name}"


def prediction_dir(engine: EngineName) -> str:
    """``prediction-ENGINE``, the folder ``pipeline run`` gives each engine of several."""
    return f"prediction-{engine}"


def build_definition(workflow: Workflow) -> PipelineDefinition:
    """The pipeline definition of ``workflow``; it declares exactly the parameters its steps
    read, in the order of :data:`PARAMETER_HELP`."""
    image = Parameter(name=IMAGE_NAME, type="String", default_value=workflow.image)
    role = Parameter(name=ROLE_NAME, type="String", default_value=workflow.role)

    def step(name: str, commands: tuple[Command, ...], inputs: Inputs, gpu: bool) -> ProcessingStep:
        """A Processing job running ``commands``, with each of ``inputs`` (S3 → a folder under
        ``/opt/ml/processing/input``); what they write under ``OUTPUT_DIR`` goes to the
        execution's folder in S3."""
        entrypoint, arguments = _container(commands)
        return ProcessingStep(
            name=name,
            arguments=ProcessingJobArguments(
                processing_resources=ProcessingResources(
                    cluster_config=ClusterConfig(
                        instance_type=(INFERENCE_INSTANCE_TYPE if gpu else MSA_INSTANCE_TYPE).ref,
                        volume_size_in_gb=GPU_VOLUME_GB if gpu else CPU_VOLUME_GB,
                    )
                ),
                app_specification=AppSpecification(
                    image_uri=image.ref,
                    container_entrypoint=entrypoint,
                    container_arguments=arguments,
                ),
                role_arn=role.ref,
                processing_inputs=tuple(
                    ProcessingInput(
                        input_name=folder,
                        s3_input=S3Input(s3_uri=uri, local_path=input_dir(folder)),
                    )
                    for folder, uri in inputs.items()
                ),
                processing_output_config=ProcessingOutputConfig(
                    outputs=(
                        ProcessingOutput(
                            output_name=RUN_OUTPUT,
                            s3_output=S3Output(
                                s3_uri=join(OUTPUT_S3_URI.ref, EXECUTION_ID), local_path=OUTPUT_DIR
                            ),
                        ),
                    )
                ),
                stopping_condition=StoppingCondition(max_runtime_in_seconds=MAX_RUNTIME_S),
            ),
        )

    msa = step(*_msa_step(workflow.input_kind), gpu=False)
    msa_file = join(msa.output_uri(RUN_OUTPUT), MSA_FILE)
    predictions = {
        engine: step(
            f"Predict{ENGINE_TITLES[engine]}",
            *_predict_step(engine, msa_file, workflow.templates),
            gpu=True,
        )
        for engine in workflow.engines
    }
    report = step(
        "CompareAndReport",
        _report_commands(workflow.engines),
        {
            prediction_dir(engine): join(
                predict.output_uri(RUN_OUTPUT), prediction_dir(engine) + "/"
            )
            for engine, predict in predictions.items()
        },
        gpu=False,
    )
    steps = (msa, *predictions.values(), report)
    used = referenced_parameters(steps)
    parameters = {p.name: p for p in (*_PARAMETERS, image, role)}
    return PipelineDefinition(
        parameters=tuple(parameters[name] for name in PARAMETER_HELP if name in used),
        steps=steps,
    )


def _msa_step(kind: InputKind) -> tuple[str, tuple[Command, ...], Inputs]:
    """Search the query's MSA on the MMseqs2 server, or read and check the MSA given; either
    way the MSA the engines read is ``msa.a3m``."""
    query = join(input_dir("query"), INPUT_FILE_NAME.ref)
    target = f"{OUTPUT_DIR}/{MSA_FILE}"
    inputs: Inputs = {"query": INPUT_S3_URI.ref}
    if kind == "fasta":
        search = (
            "msa",
            "search",
            "--sequence",
            query,
            "--server",
            MSA_SERVER.ref,
            "--output",
            target,
        )
        return "SearchMSA", (Command(search),), inputs
    return "CheckMSA", (Command(("msa", "convert", query, target, "--to", "a3m")),), inputs


def _predict_step(
    engine: EngineName, msa_file: Value, templates: bool
) -> tuple[tuple[Command, ...], Inputs]:
    """Predict with ``engine`` from the MSA step's ``msa.a3m``, weights from WeightsS3Uri."""
    args: list[Value] = [
        "predict",
        f"{input_dir('msa')}/{MSA_FILE}",
        f"{OUTPUT_DIR}/{prediction_dir(engine)}",
        "--engine",
        engine,
        "--params-dir",
        input_dir("weights"),
        "--num-predictions-per-model",
        PREDICTIONS_PER_MODEL.text(),
    ]
    inputs: Inputs = {"msa": msa_file, "weights": WEIGHTS_S3_URI.ref}
    if engine == "alphafold2":  # AlphaFold2's own options: predict refuses them for OpenFold3
        args += ["--models", MODELS.ref, "--model-type", MODEL_PRESET.ref]
        if templates:
            args += ["--templates", input_dir("templates")]
            args += ["--max-template-date", MAX_TEMPLATE_DATE.ref]
            inputs["templates"] = TEMPLATES_S3_URI.ref
    return (Command(tuple(args)),), inputs


def _report_commands(engines: tuple[EngineName, ...]) -> tuple[Command, ...]:
    """Compare the engines' best models (one engine: its ranked models with each other) into
    ``comparison.json``, and write each engine's report."""
    folders = [input_dir(prediction_dir(engine)) for engine in engines]
    compared = folders if len(engines) == 1 else [f"{folder}/ranked_0.pdb" for folder in folders]
    compare = Command(("compare", *compared, "--json"), stdout=f"{OUTPUT_DIR}/{COMPARISON_FILE}")
    reports = (
        Command(("report", folder, "--output", f"{OUTPUT_DIR}/report-{engine}.html"))
        for engine, folder in zip(engines, folders, strict=True)
    )
    return (compare, *reports)


def _container(commands: tuple[Command, ...]) -> tuple[tuple[str, ...], tuple[Value, ...]]:
    """The entrypoint and arguments that run ``commands``: ``foldserve ARGS`` for one command,
    else one ``sh -c`` script of them (whose arguments must then be fixed strings)."""
    if len(commands) == 1 and commands[0].stdout is None:
        return FOLDSERVE, commands[0].args
    lines = []
    for command in commands:
        words = [arg for arg in command.args if isinstance(arg, str)]
        assert len(words) == len(command.args), "a script runs fixed command lines"
        line = shlex.join((*FOLDSERVE, *words))
        lines.append(line if command.stdout is None else f"{line} > {shlex.quote(command.stdout)}")
    return SHELL, (" && ".join(lines),)


def execution_parameters(definition: PipelineDefinition, given: dict[str, str]) -> dict[str, str]:
    """The parameters to start an execution of ``definition`` with: ``given``, checked
    (declared names, integers, ``s3://`` URIs), with InputFileName taken from InputS3Uri when
    not given; every parameter without a default must have a value."""
    declared = {parameter.name: parameter for parameter in definition.parameters}
    for name, value in given.items():
        parameter = declared.get(name)
        if parameter is None:
            raise InputError(
                f"the pipeline has no parameter {name}",
                where="--param",
                fix=f"use one of {', '.join(declared)}",
            )
        if parameter.type == "Integer" and not re.fullmatch(r"-?[0-9]+", value):
            raise InputError(
                f"{name}={value!r} is not an integer", where="--param", fix="give a whole number"
            )
        if name.endswith("S3Uri") and not value.startswith("s3://"):
            raise InputError(
                f"{name}={value!r} is not an S3 URI", where="--param", fix="give s3://BUCKET/KEY"
            )
    values = dict(given)
    if INPUT_S3_URI.name in values:
        values.setdefault(
            INPUT_FILE_NAME.name, values[INPUT_S3_URI.name].rstrip("/").rpartition("/")[2]
        )
    missing = [
        p.name for p in definition.parameters if p.default_value is None and p.name not in values
    ]
    if missing:
        raise InputError(
            f"no value for {', '.join(missing)}",
            where="--param",
            fix="give each as --param NAME=VALUE",
        )
    return values

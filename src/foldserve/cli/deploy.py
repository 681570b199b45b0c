"""``foldserve deploy``: a RunPod serverless endpoint, the YAML of a Ray cluster, or an Amazon
SageMaker asynchronous endpoint.

``deploy runpod`` creates the endpoint (:mod:`foldserve.cloud.runpod.deploy`); the API key
comes from ``RUNPOD_API_KEY`` or the configuration file, never from a flag, and is never
printed. ``deploy ray`` only renders (:mod:`foldserve.cloud.ray.deploy`): a file for ``ray up``
or a manifest for ``kubectl apply``, which the user applies; it contacts nothing.
``deploy sagemaker`` creates the endpoint and its scale-to-zero autoscaling, or removes them
(:mod:`foldserve.cloud.sagemaker.deploy`), with boto3's own credentials.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar, cast

import typer

from foldserve.cli.console import err, out
from foldserve.cli.options import as_flag_error
from foldserve.cloud.runpod.deploy import (
    DEFAULT_DATACENTER,
    DEFAULT_EXECUTION_TIMEOUT,
    DEFAULT_GPU,
    DEFAULT_VOLUME_GB,
    DeployOptions,
    RunpodRest,
    api_key,
    deploy,
    dry_run,
    rest_url,
)
from foldserve.cloud.sagemaker.deploy import (
    Aws,
    Deployment,
    delete_command,
    deploy_requests,
    show,
    teardown,
    teardown_requests,
)
from foldserve.cloud.sagemaker.deploy import deploy as deploy_sagemaker
from foldserve.cloud.sagemaker.settings import (
    DEFAULT_INSTANCE_TYPE,
    DEFAULT_MAX_INSTANCES,
    DEFAULT_NAME,
    FAILURE_FOLDER,
    MODEL_DIR,
    SagemakerSettings,
)
from foldserve.config import aws_region, missing_key_fix, sagemaker_name
from foldserve.errors import InputError
from foldserve.files import write_text
from foldserve.fold.engine import parse_engine_names

if TYPE_CHECKING:
    from foldserve.cloud.ray.settings import Provider

app = typer.Typer(
    help="Deploy foldserve: a RunPod serverless endpoint, the YAML of a Ray cluster, or a "
    "SageMaker asynchronous endpoint.",
    no_args_is_help=True,
)


def _parse_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name.isidentifier():
            raise InputError(
                f"{pair.split('=')[0]!r} is not NAME=VALUE",
                where="--env",
                fix="give e.g. --env BUCKET_NAME=my-results (repeat --env for more)",
            )
        env[name] = value
    return env


@app.command("runpod")
def runpod_command(
    image: Annotated[
        str,
        typer.Option(help="Worker image built from docker/Dockerfile, in a registry RunPod reads."),
    ],
    gpu: Annotated[
        list[str] | None,
        typer.Option(
            "--gpu",
            help=f"GPU type, in order of preference; repeat for fallbacks ({DEFAULT_GPU}).",
        ),
    ] = None,
    volume_size: Annotated[
        int, typer.Option("--volume-size", help="Network volume for the weights, in GB.")
    ] = DEFAULT_VOLUME_GB,
    volume_id: Annotated[
        str | None,
        typer.Option(help="Use this existing network volume (weights already on it) instead."),
    ] = None,
    datacenter: Annotated[
        str, typer.Option(help="RunPod data centre of a new volume, and of the workers.")
    ] = DEFAULT_DATACENTER,
    min_workers: Annotated[int, typer.Option(help="Workers kept running (0: scale to zero).")] = 0,
    max_workers: Annotated[int, typer.Option(help="Most workers running at once.")] = 3,
    idle_timeout: Annotated[
        int, typer.Option(help="Seconds an idle worker stays warm for the next job.")
    ] = 60,
    execution_timeout: Annotated[
        int, typer.Option(help="Seconds a job may run (RunPod's own default is 600).")
    ] = DEFAULT_EXECUTION_TIMEOUT,
    name: Annotated[str, typer.Option(help="Name of the endpoint (and prefix of the rest).")] = (
        "foldserve"
    ),
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env", help="NAME=VALUE for the worker, e.g. the BUCKET_* settings; repeat."
        ),
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help="Profile in the config file whose api_key to use.")
    ] = None,
    dry: Annotated[
        bool, typer.Option("--dry-run", help="Print the API requests; send nothing.")
    ] = False,
) -> None:
    """Create a network volume, a template and a serverless endpoint on RunPod."""
    options = DeployOptions(
        image=image,
        name=name,
        gpus=tuple(gpu or [DEFAULT_GPU]),
        datacenter=datacenter,
        volume_gb=volume_size,
        volume_id=volume_id,
        min_workers=min_workers,
        max_workers=max_workers,
        idle_timeout=idle_timeout,
        execution_timeout=execution_timeout,
        env=_parse_env(env or []),
    )
    base_url = rest_url()
    stdout = out(highlight=False, soft_wrap=True)
    if dry:
        stdout.print(dry_run(options, base_url), markup=False)
        return
    key = api_key(profile)
    if not key:
        raise InputError("no RunPod API key", where="RUNPOD_API_KEY", fix=missing_key_fix("runpod"))
    with RunpodRest(base_url, key) as api, err().status("Creating the endpoint on RunPod …"):
        done = deploy(options, api)
    volume_note = "new" if done.volume_created else "existing"
    stdout.print(f"network volume  {done.volume_id}  ({volume_note}, {done.datacenter})")
    stdout.print(f"template        {done.template_id}  ({options.image})")
    stdout.print(f"endpoint        {done.endpoint_id}")
    stdout.print()
    stdout.print("The first worker downloads the AlphaFold2 weights (5.3 GB) into the volume; its")
    stdout.print("first job waits for that. Submit a prediction with:")
    stdout.print()
    stdout.print(
        f"  foldserve submit --endpoint-id {done.endpoint_id} "
        "--msa your_msa.a3m --output your_structure.pdb",
        markup=False,
    )


#: ``deploy ray`` flags that one target alone takes.
_VM_ONLY = ("provider", "region", "zone", "project", "head_type", "vm_image")
_KUBERAY_ONLY = ("namespace", "api_key_secret", "worker_memory")
#: Settings fields whose flag is not their name with dashes.
_RAY_FLAGS = {"param_dir": "--param-dir-volume"}


_T = TypeVar("_T")


def _given(value: _T | None, default: _T) -> _T:
    """A flag's value, or the settings' default when the flag was left out."""
    return default if value is None else value


@app.command("ray")
def ray_command(
    target: Annotated[
        str,
        typer.Option(
            help="vm: a cluster file for `ray up`; kuberay: a RayCluster and a Service for "
            "`kubectl apply` (KubeRay).",
        ),
    ],
    image: Annotated[
        str, typer.Option(help="The foldserve image, built with the ray extra, on every node.")
    ],
    gpu_type: Annotated[
        str | None,
        typer.Option(
            help="vm: the GPU workers' instance type (aws g5.xlarge, gcp g2-standard-8); "
            "kuberay: the nodes' nvidia.com/gpu.product label, or KEY=VALUE (default: any "
            "node with GPUs).",
            show_default=False,
        ),
    ] = None,
    gpus_per_worker: Annotated[int, typer.Option(help="GPUs of one worker machine.")] = 1,
    gpus_per_replica: Annotated[
        float,
        typer.Option(help="GPU share of one warm predictor (0.5: two on one GPU)."),
    ] = 1.0,
    max_workers: Annotated[int, typer.Option(help="Most GPU workers running at once.")] = 2,
    min_workers: Annotated[
        int, typer.Option(help="GPU workers kept running (0: scale to zero).")
    ] = 0,
    idle_timeout: Annotated[
        int, typer.Option(help="Seconds an idle GPU worker is kept before it is released.")
    ] = 300,
    engines: Annotated[
        str,
        typer.Option(help="Engines every replica holds warm: alphafold2 and/or openfold3."),
    ] = "alphafold2",
    name: Annotated[str, typer.Option(help="Name of the Ray cluster.")] = "foldserve",
    param_dir_volume: Annotated[
        str | None,
        typer.Option(
            help="vm: where a shared filesystem is mounted on every VM (/mnt/foldserve); "
            "kuberay: a ReadWriteMany PersistentVolumeClaim (foldserve-params). The weights "
            "and the compile cache live there.",
            show_default=False,
        ),
    ] = None,
    worker_cpus: Annotated[
        int | None,
        typer.Option(
            help="CPUs of a GPU worker (vm: found by Ray on aws, needed on gcp; kuberay: "
            "requested per Pod, 3).",
            show_default=False,
        ),
    ] = None,
    provider: Annotated[
        str | None, typer.Option(help="vm: aws or gcp (aws).", show_default=False)
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="vm, aws: the region (us-east-1).", show_default=False)
    ] = None,
    zone: Annotated[
        str | None, typer.Option(help="vm, gcp: the zone, e.g. us-central1-a.", show_default=False)
    ] = None,
    project: Annotated[
        str | None, typer.Option(help="vm, gcp: the project id.", show_default=False)
    ] = None,
    head_type: Annotated[
        str | None,
        typer.Option(
            help="vm: the head's instance type (aws m5.xlarge, gcp n2-standard-4).",
            show_default=False,
        ),
    ] = None,
    vm_image: Annotated[
        str | None,
        typer.Option(
            help="vm: the machines' image, an AMI id (aws; Ray's default otherwise) or a GCP "
            "image (a Deep Learning VM family).",
            show_default=False,
        ),
    ] = None,
    namespace: Annotated[
        str | None, typer.Option(help="kuberay: the namespace (default).", show_default=False)
    ] = None,
    api_key_secret: Annotated[
        str | None,
        typer.Option(
            help="kuberay: the Secret whose api-key is the endpoint's key (foldserve-api-key).",
            show_default=False,
        ),
    ] = None,
    worker_memory: Annotated[
        str | None,
        typer.Option(help="kuberay: memory of a GPU worker Pod (12Gi).", show_default=False),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--out", help="Write the YAML to this file instead of standard output."),
    ] = None,
) -> None:
    """Render the YAML that runs `foldserve serve --backend ray` on a Ray cluster.

    It only renders: nothing is sent anywhere. Apply it yourself with `ray up FILE` (vm) or
    `kubectl apply -f FILE` (kuberay). No secret is ever part of it: read its header for where
    the API key and Ray's token come from.
    """
    # PyYAML: for this command only, not for `deploy runpod`.
    from foldserve.cloud.ray.deploy import render_kuberay, render_vm_cluster
    from foldserve.cloud.ray.settings import KubeRaySettings, VmSettings

    given = {
        "provider": provider,
        "region": region,
        "zone": zone,
        "project": project,
        "head_type": head_type,
        "vm_image": vm_image,
        "namespace": namespace,
        "api_key_secret": api_key_secret,
        "worker_memory": worker_memory,
    }
    targets = {"vm": _KUBERAY_ONLY, "kuberay": _VM_ONLY}
    if target not in targets:
        raise InputError(
            f"unknown target {target!r}", where="--target", fix="use vm (ray up) or kuberay"
        )
    for field in targets[target]:
        if given[field] is not None:
            flag = f"--{field.replace('_', '-')}"
            other = "kuberay" if target == "vm" else "vm"
            raise InputError(
                f"applies to --target {other} only", where=flag, fix=f"leave {flag} out"
            )
    names = parse_engine_names(engines, where="--engines")
    # A flag left out takes the settings' own default, so no default is written twice.
    try:
        if target == "vm":
            text = render_vm_cluster(
                VmSettings(
                    image=image,
                    name=name,
                    engines=names,
                    gpus_per_worker=gpus_per_worker,
                    gpus_per_replica=gpus_per_replica,
                    min_workers=min_workers,
                    max_workers=max_workers,
                    idle_timeout=idle_timeout,
                    provider=cast("Provider", _given(provider, VmSettings.provider)),
                    region=region,
                    zone=zone,
                    project=project,
                    gpu_type=gpu_type,
                    head_type=head_type,
                    worker_cpus=worker_cpus,
                    vm_image=vm_image,
                    param_dir=_given(param_dir_volume, VmSettings.param_dir),
                )
            )
        else:
            text = render_kuberay(
                KubeRaySettings(
                    image=image,
                    name=name,
                    engines=names,
                    gpus_per_worker=gpus_per_worker,
                    gpus_per_replica=gpus_per_replica,
                    min_workers=min_workers,
                    max_workers=max_workers,
                    idle_timeout=idle_timeout,
                    namespace=_given(namespace, KubeRaySettings.namespace),
                    param_dir_volume=_given(param_dir_volume, KubeRaySettings.param_dir_volume),
                    api_key_secret=_given(api_key_secret, KubeRaySettings.api_key_secret),
                    gpu_type=gpu_type,
                    worker_cpus=_given(worker_cpus, KubeRaySettings.worker_cpus),
                    worker_memory=_given(worker_memory, KubeRaySettings.worker_memory),
                )
            )
    except InputError as error:
        raise as_flag_error(error, _RAY_FLAGS) from None
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        write_text(output, text)
    except OSError as exc:
        raise InputError(
            f"cannot write {output} ({exc.strerror or exc})",
            where="--out",
            fix="give a file in a folder you can write to",
        ) from None
    err(highlight=False, soft_wrap=True).print(f"wrote {output}", markup=False)


#: ``deploy sagemaker`` flags that only deploying takes (``--delete`` takes a name alone).
_SAGEMAKER_DEPLOY_ONLY = (
    "image",
    "role",
    "name",
    "instance_type",
    "max_instances",
    "model_data",
    "s3_output",
    "s3_failure",
    "sns_success",
    "sns_error",
    "env",
)


@app.command("sagemaker")
def sagemaker_command(
    image: Annotated[
        str | None,
        typer.Option(
            help="The foldserve image in Amazon ECR, ACCOUNT.dkr.ecr.REGION.amazonaws.com/"
            "REPOSITORY:TAG. The endpoint is made in the image's region.",
            show_default=False,
        ),
    ] = None,
    role: Annotated[
        str | None,
        typer.Option(
            help="ARN of the IAM role the endpoint runs as: it reads the image and the model "
            "data, writes the S3 paths and publishes to the SNS topics.",
            show_default=False,
        ),
    ] = None,
    s3_output: Annotated[
        str | None,
        typer.Option(help="Where results go, s3://BUCKET/PREFIX.", show_default=False),
    ] = None,
    s3_failure: Annotated[
        str | None,
        typer.Option(
            help=f"Where the errors of failed predictions go (S3_OUTPUT/{FAILURE_FOLDER}).",
            show_default=False,
        ),
    ] = None,
    model_data: Annotated[
        str | None,
        typer.Option(
            help=f"s3://BUCKET/KEY.tar.gz holding params/ (the weights), unpacked in {MODEL_DIR}.",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            help=f"Name of the endpoint, its configuration and its model ({DEFAULT_NAME}).",
            show_default=False,
        ),
    ] = None,
    instance_type: Annotated[
        str | None,
        typer.Option(
            help=f"SageMaker instance type, with a GPU ({DEFAULT_INSTANCE_TYPE}).",
            show_default=False,
        ),
    ] = None,
    max_instances: Annotated[
        int | None,
        typer.Option(
            help=f"Most instances running at once; idle, it scales to 0 ({DEFAULT_MAX_INSTANCES}).",
            show_default=False,
        ),
    ] = None,
    sns_success: Annotated[
        str | None,
        typer.Option(help="ARN of an SNS topic told of each result.", show_default=False),
    ] = None,
    sns_error: Annotated[
        str | None,
        typer.Option(help="ARN of an SNS topic told of each failure.", show_default=False),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            help="AWS region: to deploy, the image's (the default); with --delete, the "
            "configured one (AWS_REGION) by default.",
            show_default=False,
        ),
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option("--env", help="NAME=VALUE for the container; repeat."),
    ] = None,
    delete: Annotated[
        str | None,
        typer.Option(
            "--delete",
            metavar="NAME",
            help="Remove endpoint NAME and all that deploying made for it, instead.",
            show_default=False,
        ),
    ] = None,
    dry: Annotated[
        bool, typer.Option("--dry-run", help="Print the AWS requests as JSON; send nothing.")
    ] = False,
) -> None:
    """Create an asynchronous SageMaker endpoint that scales to zero, or remove one.

    Creates the model, the endpoint configuration (asynchronous: one prediction at a time per
    instance) and the endpoint, waits for it to be InService, then registers its autoscaling
    from 0 to --max-instances: a target-tracking policy on ApproximateBacklogSizePerInstance
    and a step policy with its CloudWatch alarm on HasBacklogWithoutCapacity, which starts an
    instance when a request waits and none runs. AWS credentials are boto3's own (aws
    configure, AWS_PROFILE, a role); they are never printed.
    """
    given = {
        "image": image,
        "role": role,
        "name": name,
        "instance_type": instance_type,
        "max_instances": max_instances,
        "model_data": model_data,
        "s3_output": s3_output,
        "s3_failure": s3_failure,
        "sns_success": sns_success,
        "sns_error": sns_error,
        "region": region,
        "env": _parse_env(env) if env else None,
    }
    if delete is not None:
        for field in _SAGEMAKER_DEPLOY_ONLY:
            if given[field] is not None:
                flag = f"--{field.replace('_', '-')}"
                raise InputError(
                    "applies to deploying only", where=flag, fix=f"leave {flag} out with --delete"
                )
        _sagemaker_delete(delete, region, dry)
        return
    # A flag left out takes the settings' own default, so no default is written twice.
    try:
        settings = SagemakerSettings.checked(
            **{field: value for field, value in given.items() if value is not None}
        )
    except InputError as error:
        raise as_flag_error(error, {}) from None
    stdout = out(highlight=False, soft_wrap=True)
    if dry:
        stdout.print(show(deploy_requests(settings), settings.aws_region), markup=False)
        return
    with err().status("Deploying to SageMaker …") as status:
        done = deploy_sagemaker(
            settings, Aws(settings.aws_region), lambda now: status.update(f"{now} …")
        )
    _say_deployed(done, settings)


def _sagemaker_delete(name: str, region: str | None, dry: bool) -> None:
    """``deploy sagemaker --delete NAME``: remove it all, or with ``dry`` show how."""
    sagemaker_name(name, where="--delete")
    if region is not None:
        aws_region(region, where="--region")
    aws = Aws(region)
    stdout = out(highlight=False, soft_wrap=True)
    if dry:
        stdout.print(show(teardown_requests(name), aws.region), markup=False)
        return
    with err().status(f"Removing {name} …") as status:
        done = teardown(name, aws, lambda now: status.update(f"{now} …"))
    for target in done.removed:
        stdout.print(f"removed        {target}", markup=False)
    for target in done.absent:
        stdout.print(f"already gone   {target}", markup=False)


def _say_deployed(done: Deployment, settings: SagemakerSettings) -> None:
    name = settings.name
    stdout = out(highlight=False, soft_wrap=True)
    for target in done.created:
        stdout.print(f"created  {target}", markup=False)
    stdout.print()
    stdout.print(f"Endpoint {done.endpoint_arn} is InService in {done.region}.", markup=False)
    stdout.print(
        f"Results go to {settings.s3_output}/, errors to {settings.failure_path}/.", markup=False
    )
    stdout.print("One instance runs now; idle for about 15 minutes, the endpoint scales to zero,")
    stdout.print("and the next request starts an instance again (a cold start takes minutes).")
    stdout.print("Submit a prediction with:")
    stdout.print()
    stdout.print(
        f"  foldserve submit --sagemaker-endpoint {name} --msa your_msa.a3m "
        "--output your_structure.pdb",
        markup=False,
    )
    stdout.print()
    stdout.print("Remove it all with:")
    stdout.print(f"  {delete_command(name, done.region)}", markup=False)

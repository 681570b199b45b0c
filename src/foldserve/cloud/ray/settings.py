"""The settings of ``foldserve deploy ray``: what both renderings share, and what each adds.

Each settings object checks itself on creation; an error's ``where`` is the field, which the
command line turns into its flag (``gpus_per_replica`` → ``--gpus-per-replica``).
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass
from typing import Literal, get_args

from foldserve.errors import InputError
from foldserve.fold.engine import DEFAULT_ENGINE, ENGINE_NAMES, EngineName

#: The Ray that foldserve's ``ray`` extra is built and tested with (issue 17); the image and the
#: ``ray`` that runs ``ray up`` must carry the same version.
RAY_VERSION = "2.60.0"
#: foldserve's RunPod-compatible API on the head node (``foldserve serve``'s default port).
PORT = 8000
#: Where the head keeps foldserve's job store, results and logs.
DATA_DIR = "/var/lib/foldserve"
#: Where the shared volume (weights, compile cache) is mounted in every Kubernetes container.
KUBE_PARAM_DIR = "/mnt/foldserve"
#: Where ``ray up`` copies the local secrets folder, on every VM (and into its container).
VM_SECRETS_DIR = "/opt/foldserve-secrets"
API_KEY_FILE = "api-key"
RAY_TOKEN_FILE = "ray-auth-token"
#: The key of the endpoint's API key in its Kubernetes Secret.
API_KEY_SECRET_KEY = "api-key"

Provider = Literal["aws", "gcp"]
PROVIDERS: tuple[Provider, ...] = get_args(Provider)
DEFAULT_HEAD_TYPE: dict[Provider, str] = {"aws": "m5.xlarge", "gcp": "n2-standard-4"}
#: One GPU each: an NVIDIA A10G (24 GB) on AWS, an NVIDIA L4 (24 GB) on GCP.
DEFAULT_GPU_TYPE: dict[Provider, str] = {"aws": "g5.xlarge", "gcp": "g2-standard-8"}
#: Deep Learning VM images (Docker and the NVIDIA driver installer), as Ray's GCP GPU example.
GCP_HEAD_IMAGE = "projects/deeplearning-platform-release/global/images/family/common-cpu"
GCP_GPU_IMAGE = "projects/deeplearning-platform-release/global/images/family/common-cu121"
#: The label NVIDIA's GPU feature discovery puts on GPU nodes, e.g. NVIDIA-A100-SXM4-80GB.
DEFAULT_GPU_LABEL = "nvidia.com/gpu.product"

_NAME = re.compile(r"[a-z]([-a-z0-9]{0,38}[a-z0-9])?")  # a DNS-1035 label of at most 40
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_LABEL_VALUE = re.compile(f"({_LABEL_NAME})?")
_LABEL_KEY = re.compile(rf"([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?{_LABEL_NAME}")
_QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?")
_AWS_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")
_GCP_ZONE = re.compile(r"[a-z]+-[a-z]+[0-9]+-[a-z]")
_GCP_PROJECT = re.compile(r"[a-z][-a-z0-9]{4,28}[a-z0-9]")
_INSTANCE_TYPE = re.compile(r"[a-z0-9][a-z0-9.-]*")
_AMI = re.compile(r"ami-[0-9a-f]{8,17}")
_GCP_IMAGE = re.compile(r"[a-z0-9][-a-z0-9/._]*")
_PATH = re.compile(r"/[A-Za-z0-9._/-]+")


def _check(ok: bool, field: str, problem: str, fix: str) -> None:
    if not ok:
        raise InputError(problem, where=field, fix=fix)


def _matches(pattern: re.Pattern[str], text: str | None) -> bool:
    return text is not None and pattern.fullmatch(text) is not None


@dataclass(frozen=True)
class RaySettings:
    """What both renderings share; checked on creation, ``where`` naming the field.

    A *worker* is one GPU machine (a VM or a Pod) with ``gpus_per_worker`` GPUs; a *replica* is
    one warm predictor of the Serve deployment, with ``gpus_per_replica`` of a GPU (a fraction
    shares one GPU between replicas). The cluster scales workers between ``min_workers`` and
    ``max_workers``, and Serve scales replicas to fill them.
    """

    image: str
    name: str = "foldserve"
    engines: tuple[EngineName, ...] = (DEFAULT_ENGINE,)
    gpus_per_worker: int = 1
    gpus_per_replica: float = 1.0
    min_workers: int = 0
    max_workers: int = 2
    #: Seconds a GPU worker stays idle before it is released.
    idle_timeout: int = 300

    def __post_init__(self) -> None:
        _check(
            bool(self.image) and not any(c.isspace() for c in self.image),
            "image",
            f"{self.image!r} is not an image name",
            "e.g. ghcr.io/you/foldserve:0.1.0 (built with the ray extra)",
        )
        _check(
            _matches(_NAME, self.name),
            "name",
            f"{self.name!r} is not a usable cluster name",
            "use 1 to 40 lowercase letters, digits and '-', starting with a letter",
        )
        _check(
            bool(self.engines) and set(self.engines) <= set(ENGINE_NAMES),
            "engines",
            f"{','.join(self.engines) or 'no engine'} is not a choice of engines",
            "give alphafold2 and/or openfold3",
        )
        _check(
            1 <= self.gpus_per_worker <= 16,
            "gpus_per_worker",
            f"{self.gpus_per_worker} GPUs per worker",
            "give the GPUs one worker machine has, 1 to 16",
        )
        _check(
            math.isfinite(self.gpus_per_replica) and 0.0001 <= self.gpus_per_replica <= 1,
            "gpus_per_replica",
            f"{self.gpus_per_replica:g} GPUs per replica",
            "give 1, or a fraction such as 0.5 to share one GPU between replicas (an engine "
            "runs on one GPU)",
        )
        _check(
            self.max_workers >= 1,
            "max_workers",
            f"{self.max_workers} workers",
            "give at least 1 (GPU workers still scale to zero with --min-workers 0)",
        )
        _check(
            0 <= self.min_workers <= self.max_workers,
            "min_workers",
            f"{self.min_workers} is not between 0 and --max-workers ({self.max_workers})",
            "give 0 to scale to zero, at most --max-workers",
        )
        _check(
            0 <= self.idle_timeout <= 86_400,
            "idle_timeout",
            f"{self.idle_timeout} s",
            "give the seconds an idle GPU worker is kept, 0 to 86400",
        )

    @property
    def replicas_per_worker(self) -> int:
        """Replicas one worker's GPUs hold (1e-9: 1 / (1/3) is 2.9999999999999996)."""
        return math.floor(self.gpus_per_worker / self.gpus_per_replica + 1e-9)

    def serve_command(self, param_dir: str) -> str:
        """The head's ``foldserve serve`` command line, shell-quoted.

        ``--backend``, ``--ray-address``, ``--gpus-per-replica``, ``--min-replicas`` and
        ``--max-replicas`` are the Ray backend's options (issue 17); replicas are bounded by
        what the workers hold, so Serve never asks the autoscaler for more than it may start.
        """
        per_worker = self.replicas_per_worker
        return shlex.join(
            [
                *("foldserve", "serve", "--backend", "ray", "--ray-address", "auto"),
                *("--host", "0.0.0.0", "--port", str(PORT), "--data-dir", DATA_DIR),
                *("--params-dir", param_dir, "--engines", ",".join(self.engines)),
                *("--gpus-per-replica", f"{self.gpus_per_replica:g}"),
                *("--min-replicas", str(self.min_workers * per_worker)),
                *("--max-replicas", str(self.max_workers * per_worker)),
            ]
        )


@dataclass(frozen=True)
class VmSettings(RaySettings):
    """A cluster of VMs started by ``ray up``.

    ``param_dir`` is where a shared filesystem (EFS, NFS, Filestore) is mounted on every VM; the
    containers see it at the same path, as ``PARAM_DIR``. ``secrets_dir`` is a folder on the
    machine that runs ``ray up``, copied to every node (see :data:`API_KEY_FILE`,
    :data:`RAY_TOKEN_FILE`). ``gpu_type`` and ``head_type`` are instance (machine) types;
    ``worker_cpus`` is found by Ray on AWS and must be given on GCP; ``vm_image`` is an AMI id
    (AWS; Ray's default otherwise) or a GCP image.
    """

    provider: Provider = "aws"
    region: str | None = None
    zone: str | None = None
    project: str | None = None
    gpu_type: str | None = None
    head_type: str | None = None
    worker_cpus: int | None = None
    vm_image: str | None = None
    param_dir: str = "/mnt/foldserve"
    secrets_dir: str = "~/.config/foldserve/ray-secrets"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(
            self.provider in PROVIDERS,
            "provider",
            f"unknown provider {self.provider!r}",
            f"use {' or '.join(PROVIDERS)}",
        )
        if self.provider == "aws":
            _check(
                self.region is None or _matches(_AWS_REGION, self.region),
                "region",
                f"{self.region!r} is not an AWS region",
                "e.g. us-east-1",
            )
            for field in ("zone", "project"):
                _check(
                    getattr(self, field) is None,
                    field,
                    "applies to --provider gcp only",
                    "leave it out on AWS, or give --provider gcp",
                )
            _check(
                self.vm_image is None or _matches(_AMI, self.vm_image),
                "vm_image",
                f"{self.vm_image!r} is not an AMI id",
                "e.g. ami-0123456789abcdef0: a GPU AMI with Docker and NVIDIA's container toolkit",
            )
        else:
            _check(
                self.region is None,
                "region",
                "on GCP the region follows from --zone",
                "give --zone instead, e.g. us-central1-a",
            )
            _check(
                _matches(_GCP_ZONE, self.zone),
                "zone",
                "a GCP cluster needs a zone"
                if self.zone is None
                else f"{self.zone!r} is not a GCP zone",
                "e.g. --zone us-central1-a",
            )
            _check(
                _matches(_GCP_PROJECT, self.project),
                "project",
                "a GCP cluster needs a project id"
                if self.project is None
                else f"{self.project!r} is not a GCP project id",
                "give --project with your project's id",
            )
            _check(
                self.worker_cpus is not None,
                "worker_cpus",
                "GCP does not tell Ray a machine type's CPUs",
                "give the GPU machine type's vCPUs, e.g. --worker-cpus 8 for g2-standard-8",
            )
            _check(
                self.vm_image is None or _matches(_GCP_IMAGE, self.vm_image),
                "vm_image",
                f"{self.vm_image!r} is not a GCP image",
                "e.g. projects/deeplearning-platform-release/global/images/family/common-cu121",
            )
        for field, example in (
            ("gpu_type", DEFAULT_GPU_TYPE[self.provider]),
            ("head_type", DEFAULT_HEAD_TYPE[self.provider]),
        ):
            value = getattr(self, field)
            _check(
                value is None or _matches(_INSTANCE_TYPE, value),
                field,
                f"{value!r} is not an instance type",
                f"e.g. {example}",
            )
        _check(
            self.worker_cpus is None or 1 <= self.worker_cpus <= 1024,
            "worker_cpus",
            f"{self.worker_cpus} CPUs",
            "give the GPU machine type's vCPUs, 1 to 1024",
        )
        _check(
            _matches(_PATH, self.param_dir),
            "param_dir",
            f"{self.param_dir!r} is not an absolute path",
            "give where the shared filesystem is mounted on every VM, e.g. /mnt/foldserve",
        )

    @property
    def gpu_instance_type(self) -> str:
        return self.gpu_type or DEFAULT_GPU_TYPE[self.provider]

    @property
    def head_instance_type(self) -> str:
        return self.head_type or DEFAULT_HEAD_TYPE[self.provider]


@dataclass(frozen=True)
class KubeRaySettings(RaySettings):
    """A RayCluster for the KubeRay operator.

    ``param_dir_volume`` names a ReadWriteMany PersistentVolumeClaim (EFS, Filestore, NFS)
    mounted at :data:`KUBE_PARAM_DIR` in every Pod; ``api_key_secret`` a Secret whose
    ``api-key`` holds the endpoint's key. ``gpu_type`` selects GPU nodes by a label: a value
    of :data:`DEFAULT_GPU_LABEL`, or ``KEY=VALUE`` (e.g.
    ``cloud.google.com/gke-accelerator=nvidia-l4``); without it any node with GPUs will do.
    """

    namespace: str = "default"
    param_dir_volume: str = "foldserve-params"
    api_key_secret: str = "foldserve-api-key"
    gpu_type: str | None = None
    worker_cpus: int = 3
    worker_memory: str = "12Gi"
    head_cpus: int = 2
    head_memory: str = "8Gi"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(
            _matches(_DNS_LABEL, self.namespace),
            "namespace",
            f"{self.namespace!r} is not a namespace name",
            "use lowercase letters, digits and '-'",
        )
        for field in ("param_dir_volume", "api_key_secret"):
            value = getattr(self, field)
            _check(
                _matches(_DNS_SUBDOMAIN, value),
                field,
                f"{value!r} is not a Kubernetes object name",
                "use lowercase letters, digits, '-' and '.'",
            )
        if self.gpu_type is not None:
            key, value = self.gpu_selector()
            _check(
                _matches(_LABEL_KEY, key) and bool(value) and _matches(_LABEL_VALUE, value),
                "gpu_type",
                f"{self.gpu_type!r} is not a node label value or KEY=VALUE",
                f"e.g. NVIDIA-A100-SXM4-80GB (a {DEFAULT_GPU_LABEL} value) or "
                "cloud.google.com/gke-accelerator=nvidia-l4",
            )
        for field in ("worker_cpus", "head_cpus"):
            value = getattr(self, field)
            _check(1 <= value <= 1024, field, f"{value} CPUs", "give 1 to 1024")
        for field in ("worker_memory", "head_memory"):
            value = getattr(self, field)
            _check(
                _matches(_QUANTITY, value),
                field,
                f"{value!r} is not a memory quantity",
                "e.g. 12Gi",
            )

    def gpu_selector(self) -> tuple[str, str]:
        """``gpu_type`` as the node label (key, value) GPU Pods select."""
        key, equals, value = (self.gpu_type or "").partition("=")
        return (key, value) if equals else (DEFAULT_GPU_LABEL, key)

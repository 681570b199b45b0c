"""``foldserve deploy ray``: the YAML that runs foldserve's endpoint on a Ray cluster.

Two renderings of one shape, from the typed settings of :mod:`foldserve.cloud.ray.settings`,
so nobody hand-writes them:

* :func:`render_vm_cluster`: a cluster launcher file for ``ray up`` (the schema of Ray 2.60's
  ``ray/autoscaler/ray-schema.json``) on AWS or GCP: a CPU head node and one GPU worker type
  from ``min_workers`` (0 by default) to ``max_workers``, every node in the foldserve image.
* :func:`render_kuberay`: a KubeRay ``RayCluster`` (``ray.io/v1``) with in-tree autoscaling and
  a GPU worker group from ``minReplicas: 0``, plus a ``Service`` for foldserve's port.

On both, the head runs ``foldserve serve --backend ray`` next to Ray: foldserve's FastAPI app
and its job store stay the front and the source of truth, and the app deploys its own Serve
application (imperatively, Serve's HTTP proxy off). That is why the Kubernetes rendering is a
``RayCluster`` and not a ``RayService``. KubeRay (read in its source, v1.5 to v1.7) manages a
RayService's applications from ``serveConfigV2`` and asks the dashboard only for *declarative*
applications (``api_type=declarative``), so with foldserve's own application a RayService logs
"No Serve application found" and never becomes ready; and it gives a RayService's worker Pods a
readiness probe on Serve's HTTP proxy (``:8000/-/healthz``), which foldserve does not start, so
no GPU worker would ever be Ready.

Nothing here contacts a cluster or a cloud, and no secret is ever part of the output: the API
key is read on the head from a file that ``ray up`` copies there (VMs) or from a Kubernetes
Secret, and Ray's token likewise.
"""

from __future__ import annotations

from typing import Any

import yaml  # type: ignore[import-untyped]

from foldserve.cloud.ray.settings import (
    API_KEY_FILE,
    API_KEY_SECRET_KEY,
    DATA_DIR,
    GCP_GPU_IMAGE,
    GCP_HEAD_IMAGE,
    KUBE_PARAM_DIR,
    PORT,
    RAY_TOKEN_FILE,
    RAY_VERSION,
    VM_SECRETS_DIR,
    KubeRaySettings,
    VmSettings,
)

# --- shared text ------------------------------------------------------------------------------


def _comment(text: str) -> str:
    """``text`` as YAML comment lines."""
    return "".join(f"# {line}".rstrip() + "\n" for line in text.strip("\n").splitlines())


class _PlainDumper(yaml.SafeDumper):  # type: ignore[misc]
    """PyYAML's safe dumper without anchors: a mapping used twice is written out twice."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _dump(document: dict[str, Any]) -> str:
    # width: long shell commands stay on one line, as a person would write them.
    return str(
        yaml.dump(
            document,
            Dumper=_PlainDumper,
            sort_keys=False,
            width=10_000,
            default_flow_style=False,
        )
    )


_NOT_TESTED = """\
Not tested here: this file has never been applied to a real cluster, and its instance types,
images, drivers and start commands were not tried on a cloud."""

_SECURITY = """\
Security:
- Ray is private infrastructure. Its ports (6379 GCS, 8265 dashboard, 10001 client, 8080
  metrics, and the raylet, object manager and worker ports) must never be reachable from
  outside the cluster: anyone who reaches them can run code on every node.
- Ray token authentication is on (RAY_AUTH_MODE=token): every node and every client needs the
  token. Ray 2.60 turns it on by itself only for a local ray.init() cluster or when a token
  file already exists; that a later Ray turns it on by default for `ray start` was not checked.
- Serve replicas open an internal gRPC listener on all interfaces, on a random port (Ray 2.60,
  serve/_private/replica.py binds [::]:0): only the cluster's own nodes may reach them.
- foldserve's API (port {port}) requires the API key on every request. Put TLS in front of it
  (a load balancer or proxy) before it leaves a private network."""


def _header(title: str, tested: str, body: str) -> str:
    security = _SECURITY.format(port=PORT)
    return _comment(f"{title}\n\n{tested}\n{_NOT_TESTED}\n\n{body}\n\n{security}")


# --- VMs (ray up) -----------------------------------------------------------------------------


def _vm_node_config(settings: VmSettings, instance_type: str, *, gpu: bool) -> dict[str, Any]:
    disk_gb = 200 if gpu else 100  # the image (CUDA, JAX, PyTorch) and Docker's copy of it
    if settings.provider == "aws":
        config: dict[str, Any] = {
            "InstanceType": instance_type,
            "BlockDeviceMappings": [
                {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": disk_gb, "VolumeType": "gp3"}}
            ],
        }
        if settings.vm_image is not None:
            config["ImageId"] = settings.vm_image
        return config
    image = settings.vm_image or (GCP_GPU_IMAGE if gpu else GCP_HEAD_IMAGE)
    config = {
        "machineType": instance_type,
        "disks": [
            {
                "boot": True,
                "autoDelete": True,
                "type": "PERSISTENT",
                "initializeParams": {"diskSizeGb": disk_gb, "sourceImage": image},
            }
        ],
    }
    if gpu:
        config["metadata"] = {"items": [{"key": "install-nvidia-driver", "value": "True"}]}
        config["scheduling"] = [{"onHostMaintenance": "TERMINATE"}]
    return config


def _vm_provider(settings: VmSettings) -> dict[str, Any]:
    if settings.provider == "aws":
        return {"type": "aws", "region": settings.region or "us-east-1"}
    zone = settings.zone or ""
    return {
        "type": "gcp",
        "region": zone.rsplit("-", 1)[0],
        "availability_zone": zone,
        "project_id": settings.project,
    }


def _vm_head_commands(settings: VmSettings) -> list[str]:
    """Stop a foldserve left by an earlier ``ray up``, restart Ray, then start foldserve with
    its API key read from the copied secrets folder (so the key is in no file but that one)."""
    pid_file = "/tmp/foldserve-serve.pid"  # in the container: a new container has none
    log = f"{DATA_DIR}/serve.out"
    key = f'FOLDSERVE_API_KEY="$(cat {VM_SECRETS_DIR}/{API_KEY_FILE})"'
    return [
        f'pid="$(cat {pid_file} 2>/dev/null)"; '
        f'if [ -n "$pid" ] && grep -qas "foldserve" /proc/"$pid"/cmdline; then kill "$pid"; '
        f'while kill -0 "$pid" 2>/dev/null; do sleep 1; done; fi; rm -f {pid_file}',
        "ray stop",
        "ulimit -n 65536; ray start --head --port=6379 "
        "--autoscaling-config=~/ray_bootstrap_config.yaml",
        f"{key} setsid nohup {settings.serve_command(settings.param_dir)} >> {log} 2>&1 "
        f"< /dev/null & echo $! > {pid_file}",
    ]


def vm_cluster(settings: VmSettings) -> dict[str, Any]:
    """The cluster launcher configuration, as data."""
    provider = settings.provider
    gpu_resources: dict[str, int] = {"GPU": settings.gpus_per_worker}
    if settings.worker_cpus is not None:
        gpu_resources = {"CPU": settings.worker_cpus, **gpu_resources}
    gpu_worker: dict[str, Any] = {
        "min_workers": settings.min_workers,
        "max_workers": settings.max_workers,
        "resources": gpu_resources,
        "node_config": _vm_node_config(settings, settings.gpu_instance_type, gpu=True),
    }
    if provider == "gcp":
        # The Deep Learning VM installs its NVIDIA driver at first boot; Docker must wait for it.
        gpu_worker["initialization_commands"] = [
            'timeout 600 bash -c "until nvidia-smi > /dev/null 2>&1; do sleep 5; done"'
        ]
    token_path = f"{VM_SECRETS_DIR}/{RAY_TOKEN_FILE}"
    return {
        "cluster_name": settings.name,
        "max_workers": settings.max_workers,
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": settings.idle_timeout / 60,
        "provider": _vm_provider(settings),
        "auth": {"ssh_user": "ubuntu"},
        "docker": {
            "image": settings.image,
            "container_name": settings.name,
            "pull_before_run": True,
            "run_options": [
                f"--volume={settings.param_dir}:{settings.param_dir}",
                f"--env=PARAM_DIR={settings.param_dir}",
                "--env=RAY_AUTH_MODE=token",
                f"--env=RAY_AUTH_TOKEN_PATH={token_path}",
            ],
            "head_run_options": [f"--volume={DATA_DIR}:{DATA_DIR}"],
        },
        "available_node_types": {
            "head": {
                # No GPU: replicas, which need one, never land here.
                "resources": {},
                "node_config": _vm_node_config(settings, settings.head_instance_type, gpu=False),
            },
            "gpu_worker": gpu_worker,
        },
        "head_node_type": "head",
        "file_mounts": {VM_SECRETS_DIR: settings.secrets_dir},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
        # Listed, even empty: Ray fills what is missing from its defaults.yaml, whose commands
        # would install packages into the image.
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": (
            # The GCP node provider's client library, which the autoscaler on the head imports.
            ["pip install google-api-python-client"] if provider == "gcp" else []
        ),
        "worker_setup_commands": [],
        "head_start_ray_commands": _vm_head_commands(settings),
        "worker_start_ray_commands": [
            "ray stop",
            "ulimit -n 65536; ray start --address=$RAY_HEAD_IP:6379",
        ],
    }


def render_vm_cluster(settings: VmSettings) -> str:
    """A cluster launcher YAML for ``ray up``: commented header, then the configuration."""
    body = f"""\
foldserve on a Ray cluster of {settings.provider.upper()} VMs, for Ray's cluster launcher:
  ray up cluster.yaml     (with Ray {RAY_VERSION}, the Ray in the image)
The head node ({settings.head_instance_type}, no GPU) runs Ray and `foldserve serve --backend ray`.
GPU workers ({settings.gpu_instance_type}) scale from {settings.min_workers} to \
{settings.max_workers}, each released after {settings.idle_timeout} s idle.

Before `ray up`:
1. Two secret files in this folder on this machine (chmod 700 it, 600 them):
     {settings.secrets_dir}
   ray up copies it to {VM_SECRETS_DIR} on every node; the secrets are never in this file.
     {API_KEY_FILE}         the endpoint's API key (clients send it as Authorization: Bearer)
     {RAY_TOKEN_FILE}  Ray's token: run `ray get-auth-token --generate`, copy ~/.ray/auth_token
2. A shared filesystem (EFS, NFS, Filestore) mounted at {settings.param_dir} on every VM, by the
   VM image or an initialization_commands line (sudo mount -t nfs4 SERVER:/ {settings.param_dir}).
   The weights (PARAM_DIR) and the JAX compile cache (PARAM_DIR/jax-cache) live there, so only
   the first worker downloads and compiles; without it every VM keeps its own copy.
3. The container image with foldserve[ray] (Ray {RAY_VERSION}), rsync and an SSH client: the
   launcher copies files into containers with rsync, and the head's autoscaler sets up new
   workers over SSH from its container.
4. VM images with Docker and, on GPU workers, NVIDIA's container toolkit and a driver new
   enough for the container's CUDA 12.4. Ray's default AWS AMI may be older: give a current
   GPU AMI with --vm-image.

Use: the API is http://HEAD:{PORT}/v2/local at the head's private address; from this machine
`ray attach cluster.yaml -p {PORT}` forwards it over SSH. foldserve's output goes to
{DATA_DIR}/serve.out in the head's container: ray exec cluster.yaml 'tail {DATA_DIR}/serve.out'"""
    vm_security = f"""\
On these VMs: keep the security group or firewall Ray creates (SSH in, all traffic between
the cluster's own nodes) and add no inbound rule for Ray's ports; open {PORT} only to your
clients. The dashboard listens on 127.0.0.1 only: `ray dashboard cluster.yaml` tunnels it."""
    tested = """\
Tested here: foldserve's tests render this file from flags and check that it parses, holds
what the flags set and no secret, and passes Ray's own cluster schema (where Ray is installed)."""
    header = _header("foldserve deploy ray --target vm", tested, f"{body}\n\n{vm_security}")
    return header + "\n" + _dump(vm_cluster(settings))


# --- Kubernetes (KubeRay) ---------------------------------------------------------------------


def _shared_volume(settings: KubeRaySettings) -> dict[str, Any]:
    return {"name": "params", "persistentVolumeClaim": {"claimName": settings.param_dir_volume}}


_PARAMS_MOUNT = {"name": "params", "mountPath": KUBE_PARAM_DIR}
_PARAM_ENV = {"name": "PARAM_DIR", "value": KUBE_PARAM_DIR}


def _resources(cpus: int, memory: str, gpus: int = 0) -> dict[str, Any]:
    amounts: dict[str, Any] = {"cpu": str(cpus), "memory": memory}
    if gpus:
        amounts["nvidia.com/gpu"] = gpus
    return {"requests": amounts, "limits": dict(amounts)}


def raycluster(settings: KubeRaySettings) -> dict[str, Any]:
    """The ``RayCluster`` object, as data."""
    # The head drops --block from the `ray start` KubeRay generates, so that foldserve (exec'd)
    # is the container's process: if it stops, the container restarts, with its job store kept
    # in the Pod's emptyDir; KubeRay's probes restart it when Ray itself is unhealthy.
    head_args = (
        "ulimit -n 65536; ${KUBERAY_GEN_RAY_START_CMD/--block/} && exec "
        + settings.serve_command(KUBE_PARAM_DIR)
    )
    head_container = {
        "name": "ray-head",
        "image": settings.image,
        "command": ["/bin/bash", "-lc", "--"],
        "args": [head_args],
        "env": [
            _PARAM_ENV,
            {
                "name": "FOLDSERVE_API_KEY",
                "valueFrom": {
                    "secretKeyRef": {"name": settings.api_key_secret, "key": API_KEY_SECRET_KEY}
                },
            },
        ],
        "ports": [
            {"containerPort": 6379, "name": "gcs-server"},
            {"containerPort": 8265, "name": "dashboard"},
            {"containerPort": 10001, "name": "client"},
            {"containerPort": PORT, "name": "foldserve"},
        ],
        "resources": _resources(settings.head_cpus, settings.head_memory),
        "volumeMounts": [_PARAMS_MOUNT, {"name": "store", "mountPath": DATA_DIR}],
    }
    worker_pod: dict[str, Any] = {
        "containers": [
            {
                "name": "ray-worker",
                "image": settings.image,
                "command": ["/bin/bash", "-lc", "--"],
                "args": ["ulimit -n 65536; $KUBERAY_GEN_RAY_START_CMD"],
                "env": [_PARAM_ENV],
                "resources": _resources(
                    settings.worker_cpus, settings.worker_memory, settings.gpus_per_worker
                ),
                "volumeMounts": [_PARAMS_MOUNT],
            }
        ],
        # GPU node pools are often tainted so that only GPU Pods land there.
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "volumes": [_shared_volume(settings)],
    }
    if settings.gpu_type is not None:
        key, value = settings.gpu_selector()
        worker_pod["nodeSelector"] = {key: value}
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {
            "name": settings.name,
            "namespace": settings.namespace,
            "labels": {"app.kubernetes.io/name": "foldserve"},
            # KubeRay runs the containers' own command and args (the head's runs foldserve);
            # $KUBERAY_GEN_RAY_START_CMD holds the `ray start` it generated.
            "annotations": {"ray.io/overwrite-container-cmd": "true"},
        },
        "spec": {
            "rayVersion": RAY_VERSION,
            "enableInTreeAutoscaling": True,
            "autoscalerOptions": {
                "upscalingMode": "Default",
                "idleTimeoutSeconds": settings.idle_timeout,
            },
            "authOptions": {"mode": "token"},
            "headGroupSpec": {
                # The dashboard on the Pod's loopback only; `kubectl port-forward` reaches it.
                "rayStartParams": {"dashboard-host": "127.0.0.1"},
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/name": "foldserve"}},
                    "spec": {
                        "containers": [head_container],
                        "volumes": [
                            _shared_volume(settings),
                            {"name": "store", "emptyDir": {}},
                        ],
                    },
                },
            },
            "workerGroupSpecs": [
                {
                    "groupName": "gpu",
                    "replicas": settings.min_workers,
                    "minReplicas": settings.min_workers,
                    "maxReplicas": settings.max_workers,
                    "rayStartParams": {},
                    "template": {
                        "metadata": {"labels": {"app.kubernetes.io/name": "foldserve"}},
                        "spec": worker_pod,
                    },
                }
            ],
        },
    }


def api_service(settings: KubeRaySettings) -> dict[str, Any]:
    """A ClusterIP Service for foldserve's port alone (KubeRay's head Service carries Ray's)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": settings.name,
            "namespace": settings.namespace,
            "labels": {"app.kubernetes.io/name": "foldserve"},
        },
        "spec": {
            "type": "ClusterIP",
            "selector": {"ray.io/cluster": settings.name, "ray.io/node-type": "head"},
            "ports": [{"name": "http", "port": PORT, "targetPort": PORT, "protocol": "TCP"}],
        },
    }


def render_kuberay(settings: KubeRaySettings) -> str:
    """The manifests for ``kubectl apply -f -``: the RayCluster and foldserve's Service."""
    ns = settings.namespace
    secret, claim = settings.api_key_secret, settings.param_dir_volume
    body = f"""\
foldserve on Kubernetes with the KubeRay operator (v1.5.1 or later, for authOptions):
  kubectl apply -f foldserve-ray.yaml
A RayCluster, not a RayService: foldserve deploys its own Serve application from the head and
does not use Serve's HTTP proxy, which a RayService requires (readiness of its applications and
of the proxy on every worker).
The head Pod (no GPU) runs Ray and `foldserve serve --backend ray`. The GPU worker group scales
from {settings.min_workers} to {settings.max_workers} Pods, each released after \
{settings.idle_timeout} s idle.

Before applying, in namespace {ns}:
1. The endpoint's API key, as a Secret (never in this file):
     kubectl -n {ns} create secret generic {secret} --from-file={API_KEY_SECRET_KEY}=./api-key.txt
2. A ReadWriteMany PersistentVolumeClaim {claim} (EFS, Filestore, NFS), mounted at
   {KUBE_PARAM_DIR} (PARAM_DIR) in every Pod: the weights and the JAX compile cache
   (PARAM_DIR/jax-cache), so only the first worker downloads and compiles.
Ray's token: KubeRay generates it into a Secret and gives it to every Ray container.
The job store lives in the head Pod's emptyDir: it survives a container restart, not the Pod.

Use: the API is http://{settings.name}.{ns}.svc:{PORT}/v2/local inside the cluster; from here,
`kubectl -n {ns} port-forward service/{settings.name} {PORT}`."""
    k8s_security = f"""\
On Kubernetes: KubeRay's head Service (headless, in-cluster) carries Ray's ports; never make it
a LoadBalancer or NodePort, nor add an Ingress to it. Expose only the Service
{settings.name}:{PORT}. A NetworkPolicy that admits only the cluster's own Pods to Ray's
ports adds a second wall (not rendered here: check that your CNI still lets probes through)."""
    tested = """\
Tested here: foldserve's tests render this file from flags and check that it parses and holds
what the flags set and no secret; it was checked once, by hand, against the schema of KubeRay's
RayCluster resource (v1.5.1 and v1.7)."""
    header = _header("foldserve deploy ray --target kuberay", tested, f"{body}\n\n{k8s_security}")
    return (
        header
        + "---\n"
        + _dump(raycluster(settings))
        + "---\n"
        + _comment(f"foldserve's API: port {PORT} of the head Pod, and nothing else.")
        + _dump(api_service(settings))
    )

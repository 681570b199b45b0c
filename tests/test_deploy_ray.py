"""``foldserve deploy ray``: the cluster launcher file and the KubeRay manifest it renders.

Pure rendering, as a user runs the command: no Ray runtime, no cluster, no cloud. The files
are read back with PyYAML and checked for what the flags set; the VM file is also checked
against Ray's own cluster schema when Ray (``foldserve[ray]``) is installed.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml  # type: ignore[import-untyped]

from foldserve.cloud.ray.settings import KubeRaySettings, VmSettings
from foldserve.errors import InputError
from tests.cli_runner import Ran, foldserve

pytestmark = pytest.mark.timeout(60)

IMAGE = "ghcr.io/example/foldserve:0.1.0"
API_KEY = "fs_SECRET_KEY_0123456789abcdef"
RAY_TOKEN = "ray_SECRET_TOKEN_fedcba9876543210"
#: Secrets in the environment of the command: none may reach its output.
SECRET_ENV = {"FOLDSERVE_API_KEY": API_KEY, "RAY_AUTH_TOKEN": RAY_TOKEN}


def deploy_ray(*args: str) -> Ran:
    return foldserve("deploy", "ray", "--image", IMAGE, *args, env=SECRET_ENV)


def rendered(*args: str) -> tuple[str, list[dict[str, Any]]]:
    """The YAML ``deploy ray ARGS`` prints, and its documents."""
    result = deploy_ray(*args)
    assert result.exit_code == 0, result.stderr
    assert API_KEY not in result.stdout + result.stderr
    assert RAY_TOKEN not in result.stdout + result.stderr
    return result.stdout, [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]


def assert_header_says_what_is_tested_and_how_to_secure(text: str) -> None:
    """The comment lines the file starts with: what is tested, and the security notes."""
    lines = itertools.takewhile(lambda line: not line or line.startswith("#"), text.splitlines())
    header = " ".join(line.lstrip("# ") for line in lines)
    assert "Tested here:" in header and "Not tested here:" in header
    assert "never been applied to a real cluster" in header
    for note in ("6379 GCS", "8265 dashboard", "10001 client", "RAY_AUTH_MODE=token", "gRPC"):
        assert note in header


def ray_schema() -> dict[str, Any] | None:
    """Ray's cluster launcher schema from the installed ``ray`` package, or None."""
    spec = importlib.util.find_spec("ray")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "autoscaler" / "ray-schema.json"
    return json.loads(path.read_text()) if path.exists() else None


def test_vm_cluster_for_ray_up_has_what_the_flags_set() -> None:
    text, [cluster] = rendered(
        *("--target", "vm", "--gpu-type", "g6e.12xlarge", "--gpus-per-worker", "4"),
        *("--gpus-per-replica", "0.5", "--max-workers", "3", "--region", "eu-west-1"),
        *("--engines", "alphafold2,openfold3", "--idle-timeout", "600"),
        *("--param-dir-volume", "/mnt/efs/foldserve"),
    )
    assert_header_says_what_is_tested_and_how_to_secure(text)
    assert cluster["cluster_name"] == "foldserve"
    assert cluster["max_workers"] == 3
    assert cluster["idle_timeout_minutes"] == 10
    assert cluster["provider"] == {"type": "aws", "region": "eu-west-1"}
    assert cluster["docker"]["image"] == IMAGE
    assert "--env=PARAM_DIR=/mnt/efs/foldserve" in cluster["docker"]["run_options"]
    assert "--env=RAY_AUTH_MODE=token" in cluster["docker"]["run_options"]
    assert cluster["head_node_type"] == "head"
    head = cluster["available_node_types"]["head"]
    assert "GPU" not in head["resources"]
    assert head["node_config"]["InstanceType"] == "m5.xlarge"
    worker = cluster["available_node_types"]["gpu_worker"]
    assert (worker["min_workers"], worker["max_workers"]) == (0, 3)
    assert worker["resources"] == {"GPU": 4}
    assert worker["node_config"]["InstanceType"] == "g6e.12xlarge"
    *_, serve = cluster["head_start_ray_commands"]
    assert "foldserve serve --backend ray --ray-address auto --host 0.0.0.0 --port 8000" in serve
    assert "--params-dir /mnt/efs/foldserve --engines alphafold2,openfold3" in serve
    # Two replicas on each GPU of each worker: 3 workers x 4 GPUs x 2.
    assert "--gpus-per-replica 0.5 --min-replicas 0 --max-replicas 24" in serve
    # The key is read on the head from the file ray up copies there, never written here.
    assert 'FOLDSERVE_API_KEY="$(cat /opt/foldserve-secrets/api-key)"' in serve
    assert cluster["file_mounts"] == {"/opt/foldserve-secrets": "~/.config/foldserve/ray-secrets"}
    # Every command list is spelled out, so none comes from Ray's defaults.yaml.
    assert cluster["setup_commands"] == cluster["head_setup_commands"] == []


@pytest.mark.parametrize(
    "args",
    [
        ("--max-workers", "2"),
        ("--provider", "gcp", "--zone", "europe-west4-b", "--project", "lab-folding"),
    ],
    ids=["aws", "gcp"],
)
def test_vm_cluster_is_valid_for_rays_own_schema(args: tuple[str, ...]) -> None:
    schema = ray_schema()
    if schema is None:
        pytest.skip("Ray is not installed here (foldserve[ray]): no ray/autoscaler/ray-schema.json")
    cpus = ("--worker-cpus", "8") if "gcp" in args else ()
    _, [cluster] = rendered("--target", "vm", *args, *cpus)
    jsonschema.validate(cluster, schema)


def test_gcp_cluster_names_the_zone_project_and_cpus() -> None:
    _, [cluster] = rendered(
        *("--target", "vm", "--provider", "gcp", "--zone", "europe-west4-b"),
        *("--project", "lab-folding", "--worker-cpus", "8", "--max-workers", "5"),
    )
    assert cluster["provider"] == {
        "type": "gcp",
        "region": "europe-west4",
        "availability_zone": "europe-west4-b",
        "project_id": "lab-folding",
    }
    worker = cluster["available_node_types"]["gpu_worker"]
    assert worker["resources"] == {"CPU": 8, "GPU": 1}
    assert worker["node_config"]["machineType"] == "g2-standard-8"
    assert worker["node_config"]["scheduling"] == [{"onHostMaintenance": "TERMINATE"}]
    assert (worker["min_workers"], worker["max_workers"]) == (0, 5)


def test_kuberay_manifest_scales_gpu_workers_from_zero() -> None:
    text, documents = rendered(
        *("--target", "kuberay", "--max-workers", "6", "--gpus-per-worker", "2"),
        *("--gpu-type", "NVIDIA-L4", "--namespace", "folding"),
        *("--param-dir-volume", "weights-rwx", "--api-key-secret", "fold-key"),
    )
    assert_header_says_what_is_tested_and_how_to_secure(text)
    cluster, service = documents
    assert (cluster["apiVersion"], cluster["kind"]) == ("ray.io/v1", "RayCluster")
    assert cluster["metadata"]["namespace"] == "folding"
    spec = cluster["spec"]
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["authOptions"] == {"mode": "token"}

    head_pod = spec["headGroupSpec"]["template"]["spec"]
    [head] = head_pod["containers"]
    assert head["image"] == IMAGE
    assert "exec foldserve serve --backend ray --ray-address auto" in head["args"][0]
    assert "--max-replicas 12" in head["args"][0]
    assert "nvidia.com/gpu" not in head["resources"]["limits"]
    assert {"containerPort": 8000, "name": "foldserve"} in head["ports"]
    [key] = [env for env in head["env"] if env["name"] == "FOLDSERVE_API_KEY"]
    assert key["valueFrom"] == {"secretKeyRef": {"name": "fold-key", "key": "api-key"}}

    [group] = spec["workerGroupSpecs"]
    assert (group["minReplicas"], group["maxReplicas"]) == (0, 6)
    worker_pod = group["template"]["spec"]
    [worker] = worker_pod["containers"]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert worker_pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-L4"}

    for pod, container in ((head_pod, head), (worker_pod, worker)):
        claims = {v["name"]: v.get("persistentVolumeClaim") for v in pod["volumes"]}
        assert claims["params"] == {"claimName": "weights-rwx"}
        assert {"name": "params", "mountPath": "/mnt/foldserve"} in container["volumeMounts"]
        assert {"name": "PARAM_DIR", "value": "/mnt/foldserve"} in container["env"]

    assert (service["apiVersion"], service["kind"]) == ("v1", "Service")
    assert service["spec"]["selector"] == {
        "ray.io/cluster": "foldserve",
        "ray.io/node-type": "head",
    }
    assert [port["port"] for port in service["spec"]["ports"]] == [8000]


def test_out_writes_the_file_and_prints_no_yaml(tmp_path: Path) -> None:
    target = tmp_path / "cluster.yaml"
    result = deploy_ray("--target", "vm", "--out", str(target))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert yaml.safe_load(target.read_text())["cluster_name"] == "foldserve"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("--target", "vm", "--max-workers", "0"), "--max-workers: 0 workers"),
        (("--target", "kuberay", "--gpus-per-replica", "-1"), "--gpus-per-replica: -1 GPUs"),
        (("--target", "vm", "--gpus-per-replica", "1.5"), "--gpus-per-replica: 1.5 GPUs"),
        (("--target", "k8s"), "--target: unknown target 'k8s'"),
        (("--target", "vm", "--engines", "alphafold3"), "--engines: unknown engine 'alphafold3'"),
        (("--target", "vm", "--min-workers", "3"), "--min-workers: 3 is not between 0 and"),
        (("--target", "vm", "--namespace", "lab"), "--namespace: applies to --target kuberay"),
        (("--target", "kuberay", "--region", "us-east-1"), "--region: applies to --target vm"),
        (("--target", "vm", "--provider", "azure"), "--provider: unknown provider 'azure'"),
        (("--target", "vm", "--provider", "gcp"), "--zone: a GCP cluster needs a zone"),
        (("--target", "vm", "--param-dir-volume", "weights"), "--param-dir-volume: 'weights'"),
        (("--target", "kuberay", "--param-dir-volume", "Weights!"), "--param-dir-volume:"),
        (("--target", "kuberay", "--worker-memory", "lots"), "--worker-memory: 'lots'"),
        (("--target", "vm", "--name", "Fold Serve"), "--name: 'Fold Serve'"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(args: tuple[str, ...], line: str) -> None:
    result = deploy_ray(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {line}")
    assert "Fix:" in lines[0] and "Traceback" not in result.stderr


def test_settings_fit_replicas_to_the_workers_gpus() -> None:
    thirds = VmSettings(image=IMAGE, gpus_per_replica=1 / 3, max_workers=2)
    assert thirds.replicas_per_worker == 3
    assert "--max-replicas 6" in thirds.serve_command("/mnt/foldserve")
    warm = KubeRaySettings(image=IMAGE, gpus_per_worker=8, min_workers=1, max_workers=2)
    assert "--min-replicas 8 --max-replicas 16" in warm.serve_command("/mnt/foldserve")
    with pytest.raises(InputError) as caught:
        KubeRaySettings(image=IMAGE, gpu_type="=NVIDIA-L4")
    assert caught.value.where == "gpu_type"

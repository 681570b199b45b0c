"""``foldserve serve --backend ray`` on a real local Ray cluster: a CPU head and two simulated
GPU nodes (Ray counts GPUs as resources, so a replica needing one GPU is placed on a GPU node),
all on 127.0.0.1. The API process is a real ``foldserve serve``; its replicas load the test
weights.

Jobs are held at a known point by serving their MSA over http and holding the response back
(:func:`tests.serving.held_msas`): the replica has started the job and waits for its MSA.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from foldserve.jobs.schema import JobStatus
from foldserve.server import layout
from foldserve.server.store import WorkerState
from tests.conftest import data
from tests.serving import (
    API_KEY,
    SMALL_MSA,
    WAIT_S,
    HeldMsa,
    MsaHolder,
    Server,
    held_msas,
    running_server,
    small_job,
    until,
)
from tests.test_submit_e2e import shell

#: Ray on loopback only (without the first, Ray swaps 127.0.0.1 for the machine's address),
#: nothing reported home. Ray reads them when imported: they are set before.
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
os.environ.update(RAY_ENV)
ray = pytest.importorskip("ray", reason="the ray extra is not installed")

#: Two GPU nodes: up to two replicas at once.
MAX_REPLICAS = 2

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """One cluster for the module: a head without GPUs and two nodes with one each. This
    process is connected too, to watch Serve's replicas."""
    from ray.cluster_utils import Cluster

    loopback = "127.0.0.1"
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "num_gpus": 0,
            "include_dashboard": False,
            "node_ip_address": loopback,
        },
    )
    try:
        for _ in range(MAX_REPLICAS):
            cluster.add_node(num_cpus=1, num_gpus=1, node_ip_address=loopback)
        ray.init(address=cluster.address, logging_level="ERROR")
        yield str(cluster.address)
    finally:
        ray.shutdown()
        cluster.shutdown()  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
def holder() -> Iterator[MsaHolder]:
    with held_msas(data(SMALL_MSA).read_text()) as running:
        yield running


def ray_server(
    data_dir: Path,
    params: Path,
    address: str,
    holder: MsaHolder,
    *,
    replicas: int = MAX_REPLICAS,
    endpoint_id: str = "local",
    wait: bool = True,
) -> AbstractContextManager[Server]:
    """``foldserve serve --backend ray`` on ``address``; idle replicas go after a second.
    ``wait``: until every dispatch thread is idle."""
    return running_server(
        data_dir,
        params,
        *("--backend", "ray", "--ray-address", address),
        *("--max-replicas", str(replicas), "--downscale-delay", "1"),
        *("--allow-http", "--allow-url-prefix", holder.prefix),
        workers=replicas,
        env=RAY_ENV,
        endpoint_id=endpoint_id,
        wait=wait,
    )


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, test_params: Path, ray_cluster: str, holder: MsaHolder
) -> Iterator[Server]:
    with ray_server(tmp_path_factory.mktemp("ray") / "data", test_params, ray_cluster, holder) as s:
        yield s


def running_replicas(app: str = "foldserve-local") -> int:
    from ray import serve
    from ray.serve._private.common import ReplicaState

    status = serve.status().applications.get(app)
    if status is None:
        return 0
    states = [d.replica_states for d in status.deployments.values()]
    return sum(state.get(ReplicaState.RUNNING, 0) for state in states)


def submit_held(server: Server, msa: HeldMsa) -> str:
    """A one-model job whose replica waits on ``msa``; returns once the replica has asked."""
    job_id = server.submit({"msa_url": msa.url, "models": [1], "num_recycles": 1})
    msa.wait_requested()
    return job_id


def replica_pid(server: Server, job_id: str) -> int:
    """The process of the replica running (or that last ran) ``job_id``."""
    job = server.store.get(job_id)
    assert job is not None and job.worker is not None
    (row,) = [w for w in server.store.workers() if w.name == job.worker]
    return row.pid


def ray_log(server: Server) -> str:
    """What the API's Ray backend logged (in the data directory, kept across restarts)."""
    return layout.log_file(server.data_dir, "ray").read_text()


def completions(server: Server, job_id: str) -> int:
    return ray_log(server).count(f"job {job_id} completed")


def test_a_job_completes_through_submit_and_runpods_sdk(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "q60262.pdb"
    submitted = shell(
        "submit", "--url", server.root, "--msa", str(data(SMALL_MSA)), "--output", str(output),
        "--models", "1", "--num-recycles", "1", state=tmp_path / "state",
    )  # fmt: skip
    assert submitted.exit_code == 0, submitted.stderr
    assert "TEST WEIGHTS" in output.read_text()

    monkeypatch.setenv("RUNPOD_ENDPOINT_BASE_URL", f"{server.root}/v2")
    import runpod

    monkeypatch.setattr(runpod, "endpoint_url_base", f"{server.root}/v2")
    monkeypatch.setattr(runpod, "api_key", API_KEY)
    result = runpod.Endpoint("local").run_sync(small_job(data(SMALL_MSA)), timeout=int(WAIT_S))
    assert result["engine"] == "alphafold2" and result["query"]["length"] == 62
    # Serve's own HTTP proxy is not started: foldserve's routes are the only way in.
    assert "proxy" not in str(ray.util.list_named_actors(all_namespaces=True)).lower()


def test_replicas_scale_from_zero_to_two_under_load_and_back_to_zero(
    server: Server, holder: MsaHolder
) -> None:
    until(lambda: running_replicas() == 0, "the replicas of earlier jobs to go")
    held = [holder.hold() for _ in range(MAX_REPLICAS)]
    jobs = [submit_held(server, msa) for msa in held]
    # Both jobs run at once, each on its own replica: one per GPU node.
    assert [server.status(job)["status"] for job in jobs] == ["IN_PROGRESS"] * 2
    assert running_replicas() == MAX_REPLICAS
    assert len({replica_pid(server, job) for job in jobs}) == MAX_REPLICAS
    health = server.request("GET", "/health").json()
    assert health["workers"]["running"] == MAX_REPLICAS
    for msa in held:
        msa.release()
    for job in jobs:
        assert server.wait_finished(job)["status"] == "COMPLETED"
    until(lambda: running_replicas() == 0, "the idle replicas to be scaled away")


def test_a_job_whose_replica_is_killed_is_run_again_and_completes_once(
    server: Server, holder: MsaHolder
) -> None:
    msa = holder.hold()
    job_id = submit_held(server, msa)
    os.kill(replica_pid(server, job_id), signal.SIGKILL)
    server.wait_for(job_id, lambda body: body["status"] == "IN_QUEUE" or body.get("retried"))
    msa.release()
    assert server.wait_finished(job_id)["status"] == "COMPLETED"
    job = server.store.get(job_id)
    assert job is not None and job.attempts == 2 and job.retried == 1
    assert completions(server, job_id) == 1
    assert f"job {job_id} lost its replica: The actor died" in ray_log(server)


def test_a_job_cancelled_while_it_waits_for_a_replica_never_runs(
    server: Server, holder: MsaHolder
) -> None:
    until(lambda: running_replicas() == 0, "no replica to be left")
    msa = holder.hold()
    job_id = server.submit({"msa_url": msa.url, "models": [1], "num_recycles": 1})
    # Handed to Serve, which starts a replica for it (seconds): cancel it meanwhile.
    until(
        lambda: any(w.state == WorkerState.STARTING for w in server.store.workers()),
        "the job to be sent",
    )
    assert server.request("POST", f"/cancel/{job_id}").json()["status"] == "CANCELLED"
    until(
        lambda: f"job {job_id} was stopped: cancelling its request" in ray_log(server),
        "its request to be cancelled",
    )
    after = server.submit(small_job(data(SMALL_MSA)))
    assert server.wait_finished(after)["status"] == "COMPLETED"
    assert not msa.requested.is_set()
    job = server.store.get(job_id)
    assert job is not None and job.status == JobStatus.CANCELLED and job.attempts == 0


def test_a_running_job_cancelled_stops_and_its_replica_stays_warm(
    server: Server, holder: MsaHolder
) -> None:
    msa = holder.hold()
    job_id = submit_held(server, msa)
    pid = replica_pid(server, job_id)
    assert server.request("POST", f"/cancel/{job_id}").json()["status"] == "CANCELLED"
    msa.release()
    after = server.submit(small_job(data(SMALL_MSA)))
    assert server.wait_finished(after)["status"] == "COMPLETED"
    assert replica_pid(server, after) == pid
    assert server.status(job_id)["status"] == "CANCELLED"
    assert completions(server, job_id) == 0


def test_jobs_queued_and_running_when_the_api_is_killed_all_finish_once_after_a_restart(
    tmp_path: Path, test_params: Path, ray_cluster: str, holder: MsaHolder
) -> None:
    """A second endpoint (its own Serve application) on the same cluster, one replica."""
    data_dir = tmp_path / "data"
    msa = holder.hold()
    with ray_server(
        data_dir, test_params, ray_cluster, holder, replicas=1, endpoint_id="restart"
    ) as first:
        running = first.submit({"msa_url": msa.url, "models": [1], "num_recycles": 1})
        queued = [first.submit(small_job(data(SMALL_MSA))) for _ in range(2)]
        msa.wait_requested()
        first.kill()
    restarted = ray_server(
        data_dir, test_params, ray_cluster, holder, replicas=1, endpoint_id="restart", wait=False
    )
    with restarted as second:
        msa.release()
        second.wait_idle_workers(0)  # answering
        for job_id in (running, *queued):
            assert second.wait_finished(job_id)["status"] == "COMPLETED"
            assert completions(second, job_id) == 1
        job = second.store.get(running)
        assert job is not None and job.retried == 1
        assert "1 job(s) were running when the server last stopped: requeued" in (
            second.log.read_text()
        )
        assert "Serve application foldserve-restart is running" in ray_log(second)


def test_replicas_that_cannot_load_their_weights_say_why_and_jobs_wait(
    tmp_path: Path, ray_cluster: str, holder: MsaHolder
) -> None:
    """No weights where the replicas look: the reason is logged in one line, the job stays
    queued (it runs once weights are there), nothing crashes."""
    from ray import serve

    empty = tmp_path / "no-weights"
    empty.mkdir()
    try:
        with ray_server(tmp_path / "data", empty, ray_cluster, holder, endpoint_id="broken") as s:
            job_id = s.submit(small_job(data(SMALL_MSA)))
            until(lambda: "replicas cannot start" in ray_log(s), "the reason to be logged")
            (line,) = [ln for ln in ray_log(s).splitlines() if "replicas cannot start" in ln]
            assert "jobs wait in the queue:" in line and str(empty) in line
            assert "Traceback" not in line and "Fix:" in line
            assert s.status(job_id)["status"] == "IN_QUEUE"
            assert "replicas cannot start" in s.log.read_text()  # on the terminal too
    finally:
        serve.delete("foldserve-broken")  # its replicas would keep trying for the GPUs


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--min-replicas", "3", "--max-replicas", "2"), "min_replicas (3) is above max_replicas"),
        (("--gpus-per-replica", "-1"), "--gpus-per-replica: input should be greater than"),
        (("--ray-address", "127.0.0.1:1"), "no Ray cluster answers there"),
    ],
)
def test_bad_ray_settings_are_one_line_and_exit_2(
    tmp_path: Path, flags: tuple[str, ...], message: str
) -> None:
    """In a process of its own, as a user runs it: Ray, imported there, sets up its logging on
    the standard streams this test's process captures."""
    command = [
        sys.executable, "-m", "foldserve.cli",
        "serve", "--backend", "ray", "--no-auth", "--data-dir", str(tmp_path), *flags,
    ]  # fmt: skip
    ran = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 2, ran.stderr
    assert message in ran.stderr and "Fix:" in ran.stderr
    assert "Traceback" not in ran.stderr


@pytest.mark.parametrize(("downscale_delay", "window"), [(300.0, 15.0), (5.0, 5.0), (1.0, 2.0)])
def test_a_short_downscale_delay_shortens_the_load_window_with_it(
    tmp_path: Path, downscale_delay: float, window: float
) -> None:
    """Serve keeps a finished job in a replica's averaged load for the whole window: with the
    default 15 s window, ``--downscale-delay 1`` would keep an idle replica about 16 s."""
    from foldserve.server.ray.deployment import deployment_options
    from foldserve.server.settings import ServeSettings

    settings = ServeSettings(data_dir=tmp_path, downscale_delay=downscale_delay)
    scaling = deployment_options(settings)["autoscaling_config"]
    assert scaling["downscale_delay_s"] == downscale_delay
    assert scaling["look_back_period_s"] == window

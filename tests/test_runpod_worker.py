"""The RunPod worker, run as RunPod runs it: ``python -m foldserve.cloud.runpod`` in its own
process, the SDK's real worker loop, and a stand-in for RunPod's job API on 127.0.0.1
(tests/runpod_standin.py), with test weights and, for large files, moto's S3 server.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from foldserve.cloud.progress import ThrottledProgress
from foldserve.cloud.runpod.settings import RunpodSettings
from foldserve.errors import InputError
from foldserve.fold.weights import SOURCE_RECORD
from foldserve.jobs.progress import JobProgress
from tests.conftest import data
from tests.runpod_standin import (
    JobRecord,
    RunpodStandin,
    Worker,
    running_workers,
    start_worker,
    stop_workers,
    wait_ready,
)
from tests.serving import SMALL_MSA, WAIT_S, archive_server, params_archive, small_job

BUCKET = "results"
#: Room for the best model (43 kB on the 62-residue test protein) and the score files, not for
#: the mmCIF model or the PAE file.
INLINE_LIMIT_MB = "0.06"


@dataclass
class Deployed:
    standin: RunpodStandin
    worker: Worker

    def run(self, job_input: Any, timeout: float = 120) -> JobRecord:
        return self.standin.result(self.standin.submit(job_input), timeout)


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def _isolated_env(tmp: Path) -> dict[str, str | None]:
    """No AWS or bucket settings from the machine running the tests; every progress update."""
    return {
        "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
        **dict.fromkeys(["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"]),
        **dict.fromkeys(["BUCKET_NAME", "BUCKET_ENDPOINT_URL", "BUCKET_ACCESS_KEY_ID"]),
        "FOLDSERVE_PROGRESS_INTERVAL": "0",
    }


@pytest.fixture(scope="module")
def deployments(
    tmp_path_factory: pytest.TempPathFactory, test_params: Path, s3_endpoint: str
) -> Iterator[dict[str, Deployed]]:
    """Two workers, started together: one with a bucket, one without (each its own RunPod)."""
    tmp = tmp_path_factory.mktemp("runpod")
    settings = {
        "bucket": {
            "BUCKET_ENDPOINT_URL": s3_endpoint,
            "BUCKET_ACCESS_KEY_ID": "testing",
            "BUCKET_SECRET_ACCESS_KEY": "testing",
            "BUCKET_NAME": BUCKET,
            "BUCKET_REGION": "us-east-1",
            "FOLDSERVE_INLINE_LIMIT_MB": INLINE_LIMIT_MB,
        },
        "bare": {"FOLDSERVE_INLINE_LIMIT_MB": "0.03125"},
    }
    standins = {name: RunpodStandin().__enter__() for name in settings}
    workers = {
        name: start_worker(
            standins[name],
            f"{name}-worker",
            tmp,
            {"PARAM_DIR": str(test_params), **_isolated_env(tmp), **env},
        )
        for name, env in settings.items()
    }
    try:
        for name, worker in workers.items():
            wait_ready(standins[name], worker)
        yield {name: Deployed(standins[name], workers[name]) for name in settings}
    finally:
        stop_workers(list(workers.values()))
        for standin in standins.values():
            standin.__exit__(None, None, None)


@pytest.fixture(scope="module")
def deployed(deployments: dict[str, Deployed]) -> Deployed:
    return deployments["bucket"]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_job_runs_on_the_sdk_loop_with_progress_and_the_best_model_inline(
    deployed: Deployed,
) -> None:
    job = deployed.run(small_job(data(SMALL_MSA)))
    assert job.result is not None and "error" not in job.result, job.result
    output = job.result["output"]
    assert output["test_weights"] is True
    assert (output["engine"], output["network"]) == ("alphafold2", "alphafold2_ptm")
    assert output["query"]["length"] == 62
    assert [entry["model"] for entry in output["ranking"]] == ["model_1_ptm"]
    best = output["files"]["ranked_0.pdb"]
    assert best["data"].count(" CA ") == 62
    assert best["sha256"] == sha256(best["data"].encode())
    # Every stage reached RunPod as an IN_PROGRESS update on the job-done route.
    stages = {update["stage"] for update in job.updates}
    assert {"parse", "features", "predict", "done", "write"} <= stages
    recycles = sorted(u["recycle"] for u in job.updates if u["stage"] == "predict")
    assert recycles == [0, 1]
    assert deployed.standin.refused == 0


def test_files_over_the_inline_limit_go_to_the_bucket_as_presigned_urls(
    deployed: Deployed, s3_endpoint: str
) -> None:
    job = deployed.run(small_job(data(SMALL_MSA), num_recycles=0))
    assert job.result is not None
    output = job.result["output"]
    assert len(json.dumps(output, separators=(",", ":"))) <= float(INLINE_LIMIT_MB) * (1 << 20)
    assert "data" in output["files"]["ranked_0.pdb"]
    by_url = {name: entry for name, entry in output["files"].items() if "url" in entry}
    assert {"ranked_0.cif", "pae_model_1_ptm_pred_0.json"} <= set(by_url)
    for name, entry in by_url.items():
        assert entry["url"].startswith(f"{s3_endpoint}/{BUCKET}/foldserve/{job.id}/{name}?")
        assert "X-Amz-Expires=86400" in entry["url"]
        download = httpx.get(entry["url"], timeout=30)
        assert download.status_code == 200
        assert len(download.content) == entry["bytes"]
        assert sha256(download.content) == entry["sha256"]
    assert "left_out" not in output


def test_without_a_bucket_the_best_model_still_comes_back_and_the_rest_is_listed(
    deployments: dict[str, Deployed],
) -> None:
    job = deployments["bare"].run(small_job(data(SMALL_MSA), num_recycles=0))
    assert job.result is not None
    output = job.result["output"]
    assert "ATOM" in output["files"]["ranked_0.pdb"]["data"]
    assert {"ranked_0.cif", "pae_model_1_ptm_pred_0.json"} <= set(output["left_out"])
    assert not set(output["left_out"]) & set(output["files"])
    (warning,) = output["warnings"]
    assert "0.03125 MB inline limit" in warning
    assert "ranked_0.cif" in warning


@pytest.mark.parametrize(
    ("job_input", "message"),
    [
        (
            {"models": [7]},
            "input.models: no AlphaFold2 model 7. Fix: choose among 1, 2, 3, 4 and 5",
        ),
        ({"num_recycles": "many"}, "input.num_recycles: "),
        ({"colour": "blue"}, "input.colour: unknown field. Fix: remove it"),
        ({"msa": ">query\nMKV\n>hit\nMK\n"}, "input.msa"),
    ],
)
def test_bad_input_fails_with_a_message_naming_the_field(
    deployed: Deployed, job_input: dict[str, Any], message: str
) -> None:
    job = deployed.run({**small_job(data(SMALL_MSA)), **job_input})
    assert job.result is not None and "output" not in job.result
    assert job.error["error_message"].startswith(message), job.error
    assert "InputError" in job.error["error_type"] or "MsaError" in job.error["error_type"]
    assert not job.progress or job.progress[-1]["stage"] == "parse"


def test_cancel_stops_the_running_prediction_and_frees_the_worker(deployed: Deployed) -> None:
    standin = deployed.standin
    # 25 runs of 49 recycles: minutes of work, unless the cancel reaches the recycle loop.
    long_job = standin.submit(
        small_job(data(SMALL_MSA), models=[1, 2, 3, 4, 5], num_seeds=5, num_recycles=48)
    )
    record = standin.jobs[long_job]
    standin.wait_for(
        lambda: True if any(u["stage"] == "predict" for u in record.progress) else None
    )
    standin.cancel(long_job)
    cancelled_at = time.monotonic()
    next_job = deployed.run(small_job(data(SMALL_MSA), num_recycles=0), timeout=60)
    assert next_job.result is not None and "output" in next_job.result
    # The worker took the next job only once the cancelled prediction had stopped...
    assert next_job.taken_at is not None and next_job.taken_at - cancelled_at < 10
    updates = len(record.progress)
    time.sleep(1.0)
    # ... and it stays stopped: no more progress, and no result (RunPod already says CANCELLED).
    assert len(record.progress) == updates
    assert record.result is None
    predicted = [u for u in record.progress if u["stage"] == "predict"]
    assert predicted
    assert all(u["run"] == 1 and u["recycle"] < 48 for u in predicted)


def test_a_bad_setting_stops_the_worker_at_start_with_one_line(tmp_path: Path) -> None:
    with RunpodStandin() as standin:
        settings: dict[str, str | None] = {"BUCKET_ENDPOINT_URL": "http://127.0.0.1:9"}
        worker = start_worker(standin, "misconfigured", tmp_path, settings)
        assert worker.process.wait(timeout=60) == 2
    assert (
        "cannot start: BUCKET_NAME: BUCKET_ENDPOINT_URL is set but no bucket is named. "
        "Fix: set BUCKET_NAME" in worker.output()
    )
    assert "Traceback" not in worker.output()
    assert standin.take_polls[worker.id] == 0


# Several workers, one empty network volume: one download.


def test_workers_starting_together_on_an_empty_volume_download_once(
    tmp_path: Path, test_params: Path
) -> None:
    archive = params_archive(test_params, tmp_path / "alphafold_params_2022-12-06.tar")
    volume = tmp_path / "runpod-volume"
    with archive_server(archive) as server:
        env = {
            "PARAM_DIR": str(volume),
            "FOLDSERVE_PARAMS_URL": server.url,
            "FOLDSERVE_PARAMS_SHA256": sha256(archive.read_bytes()),
            **_isolated_env(tmp_path),
        }
        with RunpodStandin() as standin, running_workers(standin, tmp_path, env, 3) as workers:
            assert server.requested.wait(WAIT_S), "no worker fetched the weights"
            # The first download is held a while, so that the other workers ask meanwhile (they
            # cannot be seen waiting on the volume's lock).
            time.sleep(2.0)
            server.released.set()
            for worker in workers:
                wait_ready(standin, worker)
    assert server.gets == 1
    logs = [worker.output() for worker in workers]
    assert sum("installed meanwhile by another worker" in log for log in logs) == 2
    assert sum("(verified)" in log for log in logs) == 1
    assert json.loads((volume / "params" / SOURCE_RECORD).read_text())["sha256_verified"]
    assert (volume / "jax-cache").is_dir()


# The pieces without a worker around them.


def test_settings_name_the_variable_at_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    def from_env(env: dict[str, str]) -> RunpodSettings:
        """The settings a worker whose environment holds ``env`` (and nothing else) reads."""
        with monkeypatch.context() as patch:
            for name, info in RunpodSettings.model_fields.items():
                patch.delenv(info.alias or f"FOLDSERVE_{name.upper()}", raising=False)
            for name, value in env.items():
                patch.setenv(name, value)
            return RunpodSettings.load()

    assert from_env({}).param_dir == Path("/runpod-volume")
    assert from_env({}).outbound.s3_buckets == ()  # msa_url: public https only by default
    mirrors = from_env(
        {"FOLDSERVE_S3_BUCKETS": '["lab-msas"]', "FOLDSERVE_ALLOW_URL_PREFIXES": '["http://m/a"]'}
    ).outbound
    assert mirrors.s3_buckets == ("lab-msas",) and mirrors.allow_prefixes == ("http://m/a",)
    settings = from_env(
        {"BUCKET_NAME": "b", "BUCKET_ACCESS_KEY_ID": "id", "BUCKET_SECRET_ACCESS_KEY": "s3cr3t"}
    )
    assert settings.bucket is not None and "s3cr3t" not in repr(settings)
    assert settings.bucket.secret_access_key == "s3cr3t"
    assert from_env({"FOLDSERVE_INLINE_LIMIT_MB": "0.5"}).inline_limit == 1 << 19
    cases = {
        "FOLDSERVE_INLINE_LIMIT_MB": "lots",
        "FOLDSERVE_PRECISION": "half",
        "FOLDSERVE_PARAMS_SHA256": "abc",
        "BUCKET_URL_EXPIRY": "999999999",
        "FOLDSERVE_S3_BUCKETS": '["Not_A_Bucket"]',
    }
    for name, value in cases.items():
        with pytest.raises(InputError) as caught:
            from_env({name: value, "BUCKET_NAME": "b"})
        assert caught.value.where == name
    with pytest.raises(InputError, match="BUCKET_SECRET_ACCESS_KEY"):
        from_env({"BUCKET_NAME": "b", "BUCKET_ACCESS_KEY_ID": "id"})


def test_progress_sends_new_stages_at_once_and_throttles_the_rest() -> None:
    sent: list[JobProgress] = []
    now = [0.0]
    progress = ThrottledProgress(sent.append, interval=2.0, clock=lambda: now[0])
    updates = [
        JobProgress(stage="predict", model="model_1_ptm", recycle=0),
        JobProgress(stage="predict", model="model_1_ptm", recycle=1),
        JobProgress(stage="predict", model="model_2_ptm", recycle=0),
        JobProgress(stage="predict", model="model_2_ptm", recycle=1),
        JobProgress(stage="predict", model="model_2_ptm", recycle=2),
        JobProgress(stage="write"),
    ]
    for tick, update in enumerate(updates):  # one every 1.5 s
        now[0] = tick * 1.5
        progress(update)
    assert [(p.stage, p.model, p.recycle) for p in sent] == [
        ("predict", "model_1_ptm", 0),
        ("predict", "model_2_ptm", 0),
        ("predict", "model_2_ptm", 2),
        ("write", None, None),
    ]

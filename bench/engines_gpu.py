"""Benchmark, for a GPU: foldserve against ``colabfold_batch`` per length, and OpenFold3.

``bench/gpu.sh`` runs this in one call of the GPU machine (its header says how); it also runs
anywhere with ``--dry-run``: tiny sizes on the CPU, which ``tests/test_gpu_bench.py`` does so
that it cannot rot. Not a test: nothing here fails on a slow result.

What it measures, on full-size random weights (timing does not depend on the values: AlphaFold2
pTM model 3 with 48 Evoformer blocks; OpenFold3's whole configuration) and, per length (100,
300, 600 and 1,000 residues), one job: a random query with a 256-row MSA of point mutants, one
model, 3 recycles, seed 0, bfloat16. Each mode runs in processes of its own, so that no
process holds the GPU memory JAX takes at start while another measures. In order of value,
each figure written to ``OUT/gpu_bench.json`` and ``OUT/gpu_bench.md`` as soon as it exists:

1. ``foldserve_warm``: one process keeps a ``Predictor`` warm across the lengths, shortest
   first. Per length a first job (compile included, as its shape is new) and a second, warm
   one (the figure a warm worker gives), each the wall time of ``predict`` and writing the
   prediction folder; peak device memory (JAX ``peak_bytes_in_use``: it only grows in a
   process, so ascending lengths give each length's peak), XLA's own account of the compiled
   function's memory, and the memory guard's estimate (``fold/alphafold2/shapes.py``) to
   calibrate its factors against.
2. ``colabfold_batch``: ColabFold's console entry point, a process per job as users script it,
   wall time of the process and the model time its log reports. ColabFold's defaults ask for
   unified memory at 4x the GPU's size; on the lent machine asking for more managed memory
   than the card has can hang it, so it runs with JAX's default pool instead (75% of the
   GPU, as foldserve), which changes where memory comes from, not the work.
3. ``foldserve_cold_cache``: ``foldserve predict`` in a fresh process, with the persistent
   compilation cache that step 1 filled.
4. ``foldserve_cold_nocache``: the same with an empty cache (weights linked into a folder of
   their own whose cache is emptied before each job).
5. ``openfold3_warm``: one process keeps the OpenFold3 engine warm, the smallest length once
   first (kernels, caches), then one job per length with ``torch.cuda.max_memory_allocated``
   reset before each; OpenFold3's 5 diffusion samples, 3 recycles, bfloat16. Skipped where
   the ``openfold3`` package is not installed.

``--budget-s`` bounds the whole run: before each job its cost is estimated from what has been
measured (compile, start-up, forward time extrapolated with length cubed) and a job that would
not end in time is skipped, saying so in the results; a process still running at the end of
the budget is stopped. Run by hand: ``python bench/engines_gpu.py --out DIR [--lengths ...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from gpu_report import MARKDOWN_NAME, Results  # beside this file, found through its folder

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder comes first on sys.path, where bench/openfold3.py would
# shadow the openfold3 package the last mode measures: the folder leaves once gpu_report is in.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
MODEL = 3
FULL_BLOCKS = 48
MODES = (
    "foldserve_warm",
    "colabfold_batch",
    "foldserve_cold_cache",
    "foldserve_cold_nocache",
    "openfold3_warm",
)
#: What a fresh process costs before its first job, until one is measured (GPU start-up).
PROCESS_PRIOR_S = 30.0
#: How long a process may run past the budget's end before it is stopped.
GRACE_S = 5.0
CHILD_TAG = "FOLDSERVE_BENCH "
#: The dry run's sizes: every mode on the CPU in about a minute.
DRY_RUN = {
    "lengths": "16,24",
    "blocks": 2,
    "recycles": 0,
    "msa_rows": 8,
    "samples": 1,
    "precision": "float32",
}
FULL_RUN = {
    "lengths": "100,300,600,1000",
    "blocks": FULL_BLOCKS,
    "recycles": 3,
    "msa_rows": 256,
    "samples": 0,
    "precision": "bfloat16",
}
#: On a CPU, XLA's cheapest optimisation level compiles the network in a third of the time.
DRY_RUN_XLA_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def synthetic_msa(length: int, folder: Path, rows: int = 256) -> Path:
    """A random query and ``rows - 1`` mutants of it (15% of positions changed)."""
    rng = np.random.default_rng(length)
    query = rng.choice(list(AMINO_ACIDS), size=length)
    lines = [">query", "".join(query)]
    for row in range(1, rows):
        mutant = query.copy()
        changed = rng.random(length) < 0.15
        mutant[changed] = rng.choice(list(AMINO_ACIDS), size=int(changed.sum()))
        lines += [f">mutant_{row}", "".join(mutant)]
    path = folder / f"synthetic_{length}.a3m"
    path.write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------------------------------------
# Children: the work that touches a device, each in a process of its own.


def emit(record: dict[str, Any]) -> None:
    """One result line for the parent (everything else a child prints goes to stderr)."""
    print(CHILD_TAG + json.dumps(record), flush=True)


def child_make_af2_weights(spec: dict[str, Any]) -> None:
    from foldserve.fold.alphafold2.test_weights import make_test_weights

    make_test_weights(Path(spec["params"]), evoformer_blocks=spec["blocks"], models=(MODEL,))
    emit({"made": spec["params"]})


def child_make_of3_weights(spec: dict[str, Any]) -> None:
    from foldserve.fold.openfold3.test_weights import make_test_checkpoint

    made = make_test_checkpoint(Path(spec["params"]), full_size=spec["full_size"])
    emit({"made": str(made.checkpoint), "parameters": made.parameters})


class Forward:
    """Forward seconds per length as measured, extrapolated with length cubed (triangle updates
    grow so; a conservative guess for what lies between)."""

    def __init__(self, measured: dict[int, float] | None = None) -> None:
        self.measured = dict(measured or {})

    def estimate(self, length: int) -> float | None:
        below = [n for n in self.measured if n <= length]
        if not below:
            return None
        known = max(below)
        return self.measured[known] * (length / known) ** 3


def _fits(estimate: float | None, deadline: float) -> bool:
    """Whether a job estimated to take ``estimate`` seconds (None: not known yet) ends in time."""
    now = time.time()
    return now < deadline and (estimate is None or now + estimate <= deadline)


def child_af2_warm(spec: dict[str, Any]) -> None:
    """Mode ``foldserve_warm``: one Predictor, every length twice, shortest first."""
    import jax

    from foldserve.fold.alphafold2.predictor import Predictor
    from foldserve.fold.outputs import write_prediction
    from foldserve.fold.results import PredictOptions
    from foldserve.msa.reading import read

    params, out, deadline = Path(spec["params"]), Path(spec["work"]), spec["deadline"]
    started = time.perf_counter()
    predictor = Predictor(params, precision=spec["precision"])
    emit({"mode": "foldserve_warm", "startup_s": time.perf_counter() - started})
    options = PredictOptions(models=(MODEL,), num_recycles=spec["recycles"])
    device = jax.devices()[0]
    forward, compiles = Forward(), [0.0]
    for length, msa_path in sorted((int(k), v) for k, v in spec["msas"].items()):
        record: dict[str, Any] = {"mode": "foldserve_warm", "length": length}
        guess = forward.estimate(length)
        first_guess = None if guess is None else guess + 1.25 * max(compiles)
        if not _fits(first_guess, deadline):
            emit({**record, "status": "skipped", "reason": _over(first_guess, deadline)})
            continue
        msa = read(Path(msa_path))
        tick = time.perf_counter()
        prediction = predictor.predict(msa, options)
        write_prediction(prediction, out / f"warm_{length}_first")
        record["first_s"] = time.perf_counter() - tick
        record["compile_s"] = prediction.timings.get("compile", 0.0)
        compiles.append(record["compile_s"])
        record["first_model_s"] = prediction.timings.get("predict")
        second_guess = record["first_s"] - record["compile_s"]
        if _fits(second_guess, deadline):
            tick = time.perf_counter()
            prediction = predictor.predict(msa, options)
            write_prediction(prediction, out / f"warm_{length}")
            record["seconds"] = time.perf_counter() - tick
            record["model_s"] = prediction.timings.get("predict")
        else:
            record["seconds"] = None
            record["reason"] = "warm repeat " + _over(second_guess, deadline)
        forward.measured[length] = record["seconds"] or second_guess
        shape = prediction.shape
        record["shape"] = [shape.length, shape.clusters, shape.extra]
        record["timings"] = prediction.timings
        record.update(_af2_memory(predictor, device, shape))
        emit({**record, "status": "done"})


def _af2_memory(predictor: Any, device: Any, shape: Any) -> dict[str, Any]:
    """Peak device memory so far, XLA's account of the compiled function, the guard's estimate."""
    memory: dict[str, Any] = {"peak_bytes": None, "xla_bytes": None, "estimate_bytes": None}
    stats = device.memory_stats() or {}
    memory["peak_bytes"] = stats.get("peak_bytes_in_use")
    memory["bytes_limit"] = stats.get("bytes_limit")
    try:
        compiled = [f for (_, s), f in predictor._compiled.items() if s == shape]
        analysis = compiled[0].memory_analysis()
        memory["xla_bytes"] = {
            name: int(getattr(analysis, f"{name}_size_in_bytes"))
            for name in ("argument", "output", "temp", "generated_code")
        }
    except Exception as exc:  # private structure of the Predictor: a figure lost, not a run
        memory["xla_bytes_error"] = f"{type(exc).__name__}: {exc}"
    try:
        from foldserve.fold.alphafold2.shapes import estimate_bytes

        memory["estimate_bytes"] = estimate_bytes(shape, predictor._param_bytes())
    except Exception as exc:
        memory["estimate_bytes_error"] = f"{type(exc).__name__}: {exc}"
    return memory


def child_of3_warm(spec: dict[str, Any]) -> None:
    """Mode ``openfold3_warm``: one engine, a warm-up at the smallest length, then each."""
    import torch

    from foldserve.fold.engine import load_engine
    from foldserve.fold.results import PredictOptions
    from foldserve.msa.reading import read

    deadline = spec["deadline"]
    started = time.perf_counter()
    engine = load_engine("openfold3", Path(spec["params"]), precision=spec["precision"])
    options = PredictOptions(
        num_recycles=spec["recycles"], num_diffusion_samples=spec["samples"] or None
    )
    msas = sorted((int(k), v) for k, v in spec["msas"].items())
    on_cuda = torch.cuda.is_available()
    engine.predict(read(Path(msas[0][1])), options)
    emit(
        {
            "mode": "openfold3_warm",
            "startup_s": time.perf_counter() - started,
            "precision": engine.engine.precision,
            "device": engine.engine.device,
        }
    )
    forward = Forward()
    for length, msa_path in msas:
        record: dict[str, Any] = {"mode": "openfold3_warm", "length": length}
        guess = forward.estimate(length)
        if not _fits(guess, deadline):
            emit({**record, "status": "skipped", "reason": _over(guess, deadline)})
            continue
        msa = read(Path(msa_path))
        if on_cuda:
            torch.cuda.reset_peak_memory_stats()
        tick = time.perf_counter()
        prediction = engine.predict(msa, options)
        record["seconds"] = forward.measured[length] = time.perf_counter() - tick
        record["model_s"] = prediction.timings.get("predict")
        record["samples"] = len(prediction.ranked)
        record["peak_bytes"] = torch.cuda.max_memory_allocated() if on_cuda else None
        emit({**record, "status": "done"})


CHILDREN = {
    "make-af2-weights": child_make_af2_weights,
    "make-of3-weights": child_make_of3_weights,
    "af2-warm": child_af2_warm,
    "of3-warm": child_of3_warm,
}


def _over(estimate: float | None, deadline: float) -> str:
    """Why a job is skipped."""
    left = deadline - time.time()
    if estimate is None or left <= 0:
        return "the budget was spent"
    return f"would need about {estimate:.0f} s, {left:.0f} s of the budget left"


# ---------------------------------------------------------------------------------------------
# The parent: plans, runs children and processes, records.


class Runner:
    """Starts children and processes, each stopped at the budget's end."""

    def __init__(self, deadline: float, env: dict[str, str]) -> None:
        self.deadline = deadline
        self.env = env

    def lines(self, command: list[str], env: dict[str, str] | None = None) -> Iterator[str]:
        """The output lines of ``command`` as they come; its stderr passed through. Raises
        :class:`TimeoutError` when it outlives the budget, :class:`RuntimeError` on failure."""
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env or self.env,
            cwd=ROOT,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        errors: list[str] = []

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.put(line)
            lines.put(None)

        def relay() -> None:
            assert process.stderr is not None
            for line in process.stderr:
                sys.stderr.write(line)
                errors[:] = [*errors[-4:], line.strip()]

        threading.Thread(target=read, daemon=True).start()
        errors_read = threading.Thread(target=relay, daemon=True)
        errors_read.start()
        while True:
            try:
                line = lines.get(timeout=max(0.1, self.deadline + GRACE_S - time.time()))
            except queue.Empty:
                process.kill()
                process.wait()
                raise TimeoutError("stopped at the end of the budget") from None
            if line is None:
                break
            yield line
        if process.wait() != 0:
            errors_read.join(timeout=5)
            last = next((line for line in reversed(errors) if line), "")
            raise RuntimeError(f"exit status {process.returncode}: {last}")

    def child(self, name: str, spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for line in self.lines(child_command(name, spec)):
            if line.startswith(CHILD_TAG):
                yield json.loads(line[len(CHILD_TAG) :])
            else:
                sys.stderr.write(line)

    def timed(
        self, command: list[str], env: dict[str, str] | None = None
    ) -> tuple[float, list[str]]:
        """Wall seconds of ``command`` and its output's last lines."""
        tick = time.perf_counter()
        output: list[str] = []
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env or self.env,
            cwd=ROOT,
        )
        try:
            stdout, _ = process.communicate(timeout=max(1.0, self.deadline + GRACE_S - time.time()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise TimeoutError("stopped at the end of the budget") from None
        output = stdout.splitlines()[-20:]
        if process.returncode != 0:
            last = next((line for line in reversed(output) if line.strip()), "")
            raise RuntimeError(f"exit status {process.returncode}: {last.strip()}")
        return time.perf_counter() - tick, output


class Plan:
    """Estimates from what has been measured, for the budget guard."""

    def __init__(self) -> None:
        self.forward = Forward()
        self.compile_s: float | None = None
        self.startup_s: float | None = None

    def learn_warm(self, job: dict[str, Any]) -> None:
        self.forward.measured[job["length"]] = job.get("seconds") or job["first_s"]
        self.compile_s = max(self.compile_s or 0.0, job.get("compile_s") or 0.0)

    def learn_process(self, wall: float, inside: float) -> None:
        """A process's cost beyond the work it reports (imports, device start, outputs)."""
        overhead = max(0.0, wall - inside)
        self.startup_s = overhead if self.startup_s is None else max(self.startup_s, overhead)

    def process(self, length: int, *, compiles: bool) -> float | None:
        forward = self.forward.estimate(length)
        if forward is None:
            return None
        compile_s = (self.compile_s or 0.0) * (1.25 if compiles else 0.25)
        return (self.startup_s or PROCESS_PRIOR_S) + compile_s + forward


def run(args: argparse.Namespace) -> int:
    started = time.time()
    deadline = started + args.budget_s
    lengths = sorted(int(n) for n in args.lengths.split(","))
    modes = [m for m in MODES if m in args.modes.split(",")]
    work = Path(args.work or tempfile.mkdtemp(prefix="foldserve-gpu-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    args.work = str(work)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if args.dry_run:
        env.setdefault("XLA_FLAGS", DRY_RUN_XLA_FLAGS)
    settings = {
        "dry_run": args.dry_run,
        "model": MODEL,
        "lengths": lengths,
        "modes": modes,
        "blocks": args.blocks,
        "recycles": args.recycles,
        "msa_rows": args.msa_rows,
        "precision": args.precision,
        "openfold3_samples": args.samples or "OpenFold3's default",
        "budget_s": args.budget_s,
        "colabfold_env": COLABFOLD_ENV,
        "work": str(work),
    }
    results = Results(Path(args.out), settings)
    runner = Runner(deadline, env)
    plan = Plan()
    msas = {n: str(synthetic_msa(n, work, args.msa_rows)) for n in lengths}

    # The weights given are linked into a folder of the run's own: its compilation cache and
    # shape records start empty, whatever earlier runs left beside the weights.
    af2 = work / "af2-params"
    if args.params_dir:
        _link_weights(Path(args.params_dir), af2)
    if set(modes) - {"openfold3_warm"} and not _ensure_af2_weights(
        af2, args.blocks, runner, results
    ):
        for mode in modes[:-1] if modes[-1] == "openfold3_warm" else modes:
            _missing(results, mode, msas, RuntimeError("no AlphaFold2 weights (see setup)"))
        modes = [m for m in modes if m == "openfold3_warm"]
    for mode in modes:
        if mode == "foldserve_warm":
            _warm(runner, results, plan, af2, msas, args)
        elif mode == "openfold3_warm":
            _openfold3(runner, results, work, msas, args)
        else:
            for length in lengths:
                _process_job(mode, length, runner, results, plan, af2, msas[length], work, args)
    results.data["complete"] = True
    results.data["elapsed_s"] = time.time() - started
    results.save()
    print((Path(args.out) / MARKDOWN_NAME).read_text(), file=sys.stderr)
    failed = [j for j in results.data["jobs"] if j.get("status") == "failed"]
    return 1 if failed else 0


def _ensure_af2_weights(params: Path, blocks: int, runner: Runner, results: Results) -> bool:
    from foldserve.fold.weights import MODEL_NUMBERS, model_param_file

    if model_param_file(params, MODEL).is_file():
        results.data["setup"]["af2_weights"] = {"params": str(params), "made_s": 0.0}
    else:
        tick = time.perf_counter()
        spec = {"params": str(params), "blocks": blocks}
        env = dict(runner.env, JAX_PLATFORMS="cpu")  # shapes only: the GPU stays untouched
        try:
            runner.timed(child_command("make-af2-weights", spec), env=env)
        except (RuntimeError, TimeoutError) as exc:
            results.data["setup"]["af2_weights"] = {"error": str(exc)}
            results.save()
            return False
        made = {"params": str(params), "made_s": time.perf_counter() - tick}
        results.data["setup"]["af2_weights"] = made
    # colabfold_batch downloads the weights unless this marker says they are in place, and
    # reads every model's file whichever it runs: the others are model 3's, linked (it keeps
    # only the parameters of the network it compiled, so models 1 and 2 need no templates').
    (params / "params" / "download_finished.txt").touch()
    for number in MODEL_NUMBERS:
        path = model_param_file(params, number)
        if not path.exists():
            path.symlink_to(model_param_file(params, MODEL).name)
    results.save()
    return True


def child_command(name: str, spec: dict[str, Any]) -> list[str]:
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        name,
        "--spec",
        json.dumps(spec),
    ]


def _warm(
    runner: Runner,
    results: Results,
    plan: Plan,
    params: Path,
    msas: dict[int, str],
    args: argparse.Namespace,
) -> None:
    spec = {
        "params": str(params),
        "work": str(Path(args.work) / "warm"),
        "msas": msas,
        "recycles": args.recycles,
        "precision": args.precision,
        "deadline": runner.deadline,
    }
    if _spent(runner, results, "foldserve_warm", msas):
        return
    try:
        for record in runner.child("af2-warm", spec):
            if "length" not in record:
                results.data["setup"]["foldserve_warm"] = record
                continue
            if record["status"] == "done":
                plan.learn_warm(record)
            results.add(record)
    except (RuntimeError, TimeoutError) as exc:
        _missing(results, "foldserve_warm", msas, exc)


def _spent(runner: Runner, results: Results, mode: str, msas: dict[int, str]) -> bool:
    """Whether the budget is spent: then each length of ``mode`` is recorded as skipped."""
    if time.time() < runner.deadline:
        return False
    for length in sorted(msas):
        record = {"mode": mode, "length": length, "status": "skipped"}
        results.add({**record, "reason": "the budget was spent"})
    return True


def _missing(results: Results, mode: str, msas: dict[int, str], exc: Exception) -> None:
    """Lengths a child did not report, recorded as failed (or stopped) with its reason."""
    status = "stopped" if isinstance(exc, TimeoutError) else "failed"
    reported = {j.get("length") for j in results.data["jobs"] if j.get("mode") == mode}
    for length in sorted(set(msas) - reported):
        results.add({"mode": mode, "length": length, "status": status, "reason": str(exc)})


#: colabfold_batch's process environment: JAX's default memory pool instead of ColabFold's
#: unified memory at 4x the GPU (see the module's docstring).
COLABFOLD_ENV = {"TF_FORCE_UNIFIED_MEMORY": "0", "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.75"}
#: ColabFold's console entry point, ``colabfold.batch:main``, as its ``colabfold_batch`` script
#: runs it; on weights of fewer Evoformer blocks than the published 48 (the dry run) ColabFold's
#: network is built with their depth first, the only change.
COLABFOLD_MAIN = """
import sys
blocks = int(sys.argv.pop(1))
if blocks != 48:
    from alphafold.model import config
    built = config.model_config
    def with_depth(name):
        cfg = built(name)
        cfg.model.embeddings_and_evoformer.evoformer_num_block = blocks
        return cfg
    config.model_config = with_depth
from colabfold.batch import main
sys.argv[0] = "colabfold_batch"
sys.exit(main())
"""
COLABFOLD_TOOK = re.compile(r"took ([0-9.]+)s \(\d+ recycles\)")


def _process_job(
    mode: str,
    length: int,
    runner: Runner,
    results: Results,
    plan: Plan,
    params: Path,
    msa: str,
    work: Path,
    args: argparse.Namespace,
) -> None:
    """One job in a fresh process: colabfold_batch, or foldserve predict with or without the
    persistent compilation cache."""
    record: dict[str, Any] = {"mode": mode, "length": length}
    estimate = plan.process(length, compiles=mode != "foldserve_cold_cache")
    if not _fits(estimate, runner.deadline):
        results.add({**record, "status": "skipped", "reason": _over(estimate, runner.deadline)})
        return
    target = work / f"{mode}_{length}"
    shutil.rmtree(target, ignore_errors=True)
    env = runner.env
    if mode == "colabfold_batch":
        env = dict(runner.env, **COLABFOLD_ENV)
        command = [
            sys.executable, "-c", COLABFOLD_MAIN, str(args.blocks), msa, str(target),
            "--data", str(params), "--model-type", "alphafold2_ptm", "--num-models", "1",
            "--model-order", str(MODEL), "--num-recycle", str(args.recycles),
        ]  # fmt: skip
    else:
        if mode == "foldserve_cold_nocache":
            params = _uncached(params, work)
        command = [
            sys.executable, "-m", "foldserve.cli", "predict", msa, str(target),
            "--params-dir", str(params), "--models", str(MODEL),
            "--num-recycles", str(args.recycles), "--precision", args.precision,
        ]  # fmt: skip
    try:
        wall, output = runner.timed(command, env=env)
    except (RuntimeError, TimeoutError) as exc:
        status = "stopped" if isinstance(exc, TimeoutError) else "failed"
        results.add({**record, "status": status, "reason": str(exc)})
        return
    record["seconds"] = wall
    if mode == "colabfold_batch":
        # ColabFold logs each model's time, its compile included (the first model's).
        took = [float(m) for line in output for m in COLABFOLD_TOOK.findall(line)]
        record["reported_s"] = took[-1] if took else None
        inside = record["reported_s"] or 0.0
    else:
        timings = json.loads((target / "timings.json").read_text())
        record["timings"] = timings
        record["compile_s"] = timings.get("compile")
        record["model_s"] = timings.get("predict")
        inside = float(timings.get("total", 0.0))
    plan.learn_process(wall, inside)
    results.add({**record, "status": "done"})


def _uncached(params: Path, work: Path) -> Path:
    """A weights folder of its own (the weights linked in) whose compilation cache is empty."""
    folder = work / "af2-params-nocache"
    shutil.rmtree(folder, ignore_errors=True)
    _link_weights(params, folder)
    return folder


def _link_weights(source: Path, folder: Path) -> None:
    """``folder/params`` holding links to the files of ``source/params``."""
    (folder / "params").mkdir(parents=True, exist_ok=True)
    for path in (source / "params").iterdir():
        link = folder / "params" / path.name
        if path.is_file() and not link.exists():
            link.symlink_to(path.resolve())


def _openfold3(
    runner: Runner, results: Results, work: Path, msas: dict[int, str], args: argparse.Namespace
) -> None:
    import importlib.util

    if importlib.util.find_spec("openfold3") is None:
        for length in sorted(msas):
            results.add(
                {
                    "mode": "openfold3_warm",
                    "length": length,
                    "status": "skipped",
                    "reason": "the openfold3 package is not installed here",
                }
            )
        return
    from foldserve.fold.openfold3.layout import installed_checkpoint

    if _spent(runner, results, "openfold3_warm", msas):
        return
    params = Path(args.of3_params_dir) if args.of3_params_dir else work / "of3-params"
    if installed_checkpoint(params) is None:
        tick = time.perf_counter()
        spec = {"params": str(params), "full_size": not args.dry_run}
        try:
            runner.timed(
                child_command("make-of3-weights", spec),
                env=dict(runner.env, CUDA_VISIBLE_DEVICES=""),
            )
        except (RuntimeError, TimeoutError) as exc:
            _missing(results, "openfold3_warm", msas, exc)
            return
        results.data["setup"]["of3_weights"] = {"made_s": time.perf_counter() - tick}
    spec = {
        "params": str(params),
        "msas": msas,
        "recycles": args.recycles,
        "samples": args.samples,
        "precision": args.precision,
        "deadline": runner.deadline,
    }
    try:
        for record in runner.child("of3-warm", spec):
            if "length" not in record:
                results.data["setup"]["openfold3_warm"] = record
            else:
                results.add(record)
    except (RuntimeError, TimeoutError) as exc:
        _missing(results, "openfold3_warm", msas, exc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", default=os.environ.get("OUT") or str(ROOT / "bench" / "out" / "gpu")
    )
    parser.add_argument(
        "--work", help="folder for weights, inputs and outputs (default: a new temporary one)"
    )
    parser.add_argument("--lengths", help="residues per job, comma-separated (100,300,600,1000)")
    parser.add_argument("--modes", default=",".join(MODES), help="which of " + ", ".join(MODES))
    parser.add_argument(
        "--budget-s", type=float, default=540.0, help="seconds the whole run may take"
    )
    parser.add_argument("--params-dir", help="AlphaFold2 weights to use (default: made, random)")
    parser.add_argument("--of3-params-dir", help="OpenFold3 weights to use (default: made, random)")
    parser.add_argument("--blocks", type=int, help="Evoformer blocks of the weights made (48)")
    parser.add_argument("--recycles", type=int, help="recycles per job (3)")
    parser.add_argument("--msa-rows", type=int, help="rows of each synthetic MSA (256)")
    parser.add_argument("--samples", type=int, help="OpenFold3 diffusion samples (its default, 5)")
    parser.add_argument("--precision", choices=("bfloat16", "float32", "auto"), help="(bfloat16)")
    parser.add_argument(
        "--dry-run", action="store_true", help="tiny sizes, for a CPU: " + json.dumps(DRY_RUN)
    )
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        CHILDREN[args.child](json.loads(args.spec))
        return 0
    for name, default in (DRY_RUN if args.dry_run else FULL_RUN).items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())

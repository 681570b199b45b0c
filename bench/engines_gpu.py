"""Benchmark, for a GPU: AlphaFold2 and OpenFold3 per length, side by side, warm.

What it measures, in one run: full-size random weights for both engines (AlphaFold2 pTM with
48 Evoformer blocks, model 3; OpenFold3's whole configuration: 48 Pairformer blocks, 200
diffusion steps, 5 samples), one warm engine each, and for each length (100 to 1,000
residues) one job: a random query with a 256-row MSA of point mutants, 3 recycles, seed 0.
Each engine first runs the smallest length once (compile, CUDA context, caches), then each
length is timed once as a job: the wall time of ``predict`` (features, compile if any,
network). AlphaFold2 pads to its shape buckets; its compile time is reported apart.

Run where a GPU is (``nvidia-smi`` works) from the repository root:
``python bench/engines_gpu.py [--lengths 100,200,400,600,800,1000] [--out results.json]``.
It prints a Markdown table to copy into ``bench/RESULTS.md``. Making the random weights takes
a few minutes (OpenFold3's checkpoint is about 1.3 GB, AlphaFold2's about 0.4 GB per model);
they go to ``--work`` (default a temporary folder) and are reused when it is given again.
Not a test: nothing here fails on a slow result.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from foldserve.fold.engine import Engine, EngineName, load_engine
from foldserve.fold.results import PredictOptions
from foldserve.msa.reading import read

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
MSA_ROWS = 256


def synthetic_msa(length: int, folder: Path) -> Path:
    """A random query and ``MSA_ROWS - 1`` mutants of it (15% of positions changed)."""
    rng = np.random.default_rng(length)
    query = rng.choice(list(AMINO_ACIDS), size=length)
    lines = [">query", "".join(query)]
    for row in range(1, MSA_ROWS):
        mutant = query.copy()
        changed = rng.random(length) < 0.15
        mutant[changed] = rng.choice(list(AMINO_ACIDS), size=int(changed.sum()))
        lines += [f">mutant_{row}", "".join(mutant)]
    path = folder / f"synthetic_{length}.a3m"
    path.write_text("\n".join(lines) + "\n")
    return path


def make_weights(work: Path) -> Path:
    from foldserve.fold.alphafold2.test_weights import make_test_weights
    from foldserve.fold.openfold3.layout import is_test_checkpoint
    from foldserve.fold.openfold3.test_weights import make_test_checkpoint
    from foldserve.fold.weights import model_param_file

    if not model_param_file(work, 3).is_file():
        make_test_weights(work, evoformer_blocks=48, models=(3,))
    if not is_test_checkpoint(work):
        make_test_checkpoint(work, full_size=True)
    return work


def time_engine(engine: Engine, msas: dict[int, Path]) -> dict[int, dict[str, float]]:
    options = PredictOptions(models=(3,), num_recycles=3)
    engine.predict(read(msas[min(msas)]), options)  # warm-up: context, kernels, first compile
    timings = {}
    for length, path in sorted(msas.items()):
        msa = read(path)
        started = time.perf_counter()
        prediction = engine.predict(msa, options)
        timings[length] = {
            "seconds": time.perf_counter() - started,
            "compile": prediction.timings.get("compile", 0.0),
            "runs": len(prediction.ranked),
        }
        print(f"{engine.name} {length}: {timings[length]['seconds']:.1f} s", flush=True)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="100,200,400,600,800,1000")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    lengths = [int(n) for n in args.lengths.split(",")]
    work = args.work or Path(tempfile.mkdtemp(prefix="foldserve-gpu-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    params = make_weights(work / "params")
    msas = {length: synthetic_msa(length, work) for length in lengths}
    names: tuple[EngineName, ...] = ("alphafold2", "openfold3")
    results: dict[str, dict[int, dict[str, float]]] = {}
    devices: dict[str, str] = {}
    for name in names:
        engine = load_engine(name, params)
        devices[name] = engine.engine.device
        results[name] = time_engine(engine, msas)
        del engine
    print("\n| length | AlphaFold2 s (compile s) | OpenFold3 s (5 samples) | OF3 / AF2 |")
    print("|---|---|---|---|")
    for length in lengths:
        af2 = results["alphafold2"][length]
        of3 = results["openfold3"][length]
        print(
            f"| {length} | {af2['seconds']:.1f} ({af2['compile']:.1f}) | {of3['seconds']:.1f} "
            f"| {of3['seconds'] / af2['seconds']:.2f}x |"
        )
    if args.out:
        args.out.write_text(json.dumps({"devices": devices, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""What makes AlphaFold2's forward pass faster on this machine's CPU: XLA options, the
chunk AlphaFold's attention and transition layers run in (``global_config.subbatch_size``), and
the precision.

Each (job, XLA_FLAGS, chunk) runs in a process of its own (``XLA_FLAGS`` is read when JAX
starts): a Predictor on full-depth (48-block) test weights, at the exact shape, no compile cache,
model 1 without recycles, on an MSA reduced to 32 rows (bench/fold_engine.py's job 3 by
default); the best of two warm passes after the first is printed. ``--chunks`` forces chunks
(``none``: the layers whole); without it the chunk is foldserve's own choice
(``shapes.chunk_for``). ``--precision`` runs each line in float32 (the CPU default) or
bfloat16.

    .venv/bin/python bench/cpu_forward.py [--jobs msa/a3m/X.a3m …]
        [--xla-flags= --xla-flags='--xla_cpu_…' …] [--chunks 4 16 none]
        [--precision float32 bfloat16]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from foldserve.fold.engine import Precision

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = Path(os.environ.get("FOLDSERVE_TESTDATA") or ROOT.parent / "shared" / "testdata")
#: bench/fold_engine.py's job 3 (104 residues), reduced to as many rows as there.
DEFAULT_JOB = "msa/fasta_aligned/pfam_PF02518_HATPase_c_seed_hmmalign_no_inserts.fasta"
ROWS = 32
PRECISIONS: tuple[Precision, ...] = ("float32", "bfloat16")
#: ``--chunks`` value for foldserve's own choice of chunk.
CHOSEN = "chosen"

DEFAULT_FLAGS = (
    "",
    "--xla_cpu_use_onednn=true",
    "--xla_cpu_prefer_vector_width=512",
    "--xla_cpu_use_xnnpack=true",
)


def child(weights: Path, job: str, chunk: str, precision: Precision) -> None:
    from foldserve.fold.alphafold2 import predictor as predictor_module
    from foldserve.fold.alphafold2.features import InputShape
    from foldserve.fold.alphafold2.predictor import Predictor
    from foldserve.fold.results import PredictOptions
    from foldserve.msa import FilterSettings, filter_msa, read

    if chunk != CHOSEN:
        forced = None if chunk == "none" else int(chunk)

        def chunk_for(shape: InputShape, *, on_cpu: bool) -> int | None:
            return forced

        setattr(predictor_module, "chunk_for", chunk_for)  # noqa: B010 (the predictor's own name)
    predictor = Predictor(weights, precision=precision, compile_cache=False, bucketing=False)
    msa, _ = filter_msa(read(TESTDATA / job), FilterSettings(max_seqs=ROWS))
    options = PredictOptions(models=(1,), num_recycles=0)
    started = time.perf_counter()
    predictor.predict(msa, options)
    first = time.perf_counter() - started
    passes = []
    for _ in range(2):
        started = time.perf_counter()
        prediction = predictor.predict(msa, options)
        passes.append(time.perf_counter() - started)
    result = {
        "length": msa.query_length,
        "first_s": first,
        "pass_s": min(passes),
        "plddt": prediction.best.mean_plddt,
        "chunk": predictor.shape_choice(msa, options).chunk,
    }
    print(json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", nargs="+", default=[DEFAULT_JOB], help="MSAs under testdata")
    parser.add_argument(
        "--xla-flags",
        action="append",
        metavar="=FLAGS",
        help="an XLA_FLAGS set, once per set, written with '=' (its value starts with '--'): "
        + " ".join(f"--xla-flags='{f}'" for f in DEFAULT_FLAGS),
    )
    parser.add_argument("--chunks", nargs="+", default=[CHOSEN], help="e.g. 4 16 none")
    parser.add_argument(
        "--precision", nargs="+", choices=PRECISIONS, default=["float32"], help="one or both"
    )
    parser.add_argument("--job", help=argparse.SUPPRESS)
    parser.add_argument("--chunk", help=argparse.SUPPRESS)
    parser.add_argument("--weights", type=Path, help="48-block test weights (made if absent)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    weights = args.weights or Path(tempfile.gettempdir()) / "foldserve-bench-weights48"
    if args.child:
        child(weights, args.job, args.chunk, args.precision[0])
        return
    if not (weights / "params" / "TEST_WEIGHTS.json").exists():
        from foldserve.fold.alphafold2.test_weights import make_test_weights

        make_test_weights(weights, evoformer_blocks=48, seed=0)
    print(
        "| residues | precision | XLA_FLAGS | chunk | first (compile + pass) | warm pass | pLDDT |"
    )
    print("|---|---|---|---|---|---|---|")
    lines = itertools.product(args.jobs, args.precision, args.xla_flags or [""], args.chunks)
    for job, precision, flags, chunk in lines:
        command = [sys.executable, __file__, "--child", "--job", job, "--chunk", chunk]
        command += ["--weights", str(weights), "--precision", precision]
        ran = subprocess.run(
            command,
            env=dict(os.environ, XLA_FLAGS=flags),
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(ran.stdout.strip().splitlines()[-1])
        print(
            f"| {result['length']} | {precision} | `{flags or '(none)'}` | "
            f"{result['chunk'] or 'whole'} | "
            f"{result['first_s']:.1f} s | {result['pass_s']:.2f} s | {result['plddt']:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# The GPU benchmark in one call of the lent GPU machine (an H200; under 10 minutes in all).
#
# What it measures (bench/engines_gpu.py's docstring has the details): per length (100, 300,
# 600 and 1,000 residues; a 256-row MSA; AlphaFold2 pTM model 3, 48 Evoformer blocks of random
# weights, 3 recycles, bfloat16), in this order so that the most valuable figures come first:
# foldserve warm (and its compile, peak device memory, XLA's memory account and the memory
# guard's estimate), colabfold_batch (a process per job), foldserve cold with the persistent
# compilation cache and without it (a process per job), then OpenFold3 where it is installed
# (not from the wheels below: its run-time imports are twice the 64 MiB a call carries).
# Each figure is written the moment it exists; a job that would not end inside --budget-s is
# skipped and said so.
#
# Figures, under $OUT (the run tool's folder that comes back; bench/out/gpu elsewhere):
#   gpu_bench.json  every figure, the settings, the machine, what was skipped and why
#   gpu_bench.md    the table for bench/RESULTS.md
#   gpu_bench.log   this script's whole output
#   env.txt         nvidia-smi, versions, and the carried packages' import check
#
# The GPU machine reaches no package registry: it has Python 3.12 with JAX (CUDA), PyTorch and
# numpy; what else foldserve and colabfold_batch need travels as wheels in bench/gpu-wheels
# (git-ignored; pins in bench/gpu-wheels.txt), installed with `pip --no-index --target` into a
# folder put first on PYTHONPATH, with this checkout's src/ (no editable install: the package
# says Python 3.11, the machine has 3.12).
#
# 1. Here, once (needs PyPI): make gpu-wheels            (about 11 MB, checked under 64 MiB)
# 2. There, through the session's `run` tool, in one call:
#      command:   bash bench/gpu.sh
#      carry:     ["bench/gpu-wheels"]
#      timeout_s: 600
#    then copy gpu_bench.md into bench/RESULTS.md, with the date and the machine.
# Dry run here, on the CPU, tiny sizes, no wheels installed (tests/test_gpu_bench.py runs it):
#      bash bench/gpu.sh --dry-run
#
# Options: --dry-run; --budget-s SECONDS (default 540: the whole script, wheel install included,
# leaving the run tool's 600 s limit a margin); anything else goes to bench/engines_gpu.py
# (--lengths 100,300, --modes foldserve_warm,colabfold_batch, --work DIR, ...).
set -euo pipefail

cd "$(dirname "$0")/.."
dry_run=0
budget=540
passed=()
while [ $# -gt 0 ]; do
    case $1 in
        --dry-run) dry_run=1 ;;
        --budget-s) budget=${2:?--budget-s needs a number of seconds}; shift ;;
        --budget-s=*) budget=${1#--budget-s=} ;;
        *) passed+=("$1") ;;
    esac
    shift
done

out=${OUT:-bench/out/gpu}
mkdir -p "$out"
exec > >(tee -a "$out/gpu_bench.log") 2>&1
echo "bench/gpu.sh: $(date -u +%FT%TZ), budget ${budget} s, dry run: ${dry_run}"

if [ "$dry_run" = 1 ]; then
    python=${PYTHON:-.venv/bin/python}
    passed+=(--dry-run)
else
    python=${PYTHON:-python3}
    wheels=bench/gpu-wheels
    if ! compgen -G "$wheels/*.whl" >/dev/null; then
        echo "no wheels in $wheels: run 'make gpu-wheels' where PyPI is reached, and carry $wheels" >&2
        exit 2
    fi
    site=${FOLDSERVE_BENCH_SITE:-/tmp/foldserve-bench-site}
    "$python" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target "$site" "$wheels"/*.whl
    export PYTHONPATH="$site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
    {
        nvidia-smi || true
        "$python" --version
        "$python" -m pip list 2>/dev/null | grep -i -E '^(jax|jaxlib|jax-cuda|numpy|torch|typing.extensions|pandas|scipy|chex|rich) ' || true
        "$python" -c 'import jax; print("jax", jax.__version__, jax.devices())'
    } >"$out/env.txt" 2>&1
    # The carried packages import on this Python, or the run stops here, not minutes later.
    if ! "$python" -c 'import haiku, alphafold.model.modules, colabfold.batch, foldserve.cli.predict' \
        >>"$out/env.txt" 2>&1; then
        cat "$out/env.txt"
        echo "the carried packages do not import (above): see bench/gpu-wheels.txt" >&2
        exit 2
    fi
    echo "wheels installed and imported in ${SECONDS} s"
fi

export PYTHONUNBUFFERED=1
"$python" bench/engines_gpu.py --out "$out" --budget-s "$((budget - SECONDS))" "${passed[@]}"

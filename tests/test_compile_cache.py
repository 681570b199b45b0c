"""The persistent compilation cache: a fresh worker process skips compiling seen shapes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from foldserve.fold.alphafold2.predictor import CPU_COMPILER_OPTIONS, compiler_options
from tests.conftest import data

WORKER = """
import json, sys
from pathlib import Path
import jax.monitoring
events = []
jax.monitoring.register_event_listener(lambda name, **_: events.append(name))
from foldserve import Predictor, PredictOptions
from foldserve.msa import read
predictor = Predictor(Path(sys.argv[1]))
predictor.predict(read(sys.argv[2]), PredictOptions(models=(1,), num_recycles=0))
print(json.dumps({
    "hits": events.count("/jax/compilation_cache/cache_hits"),
    "misses": events.count("/jax/compilation_cache/cache_misses"),
}))
"""


def worker(param_dir: Path, msa: Path) -> dict[str, int]:
    result = subprocess.run(
        [sys.executable, "-c", WORKER, str(param_dir), str(msa)],
        capture_output=True,
        check=True,
    )
    counts: dict[str, int] = json.loads(result.stdout.decode().strip().splitlines()[-1])
    return counts


def test_second_worker_process_reuses_compiled_network(test_params: Path, tmp_path: Path) -> None:
    # A private copy of the weights, so the cache starts empty whatever ran before.
    param_dir = tmp_path / "volume"
    shutil.copytree(test_params / "params", param_dir / "params")
    msa = data("msa/a3m/openfold_2q2k_A_bfd_uniclust_hits.a3m")
    first = worker(param_dir, msa)
    assert first["misses"] > 0 and first["hits"] == 0
    assert any((param_dir / "jax-cache").iterdir())
    second = worker(param_dir, msa)
    assert second["misses"] == 0 and second["hits"] == first["misses"]


@pytest.mark.timeout(10)
def test_cpu_compiles_take_the_cheaper_pipeline_unless_xla_flags_say_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    assert compiler_options(on_cpu=True, bfloat16=False) == CPU_COMPILER_OPTIONS
    assert compiler_options(on_cpu=False, bfloat16=True) is None  # GPUs: XLA's defaults
    # bfloat16, emulated on a CPU, runs much slower through the cheaper pipeline.
    assert compiler_options(on_cpu=True, bfloat16=True) is None
    # A user's (or the GPU benchmark's dry run's) own level is kept, not overridden.
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=0")
    assert compiler_options(on_cpu=True, bfloat16=False) == {
        "xla_llvm_disable_expensive_passes": True
    }

"""The GPU benchmark's dry run: ``bench/gpu.sh --dry-run`` on the CPU, tiny sizes.

The benchmark runs where a GPU is lent, rarely and in one go (bench/gpu.sh's header): this runs
the same script and driver here on every change, on 2-block test weights, one 16-residue job
per mode, so that a broken mode, figure or table is found here rather than on the GPU machine.
Timing is not checked: only that every figure the benchmark promises is there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODES = (
    "foldserve_warm",
    "colabfold_batch",
    "foldserve_cold_cache",
    "foldserve_cold_nocache",
    "openfold3_warm",
)
#: What each mode's record holds besides mode, length and status.
FIGURES = {
    "foldserve_warm": (
        "first_s",
        "compile_s",
        "seconds",
        "model_s",
        "shape",
        "timings",
        "xla_bytes",
        "estimate_bytes",
    ),
    "colabfold_batch": ("seconds", "reported_s"),
    "foldserve_cold_cache": ("seconds", "compile_s", "model_s", "timings"),
    "foldserve_cold_nocache": ("seconds", "compile_s", "model_s", "timings"),
    "openfold3_warm": ("seconds", "model_s", "samples"),
}


def gpu_sh(out: Path, *args: str, timeout: float) -> tuple[dict[str, Any], str]:
    """Run ``bench/gpu.sh --dry-run`` with ``OUT=out``; its JSON and Markdown."""
    env = dict(os.environ, OUT=str(out), PYTHON=sys.executable)
    answer = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu.sh"), "--dry-run", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert answer.returncode == 0, answer.stdout[-3000:] + answer.stderr[-3000:]
    assert (out / "gpu_bench.log").read_text().startswith("bench/gpu.sh: ")
    return (
        json.loads((out / "gpu_bench.json").read_text()),
        (out / "gpu_bench.md").read_text(),
    )


@pytest.mark.timeout(600)
def test_the_dry_run_gives_every_figure_of_every_mode(
    tmp_path: Path, openfold3_params: Path
) -> None:
    # The AlphaFold2 weights are made by the benchmark, as on the GPU (model 3 alone, the
    # other models' files linked to it for colabfold_batch); OpenFold3's are the suite's.
    results, table = gpu_sh(
        tmp_path / "out",
        "--lengths", "16",
        "--work", str(tmp_path / "work"),
        "--of3-params-dir", str(openfold3_params),
        timeout=540,
    )  # fmt: skip

    assert results["complete"] and results["settings"]["dry_run"]
    assert results["settings"]["lengths"] == [16] and results["settings"]["modes"] == list(MODES)
    assert {"gpu", "cpus", "python", "versions"} <= set(results["machine"])
    assert results["machine"]["versions"]["jax"] and results["machine"]["versions"]["colabfold"]
    assert results["setup"]["foldserve_warm"]["startup_s"] > 0
    assert results["setup"]["af2_weights"]["made_s"] > 0
    params = tmp_path / "work" / "af2-params" / "params"
    assert sorted(p.name for p in params.glob("*.npz") if not p.is_symlink()) == [
        "params_model_3_ptm.npz"
    ]
    assert len(list(params.glob("params_model_?_ptm.npz"))) == 5
    jobs = {job["mode"]: job for job in results["jobs"]}
    assert sorted(jobs) == sorted(MODES) and len(results["jobs"]) == len(MODES)
    for mode, figures in FIGURES.items():
        job = jobs[mode]
        assert (job["length"], job["status"]) == (16, "done"), job
        missing = [name for name in figures if job.get(name) is None]
        assert not missing, (mode, missing, job)
    warm = jobs["foldserve_warm"]
    assert warm["shape"][0] >= 16 and warm["compile_s"] > 0
    assert set(warm["xla_bytes"]) == {"argument", "output", "temp", "generated_code"}
    # On a CPU there is no device memory to read: the figures are there, empty.
    assert "peak_bytes" in warm and "peak_bytes" in jobs["openfold3_warm"]

    header, rule, row = table.splitlines()[4:7]
    assert "DRY RUN" in table.splitlines()[0] and "OpenFold2 NIM" in table
    assert header.count("|") == rule.count("|") == row.count("|") == 13
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[0] == "16" and "—" not in cells[1:8] + cells[9:11], row
    assert "Not measured" not in table and "still going" not in table


@pytest.mark.timeout(120)
def test_a_spent_budget_skips_every_job_and_says_why(tmp_path: Path, test_params: Path) -> None:
    results, table = gpu_sh(
        tmp_path / "out",
        "--budget-s", "0",
        "--lengths", "16,24",
        "--work", str(tmp_path / "work"),
        "--params-dir", str(test_params),
        timeout=100,
    )  # fmt: skip

    assert results["complete"]
    assert [(job["mode"], job["length"]) for job in results["jobs"]] == [
        (mode, length) for mode in MODES for length in (16, 24)
    ]
    for job in results["jobs"]:
        assert job["status"] == "skipped" and job["reason"], job
    assert table.count("\n| 16 |") == table.count("\n| 24 |") == 1
    assert table.count("skipped") == 2 * len(MODES)

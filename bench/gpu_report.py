"""The GPU benchmark's record: every figure as JSON, and the table for bench/RESULTS.md.

``bench/engines_gpu.py`` adds each figure the moment it exists; both files are rewritten whole
(through a rename) after each, so a run stopped at any point leaves what it had measured.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

JSON_NAME, MARKDOWN_NAME = "gpu_bench.json", "gpu_bench.md"
GIB = 1 << 30
#: NVIDIA's published OpenFold2 NIM times (H100, 1 model, 3 recycles), residues: seconds.
NIM_OPENFOLD2_H100 = {98: 4.3, 304: 7.7, 562: 19.4, 914: 41.2}


class Results:
    """Everything measured so far, rewritten to JSON and Markdown after each figure."""

    def __init__(self, out: Path, settings: dict[str, Any]) -> None:
        self.out = out
        self.data: dict[str, Any] = {
            "schema": 1,
            "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "settings": settings,
            "setup": {},
            "jobs": [],
            "complete": False,
        }
        self.save()

    def add(self, record: dict[str, Any]) -> None:
        self.data["jobs"].append(record)
        line = {k: v for k, v in record.items() if k != "timings"}
        print("result:", json.dumps(line), file=sys.stderr, flush=True)
        self.save()

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        for name, text in (
            (JSON_NAME, json.dumps(self.data, indent=2) + "\n"),
            (MARKDOWN_NAME, markdown(self.data)),
        ):
            partial = self.out / f".{name}.partial"
            partial.write_text(text)
            partial.replace(self.out / name)


def machine() -> dict[str, Any]:
    """What ran it, without importing JAX or PyTorch here (the GPU stays free for children)."""
    gpu = None
    if shutil.which("nvidia-smi"):
        query = "--query-gpu=name,memory.total,driver_version"
        answer = subprocess.run(
            ["nvidia-smi", query, "--format=csv,noheader"], capture_output=True, text=True
        )
        gpu = answer.stdout.strip() or None
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in ("jax", "jaxlib", "dm-haiku", "colabfold", "torch", "openfold3", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "host": platform.node(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "gpu": gpu,
        "versions": versions,
    }


def markdown(data: dict[str, Any]) -> str:
    """The table to paste into bench/RESULTS.md, with what was skipped or failed."""
    settings = data["settings"]
    jobs = {(j.get("mode"), j.get("length")): j for j in data["jobs"] if j.get("status") == "done"}

    def value(mode: str, length: int, key: str = "seconds") -> float | None:
        figure = jobs.get((mode, length), {}).get(key)
        return float(figure) if figure is not None else None

    def seconds(figure: float | None) -> str:
        return "—" if figure is None else f"{figure:.1f}"

    def ratio(peer: float | None, ours: float | None) -> str:
        return "—" if peer is None or not ours else f"{peer / ours:.2f}x"

    def gib(figure: float | None) -> str:
        return "—" if figure is None else f"{figure / GIB:.1f}"

    gpu = data["machine"].get("gpu") or data["machine"]["processor"]
    lines = [
        f"GPU benchmark, {data['started'][:10]}, {gpu}"
        + (" (DRY RUN: tiny sizes, not figures)" if settings.get("dry_run") else ""),
        "",
        f"AlphaFold2 pTM model {settings['model']}, {settings['blocks']} Evoformer blocks "
        "(random weights), "
        f"{settings['recycles']} recycles, {settings['precision']}, "
        f"{settings['msa_rows']}-row MSA; seconds of wall time per job.",
        "",
        "| length | foldserve warm s | first job s (compile s) | cold, cache s "
        "| cold, no cache s | colabfold_batch s (its log's s) | warm vs colabfold "
        "| cold+cache vs colabfold | peak GiB | guard GiB | OpenFold3 s | OpenFold3 peak GiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for length in settings["lengths"]:
        warm = jobs.get(("foldserve_warm", length), {})
        peer = value("colabfold_batch", length)
        cache = value("foldserve_cold_cache", length)
        first = f"{seconds(warm.get('first_s'))} ({seconds(warm.get('compile_s'))})"
        lines.append(
            f"| {length} | {seconds(warm.get('seconds'))} | {first} | {seconds(cache)} "
            f"| {seconds(value('foldserve_cold_nocache', length))} "
            f"| {seconds(peer)} ({seconds(value('colabfold_batch', length, 'reported_s'))}) "
            f"| {ratio(peer, warm.get('seconds'))} | {ratio(peer, cache)} "
            f"| {gib(warm.get('peak_bytes'))} | {gib(warm.get('estimate_bytes'))} "
            f"| {seconds(value('openfold3_warm', length))} "
            f"| {gib(value('openfold3_warm', length, 'peak_bytes'))} |"
        )
    nim = ", ".join(f"{n} aa {s} s" for n, s in NIM_OPENFOLD2_H100.items())
    lines += ["", f"NVIDIA's OpenFold2 NIM (H100, 1 model, 3 recycles): {nim}."]
    others = [j for j in data["jobs"] if j.get("status") not in ("done", None)]
    if others:
        lines += ["", "Not measured:"]
        lines += [
            f"- {j.get('mode')} {j.get('length', '')}: {j['status']}, {j.get('reason', '')}"
            for j in others
        ]
    if not data.get("complete"):
        lines += ["", "(run still going, or stopped before its end)"]
    return "\n".join(lines) + "\n"

"""Benchmark: how long ``foldserve`` takes to start, now and in the layout before the CLI split.

What it measures
----------------
* Wall time of three commands, each run as a process of its own, ``--runs`` times (default 5)
  after one untimed run (which also writes the byte-code caches); median and minimum:

  - ``foldserve --help``;
  - ``foldserve msa inspect examples/PF02518_HATPase_c_seed.fasta`` (658 rows);
  - ``foldserve msa inspect`` of the 6-row ColabFold A3M in ``shared/testdata``.

* The imports behind each command: ``python -X importtime``, the modules with the largest
  cumulative import time (one run, so the figures are noisy; the ranking is what matters).

Both layouts run with the same interpreter and installed packages, as
``python -m foldserve.cli ...`` with ``PYTHONPATH`` pointing at the layout's ``src``: this
checkout's, and the previous layout's (commit ``--before``, default ``bc7a507``, the last
commit with the one-module ``cli.py``), which is extracted with ``git archive`` into a
temporary directory and deleted afterwards. Before timing, each layout prints where
``foldserve.cli`` was imported from, and the script stops if that is not its own tree.

Target (printed as PASS/MISS; the script never fails on a miss): every command < 0.5 s.

How to run
----------
``.venv/bin/python bench/cli_startup.py`` (about a minute). Timings depend on what else the
machine is doing: on a shared machine, run it when it is idle, or read the minimum.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = Path(os.environ.get("FOLDSERVE_TESTDATA") or ROOT.parent / "shared" / "testdata")
EXAMPLE = ROOT / "examples" / "PF02518_HATPase_c_seed.fasta"
TINY = TESTDATA / "msa" / "a3m" / "colabfold_Q60262_uniref_env_small.a3m"
COMMANDS = {
    "foldserve --help": ["--help"],
    "msa inspect PF02518 (658 rows)": ["msa", "inspect", str(EXAMPLE)],
    "msa inspect Q60262 (6 rows)": ["msa", "inspect", str(TINY)],
}
TARGET_S = 0.5
TOP_IMPORTS = 12


@dataclasses.dataclass(frozen=True)
class Layout:
    name: str
    src: Path

    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(self.src), "COLUMNS": "100"}

    def check_imported_from_itself(self) -> str:
        """Where ``foldserve.cli`` comes from in this layout; stop if it is not ``src``."""
        found = subprocess.run(
            [sys.executable, "-c", "import foldserve.cli as c; print(c.__file__)"],
            env=self.env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if not Path(found).resolve().is_relative_to(self.src.resolve()):
            sys.exit(f"{self.name}: foldserve.cli came from {found}, not from {self.src}")
        return found


@dataclasses.dataclass(frozen=True)
class Timing:
    layout: str
    command: str
    seconds: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        return min(self.seconds)


def run_once(layout: Layout, args: Sequence[str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "foldserve.cli", *args],
        env=layout.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - started


def time_command(layout: Layout, label: str, args: Sequence[str], runs: int) -> Timing:
    run_once(layout, args)  # untimed: byte-code caches, file system cache
    return Timing(layout.name, label, tuple(run_once(layout, args) for _ in range(runs)))


def top_imports(layout: Layout, args: Sequence[str]) -> list[tuple[float, float, str]]:
    """``(cumulative s, self s, module)`` of the slowest imports, from ``-X importtime``."""
    stderr = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "foldserve.cli", *args],
        env=layout.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    ).stderr
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|")
        rows.append((int(cumulative) / 1e6, int(own) / 1e6, name.rstrip()))
    return sorted(rows, reverse=True)[:TOP_IMPORTS]


def extract(commit: str, into: Path) -> Path:
    """The ``src`` tree of ``commit``, written under ``into``."""
    archive = into / "src.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src"], stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def machine() -> str:
    cores = len(os.sched_getaffinity(0))  # what nproc prints
    return f"{cores} cores (nproc), {platform.machine()} (uname -m), {platform.platform()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="bc7a507", help="Commit of the previous layout.")
    parser.add_argument("--runs", type=int, default=5, help="Timed runs per command.")
    options = parser.parse_args()

    print(f"# CLI start-up: {time.strftime('%Y-%m-%d %H:%M')}, {machine()}")
    print(f"python {platform.python_version()} ({sys.executable})\n")
    with tempfile.TemporaryDirectory(prefix="foldserve-before-") as tmp:
        layouts = [
            Layout(f"before ({options.before})", extract(options.before, Path(tmp))),
            Layout("after (this checkout)", ROOT / "src"),
        ]
        for layout in layouts:
            print(f"{layout.name}: foldserve.cli from {layout.check_imported_from_itself()}")
        timings = {
            (layout.name, label): time_command(layout, label, args, options.runs)
            for label, args in COMMANDS.items()
            for layout in layouts
        }
        imports = {
            (layout.name, label): top_imports(layout, args)
            for label, args in COMMANDS.items()
            for layout in layouts
        }

    before, after = (layout.name for layout in layouts)
    print(f"\nWall time of each command, {options.runs} runs after one untimed run (seconds)\n")
    print("| command | layout | median | min | before/after (median) |")
    print("|---|---|---|---|---|")
    for label in COMMANDS:
        old, new = timings[before, label], timings[after, label]
        for timing in (old, new):
            ratio = f"{old.median / new.median:.1f}x" if timing is new else ""
            print(
                f"| {label} | {timing.layout} | {timing.median:.2f} | {timing.best:.2f} | {ratio} |"
            )

    for label in COMMANDS:
        for name in (before, after):
            print(f"\nSlowest imports (cumulative), {label}, {name}:")
            for cumulative, own, module in imports[name, label]:
                print(f"  {cumulative:6.3f} s  (self {own:5.3f})  {module}")

    print(f"\nTarget: every command under {TARGET_S} s (this checkout, median):")
    for label in COMMANDS:
        timing = timings[after, label]
        verdict = "PASS" if timing.median < TARGET_S else "MISS"
        print(f"  {verdict}  {label}: median {timing.median:.2f} s, min {timing.best:.2f} s")


if __name__ == "__main__":
    main()

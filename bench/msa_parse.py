"""Benchmark: foldserve's MSA reader and filter against Biopython and AlphaFold's parser.

What it measures
----------------
* Parse time and peak memory of three readers on an aligned FASTA file:

  - foldserve: ``foldserve.msa.read(path)`` (format sniffed from the content);
  - Biopython: ``Bio.AlignIO.read(path, "fasta")``;
  - AlphaFold: reading the file text plus ``alphafold.data.parsers.parse_a3m(text)``, the
    function ColabFold applies to user MSAs.

  Inputs: (A) the real Pfam PF13354 alignment in ``shared/testdata`` (4,642 rows, CRLF line
  endings, wrapped lines), best of 3 runs; (B) a 300,000-row aligned FASTA made by repeating
  the records of (A) with each copy renamed (``_r{k}``), written to a temporary directory that
  is deleted afterwards, 1 run.
* ``filter_msa(msa, FilterSettings(max_seqs=5120))`` on 36,000 rows built from the rows of (A),
  every copy after the first with ~5% random point mutations (fixed seed), so that rows are not
  exact duplicates. Only the filter call is timed.

Every parser runs in a fresh subprocess of this script (``--child PARSER FILE``), so its peak
memory is that child's ``ru_maxrss``. The table reports it minus the ``ru_maxrss`` of a child
that only imports the same library (``--child PARSER FILE --imports-only``), and as a ratio to
the file size. Speed ratios are peer seconds / foldserve seconds.

Targets (printed as PASS/MISS; the script never fails on a miss): parsing >= 10x faster than
Biopython and >= 3x faster than AlphaFold, filtering 36k rows < 10 s, foldserve peak memory
< 5x the file size.

How to run
----------
``make bench`` runs ``python bench/msa_parse.py`` (several minutes: the peers are slow on
300,000 rows). ``python bench/msa_parse.py --quick`` skips input (B) for a fast smoke run.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import numpy as np

if TYPE_CHECKING:
    from foldserve.msa.model import Msa

INPUT_A = (
    Path(__file__).resolve().parents[2]
    / "shared/testdata/msa/fasta_aligned/pfam_PF13354_full_4642seqs.fasta"
)
ROWS_B = 300_000
FILTER_ROWS = 36_000
FILTER_MAX_SEQS = 5120
MUTATION_RATE = 0.05
SEED = 20_240_601
REPEATS_A = 3
REPEATS_B = 1
CHILD_TIMEOUT_S = 900
PARSERS = ("foldserve", "biopython", "alphafold")
PEERS = {"biopython": "Biopython", "alphafold": "AlphaFold"}
AMINO_ACIDS = np.frombuffer(b"ACDEFGHIKLMNPQRSTVWY", dtype=np.uint8)
MIB = 1024 * 1024

TARGET_BIOPYTHON = 10.0
TARGET_ALPHAFOLD = 3.0
TARGET_FILTER_S = 10.0
TARGET_MEMORY = 5.0


class ChildResult(TypedDict, total=False):
    """What a child prints, as one JSON line on stdout."""

    seconds: list[float]
    rows: int
    columns: int
    rows_out: int
    maxrss_kib: int
    error: str


@dataclasses.dataclass
class Measurement:
    parser: str
    result: ChildResult
    baseline_kib: int

    @property
    def ok(self) -> bool:
        return "error" not in self.result

    @property
    def best(self) -> float:
        return min(self.result["seconds"])

    @property
    def extra_bytes(self) -> int:
        return max(0, self.result["maxrss_kib"] - self.baseline_kib) * 1024


# --------------------------------------------------------------------------------------------
# Child side: import one library, run one parser on one file, report time and ru_maxrss.
# --------------------------------------------------------------------------------------------


def maxrss_kib() -> int:
    """Peak resident set size of this process in KiB (Linux reports ru_maxrss in KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def import_library(parser: str) -> None:
    if parser in ("foldserve", "filter"):
        import foldserve.msa
        import foldserve.msa.filtering  # noqa: F401
    elif parser == "biopython":
        import Bio.AlignIO  # noqa: F401
    elif parser == "alphafold":
        import alphafold.data.parsers  # noqa: F401
    else:
        raise ValueError(f"unknown parser {parser!r}")


def parse_once(parser: str, path: Path) -> tuple[float, int, int]:
    """Parse ``path`` once; return (seconds, rows, columns)."""
    if parser == "foldserve":
        from foldserve import msa

        start = time.perf_counter()
        m = msa.read(path)
        seconds = time.perf_counter() - start
        return seconds, len(m), m.query_length
    if parser == "biopython":
        from Bio import AlignIO

        start = time.perf_counter()
        alignment = AlignIO.read(path, "fasta")  # type: ignore[no-untyped-call]
        seconds = time.perf_counter() - start
        return seconds, len(alignment), int(alignment.get_alignment_length())
    if parser == "alphafold":
        from alphafold.data import parsers

        start = time.perf_counter()
        text = path.read_text()
        parsed = parsers.parse_a3m(text)
        seconds = time.perf_counter() - start
        return seconds, len(parsed.sequences), len(parsed.sequences[0])
    raise ValueError(f"unknown parser {parser!r}")


def build_filter_input(path: Path, rows: int, seed: int) -> Msa:
    """``rows`` rows made of the rows of ``path`` repeated; copies after the first mutated."""
    from foldserve import msa
    from foldserve.msa.alphabet import GAP
    from foldserve.msa.model import Msa

    real = msa.read(path)
    n_real = len(real)
    index = np.arange(rows) % n_real
    copy = np.arange(rows) // n_real
    residues = real.residues[index].copy()
    rng = np.random.default_rng(seed)
    mutate = (rng.random(residues.shape) < MUTATION_RATE) & (residues != GAP)
    mutate[copy == 0] = False  # the first copy (query included) stays as read
    # A random offset 1..19 into the 20 amino acids never maps a residue onto itself.
    position = np.searchsorted(AMINO_ACIDS, residues[mutate])
    position = np.where(position < len(AMINO_ACIDS), position, 0)
    is_standard = AMINO_ACIDS[position] == residues[mutate]
    offset = rng.integers(1, len(AMINO_ACIDS), size=int(mutate.sum()))
    replacement = np.where(
        is_standard,
        AMINO_ACIDS[(position + offset) % len(AMINO_ACIDS)],
        AMINO_ACIDS[offset],
    )
    residues[mutate] = replacement
    names = tuple(
        real.names[i] if k == 0 else f"{real.names[i]}_r{k}"
        for i, k in zip(index.tolist(), copy.tolist(), strict=True)
    )
    return Msa(
        names=names,
        descriptions=("",) * rows,
        residues=residues,
        deletions=np.zeros(residues.shape, dtype=np.uint16),
        insertions=(b"",) * rows,
        format="fasta",
        source=f"{path.name} x{rows} rows, {MUTATION_RATE:.0%} mutated",
    )


def run_filter(path: Path) -> ChildResult:
    from foldserve.msa.filtering import FilterSettings, filter_msa

    m = build_filter_input(path, FILTER_ROWS, SEED)
    gc.collect()
    start = time.perf_counter()
    filtered, _report = filter_msa(m, FilterSettings(max_seqs=FILTER_MAX_SEQS))
    seconds = time.perf_counter() - start
    return {
        "seconds": [seconds],
        "rows": len(m),
        "columns": m.query_length,
        "rows_out": len(filtered),
    }


def child_main(parser: str, path: Path, repeats: int, imports_only: bool) -> None:
    result: ChildResult
    try:
        import_library(parser)
        if imports_only:
            result = {"seconds": []}
        elif parser == "filter":
            result = run_filter(path)
        else:
            seconds: list[float] = []
            rows = columns = 0
            for _ in range(repeats):
                gc.collect()
                elapsed, rows, columns = parse_once(parser, path)
                seconds.append(elapsed)
            result = {"seconds": seconds, "rows": rows, "columns": columns}
    except Exception as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    result["maxrss_kib"] = maxrss_kib()
    print(json.dumps(result), flush=True)


# --------------------------------------------------------------------------------------------
# Parent side: build inputs, spawn children, print the report.
# --------------------------------------------------------------------------------------------


def spawn(parser: str, path: Path, repeats: int = 1, imports_only: bool = False) -> ChildResult:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        parser,
        str(path),
        "--repeats",
        str(repeats),
    ]
    if imports_only:
        command.append("--imports-only")
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {CHILD_TIMEOUT_S} s", "maxrss_kib": 0}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip()[-500:]
        return {"error": f"child exited with {done.returncode}: {tail}", "maxrss_kib": 0}
    result: ChildResult = json.loads(lines[-1])
    return result


def measure(parser: str, path: Path, repeats: int) -> Measurement:
    baseline = spawn(parser, path, imports_only=True)
    print(f"  {parser:<10} ", end="", flush=True)
    result = spawn(parser, path, repeats=repeats)
    measurement = Measurement(parser, result, baseline.get("maxrss_kib", 0))
    if measurement.ok:
        print(
            f"{measurement.best:8.3f} s  {result['rows']:,} rows x {result['columns']} columns",
            flush=True,
        )
    else:
        print(f"ERROR {result['error']}", flush=True)
    return measurement


def make_input_b(source: Path, target: Path, rows: int) -> int:
    """Write ``rows`` records of ``source`` repeated (copy k > 0 renamed ``NAME_r{k}``) to
    ``target``, keeping the original line endings and wrapping. Returns the file size."""
    data = source.read_bytes()
    starts = [0] if data.startswith(b">") else []
    position = data.find(b"\n>")
    while position != -1:
        starts.append(position + 1)
        position = data.find(b"\n>", position + 1)
    records = [data[a:b] for a, b in zip(starts, [*starts[1:], len(data)], strict=True)]
    if records and not records[-1].endswith(b"\n"):
        newline = b"\r\n" if b"\r\n" in data else b"\n"
        records[-1] += newline
    written = 0
    with target.open("wb") as out:
        for k in range(-(-rows // len(records))):
            take = records[: min(len(records), rows - written)]
            if k == 0:
                out.writelines(take)
            else:
                suffix = f"_r{k}".encode()
                for record in take:
                    header_end = record.find(b"\n")
                    header = record[:header_end].rstrip(b"\r")
                    name, space, rest = header.partition(b" ")
                    out.write(name + suffix + space + rest + record[len(header) : header_end])
                    out.write(record[header_end:])
            written += len(take)
    return target.stat().st_size


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def print_machine() -> None:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"date:     {now}")
    print(f"machine:  {usable} cores (nproc), {cpu_model()}, {platform.machine()}")
    print(f"python:   {platform.python_version()} ({sys.executable})")
    libraries = ("foldserve", "numpy", "biopython", "alphafold-colabfold")
    print("versions: " + ", ".join(f"{name} {version(name)}" for name in libraries))
    print()


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


def print_table(inputs: list[tuple[str, int, list[Measurement]]]) -> None:
    header = (
        f"| {'input':<28} | {'parser':<10} | {'rows':>9} | {'parse s':>8} | "
        f"{'peak MiB':>8} | {'mem/file':>8} | {'foldserve speed-up':>18} |"
    )
    print(header)
    print("|" + "|".join("-" * len(cell) for cell in header.split("|")[1:-1]) + "|")
    for label, size, measurements in inputs:
        ours = next((m for m in measurements if m.parser == "foldserve" and m.ok), None)
        for m in measurements:
            if not m.ok:
                print(
                    f"| {label:<28} | {m.parser:<10} | {'ERROR':>9} | {'-':>8} | {'-':>8} | "
                    f"{'-':>8} | {'-':>18} |"
                )
                continue
            speedup = None if ours is None or m is ours else m.best / ours.best
            cell = "(reference)" if m is ours else fmt_ratio(speedup)
            print(
                f"| {label:<28} | {m.parser:<10} | {m.result['rows']:>9,} | {m.best:>8.3f} | "
                f"{m.extra_bytes / MIB:>8.1f} | {m.extra_bytes / size:>7.2f}x | {cell:>18} |"
            )


def verdict(passed: bool | None) -> str:
    return "n/a " if passed is None else ("PASS" if passed else "MISS")


def print_targets(
    inputs: list[tuple[str, int, list[Measurement]]], filter_result: ChildResult
) -> None:
    print("Targets (PASS/MISS; informational, never fails the run):")
    for label, size, measurements in inputs:
        by_parser = {m.parser: m for m in measurements if m.ok}
        ours = by_parser.get("foldserve")
        for peer, target in (("biopython", TARGET_BIOPYTHON), ("alphafold", TARGET_ALPHAFOLD)):
            other = by_parser.get(peer)
            if ours is None or other is None:
                print(f"  n/a   {label}: >= {target:.0f}x faster than {PEERS[peer]} (no figure)")
                continue
            ratio = other.best / ours.best
            print(
                f"  {verdict(ratio >= target)}  {label}: >= {target:.0f}x faster than "
                f"{PEERS[peer]}: {ratio:.1f}x ({ours.best:.3f} s vs {other.best:.3f} s)"
            )
        if ours is None:
            print(f"  n/a   {label}: foldserve peak memory < {TARGET_MEMORY:.0f}x file size")
        else:
            ratio = ours.extra_bytes / size
            print(
                f"  {verdict(ratio < TARGET_MEMORY)}  {label}: foldserve peak memory < "
                f"{TARGET_MEMORY:.0f}x file size: {ratio:.2f}x "
                f"({ours.extra_bytes / MIB:.1f} MiB for {size / MIB:.1f} MiB)"
            )
    if "error" in filter_result:
        print(f"  n/a   filter {FILTER_ROWS:,} rows < {TARGET_FILTER_S:.0f} s (error)")
    else:
        seconds = filter_result["seconds"][0]
        print(
            f"  {verdict(seconds < TARGET_FILTER_S)}  filter {FILTER_ROWS:,} rows < "
            f"{TARGET_FILTER_S:.0f} s: {seconds:.2f} s"
        )


def parent_main(quick: bool) -> None:
    if not INPUT_A.is_file():
        sys.exit(f"input A not found: {INPUT_A}")
    print("foldserve MSA benchmark: parse (aligned FASTA) and filter\n")
    print_machine()
    inputs: list[tuple[str, int, list[Measurement]]] = []

    size_a = INPUT_A.stat().st_size
    label_a = f"A: PF13354 ({size_a / MIB:.1f} MiB)"
    print(f"Input {label_a}, {INPUT_A.name}, best of {REPEATS_A}:")
    inputs.append((label_a, size_a, [measure(p, INPUT_A, REPEATS_A) for p in PARSERS]))
    print()

    if not quick:
        with tempfile.TemporaryDirectory(prefix="foldserve-bench-") as tmp:
            path_b = Path(tmp) / f"pf13354_x{ROWS_B}.fasta"
            start = time.perf_counter()
            size_b = make_input_b(INPUT_A, path_b, ROWS_B)
            label_b = f"B: {ROWS_B // 1000}k rows ({size_b / MIB:.1f} MiB)"
            print(
                f"Input {label_b}, written to {tmp} in {time.perf_counter() - start:.1f} s, "
                f"{REPEATS_B} run:"
            )
            inputs.append((label_b, size_b, [measure(p, path_b, REPEATS_B) for p in PARSERS]))
        print()

    print(f"Filter: {FILTER_ROWS:,} rows (mutated copies of A), max_seqs={FILTER_MAX_SEQS}:")
    filter_result = spawn("filter", INPUT_A)
    if "error" in filter_result:
        print(f"  ERROR {filter_result['error']}")
    else:
        print(
            f"  rows in {filter_result['rows']:,} -> rows out {filter_result['rows_out']:,} "
            f"in {filter_result['seconds'][0]:.2f} s "
            f"(peak RSS {filter_result['maxrss_kib'] / 1024:.0f} MiB)"
        )
    print()

    print("Peak MiB = child ru_maxrss minus that of a child that only imports the library;")
    print("mem/file = that over the file size; speed-up = peer seconds / foldserve seconds.\n")
    print_table(inputs)
    print()
    print_targets(inputs, filter_result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="skip the 300,000-row input (B)")
    parser.add_argument(
        "--child",
        nargs=2,
        metavar=("PARSER", "FILE"),
        help="internal: run one parser (foldserve, biopython, alphafold, filter) on FILE",
    )
    parser.add_argument("--repeats", type=int, default=1, help="internal: runs in a child")
    parser.add_argument("--imports-only", action="store_true", help="internal: baseline child")
    args = parser.parse_args()
    if args.child:
        name, file = args.child
        child_main(name, Path(file), args.repeats, args.imports_only)
    else:
        parent_main(args.quick)


if __name__ == "__main__":
    main()

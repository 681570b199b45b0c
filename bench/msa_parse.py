"""Benchmark: foldserve's MSA reader and filter against Biopython, AlphaFold's parser and
Easel's C reader.

What it measures
----------------
* Parse time and peak memory of four readers on an aligned FASTA file:

  - foldserve: ``foldserve.msa.read(path)`` (format sniffed from the content);
  - Biopython: ``Bio.AlignIO.read(path, "fasta")``;
  - AlphaFold: reading the file text plus ``alphafold.data.parsers.parse_a3m(text)``, the
    function ColabFold applies to user MSAs;
  - Easel (HMMER's C library, through pyhmmer): ``MSAFile(path, digital=True,
    alphabet=Alphabet.amino()).read()``, the bar for "C speed".

  Inputs: (A) the real Pfam PF13354 alignment in ``shared/testdata`` (4,642 rows, CRLF line
  endings, wrapped lines); (B) a 300,000-row aligned FASTA made by repeating the records of
  (A) with each copy renamed (``_r{k}``); (C) the Pfam PF07679 full alignment (36,141 rows of
  90 columns whose first row, the query, has 41 residues: most columns become insertions)
  repeated 8 times the same way, 289,128 rows. (B) and (C) are written to a temporary
  directory that is deleted afterwards. Best of 3 runs for every reader on every input. (C)
  is found in ``shared/testdata`` (any file named ``*PF07679*``) or given with
  ``--pf07679 FILE`` (Bitbol-Lab/Phylogeny-MSA-Transformer ``data/Pfam_full/msa/PF07679.fasta``);
  without it, (C) is left out.
* ``filter_msa(msa, FilterSettings(max_seqs=5120))`` on 36,000 rows built from the rows of (A),
  every copy after the first with ~5% random point mutations (fixed seed), so that rows are not
  exact duplicates. Only the filter call is timed.

Every parser runs in a fresh subprocess of this script (``--child PARSER FILE``), so its peak
memory is that child's ``ru_maxrss``. The table reports it minus the ``ru_maxrss`` of a child
that only imports the same library (``--child PARSER FILE --imports-only``), and as a ratio to
the file size. Speed ratios are peer seconds / foldserve seconds.

Targets (printed as PASS/MISS; the script never fails on a miss), on every input: parsing at
least as fast as Biopython, in at most 2x the time of Easel and >= 3x faster than AlphaFold;
foldserve peak memory < 5x the file size; filtering 36k rows < 10 s.

How to run
----------
``make bench`` runs ``python bench/msa_parse.py`` (several minutes: the peers are slow on
300,000 rows). ``python bench/msa_parse.py --quick`` skips inputs (B) and (C) for a fast
smoke run.
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

TESTDATA = Path(__file__).resolve().parents[2] / "shared/testdata"
INPUT_A = TESTDATA / "msa/fasta_aligned/pfam_PF13354_full_4642seqs.fasta"
ROWS_B = 300_000
COPIES_C = 8
FILTER_ROWS = 36_000
FILTER_MAX_SEQS = 5120
MUTATION_RATE = 0.05
SEED = 20_240_601
REPEATS = 3
CHILD_TIMEOUT_S = 900
PARSERS = ("foldserve", "biopython", "alphafold", "easel")
PEERS = {"biopython": "Biopython", "alphafold": "AlphaFold", "easel": "Easel"}
AMINO_ACIDS = np.frombuffer(b"ACDEFGHIKLMNPQRSTVWY", dtype=np.uint8)
MIB = 1024 * 1024

#: Speed-ups (peer seconds / foldserve seconds) to reach: at least as fast as Biopython, 3x
#: AlphaFold, and at most twice Easel's time.
TARGET_SPEEDUP = {"biopython": 1.0, "alphafold": 3.0, "easel": 0.5}
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
    elif parser == "easel":
        import pyhmmer.easel  # noqa: F401
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
    if parser == "easel":
        from pyhmmer.easel import Alphabet, MSAFile

        start = time.perf_counter()
        with MSAFile(path, digital=True, alphabet=Alphabet.amino()) as reader:
            read = reader.read()
        seconds = time.perf_counter() - start
        assert read is not None
        return seconds, len(read.names), len(read)
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
            f"{measurement.best:8.4f} s  {result['rows']:,} rows x {result['columns']} columns",
            flush=True,
        )
    else:
        print(f"ERROR {result['error']}", flush=True)
    return measurement


def read_records(source: Path) -> list[bytes]:
    """The records of ``source`` as they are written (line endings and wrapping kept), each
    ending with a line ending."""
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
    return records


def write_repeated(records: list[bytes], target: Path, rows: int) -> int:
    """Write ``rows`` of ``records`` repeated (copy k > 0 renamed ``NAME_r{k}``) to ``target``.
    Returns the file size."""
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


def find_pf07679(given: Path | None) -> Path | None:
    """The PF07679 alignment for input (C): the file given, else one in shared/testdata."""
    if given is not None:
        return given
    return next(iter(sorted(TESTDATA.glob("**/*PF07679*"))), None)


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
                f"| {label:<28} | {m.parser:<10} | {m.result['rows']:>9,} | {m.best:>8.4f} | "
                f"{m.extra_bytes / MIB:>8.1f} | {m.extra_bytes / size:>7.2f}x | {cell:>18} |"
            )


def verdict(passed: bool | None) -> str:
    return "n/a " if passed is None else ("PASS" if passed else "MISS")


def target_line(label: str, peer: str, ours: Measurement, other: Measurement) -> str:
    speedup = other.best / ours.best
    target = TARGET_SPEEDUP[peer]
    seconds = f"({ours.best:.4f} s vs {other.best:.4f} s)"
    if target >= 1:
        goal = "at least as fast as" if target == 1 else f">= {target:.0f}x faster than"
        found = f"{speedup:.1f}x"
    else:
        goal, found = f"<= {1 / target:.0f}x the time of", f"{1 / speedup:.1f}x"
    return f"  {verdict(speedup >= target)}  {label}: {goal} {PEERS[peer]}: {found} {seconds}"


def print_targets(
    inputs: list[tuple[str, int, list[Measurement]]], filter_result: ChildResult
) -> None:
    print("Targets (PASS/MISS; informational, never fails the run):")
    for label, size, measurements in inputs:
        by_parser = {m.parser: m for m in measurements if m.ok}
        ours = by_parser.get("foldserve")
        for peer in TARGET_SPEEDUP:
            other = by_parser.get(peer)
            if ours is None or other is None:
                print(f"  n/a   {label}: against {PEERS[peer]} (no figure)")
                continue
            print(target_line(label, peer, ours, other))
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


def measure_all(label: str, path: Path) -> tuple[str, int, list[Measurement]]:
    return label, path.stat().st_size, [measure(p, path, REPEATS) for p in PARSERS]


def parent_main(quick: bool, pf07679: Path | None) -> None:
    if not INPUT_A.is_file():
        sys.exit(f"input A not found: {INPUT_A}")
    print("foldserve MSA benchmark: parse (aligned FASTA) and filter\n")
    print_machine()
    inputs: list[tuple[str, int, list[Measurement]]] = []

    label_a = f"A: PF13354 ({INPUT_A.stat().st_size / MIB:.1f} MiB)"
    print(f"Input {label_a}, {INPUT_A.name}, best of {REPEATS}:")
    inputs.append(measure_all(label_a, INPUT_A))
    print()

    source_c = None if quick else find_pf07679(pf07679)
    if not quick and source_c is None:
        print("Input C left out: no *PF07679* file in shared/testdata and no --pf07679 FILE\n")
    if not quick:
        with tempfile.TemporaryDirectory(prefix="foldserve-bench-") as tmp:
            large = [(f"pf13354_x{ROWS_B}.fasta", read_records(INPUT_A), ROWS_B, "B: {k}k rows")]
            if source_c is not None:
                records_c = read_records(source_c)
                rows_c = COPIES_C * len(records_c)
                large.append((f"pf07679_x{COPIES_C}.fasta", records_c, rows_c, "C: PF07679 x8"))
            for name, records, rows, title in large:
                path = Path(tmp) / name
                start = time.perf_counter()
                size = write_repeated(records, path, rows)
                label = f"{title.format(k=rows // 1000)} ({size / MIB:.1f} MiB)"
                print(
                    f"Input {label}, {rows:,} rows, written to {tmp} in "
                    f"{time.perf_counter() - start:.1f} s, best of {REPEATS}:"
                )
                inputs.append(measure_all(label, path))
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
    parser.add_argument("--quick", action="store_true", help="skip the large inputs (B) and (C)")
    parser.add_argument(
        "--pf07679",
        type=Path,
        metavar="FILE",
        help="the Pfam PF07679 full alignment for input (C), when shared/testdata lacks it",
    )
    parser.add_argument(
        "--child",
        nargs=2,
        metavar=("PARSER", "FILE"),
        help="internal: run one parser (foldserve, biopython, alphafold, easel, filter) on FILE",
    )
    parser.add_argument("--repeats", type=int, default=1, help="internal: runs in a child")
    parser.add_argument("--imports-only", action="store_true", help="internal: baseline child")
    args = parser.parse_args()
    if args.child:
        name, file = args.child
        child_main(name, Path(file), args.repeats, args.imports_only)
    else:
        parent_main(args.quick, args.pf07679)


if __name__ == "__main__":
    main()

"""Benchmark: foldserve's streamed jackhmmer search against the ``jackhmmer`` program.

What it measures
----------------
One query, one database, the same flags (AlphaFold2's: ``-N 1 -E 0.0001 --incE 0.0001 --F1
0.0005 --F2 0.00005 --F3 0.0000005``) and the same number of threads (``--cpus``, default 2):

- foldserve: ``search_jackhmmer([query], [database], cpus=N, max_hits=no cap)`` (pyhmmer,
  the database counted in a first pass, then read in blocks searched by N threads), then the
  A3M written to a file;
- jackhmmer: the program of the ``hmmer`` wheel, ``jackhmmer -o /dev/null --noali -A out.sto
  --cpu N ...``, as AlphaFold runs it.

The database is pyhmmer's test proteome (2,100 proteins, ~1 MB; ``pyhmmer/tests/data``)
repeated to ``--mb`` MB (default 300; ``--quick``: 30), each copy's records renamed
(``NAME_r{k}``) so that every hit has a name of its own; it is written to a temporary folder,
deleted afterwards. The query is one of the proteome's proteins (an ABC-transporter ATPase,
``--query``), so each copy holds its ~96 homologues: hit-rich, as searches for AlphaFold are.

Each tool runs in a child process of its own (foldserve: this script with ``--child``), waited
for with ``os.wait4``: wall time, and peak memory as that process's ``ru_maxrss`` (foldserve's
includes its Python interpreter, numpy and pyhmmer). The hits compared are the alignment's rows
(``NAME/FROM-TO``, one per included domain) in order: foldserve's A3M against jackhmmer's
``-A`` Stockholm, no cap on either.

Targets (printed as PASS/MISS; the script never fails on a miss): the same rows, foldserve
>= 2x faster, foldserve's peak memory < 500 MB.

How to run
----------
``.venv/bin/python bench/msa_search.py`` (300 MB: a few minutes), ``--quick`` (30 MB),
``--mb N`` for another size, ``--cpus N``, ``--query NAME`` for another of the proteome's
proteins (``938293.PRJEB85.HG003688_1``: 3 hits a copy, so reading and filtering dominate).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

#: The test's peers (the proteome, its query, the jackhmmer program, AlphaFold2's flags) come
#: from tests/test_search_jackhmmer.py, imported by the parent only: the foldserve child's
#: memory is then its own search's.
ROOT = Path(__file__).resolve().parents[1]
NO_CAP = 1 << 40
TARGET_SPEEDUP = 2.0
TARGET_MEMORY_MB = 500.0


@dataclass(frozen=True)
class Run:
    """One tool's run: its wall time, its CPU time (user and system, all threads), its peak
    memory and the rows of its alignment."""

    tool: str
    seconds: float
    cpu_seconds: float
    peak_mb: float
    rows: tuple[str, ...]

    @property
    def targets(self) -> int:
        return len({row.rsplit("/", 1)[0] for row in self.rows})


def proteome() -> Path:
    from tests.test_search_jackhmmer import find_proteome

    path = find_proteome()
    if path is None:
        raise SystemExit("pyhmmer's test proteome (pyhmmer/tests/data) is not installed")
    return path


def write_database(target: Path, megabytes: int) -> int:
    """The proteome repeated to ``megabytes`` MB, copy k's names suffixed ``_r{k}``; returns
    the number of copies."""
    lines = proteome().read_bytes().split(b"\n")
    copies = 0
    with target.open("wb") as out:
        while out.tell() < megabytes * 1_000_000:
            suffix = f"_r{copies}".encode()
            out.write(
                b"\n".join(
                    line.split(None, 1)[0] + suffix + line[len(line.split(None, 1)[0]) :]
                    if line.startswith(b">")
                    else line
                    for line in lines
                )
            )
            copies += 1
    return copies


def write_query(folder: Path, name: str) -> Path:
    """The query, as ``foldserve msa search`` reads it, in a FASTA file of its own."""
    from tests.test_search_jackhmmer import read_query

    query = read_query(proteome(), folder, name)
    path = folder / "clean_query.fasta"
    path.write_text(f">{query.name}\n{query.sequence}\n")
    return path


def run_child(tool: str, command: list[str], rows_from: Path) -> Run:
    """Run ``command`` and wait for it with ``os.wait4``: its own time and ``ru_maxrss``."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{tool} failed (exit {process.returncode}): {' '.join(command)}")
    cpu = usage.ru_utime + usage.ru_stime
    return Run(tool, seconds, cpu, usage.ru_maxrss / 1024, alignment_rows(rows_from))


def alignment_rows(path: Path) -> tuple[str, ...]:
    """Row names after the query's: from an A3M (``>`` headers) or a Stockholm file (the
    first word of sequence lines, in order of first appearance)."""
    names: dict[str, None] = {}
    with path.open() as text:
        if path.suffix == ".a3m":
            for line in text:
                if line.startswith(">"):
                    names[line[1:].split(None, 1)[0]] = None
        else:
            for line in text:
                if line.strip() and not line.startswith(("#", "//")):
                    names[line.split(None, 1)[0]] = None
    return tuple(names)[1:]


def child(database: Path, query_path: Path, cpus: int, out: Path) -> None:
    """The foldserve side, in its own process."""
    from foldserve.msa.search.jackhmmer import search_jackhmmer
    from foldserve.msa.search.queries import read_queries

    (result,) = search_jackhmmer(read_queries(query_path), [database], cpus=cpus, max_hits=NO_CAP)
    out.write_text(result.hits[0].a3m)


def versions() -> str:
    found = [f"Python {platform.python_version()}"]
    for package in ("pyhmmer", "hmmer"):
        try:
            found.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            found.append(f"{package} not installed")
    return ", ".join(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--mb", type=int, default=300, help="database size in MB (300)")
    parser.add_argument("--quick", action="store_true", help="a 30 MB database")
    parser.add_argument("--cpus", type=int, default=2, help="threads for both tools (2)")
    parser.add_argument("--query", help="another protein of the proteome as the query")
    parser.add_argument(
        "--child", nargs=4, metavar=("DB", "QUERY", "CPUS", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        database, query, cpus, out = args.child
        child(Path(database), Path(query), int(cpus), Path(out))
        return

    sys.path.insert(0, str(ROOT))
    from tests.test_search_jackhmmer import ALPHAFOLD_FLAGS, QUERY_NAME, jackhmmer_program

    megabytes = 30 if args.quick else args.mb
    folder = Path(tempfile.mkdtemp(prefix="foldserve-bench-search-"))
    try:
        database = folder / "proteome_repeated.faa"
        copies = write_database(database, megabytes)
        query_name = args.query or QUERY_NAME
        query = write_query(folder, query_name)
        size_mb = database.stat().st_size / 1e6
        print(
            f"{datetime.date.today()}  {os.cpu_count()} cores, {platform.machine()}, {versions()}"
        )
        print(
            f"database: the proteome x {copies} = {size_mb:.0f} MB, "
            f"{copies * 2100:,} sequences; query {query_name}; {args.cpus} threads each"
        )
        sto, a3m = folder / "jackhmmer.sto", folder / "foldserve.a3m"
        program = jackhmmer_program()
        if program is None:
            raise SystemExit("the hmmer wheel (the jackhmmer program) is not installed")
        peer = run_child(
            "jackhmmer",
            [str(program), *ALPHAFOLD_FLAGS, "--cpu", str(args.cpus), "-o", os.devnull,
             "--noali", "-A", str(sto), str(query), str(database)],
            sto,
        )  # fmt: skip
        ours = run_child(
            "foldserve",
            [sys.executable, __file__, "--child", str(database), str(query), str(args.cpus),
             str(a3m)],
            a3m,
        )  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print("\n| tool | wall s | CPU s | peak MB | rows | targets |\n|---|---|---|---|---|---|")
    for run in (ours, peer):
        print(
            f"| {run.tool} | {run.seconds:.1f} | {run.cpu_seconds:.1f} | {run.peak_mb:.0f} "
            f"| {len(run.rows):,} | {run.targets:,} |"
        )
    speedup = peer.seconds / ours.seconds
    same = ours.rows == peer.rows
    same_set = set(ours.rows) == set(peer.rows)
    print(f"\nspeed: foldserve {speedup:.2f}x jackhmmer")
    verdicts = [
        ("same rows (names, in order)", same, "" if same else f"same set: {same_set}"),
        (f"foldserve >= {TARGET_SPEEDUP:g}x faster", speedup >= TARGET_SPEEDUP, f"{speedup:.2f}x"),
        (
            f"foldserve peak memory < {TARGET_MEMORY_MB:g} MB",
            ours.peak_mb < TARGET_MEMORY_MB,
            f"{ours.peak_mb:.0f} MB",
        ),
    ]
    for label, ok, detail in verdicts:
        print(f"{'PASS' if ok else 'MISS'}  {label}  {detail}".rstrip())


if __name__ == "__main__":
    main()

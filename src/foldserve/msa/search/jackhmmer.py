"""Local jackhmmer searches through pyhmmer, streamed: AlphaFold2's settings on a database of
any size, in bounded memory.

**What is run.** AlphaFold2's ``alphafold/data/tools/jackhmmer.py``: ``jackhmmer -N 1 -E 0.0001
--incE 0.0001 --F1 0.0005 --F2 0.00005 --F3 0.0000005``, every other option at jackhmmer's
default (``--incdomE 0.001``, ``--domE 10``, ``--seed 42``, BLOSUM62 with ``--popen 0.02
--pextend 0.4``). One iteration of jackhmmer is phmmer: the query becomes a profile HMM on its
own (pyhmmer's :class:`~pyhmmer.plan7.Builder`, HMMER's ``p7_SingleBuilder``) and that profile
searches the database.

**Streaming.** :func:`pyhmmer.hmmer.jackhmmer` holds the whole database in memory; here it is
read in blocks (:data:`BLOCK_SEQUENCES` sequences or :data:`BLOCK_RESIDUES` residues, whichever
comes first), each searched by its own :class:`~pyhmmer.plan7.Pipeline` in a pool of ``cpus``
threads, at most ``cpus`` blocks being searched while the next one is read. The per-block hits
are merged with :meth:`~pyhmmer.plan7.TopHits.merge` as blocks are done (:class:`_Merged`),
and a last merge thresholds them all together. Peak memory is then a few blocks plus the hits:
it grows with the hits (every reported hit is kept until the end, as jackhmmer keeps them),
not with the database. A gzip file is decompressed as it is read; progress counts the bytes of
the file as stored.

**E-values.** A hit's E-value is its P-value times ``Z``, the number of sequences in the
database; HMMER counts them as it searches. Each block's pipeline here is given the database's
``Z`` up front (HMMER's ``-Z``), counted in a first pass over the file (counting ``>`` at line
starts, which is how Easel starts a FASTA record; a few hundred MB a second, against minutes of
search), so every block scores with the E-values of the whole search and keeps only the hits
that the whole search reports. ``domZ``, the number of reported sequences, on which domain
E-values (and so ``--incdomE``) depend, is left for HMMER to set: the merge thresholds again and
sets it from the merged hits, as jackhmmer does after its threads' hits are merged. The hits,
their E-values and their alignments then equal the ``jackhmmer`` program's and those of a
non-streamed :func:`pyhmmer.hmmer.jackhmmer` (tests/test_search_jackhmmer.py checks both).

**Rows, order and cap.** Each database gives A3M text (:class:`DatabaseHits`) as AlphaFold
makes it from ``jackhmmer -A``: the Stockholm alignment of the query and of every included
domain (``p7_tophits_Alignment`` with the query's trace and ``p7_ALL_CONSENSUS_COLS``), hits in
HMMER's order (best score first, ties by name), a hit's domains in sequence order; then
the first rows are kept, and ``parsers.convert_stockholm_to_a3m`` turns the columns where the
query has a gap into lower-case insertions. ``max_hits`` counts hits, the query's row not
among them, as every foldserve backend counts them: a database gives the query plus at most
``max_hits`` rows, the rows AlphaFold's ``parsers.truncate_stockholm_msa`` keeps with a cap of
``max_hits + 1`` (AlphaFold's cap counts the query's row: its ``uniref_max_hits=10000`` is the
query and 9,999 hits). Rows are named as jackhmmer names
them: ``NAME/FROM-TO``, NAME the first word of the database header and FROM-TO the aligned
residues, so a target with several domains gives several distinctly named rows (AlphaFold's
``msa_identifiers`` reads the name before the ``/``). A ``*`` (a stop, which some protein FASTA
files end with) inside an aligned domain becomes ``X``, since an A3M row holds letters and gaps.
"""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, cast

import numpy as np

from foldserve.errors import InputError
from foldserve.msa.alphabet import IS_GAP, IS_NUCLEOTIDE, TO_LOWER, BoolTable
from foldserve.msa.search.results import DatabaseHits, Query, SearchResult
from foldserve.msa.search.settings import (
    DEFAULT_MAX_HITS,
    OnSearchProgress,
    SearchProgress,
    usable_cpus,
)
from foldserve.msa.source import open_source

if TYPE_CHECKING:
    from pyhmmer.easel import AA, DigitalSequence, DigitalSequenceBlock, SequenceFile
    from pyhmmer.plan7 import HMM, OptimizedProfile, Profile, TopHits

    #: What :meth:`pyhmmer.plan7.Pipeline.search_hmm` gives for a query's HMM.
    Hits = TopHits[HMM[AA] | Profile[AA] | OptimizedProfile[AA]]

TOOL = "jackhmmer"


class PipelineOptions(TypedDict):
    """Thresholds of a :class:`~pyhmmer.plan7.Pipeline`, by its keyword names."""

    E: float
    incE: float
    incdomE: float
    F1: float
    F2: float
    F3: float


#: AlphaFold2's jackhmmer settings (``-E``, ``--incE``, ``--F1``..``--F3``), plus jackhmmer's own
#: default ``--incdomE``, which AlphaFold leaves alone (pyhmmer's Pipeline defaults to 0.01).
PIPELINE_OPTIONS = PipelineOptions(
    E=0.0001, incE=0.0001, incdomE=0.001, F1=0.0005, F2=0.00005, F3=0.0000005
)
#: A block is this many sequences (HMMER's threads take 1,000 at a time), or fewer when they
#: reach BLOCK_RESIDUES: a few MB in memory, and enough blocks to keep every thread busy.
BLOCK_SEQUENCES = 2_000
BLOCK_RESIDUES = 1_000_000
#: The first bytes of a database looked at before searching it (FASTA? protein?).
_HEAD_CHECKED = 64 << 10
_NUCLEOTIDE_SHARE = 0.9
_NUCLEOTIDE_MIN_RESIDUES = 10
_FASTA_FIX = "give a FASTA file of protein sequences (plain text or gzip)"
_EASEL_LINE = re.compile(r"Line (?P<line>\d+): (?P<problem>.*)", re.DOTALL)
#: Bytes that no text file holds (NUL bytes are already gone: the reader drops them).
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_STOP = ord("*")
_UNKNOWN = ord("X")


@dataclass(frozen=True)
class Database:
    """A database file as the first pass found it: its size and its number of sequences."""

    path: Path
    #: The file's name: what its hits are called in the results.
    name: str
    #: Bytes of the file as stored (compressed, for a gzip file): what progress counts.
    size: int
    #: Sequences in the file: HMMER's ``Z``.
    sequences: int


def search_jackhmmer(
    queries: Sequence[Query],
    databases: Sequence[Path],
    *,
    max_hits: int = DEFAULT_MAX_HITS,
    cpus: int | None = None,
    progress: OnSearchProgress | None = None,
) -> list[SearchResult]:
    """Search every query against every database (FASTA, plain or gzip) with AlphaFold2's
    jackhmmer settings; one :class:`SearchResult` per query, in order, with one
    :class:`DatabaseHits` per database, named by the database's file name.

    ``max_hits`` caps the hits of each database's alignment, in HMMER's order, the query's
    row not counted (see the module's docstring); ``cpus`` threads search (None: every core
    this process may use); ``progress`` hears of the database bytes read, from the main thread.
    Each database is read twice: once to check and count it, once to search it; every query is
    searched in the same pass. Raises :class:`~foldserve.errors.InputError` for a database that
    is missing, empty, not FASTA or not protein, before any search starts when it can tell.
    """
    if max_hits < 1:
        raise InputError(
            f"max_hits must be at least 1, got {max_hits}",
            where="--max-hits",
            fix="give a positive number of hits to keep per database",
        )
    if cpus is not None and cpus < 1:
        raise InputError(
            f"cpus must be at least 1, got {cpus}", where="--cpus", fix="give 1 or more"
        )
    threads = cpus if cpus is not None else usable_cpus()
    report = progress if progress is not None else _ignore
    surveyed = [survey(Path(path), report) for path in databases]
    if not queries:
        return []

    from pyhmmer.easel import Alphabet

    alphabet = Alphabet.amino()
    per_database = []
    for database in surveyed:
        found = search_database(database, queries, threads, report)
        per_database.append(
            [
                DatabaseHits(database.name, _a3m(query, hits, alphabet, max_hits))
                for query, hits in zip(queries, found, strict=True)
            ]
        )
    source = ", ".join(str(path) for path in databases)
    return [
        SearchResult(
            query=query,
            tool=TOOL,
            source=source,
            hits=tuple(hits[index] for hits in per_database),
        )
        for index, query in enumerate(queries)
    ]


def survey(path: Path, progress: OnSearchProgress) -> Database:
    """The first pass over a database: check that it is a FASTA file of proteins and count its
    sequences (its ``Z``). Raises :class:`~foldserve.errors.InputError` naming the file."""
    where = str(path)
    _check_file(path)
    size = path.stat().st_size
    sequences = 0
    previous = b"\n"
    with path.open("rb") as raw, open_source(raw) as text:
        head = text.head()
        _check_head(head, path)
        for block in text.blocks():
            sequences += block.count(b"\n>") + (previous == b"\n" and block[:1] == b">")
            previous = block[-1:]
            progress(
                SearchProgress(
                    stage=TOOL,
                    message=f"counting sequences in {path.name}",
                    done=raw.tell(),
                    total=size,
                )
            )
    if sequences == 0:
        raise InputError("the database holds no sequences", where=where, fix=_FASTA_FIX)
    return Database(path=path, name=path.name, size=size, sequences=sequences)


def search_database(
    database: Database,
    queries: Sequence[Query],
    cpus: int,
    progress: OnSearchProgress,
) -> list[Hits]:
    """Search ``database`` in blocks for every query, in one pass; the merged hits of each
    query, sorted, as pyhmmer gives them (with their scores, which the A3M leaves out)."""
    from pyhmmer.easel import Alphabet, SequenceFile

    alphabet = Alphabet.amino()
    models = [_model(_digital(query, alphabet), alphabet) for query in queries]
    merged = [_Merged() for _ in queries]
    in_flight: deque[Future[list[Hits]]] = deque()
    read = 0
    with (
        ThreadPoolExecutor(max_workers=cpus, thread_name_prefix="jackhmmer") as pool,
        ExitStack() as stack,
    ):
        raw = stack.enter_context(database.path.open("rb"))
        stream = stack.enter_context(open_source(raw)).stream
        sequences = SequenceFile(stream, format="fasta", digital=True, alphabet=alphabet)
        stack.callback(sequences.close)
        while block := _read_block(sequences, database):
            read += len(block)
            in_flight.append(pool.submit(_search_block, block, models, alphabet, database))
            progress(
                SearchProgress(
                    stage=TOOL,
                    message=f"searching {database.name}",
                    done=raw.tell(),
                    total=database.size,
                )
            )
            if len(in_flight) == cpus:  # with the block read next: cpus + 1 blocks held
                _collect(in_flight.popleft(), merged)
        while in_flight:
            _collect(in_flight.popleft(), merged)
    if read != database.sequences:
        raise InputError(
            f"the database changed while it was searched ({database.sequences:,} sequences "
            f"counted, then {read:,} read)",
            where=str(database.path),
            fix="search a database that nothing is writing to",
        )
    return [hits.result() for hits in merged]


def _collect(block: Future[list[Hits]], merged: Sequence[_Merged]) -> None:
    for hits, found in zip(merged, block.result(), strict=True):
        hits.add(found)


class _Merged:
    """One query's hits so far, merged as blocks are done, kept as the digits of a binary
    counter are: entry k holds 2**k blocks' hits, and adding a block merges equal entries. So
    O(log blocks) :class:`~pyhmmer.plan7.TopHits` are held (each, even empty, holds HMMER's
    pipeline and hit arrays), whatever the database's size, and each hit is copied O(log
    blocks) times (merging into one growing list would copy the hits once per block)."""

    def __init__(self) -> None:
        self._entries: list[tuple[int, Hits]] = []

    def add(self, hits: Hits) -> None:
        blocks = 1
        while self._entries and self._entries[-1][0] == blocks:
            merged_blocks, previous = self._entries.pop()
            hits = previous.merge(hits)
            blocks += merged_blocks
        self._entries.append((blocks, hits))

    def result(self) -> Hits:
        """Every block's hits, thresholded together and sorted as HMMER sorts them."""
        first, *rest = (hits for _, hits in self._entries)
        merged = first.merge(*rest)
        merged.sort(by="key")
        return merged


def _search_block(
    block: DigitalSequenceBlock[AA], models: Sequence[HMM[AA]], alphabet: AA, database: Database
) -> list[Hits]:
    """One block against every model, each with a pipeline of its own (pipelines are not
    shared between threads; the models and the block are only read)."""
    from pyhmmer.plan7 import Pipeline

    try:
        return [
            Pipeline(alphabet, Z=database.sequences, **PIPELINE_OPTIONS).search_hmm(hmm, block)
            for hmm in models
        ]
    except ValueError as exc:  # a sequence longer than HMMER compares (100,000 residues)
        raise InputError(
            f"cannot be searched: {exc}",
            where=str(database.path),
            fix="leave out the sequences over 100,000 residues (jackhmmer refuses them too)",
        ) from None


def _read_block(
    sequences: SequenceFile[DigitalSequence[AA]], database: Database
) -> DigitalSequenceBlock[AA]:
    """The next block of the file (empty at its end); Easel's parse errors as InputError."""
    try:
        block = sequences.read_block(sequences=BLOCK_SEQUENCES, residues=BLOCK_RESIDUES)
    except (ValueError, EOFError, OSError) as exc:
        message = str(exc).removeprefix("Could not parse file: ")
        where = str(database.path)
        if located := _EASEL_LINE.match(message):  # Easel counts lines from 0
            where = f"{where}:{int(located['line']) + 1}"
            message = located["problem"]
        raise InputError(
            f"not a FASTA file of proteins: {message}", where=where, fix=_FASTA_FIX
        ) from None
    # The stubs' overloads lose the digital mode that the file was opened in.
    return cast("DigitalSequenceBlock[AA]", block)


def _digital(query: Query, alphabet: AA) -> DigitalSequence[AA]:
    from pyhmmer.easel import TextSequence

    return TextSequence(name=query.name.encode(), sequence=query.sequence).digitize(alphabet)


def _model(query: DigitalSequence[AA], alphabet: AA) -> HMM[AA]:
    """The query's profile HMM, built as jackhmmer's first round builds it (the builder that
    :func:`pyhmmer.hmmer.jackhmmer` makes)."""
    from pyhmmer.plan7 import Background, Builder

    builder = Builder(alphabet, seed=42, architecture="hand")
    hmm, _, _ = builder.build(query, Background(alphabet))
    return hmm


def _a3m(query: Query, hits: Hits, alphabet: AA, max_hits: int) -> str:
    """The query and the first ``max_hits`` included domains of ``hits`` as A3M."""
    from pyhmmer.easel import TextMSA
    from pyhmmer.plan7 import Trace

    lines = [f">{query.name}", query.sequence]
    if _cap(hits, max_hits):
        digital = _digital(query, alphabet)
        msa = hits.to_msa(
            alphabet,
            sequences=[digital],
            traces=[Trace.from_sequence(digital)],
            all_consensus_cols=True,
        )
        assert isinstance(msa, TextMSA)  # digitize=False
        rows = msa.alignment  # row by row: the alignment's text is held once, by Easel
        columns = ~IS_GAP[np.frombuffer(rows[0].encode("ascii"), dtype=np.uint8)]
        names: Sequence[str] = msa.names
        for index in range(1, len(names)):
            lines += [f">{names[index]}", _a3m_row(rows[index].encode("ascii"), columns)]
    return "\n".join(lines) + "\n"


def _cap(hits: Hits, rows: int) -> int:
    """Leave the first ``rows`` included domains included, in hit order, and exclude the rest
    (so that the alignment is built for the kept rows only); the number kept."""
    kept = 0
    for hit in hits:
        if not hit.included:
            continue
        for domain in hit.domains.included:
            if kept < rows:
                kept += 1
            else:
                domain.included = False
    return kept


def _a3m_row(row: bytes, columns: BoolTable) -> str:
    """One aligned row relative to the query, as AlphaFold's ``convert_stockholm_to_a3m``
    makes it: in the query's columns (``columns``) the character as it is (a gap as ``-``);
    elsewhere the residues in lower case and no gaps."""
    text = np.frombuffer(row, dtype=np.uint8)
    gap = IS_GAP[text]
    out = np.where(text == _STOP, _UNKNOWN, text).astype(np.uint8)
    out[columns & gap] = ord("-")
    out[~columns] = TO_LOWER[out[~columns]]
    return out[columns | ~gap].tobytes().decode("ascii")


def _check_file(path: Path) -> None:
    where = str(path)
    if not path.exists():
        raise InputError("no such database file", where=where, fix="check the path given with --db")
    if path.is_dir():
        raise InputError("is a directory", where=where, fix="give the database's FASTA file")
    if not os.access(path, os.R_OK):
        raise InputError("permission denied", where=where, fix="make the database readable")


def _check_head(head: bytes, path: Path) -> None:
    """Refuse what is plainly not a protein FASTA file from its first bytes: no ``>`` header
    first (a Stockholm or A3M alignment with markup, a binary file, an MMseqs2 database), or
    sequences that are nearly all A, C, G, T, U and N (DNA, which HMMER's amino alphabet would
    read as protein letters without complaint)."""
    where = str(path)
    text = head.lstrip()
    if not text:
        raise InputError("the database is empty", where=where, fix=_FASTA_FIX)
    if not text.startswith(b">"):
        if _CONTROL.search(text[:4096]):
            raise InputError(
                "not a FASTA file: it is binary (not text, nor gzip, bzip2 or xz)",
                where=where,
                fix=_FASTA_FIX,
            )
        first = text.split(b"\n", 1)[0][:40].decode("utf-8", errors="replace")
        raise InputError(
            f"not a FASTA file: it starts with {first!r}, not a '>' header line",
            where=where,
            fix=_FASTA_FIX,
        )
    complete = head.rsplit(b"\n", 1)[0] if len(head) >= _HEAD_CHECKED else head
    residues = np.frombuffer(
        b"".join(line for line in complete.split(b"\n") if not line.startswith(b">")),
        dtype=np.uint8,
    )
    residues = residues[~IS_GAP[residues] & (residues > ord(" "))]
    share = float(IS_NUCLEOTIDE[residues].mean()) if len(residues) else 0.0
    if len(residues) >= _NUCLEOTIDE_MIN_RESIDUES and share >= _NUCLEOTIDE_SHARE:
        raise InputError(
            f"the database looks like DNA/RNA ({share:.0%} of its first residues are "
            "A, C, G, T, U or N)",
            where=where,
            fix="search a protein database (jackhmmer here compares proteins)",
        )


def _ignore(event: SearchProgress) -> None:
    """The progress callback when none is given."""

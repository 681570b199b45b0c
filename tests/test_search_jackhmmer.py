"""The streamed jackhmmer search against its peers, on a real proteome (2,100 proteins from
pyhmmer's own test data): the ``jackhmmer`` program of the ``hmmer`` wheel with AlphaFold2's
flags (hits, E-values, and the A3M AlphaFold makes from its ``-A`` output), and pyhmmer's
non-streamed :func:`pyhmmer.hmmer.jackhmmer`.
"""

from __future__ import annotations

import gzip
import importlib
import importlib.resources
import io
import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from foldserve.errors import InputError
from foldserve.msa.reading import read
from foldserve.msa.search import jackhmmer
from foldserve.msa.search.jackhmmer import (
    PIPELINE_OPTIONS,
    search_database,
    search_jackhmmer,
    survey,
)
from foldserve.msa.search.queries import read_queries
from foldserve.msa.search.results import Query, SearchResult
from foldserve.msa.search.settings import SearchProgress

if TYPE_CHECKING:
    from pyhmmer.plan7 import Hit

pytestmark = pytest.mark.timeout(120)

#: An ABC-transporter ATPase of the proteome: 96 targets with hits, many with several domains.
QUERY_NAME = "938293.PRJEB85.HG003686_448"
#: AlphaFold2's command line (alphafold/data/tools/jackhmmer.py), without its file arguments.
ALPHAFOLD_FLAGS = [
    "-N", "1", "-E", "0.0001", "--incE", "0.0001",
    "--F1", "0.0005", "--F2", "0.00005", "--F3", "0.0000005",
]  # fmt: skip


def find_proteome() -> Path | None:
    """pyhmmer's test proteome, when pyhmmer's wheel ships its tests (0.12 does)."""
    try:
        data = importlib.resources.files("pyhmmer.tests") / "data" / "seqs"
    except ModuleNotFoundError:
        return None
    path = Path(str(data / "938293.PRJEB85.HG003687.faa"))
    return path if path.is_file() else None


def jackhmmer_program() -> Path | None:
    """The ``jackhmmer`` executable of the ``hmmer`` wheel (a dev dependency), when installed;
    the binary itself, not the wheel's Python wrapper (the bench measures its memory)."""
    try:
        hmmer = importlib.import_module("hmmer")
    except ModuleNotFoundError:
        return None
    program = Path(hmmer.BIN_DIR) / "jackhmmer"
    if os.access(program, os.X_OK):
        return program
    return Path(hmmer.path(hmmer.Program.jackhmmer))  # the wheel unpacks it to a temporary file


def read_query(proteome: Path, folder: Path, name: str = QUERY_NAME) -> Query:
    """The record ``name`` of the proteome, read as ``foldserve msa search`` reads a query
    (its final '*' off)."""
    records = ("\n" + proteome.read_text()).split("\n>")[1:]
    record = next(r for r in records if r.split(None, 1)[0] == name)
    path = folder / "query.fasta"
    path.write_text(">" + record + "\n")
    (found,) = read_queries(path)
    return found


@dataclass(frozen=True)
class ProgramRun:
    """What the jackhmmer program found: E-values of the targets with an included domain, and
    its ``-A`` alignment."""

    evalues: dict[str, float]
    stockholm: Path


@pytest.fixture(scope="module")
def proteome() -> Path:
    path = find_proteome()
    if path is None:
        pytest.skip("pyhmmer's test proteome (pyhmmer/tests/data) is not installed")
    return path


@pytest.fixture(scope="module")
def query(proteome: Path, tmp_path_factory: pytest.TempPathFactory) -> Query:
    return read_query(proteome, tmp_path_factory.mktemp("query"))


@pytest.fixture(scope="module")
def program_run(
    proteome: Path, query: Query, tmp_path_factory: pytest.TempPathFactory
) -> ProgramRun:
    program = jackhmmer_program()
    if program is None:
        pytest.skip("the hmmer wheel (a dev dependency: the jackhmmer program) is not installed")
    folder = tmp_path_factory.mktemp("jackhmmer")
    fasta = folder / "query.fasta"
    fasta.write_text(f">{query.name}\n{query.sequence}\n")
    table, stockholm = folder / "hits.tbl", folder / "hits.sto"
    subprocess.run(
        [str(program), *ALPHAFOLD_FLAGS, "--cpu", "2", "-o", os.devnull,
         "--tblout", str(table), "-A", str(stockholm), str(fasta), str(proteome)],
        check=True,
        timeout=60,
    )  # fmt: skip
    evalues = {}
    for line in table.read_text().splitlines():
        if line.startswith("#"):
            continue
        fields = line.split()
        if int(fields[17]) > 0:  # "inc": domains included in the alignment
            evalues[fields[0]] = float(fields[4])
    return ProgramRun(evalues=evalues, stockholm=stockholm)


@pytest.fixture(scope="module")
def result(proteome: Path, query: Query) -> SearchResult:
    (found,) = search_jackhmmer([query], [proteome], cpus=2)
    return found


def _records(a3m: str) -> list[tuple[str, str]]:
    """``(name, row)`` of every record, the name being the header's first word."""
    records = []
    for chunk in a3m.split(">")[1:]:
        header, _, rows = chunk.partition("\n")
        records.append((header.split()[0], rows.replace("\n", "")))
    return records


def _alphafold_a3m(stockholm: Path, max_hits: int | None = None) -> str:
    """The A3M that AlphaFold2's data pipeline makes of jackhmmer's ``-A`` output."""
    from alphafold.data import parsers

    text = (
        stockholm.read_text()
        if max_hits is None
        else parsers.truncate_stockholm_msa(str(stockholm), max_hits)
    )
    return str(parsers.convert_stockholm_to_a3m(text))


# -- the same hits as the jackhmmer program, the same A3M as AlphaFold makes of them ---------------


def test_hits_and_evalues_equal_the_jackhmmer_programs(
    proteome: Path, query: Query, result: SearchResult, program_run: ProgramRun
) -> None:
    targets = {name.rsplit("/", 1)[0] for name, _ in result.hits[0].records()}
    assert targets == set(program_run.evalues)
    assert len(targets) == 96

    database = survey(proteome, _quiet)
    (hits,) = search_database(database, [query], 2, _quiet)
    # A target can be included with none of its domains: no row, "inc" 0 in the table.
    found = {hit.name: hit.evalue for hit in hits if len(hit.domains.included)}
    assert set(found) == targets
    for name, evalue in program_run.evalues.items():
        # The table prints two significant digits.
        assert found[name] == pytest.approx(evalue, rel=0.05), name


def test_a3m_equals_alphafolds_conversion_of_the_programs_alignment(
    result: SearchResult, program_run: ProgramRun
) -> None:
    """Row for row, names and order included (AlphaFold keeps the Stockholm's order)."""
    assert _records(result.hits[0].a3m) == _records(_alphafold_a3m(program_run.stockholm))


def test_max_hits_keeps_the_first_rows_as_alphafold_truncates(
    proteome: Path, query: Query, result: SearchResult, program_run: ProgramRun
) -> None:
    (capped,) = search_jackhmmer([query], [proteome], max_hits=5, cpus=1)
    rows = _records(capped.hits[0].a3m)
    assert rows == _records(result.hits[0].a3m)[:6]  # the query and the 5 best
    # AlphaFold's cap counts the query's row: 6 rows are its cap of 6.
    assert rows == _records(_alphafold_a3m(program_run.stockholm, max_hits=6))
    assert capped.hits[0].count == 5
    (alone,) = search_jackhmmer([query], [proteome], max_hits=1, cpus=1)
    assert alone.hits[0].count == 1


# -- streaming equals pyhmmer's search of the whole database in memory ----------------------------


def test_streamed_search_equals_pyhmmers_jackhmmer(
    proteome: Path, query: Query, result: SearchResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyhmmer
    from pyhmmer.easel import Alphabet, SequenceFile, TextSequence

    monkeypatch.setattr(jackhmmer, "BLOCK_SEQUENCES", 100)
    events: list[SearchProgress] = []
    (streamed,) = search_jackhmmer([query], [proteome], cpus=2, progress=events.append)

    searching = [e for e in events if e.message.startswith("searching")]
    assert len(searching) == 21  # 2,100 sequences, 100 a block
    assert [e.done for e in searching] == sorted(e.done or 0 for e in searching)
    assert searching[-1].done == searching[-1].total == proteome.stat().st_size
    assert streamed == result  # blocks of 2,000 (one here), of 100: the same

    amino: Alphabet = Alphabet.amino()
    digital = TextSequence(name=query.name.encode(), sequence=query.sequence).digitize(amino)
    with SequenceFile(proteome, digital=True, alphabet=amino) as everything:  # read whole
        (whole,) = pyhmmer.hmmer.jackhmmer(
            digital, everything, max_iterations=1, checkpoints=False, cpus=1, **PIPELINE_OPTIONS
        )
    (hits,) = search_database(survey(proteome, _quiet), [query], 2, _quiet)

    def summary(found: Iterable[Hit]) -> list[tuple[str, float, float, int]]:
        return [(h.name, h.score, h.evalue, len(h.domains.included)) for h in found if h.included]

    assert summary(hits) == summary(whole.hits)
    assert hits.Z == whole.hits.Z == 2100
    assert hits.domZ == whole.hits.domZ
    # pyhmmer's alignment of the round holds the same rows, in the same order.
    names = [name for name, _ in _records(streamed.hits[0].a3m)]
    assert names[1:] == list(whole.msa.names[1:])


def test_gzip_database_gives_the_same_hits_and_counts_compressed_bytes(
    proteome: Path, query: Query, result: SearchResult, tmp_path: Path
) -> None:
    packed = tmp_path / "proteome.faa.gz"
    with proteome.open("rb") as plain, gzip.open(packed, "wb") as out:
        shutil.copyfileobj(plain, out)
    events: list[SearchProgress] = []
    (found,) = search_jackhmmer([query], [packed], cpus=2, progress=events.append)
    assert found.hits[0].database == "proteome.faa.gz"
    assert found.hits[0].a3m == result.hits[0].a3m
    assert events[-1].done == events[-1].total == packed.stat().st_size


def test_several_queries_are_searched_in_one_pass(
    proteome: Path, query: Query, result: SearchResult
) -> None:
    other = Query("short", "MNINELLKDKDLKVTKYRKLILENLKSCDNPISAEELFDKLKKDYDMDLSTIYRNLNILE")
    both = search_jackhmmer([other, query], [proteome], cpus=2)
    assert [r.query for r in both] == [other, query]
    assert both[1] == result
    assert both[0] == search_jackhmmer([other], [proteome], cpus=1)[0]


# -- several databases; the A3M as foldserve reads it ---------------------------------------------


def test_two_databases_are_kept_apart_and_merged_without_duplicates(
    proteome: Path, query: Query, result: SearchResult, tmp_path: Path
) -> None:
    copy = tmp_path / "copy.faa"
    shutil.copyfile(proteome, copy)
    (found,) = search_jackhmmer([query], [proteome, copy], cpus=2)
    assert found.tool == "jackhmmer"
    assert found.source == f"{proteome}, {copy}"
    assert [h.database for h in found.hits] == [proteome.name, "copy.faa"]
    assert list(found.hits[1].records()) == list(result.hits[0].records())
    assert found.a3m() == result.a3m()  # the second database adds no row
    summary = found.summary()
    assert summary.hits == {proteome.name: 126, "copy.faa": 126}
    assert summary.rows == len(result.msa())


def test_the_a3m_reads_back_with_the_query_first(result: SearchResult, query: Query) -> None:
    stream = io.BytesIO(result.hits[0].a3m.encode())
    msa = read(stream, format="a3m")
    assert msa.query_name == query.name
    assert msa.query_sequence == query.sequence
    assert len(msa) == 127  # the query and 126 domains of 97 targets
    merged = result.msa()
    assert merged.query_sequence == query.sequence
    assert len(merged) == 126  # the query's own hit, the same row, is dropped


def test_a_stop_inside_an_aligned_domain_becomes_x(query: Query, tmp_path: Path) -> None:
    """HMMER aligns a '*' as an insertion; an A3M row holds letters and gaps only."""
    sequence = query.sequence
    database = tmp_path / "stop.fasta"
    database.write_text(f">stop\n{sequence[:100]}*{sequence[100:]}\n")
    (found,) = search_jackhmmer([query], [database], cpus=1)
    ((name, row),) = found.hits[0].records()
    assert name == f"stop/1-{len(sequence) + 1}"
    assert row == f"{sequence[:100]}x{sequence[100:]}"


# -- bad databases -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "the database is empty"),
        (b"\n  \n", "the database is empty"),
        (b"# STOCKHOLM 1.0\nseq1 MKV\n//\n", "not a FASTA file: it starts with '# STOCKHOLM"),
        (bytes(range(256)) * 4, "not a FASTA file: it is binary"),
        (b">gene\nATGCGTACGTTAGCATGCAAGT\nACGTGGCA\n", "looks like DNA/RNA"),
        (b">a\nMKVLAAGIV\n>b\nMKV1LAG\n", ":4: not a FASTA file of proteins: illegal character 1"),
        (b">long\n" + b"MKVLAAGIVW" * 10_001 + b"\n", "over comparison pipeline limit"),
        (b">a\n>b\n", None),  # records without residues: searched, nothing found
    ],
    ids=["empty", "blank", "stockholm", "binary", "dna", "digit", "too-long", "no-residues"],
)
def test_bad_databases_get_one_line_input_errors(
    tmp_path: Path, query: Query, content: bytes, problem: str | None
) -> None:
    database = tmp_path / "db.fasta"
    database.write_bytes(content)
    if problem is None:
        (found,) = search_jackhmmer([query], [database], cpus=1)
        assert found.hits[0].count == 0
        return
    with pytest.raises(InputError) as caught:
        search_jackhmmer([query], [database], cpus=1)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{database}:")
    assert problem in message
    assert "Fix:" in message


def test_missing_database_and_folder_are_named(tmp_path: Path, query: Query) -> None:
    for path, problem in (
        (tmp_path / "nope.fasta", "no such database file"),
        (tmp_path, "is a directory"),
    ):
        with pytest.raises(InputError, match=problem) as caught:
            search_jackhmmer([query], [path], cpus=1)
        assert caught.value.where == str(path)


def test_a_bad_second_database_fails_before_the_first_is_searched(
    proteome: Path, query: Query, tmp_path: Path
) -> None:
    events: list[SearchProgress] = []
    with pytest.raises(InputError, match="no such database file"):
        search_jackhmmer([query], [proteome, tmp_path / "nope.fa"], progress=events.append)
    assert not [e for e in events if e.message.startswith("searching")]


def test_bad_settings(proteome: Path, query: Query) -> None:
    with pytest.raises(InputError, match="max_hits must be at least 1"):
        search_jackhmmer([query], [proteome], max_hits=0)
    with pytest.raises(InputError, match="cpus must be at least 1"):
        search_jackhmmer([query], [proteome], cpus=0)


def _quiet(event: SearchProgress) -> None:
    pass

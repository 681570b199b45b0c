"""Real files are messy: each quirk is read as the clean file would be."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from pathlib import Path

import numpy as np
import pytest

from foldserve import msa
from tests.conftest import data

pytestmark = pytest.mark.timeout(60)

CLEAN = b">query desc\nMKV-LA\n>hit1\nMKVaLA\n>hit2\nM-VLLA\n"


def read_bytes(tmp_path: Path, content: bytes, name: str = "x.a3m") -> msa.Msa:
    path = tmp_path / name
    path.write_bytes(content)
    return msa.read(path)


def same(a: msa.Msa, b: msa.Msa) -> bool:
    return (
        a.names == b.names
        and np.array_equal(a.residues, b.residues)
        and np.array_equal(a.deletions, b.deletions)
        and a.insertions == b.insertions
    )


def test_clean_reference(tmp_path: Path) -> None:
    clean = read_bytes(tmp_path, CLEAN)
    # The query's gap column is an insertion: hit1's 'a' and hit2's 'L' are deletions.
    assert clean.sequences == ["MKVLA", "MKVLA", "M-VLA"]
    assert clean.deletion_matrix == [[0, 0, 0, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 1, 0]]
    assert clean.insertions == (b"", b"a", b"l")
    assert clean.descriptions[0] == "desc"


@pytest.mark.parametrize(
    "messy",
    [
        CLEAN.replace(b"\n", b"\r\n"),
        CLEAN + b"\0\0\0",
        CLEAN.replace(b">hit", b"\n\n>hit"),
        b"; made by hand\n;another comment\n" + CLEAN,
        CLEAN.rstrip(b"\n"),
        CLEAN.replace(b"MKVaLA", b"MKV\naLA"),
        CLEAN + b">ss_pred\nCCHHEC\n>ss_conf\n998877\n",
    ],
    ids=[
        "crlf",
        "nul",
        "blank-lines",
        "comments",
        "no-final-newline",
        "wrapped",
        "hhsuite-annotation-rows",
    ],
)
def test_quirk_reads_like_clean_file(tmp_path: Path, messy: bytes) -> None:
    assert same(read_bytes(tmp_path, messy), read_bytes(tmp_path, CLEAN, "clean.a3m"))


def test_colabfold_length_cardinality_header_line(tmp_path: Path) -> None:
    a3m = b">101\nMKVLA\n>hit\nMKvVLA\n"
    with_header = read_bytes(tmp_path, b"#5\t1\n" + a3m)
    assert with_header.format == "a3m"
    assert same(with_header, read_bytes(tmp_path, a3m, "plain.a3m"))
    assert with_header.deletion_matrix[1] == [0, 0, 1, 0, 0]


def test_annotation_rows_are_skipped_with_a_warning(tmp_path: Path) -> None:
    alignment = read_bytes(tmp_path, CLEAN + b">ss_pred\nCCHHEC\n>ss_dssp\nCCHHEC\n")
    assert len(alignment) == 3
    assert any("ss_pred" in w and "ss_dssp" in w for w in alignment.warnings)


def test_tab_separated_header_metadata_stays_in_description(tmp_path: Path) -> None:
    alignment = read_bytes(tmp_path, b">101\nMKVLA\n>UniRef100_X\t86\t0.396\t1.3E-17\nMKVLA\n")
    assert alignment.names == ("101", "UniRef100_X")
    assert alignment.descriptions[1] == "86\t0.396\t1.3E-17"


def test_duplicate_rows_are_kept_when_reading() -> None:
    alignment = msa.read(data("edge_cases/colabfold_6A5J_duplicate_seq_no_trailing_newline.a3m"))
    assert len(alignment) == 2
    assert alignment.row(0) == alignment.row(1) == "IKKILSKIKKLLK"


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
def test_compressed_files_are_read_transparently(tmp_path: Path, compress: object) -> None:
    source = data("msa/stockholm/hmmer_globins4.sto")
    packed = tmp_path / "no-telling-suffix.dat"
    packed.write_bytes(compress(source.read_bytes()))  # type: ignore[operator]
    assert same(msa.read(packed), msa.read(source))


def test_open_binary_stream_is_accepted() -> None:
    alignment = msa.read(io.BytesIO(CLEAN))
    assert alignment.sequences[0] == "MKVLA"


def test_format_is_sniffed_from_content_not_name(tmp_path: Path) -> None:
    sto = data("msa/stockholm/hmmer_fn3.sto")
    disguised = tmp_path / "alignment.fasta"
    disguised.write_bytes(sto.read_bytes())
    assert msa.read(disguised).format == "stockholm"


def test_query_can_be_chosen_by_name() -> None:
    path = data("msa/stockholm/hmmer_globins4.sto")
    alignment = msa.read(path, query="MYG_PHYCA")
    assert alignment.query_name == "MYG_PHYCA"
    assert alignment.query_sequence.replace("-", "") == alignment.query_sequence
    assert alignment.query_length == 153
    assert set(alignment.names) == {"HBB_HUMAN", "HBA_HUMAN", "MYG_PHYCA", "GLB5_PETMA"}
    # Other rows keep their file order after the query.
    assert alignment.names[1:] == ("HBB_HUMAN", "HBA_HUMAN", "GLB5_PETMA")


def test_large_alignment_is_read_in_chunks(tmp_path: Path) -> None:
    """More rows than one builder chunk: results equal row-by-row reading of the parts."""
    source = data("msa/fasta_aligned/pfam_PF13354_full_4642seqs.fasta")
    alignment = msa.read(source)
    assert len(alignment) == 4642
    assert alignment.query_length == 198
    head = b">".join(source.read_bytes().split(b">")[:101])
    small = read_bytes(tmp_path, head, "head.fasta")
    assert np.array_equal(small.residues, alignment.residues[:100])


def test_compressed_large_alignment_grows_its_storage(tmp_path: Path) -> None:
    """Without a file size to go by (gzip), storage starts small and grows as rows arrive."""
    source = data("msa/a3m/colabfold_4OT_uniref_env.a3m")
    packed = tmp_path / "4ot.a3m.gz"
    packed.write_bytes(gzip.compress(source.read_bytes()))
    assert same(msa.read(packed), msa.read(source))
    assert len(msa.read(packed)) == 7797

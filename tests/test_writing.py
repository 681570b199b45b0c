"""Converting loses nothing: every format written reads back to the same alignment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pyhmmer.easel import MSAFile, TextMSA

from foldserve import msa
from foldserve.errors import InputError
from foldserve.msa.writing import a3m_row, stockholm_names
from tests.conftest import TESTDATA, data

pytestmark = pytest.mark.timeout(60)

SOURCES = [
    "msa/a3m/colabfold_4OT_uniref_env.a3m",
    "msa/a3m/biotite_1a00_A_uniref90_openproteinset.a3m",
    "msa/stockholm/hmmer_Pkinase.sto",
    "msa/fasta_aligned/prody_msa_Cys_knot_PF00007.fasta",
    "msa/clustal/biopython_clustalw.aln",
]


@pytest.mark.parametrize("relative", SOURCES)
@pytest.mark.parametrize("suffix", [".a3m", ".fasta", ".sto", ".a3m.gz"])
def test_round_trip(tmp_path: Path, relative: str, suffix: str) -> None:
    original = msa.read(data(relative))
    out = tmp_path / f"converted{suffix}"
    msa.write(original, out)
    back = msa.read(out)
    names = stockholm_names(original.names) if ".sto" in suffix else list(original.names)
    assert list(back.names) == names
    assert_same_rows(back, original)


def assert_same_rows(back: msa.Msa, original: msa.Msa) -> None:
    assert np.array_equal(back.residues, original.residues)
    assert np.array_equal(back.deletions, original.deletions)
    assert back.insertions == original.insertions


#: Every alignment in the test data that foldserve reads; left out: a DNA alignment and an
#: empty file, which it refuses (tests/test_bad_input.py).
REFUSED = {"hmmer_MADE1_DNA.sto", "colabfold_empty.a3m"}
READABLE = sorted(
    str(path.relative_to(TESTDATA))
    for path in [
        *(TESTDATA / "msa").rglob("*"),
        *(TESTDATA / "edge_cases").glob("colabfold_*.a3m"),
        TESTDATA / "predictions/colabfold_4OT_test_a5e17_25/test_a5e17_25.a3m",
    ]
    if path.is_file() and path.name not in REFUSED
)
#: Easel has no A3M reader, but its A2M reader takes "dotless" A2M, which is A3M.
EASEL_FORMATS = {".sto": "stockholm", ".fasta": "afa", ".a3m": "a2m"}


def residues_of(row: str) -> str:
    return row.replace("-", "").replace(".", "").upper()


@pytest.mark.parametrize("relative", READABLE)
def test_easel_reads_back_every_file_foldserve_writes(tmp_path: Path, relative: str) -> None:
    """HMMER's parser (through pyhmmer) reads each output, rows in order, residues intact; and
    foldserve reads its own output back to the same alignment."""
    original = msa.read(data(relative))
    expected = [residues_of(a3m_row(original, index)) for index in range(len(original))]
    for suffix, easel_format in EASEL_FORMATS.items():
        out = tmp_path / f"out{suffix}"
        msa.write(original, out)
        with MSAFile(str(out), format=easel_format, digital=False) as reader:
            alignment = reader.read()
        assert isinstance(alignment, TextMSA)
        names = stockholm_names(original.names) if suffix == ".sto" else list(original.names)
        assert list(alignment.names) == names, suffix
        assert [residues_of(row) for row in alignment.alignment] == expected, suffix
        back = msa.read(out)
        assert list(back.names) == names
        assert_same_rows(back, original)


def test_stockholm_names_are_one_word_unique_and_keep_the_first() -> None:
    names = ["a", "a", "a_2", "b c", "", "#x", "//", "a", "b_c"]
    assert stockholm_names(names) == [
        "a",
        "a_3",  # a_2 is taken by a later row, which keeps it
        "a_2",
        "b_c",
        "unnamed",
        "_#x",
        "_//",
        "a_4",
        "b_c_2",
    ]


def test_stockholm_with_awkward_names_is_read_by_easel(tmp_path: Path) -> None:
    names = ("q", "q", "two words", "", "#hash", "q_2")
    residues = np.frombuffer(b"MKV" * len(names), dtype=np.uint8).reshape(len(names), 3)
    alignment = msa.Msa(
        names=names,
        descriptions=("query", "", "a description", "", "", "kept"),
        residues=residues,
        deletions=np.zeros(residues.shape, dtype=np.uint16),
        insertions=(b"",) * len(names),
    )
    out = tmp_path / "awkward.sto"
    msa.write(alignment, out)
    with MSAFile(str(out), format="stockholm", digital=False) as reader:
        easel = reader.read()
    assert isinstance(easel, TextMSA)
    assert list(easel.names) == ["q", "q_3", "two_words", "unnamed", "_#hash", "q_2"]
    back = msa.read(out)
    assert back.names == tuple(easel.names)
    assert back.descriptions == alignment.descriptions
    assert "#=GF CC foldserve renamed 4 row(s)" in out.read_text()


def test_a3m_output_is_what_hhblits_writes(tmp_path: Path) -> None:
    source = tmp_path / "in.fasta"
    source.write_text(">q\nMK..VLA\n>h\nMKgsVLA\n>g\nM-...LA\n")
    alignment = msa.read(source)
    out = tmp_path / "out.a3m"
    msa.write(alignment, out)
    assert out.read_text() == ">q\nMKVLA\n>h\nMKgsVLA\n>g\nM--LA\n"


def test_stockholm_output_lays_out_insert_columns(tmp_path: Path) -> None:
    alignment = msa.read(data("msa/a3m/colabfold_Q60262_uniref_env_small.a3m"))
    out = tmp_path / "out.sto"
    msa.write(alignment, out)
    lines = out.read_text().splitlines()
    assert lines[0] == "# STOCKHOLM 1.0"
    assert lines[-1] == "//"
    rows = [line.split()[1] for line in lines if line and not line.startswith(("#", "//"))]
    assert len({len(r) for r in rows}) == 1
    assert rows[0].replace(".", "") == alignment.query_sequence


def test_query_columns_only(tmp_path: Path) -> None:
    alignment = msa.read(data("msa/a3m/openfold_short_bfd_uniclust_hits.a3m"))
    out = tmp_path / "flat.fasta"
    msa.write(alignment, out, keep_insertions=False)
    back = msa.read(out)
    assert back.sequences == alignment.sequences
    assert not back.deletions.any()


def test_unwritable_or_unnamed_output(tmp_path: Path) -> None:
    alignment = msa.read(data("msa/a3m/colabfold_Q60262_uniref_env_small.a3m"))
    with pytest.raises(InputError, match="cannot tell the output format"):
        msa.write(alignment, tmp_path / "noext")
    with pytest.raises(InputError, match="cannot write"):
        msa.write(alignment, tmp_path / "missing-dir" / "x.a3m")
    assert not list(tmp_path.glob("**/*.partial"))

"""Converting loses nothing: every format written reads back to the same alignment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from foldserve import msa
from foldserve.errors import InputError
from tests.conftest import data

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
    assert back.names == original.names
    assert np.array_equal(back.residues, original.residues)
    assert np.array_equal(back.deletions, original.deletions)
    assert back.insertions == original.insertions


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

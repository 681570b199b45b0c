"""ColabFold complex A3Ms: the ``#lengths<TAB>copies`` first line becomes ``Msa.complex``.

The files are laid out as ColabFold's ``msa_to_str`` writes them: the header; the paired rows,
both chains side by side; then each chain's unpaired rows, its own query first, padded with
gaps over the other chain.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from foldserve import msa
from foldserve.errors import InputError, MsaError
from foldserve.msa.model import ComplexLayout
from tests.cli_runner import foldserve
from tests.conftest import data

pytestmark = pytest.mark.timeout(60)

CHAIN_A = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIE"
CHAIN_B = "GSHMEELLKKAEELIKRAKELGDEELAKKAL"
assert len(CHAIN_A) == len(CHAIN_B) == 31
GAPS = "-" * 31


def heteromer_a3m(header: str = "#31,31\t1,1") -> str:
    return (
        f"{header}\n"
        f">101\t102\n{CHAIN_A}{CHAIN_B}\n"
        f">UniRef100_P1\tUniRef100_P2\n{CHAIN_A[:-3]}kw------{CHAIN_B[3:]}\n"
        f">101\n{CHAIN_A}{GAPS}\n"
        f">UniRef100_A1\n--{CHAIN_A[2:]}{GAPS}\n"
        f">102\n{GAPS}{CHAIN_B}\n"
        f">UniRef100_B1\n{GAPS}{CHAIN_B[:20]}ggg{CHAIN_B[20:]}\n"
    )


HOMODIMER_A3M = f"#31\t2\n>101\n{CHAIN_A}\n>101\n{CHAIN_A}\n>UniRef100_A1\n--{CHAIN_A[2:]}\n"


def write(tmp_path: Path, text: str, name: str = "complex.a3m") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_heteromer_header_gives_its_chains(tmp_path: Path) -> None:
    alignment = msa.read(write(tmp_path, heteromer_a3m()))
    assert alignment.complex == ComplexLayout(lengths=(31, 31), copies=(1, 1))
    assert alignment.complex.describe() == "heteromer of 2 chains (31 + 31 residues)"
    assert alignment.query_length == 62
    assert alignment.query_sequence == CHAIN_A + CHAIN_B
    assert len(alignment) == 6


def test_homodimer_header_gives_two_copies_of_one_chain(tmp_path: Path) -> None:
    alignment = msa.read(write(tmp_path, HOMODIMER_A3M))
    assert alignment.complex == ComplexLayout(lengths=(31,), copies=(2,))
    assert alignment.complex.describe() == "homodimer of a 31-residue chain"
    assert alignment.query_length == 31


def test_real_colabfold_monomer_has_no_complex() -> None:
    path = data("predictions/colabfold_4OT_test_a5e17_25/test_a5e17_25.a3m")
    assert path.read_bytes().startswith(b"#59\t1\n")
    alignment = msa.read(path)
    assert alignment.complex is None
    assert alignment.query_length == 59


def test_files_without_the_header_have_no_complex(tmp_path: Path) -> None:
    assert msa.read(data("msa/a3m/colabfold_4OT_uniref_env.a3m")).complex is None
    # HH-suite databases start each A3M with '#name': not a ColabFold header.
    alignment = msa.read(write(tmp_path, f"#UniRef100_A1 cluster\n>q\n{CHAIN_A}\n"))
    assert alignment.complex is None


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("#31,31\t1", "2 chain length(s) but 1 copy count(s)"),
        ("#31,x\t1,1", "chain lengths '31,x' are not positive whole numbers"),
        ("#31,31\t1,0", "copies '1,0' are not positive whole numbers"),
        ("#30,31\t1,1", "chains of 61 residues in all, but the query has 62"),
        ("#31,31\t1,1\t2", "3 fields, expected 2"),
        ("#31,31 1,1 1", "3 fields, expected 2"),
        ("#" + "9" * 5000 + "\t1", "not positive whole numbers"),
    ],
)
def test_malformed_header_names_line_one_and_the_fix(
    tmp_path: Path, header: str, problem: str
) -> None:
    path = write(tmp_path, heteromer_a3m(header))
    with pytest.raises(MsaError) as caught:
        msa.read(path)
    assert caught.value.where == f"{path}:1"
    assert problem in caught.value.problem
    assert caught.value.fix is not None and "#31,31<TAB>1,1" in caught.value.fix
    result = foldserve("msa", "inspect", str(path))
    assert result.exit_code == 2
    assert f"{path}:1:" in result.stderr
    assert "Traceback" not in result.stderr


def test_header_whose_tab_became_spaces_is_still_read(tmp_path: Path) -> None:
    alignment = msa.read(write(tmp_path, heteromer_a3m("#31,31   1,1")))
    assert alignment.complex == ComplexLayout(lengths=(31, 31), copies=(1, 1))


def test_complex_survives_filter_and_a3m_conversion(tmp_path: Path) -> None:
    source = write(tmp_path, heteromer_a3m())
    original = msa.read(source)
    filtered, _ = msa.filter_msa(original, msa.FilterSettings(max_seqs=3))
    assert filtered.complex == original.complex

    converted = tmp_path / "converted.a3m"
    result = foldserve("msa", "convert", str(source), str(converted))
    assert result.exit_code == 0, result.stderr
    assert converted.read_text().startswith("#31,31\t1,1\n>101 102\n")
    assert msa.read(converted).complex == original.complex

    out = tmp_path / "filtered.a3m"
    result = foldserve("msa", "filter", str(source), str(out), "--min-coverage", "48")
    assert result.exit_code == 0, result.stderr
    back = msa.read(out)
    assert back.complex == original.complex
    assert "UniRef100_A1" not in back.names  # covers 29 of 62 residues
    assert len(back) == 5


@pytest.mark.parametrize("suffix", [".sto", ".fasta"])
def test_complex_is_not_written_where_its_chains_would_be_lost(tmp_path: Path, suffix: str) -> None:
    source = write(tmp_path, heteromer_a3m())
    out = tmp_path / f"out{suffix}"
    with pytest.raises(InputError, match="heteromer of 2 chains"):
        msa.write(msa.read(source), out)
    result = foldserve("msa", "convert", str(source), str(out))
    assert result.exit_code == 2
    assert "write A3M" in result.stderr
    assert not out.exists()


def test_inspect_reports_the_chains(tmp_path: Path) -> None:
    source = write(tmp_path, HOMODIMER_A3M)
    result = foldserve("msa", "inspect", "--json", str(source))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["complex"] == {"lengths": [31], "copies": [2]}
    result = foldserve("msa", "inspect", str(source))
    assert "homodimer of a 31-residue chain" in result.stdout


def test_layout_describes_and_validates_itself() -> None:
    layout = ComplexLayout(lengths=(31, 40, 12), copies=(2, 1, 1))
    assert layout.describe() == "complex of 3 chains (31 + 40 + 12 residues), copies 2,1,1"
    assert ComplexLayout(lengths=(20,), copies=(3,)).describe() == (
        "homotrimer of a 20-residue chain"
    )
    assert ComplexLayout(lengths=(20,), copies=(12,)).describe() == (
        "homo12-mer of a 20-residue chain"
    )
    with pytest.raises(ValueError, match="2 chain lengths but 1 copy counts"):
        ComplexLayout(lengths=(31, 31), copies=(1,))
    with pytest.raises(ValueError, match="not a complex"):
        ComplexLayout(lengths=(59,), copies=(1,))
    with pytest.raises(ValueError, match="at least 1"):
        ComplexLayout(lengths=(0, 3), copies=(1, 1))


def test_msa_refuses_a_layout_that_does_not_fit_its_query() -> None:
    residues = np.frombuffer(b"MKV", dtype=np.uint8).reshape(1, 3)
    with pytest.raises(ValueError, match="hold 4 residues, the query 3"):
        msa.Msa(
            names=("q",),
            descriptions=("",),
            residues=residues,
            deletions=np.zeros((1, 3), dtype=np.uint16),
            insertions=(b"",),
            complex=ComplexLayout(lengths=(2, 2), copies=(1, 1)),
        )

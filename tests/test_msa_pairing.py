"""One MSA per chain into ColabFold's complex MSA: paired block, then padded unpaired blocks.

The layout is checked against ColabFold's own ``msa_to_str`` on the same rows, the pairing
against the species AlphaFold's ``get_identifiers`` reads from the row names.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from colabfold.input import msa_to_str, pair_sequences

from foldserve import msa
from foldserve.errors import InputError
from foldserve.msa.model import ComplexLayout, Msa
from foldserve.msa.pairing import ChainMsa, pair_chains, row_species
from foldserve.msa.writing import write_a3m
from tests.conftest import data

pytestmark = pytest.mark.timeout(60)

QUERY_A = "MKTAYIAKQRQI"
QUERY_B = "GSHMEELLKKAEEL"
CHAIN_A = (
    f">101\n{QUERY_A}\n"
    ">sp|P10001|A1_HUMAN far from the query\nMKTAYLGKQRQV\n"
    ">sp|P10002|A2_MOUSE\nMKTAYIAKQRQL\n"
    ">sp|P10003|A3_YEAST\n--TAYIAKQRQI\n"
    ">tr|A0A0A0|A0A0A0_HUMAN close to the query\nMKTAYIAKQRQV\n"
    ">UniRef100_X no species\nMKTAYIAKqqQRQI\n"
)
CHAIN_B = (
    f">102\n{QUERY_B}\n"
    ">sp|Q20001|B1_MOUSE\nGSHMEELLKKAEEV\n"
    ">sp|Q20002|B2_HUMAN\nGSHaMEELLKKAEEL\n"
    ">sp|Q20003|B3_RAT\nGSHMEELLKKAE--\n"
)
#: Species in both chains: HUMAN and MOUSE (YEAST and RAT are in one only). Of chain A's two
#: human rows the one closer to its query (row 4) is paired; all-chain pairs are ordered by the
#: product of their row numbers, as AlphaFold's ``reorder_paired_rows`` does.
EXPECTED_PAIRS = [(0, 0), (2, 1), (4, 2)]


def from_text(text: str) -> Msa:
    return msa.read(io.BytesIO(text.encode()))


def assert_same(got: Msa, expected: Msa) -> None:
    assert got.names == expected.names
    assert got.descriptions == expected.descriptions
    np.testing.assert_array_equal(got.residues, expected.residues)
    np.testing.assert_array_equal(got.deletions, expected.deletions)
    assert got.insertions == expected.insertions
    assert got.complex == expected.complex


def rows_text(chain: Msa, rows: list[int]) -> str:
    """The A3M text of ``rows`` of ``chain``, as ColabFold's per-chain paired MSA has them."""
    buffer = io.StringIO()
    write_a3m(chain.select(np.array(rows, dtype=np.intp)), buffer)
    return buffer.getvalue()


def test_heteromer_pairs_rows_of_the_same_species_and_pads_the_rest() -> None:
    a, b = from_text(CHAIN_A), from_text(CHAIN_B)
    result = pair_chains([ChainMsa(a), ChainMsa(b)])
    complex_msa = result.msa
    assert complex_msa.complex == ComplexLayout(lengths=(12, 14), copies=(1, 1))
    assert result.warnings == ()
    assert result.paired_rows == len(EXPECTED_PAIRS)
    assert complex_msa.row(0) == QUERY_A + QUERY_B
    species_a, species_b = row_species(a), row_species(b)
    for row, (i, j) in enumerate(EXPECTED_PAIRS):
        assert complex_msa.row(row) == a.row(i) + b.row(j)
        assert species_a[i] == species_b[j]
        assert complex_msa.insertions[row] == a.insertions[i] + b.insertions[j]
    assert complex_msa.names[2] == "tr|A0A0A0|A0A0A0_HUMAN"
    assert complex_msa.descriptions[2] == "close to the query\tsp|Q20002|B2_HUMAN"
    unpaired_a = slice(result.paired_rows, result.paired_rows + len(a))
    unpaired_b = slice(unpaired_a.stop, None)
    assert complex_msa.names[unpaired_a] == a.names
    assert complex_msa.names[unpaired_b] == b.names
    assert [row[:12] for row in complex_msa.sequences[unpaired_a]] == a.sequences
    assert {row[12:] for row in complex_msa.sequences[unpaired_a]} == {"-" * 14}
    assert {row[:12] for row in complex_msa.sequences[unpaired_b]} == {"-" * 12}
    assert [row[12:] for row in complex_msa.sequences[unpaired_b]] == b.sequences
    assert not complex_msa.deletions[unpaired_a, 12:].any()
    assert complex_msa.insertions[unpaired_a] == a.insertions


def test_layout_is_what_colabfold_writes_and_reads_back(tmp_path: Path) -> None:
    a, b = from_text(CHAIN_A), from_text(CHAIN_B)
    result = pair_chains([ChainMsa(a), ChainMsa(b, copies=2)])
    colabfold = msa_to_str(
        unpaired_msa=[CHAIN_A, CHAIN_B],
        paired_msa=[
            rows_text(a, [i for i, _ in EXPECTED_PAIRS]),
            rows_text(b, [j for _, j in EXPECTED_PAIRS]),
        ],
        query_seqs_unique=[QUERY_A, QUERY_B],
        query_seqs_cardinality=[1, 2],
    )
    assert colabfold.startswith("#12,14\t1,2\n")
    assert_same(result.msa, from_text(colabfold))
    written = tmp_path / "complex.a3m"
    msa.write(result.msa, written)
    assert_same(msa.read(written), result.msa)


def test_real_uniprot_names_pair_by_species() -> None:
    """OpenFold's BFD/Uniclust hits name 77 of 1023 rows ``tr|...|..._9BACT`` and the like."""
    hits = msa.read(data("msa/a3m/openfold_short_bfd_uniclust_hits.a3m"))
    species = row_species(hits)
    named = [s for s in species[1:] if s]
    assert len(named) == 77 and "9BACT" in named
    result = pair_chains([ChainMsa(hits), ChainMsa(hits)])
    assert result.paired_rows == 1 + len(named)
    width = hits.query_length
    for row in range(1, result.paired_rows):
        left, right = result.msa.row(row)[:width], result.msa.row(row)[width:]
        i, j = hits.sequences.index(left), hits.sequences.index(right)
        assert species[i] == species[j] != ""
    assert len(result.msa) == result.paired_rows + 2 * len(hits)


def test_chain_without_species_is_left_unpaired_with_a_warning() -> None:
    hits = msa.read(data("msa/a3m/openfold_short_bfd_uniclust_hits.a3m"))
    globins = msa.read(data("msa/stockholm/hmmer_globins4.sto"))  # HBB_HUMAN: no sp|...|
    result = pair_chains([ChainMsa(hits), ChainMsa(globins)])
    assert result.paired_rows == 1
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("no species in the row names of chain B (")
    assert "rows left unpaired" in result.warnings[0]
    assert result.msa.warnings == result.warnings
    assert result.msa.row(0) == hits.query_sequence + globins.query_sequence
    assert len(result.msa) == 1 + len(hits) + len(globins)


def test_chains_without_a_shared_species_are_left_unpaired() -> None:
    hits = msa.read(data("msa/a3m/openfold_short_bfd_uniclust_hits.a3m"))
    other = msa.read(data("msa/a3m/openfold_2q2k_A_bfd_uniclust_hits.a3m"))  # STAAU, 9STAP..
    result = pair_chains([ChainMsa(hits), ChainMsa(other)])
    assert result.paired_rows == 1
    assert result.warnings == ("no species is found in two chains or more: rows left unpaired",)


def test_three_chains_pad_a_chain_missing_from_a_pairing() -> None:
    a, b = from_text(CHAIN_A), from_text(CHAIN_B)
    c = from_text(">103\nWWPP\n>sp|R30001|C1_YEAST\nWWPA\n")
    result = pair_chains([ChainMsa(a), ChainMsa(b), ChainMsa(c)])
    rows = result.msa.sequences[: result.paired_rows]
    # HUMAN and MOUSE pair A with B, YEAST pairs A with C; pairs of every chain would come first.
    assert rows[0] == QUERY_A + QUERY_B + "WWPP"
    assert "--TAYIAKQRQI" + "-" * 14 + "WWPA" in rows
    yeast = rows.index("--TAYIAKQRQI" + "-" * 14 + "WWPA")
    assert result.msa.descriptions[yeast] == "-\tsp|R30001|C1_YEAST"


def test_given_paired_msa_is_the_paired_block(tmp_path: Path) -> None:
    """The server's per-chain pair.a3m, put side by side by ColabFold's ``pair_sequences``."""
    a, b = from_text(CHAIN_A), from_text(CHAIN_B)
    per_chain = [
        f">101\n{QUERY_A}\n>UniRef100_P1\n{QUERY_A[:-2]}kw--\n",
        f">102\n{QUERY_B}\n>UniRef100_P2\n{QUERY_B}\n",
    ]
    paired = from_text(pair_sequences(per_chain, [QUERY_A, QUERY_B], [1, 1]))
    result = pair_chains([ChainMsa(a), ChainMsa(b)], paired=paired)
    assert result.paired_rows == 2 and result.warnings == ()
    colabfold = msa_to_str([CHAIN_A, CHAIN_B], per_chain, [QUERY_A, QUERY_B], [1, 1])
    assert_same(result.msa, from_text(colabfold))
    written = tmp_path / "complex.a3m"
    msa.write(result.msa, written)
    assert_same(msa.read(written), result.msa)


def test_given_paired_msa_must_span_the_chains() -> None:
    a, b = from_text(CHAIN_A), from_text(CHAIN_B)
    narrow = from_text(f">101\n{QUERY_A}{QUERY_B[:-1]}\n")
    with pytest.raises(
        InputError, match=r"paired MSA has 25 columns, but the chains have 12\+14 = 26"
    ):
        pair_chains([ChainMsa(a), ChainMsa(b)], paired=narrow)
    with_header = from_text(f"#14,12\t1,1\n>102\t101\n{QUERY_B}{QUERY_A}\n")
    with pytest.raises(InputError, match=r"header gives chains of 14\+12 residues"):
        pair_chains([ChainMsa(a), ChainMsa(b)], paired=with_header)
    swapped = from_text(f">102\t101\n{QUERY_B}{QUERY_A}\n")
    with pytest.raises(InputError, match="first row is not the chains' queries side by side"):
        pair_chains([ChainMsa(a), ChainMsa(b)], paired=swapped)
    with pytest.raises(InputError, match="only one") as caught:
        pair_chains([ChainMsa(a, copies=2)], paired=from_text(f">101\n{QUERY_A}\n"))
    assert caught.value.where == "--paired-msa"


def test_homodimer_has_the_query_alone_as_its_paired_block(tmp_path: Path) -> None:
    a = from_text(CHAIN_A)
    result = pair_chains([ChainMsa(a, copies=2)])
    assert result.msa.complex == ComplexLayout(lengths=(12,), copies=(2,))
    assert result.paired_rows == 1 and result.warnings == ()
    colabfold = msa_to_str([CHAIN_A], [f">101\n{QUERY_A}\n", f">102\n{QUERY_A}\n"], [QUERY_A], [2])
    assert colabfold.startswith(f"#12\t2\n>101\n{QUERY_A}\n>101\n{QUERY_A}\n")
    assert_same(result.msa, from_text(colabfold))
    written = tmp_path / "homodimer.a3m"
    msa.write(result.msa, written)
    assert_same(msa.read(written), result.msa)


def test_a_single_chain_in_one_copy_comes_back_unchanged() -> None:
    a = from_text(CHAIN_A)
    result = pair_chains([ChainMsa(a)])
    assert result.msa is a and result.paired_rows == 1


@pytest.mark.parametrize(
    ("chains", "where", "problem"),
    [
        ([], "--msa", "no chains"),
        (
            [ChainMsa(from_text(CHAIN_A), copies=0)],
            "--copies",
            r"chain A \(<stream>\) has 0 copies",
        ),
        (
            [ChainMsa(from_text(CHAIN_A)), ChainMsa(from_text(f"#12\t2\n{CHAIN_A}"))],
            "<stream>",
            "chain B is already a complex MSA",
        ),
    ],
)
def test_bad_chains_are_refused(chains: list[ChainMsa], where: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem) as caught:
        pair_chains(chains)
    assert caught.value.where == where
    assert "Fix:" in str(caught.value) and "\n" not in str(caught.value)

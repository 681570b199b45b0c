"""Bad input gets one clear line naming the file, the line, the problem and the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from foldserve import msa
from foldserve.errors import MsaError
from tests.cli_runner import foldserve
from tests.conftest import data

pytestmark = pytest.mark.timeout(60)

CASES = [
    # (file, line or None, words the problem must contain, words the fix must contain)
    ("edge_cases/colabfold_empty.a3m", None, "empty", "query"),
    ("edge_cases/colabfold_empty.fasta", None, "empty", "query"),
    ("edge_cases/biotite_invalid.fasta", 1, "invalid character '?'", "X for an unknown"),
    ("edge_cases/easel_fasta.bad.1_bad_char.fa", 1, "invalid character '1'", "remove"),
    ("edge_cases/easel_fasta.bad.2_truncated_name.fa", 1, "ends inside the header", "truncated"),
    ("edge_cases/easel_fasta.bad.3_truncated_desc.fa", 1, "ends inside the header", "truncated"),
    ("edge_cases/easel_fasta.odd.1_empty_seqs.fa", 1, "has no sequence", "re-export"),
    ("sequences/hmmer_globins45_unaligned.fa", 31, "looks unaligned", "align the sequences"),
    ("sequences/pfam_PF02518_HATPase_c_seed_unaligned.fasta", 4, "looks unaligned", "hmmalign"),
    ("msa/stockholm/hmmer_MADE1_DNA.sto", 33, "looks like DNA/RNA", "protein alignment"),
]


@pytest.mark.parametrize(
    ("relative", "line", "problem", "fix"), CASES, ids=[c[0].split("/")[-1] for c in CASES]
)
def test_api_error_names_file_line_problem_and_fix(
    relative: str, line: int | None, problem: str, fix: str
) -> None:
    path = data(relative)
    with pytest.raises(MsaError) as caught:
        msa.read(path)
    error = caught.value
    assert error.source == str(path)
    assert error.line == line
    assert problem in error.problem
    assert error.fix is not None and fix in error.fix


@pytest.mark.parametrize(
    "relative", [c[0] for c in CASES], ids=[c[0].split("/")[-1] for c in CASES]
)
def test_cli_prints_one_line_and_exits_2(relative: str) -> None:
    path = data(relative)
    result = foldserve("msa", "inspect", str(path))
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {path}")
    assert "Fix:" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(120)
def test_installed_console_script_prints_one_line_and_exits_2() -> None:
    """The ``foldserve`` script pip installed, in its own process: no traceback reaches a user."""
    path = data("edge_cases/easel_fasta.bad.1_bad_char.fa")
    script = Path(sys.executable).with_name("foldserve")
    result = subprocess.run(
        [str(script), "msa", "inspect", str(path)],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {path}:1: invalid character '1'")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_query_all_gaps(tmp_path: Path) -> None:
    path = tmp_path / "gappy.fasta"
    path.write_text(">query\n------\n>hit\nMKVLAA\n")
    with pytest.raises(MsaError, match="all gaps") as caught:
        msa.read(path)
    assert caught.value.line == 1
    assert caught.value.fix is not None and "--query" in caught.value.fix


def test_unknown_query_name(tmp_path: Path) -> None:
    path = tmp_path / "x.a3m"
    path.write_text(">first\nMKVLA\n>second\nMKVLA\n")
    with pytest.raises(MsaError, match="no sequence named 'nope'"):
        msa.read(path, query="nope")


def test_a3m_row_with_wrong_column_count_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "x.a3m"
    path.write_text(">q\nMKVLA\n>ok\nMKvVLA\n>bad\nMKV\n")
    with pytest.raises(MsaError, match="record 'bad' has 3 aligned columns") as caught:
        msa.read(path)
    assert caught.value.line == 5


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(MsaError, match="no such file"):
        msa.read(tmp_path / "absent.a3m")
    junk = tmp_path / "junk.txt"
    junk.write_text("hello world\n")
    with pytest.raises(MsaError, match="not a recognised MSA format"):
        msa.read(junk)
    with pytest.raises(MsaError, match="unknown MSA format 'xml'"):
        msa.read(data("msa/a3m/colabfold_Q60262_uniref_env_small.a3m"), format="xml")


def test_corrupt_gzip(tmp_path: Path) -> None:
    broken = tmp_path / "x.a3m.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00garbage-garbage")
    with pytest.raises(MsaError, match="cannot decompress"):
        msa.read(broken)

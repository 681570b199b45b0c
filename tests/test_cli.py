"""The ``foldserve msa`` commands, run as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from foldserve import msa
from tests.cli_runner import foldserve
from tests.conftest import data

pytestmark = pytest.mark.timeout(60)


def test_inspect_json() -> None:
    result = foldserve(
        "msa", "inspect", "--json", str(data("msa/a3m/openfold_2q2k_A_bfd_uniclust_hits.a3m"))
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["query_length"] == 70
    assert report["depth"] == 4
    assert report["unique"] == 4
    assert report["neff"] > 0


def test_inspect_human_readable_names_the_essentials() -> None:
    path = data("msa/fasta_aligned/pfam_PF02518_HATPase_c_seed_hmmalign_no_inserts.fasta")
    result = foldserve("msa", "inspect", str(path))
    assert result.exit_code == 0
    text = result.stdout
    for word in ("fasta", "O85303_SALDU/345-452", "658 rows", "Neff", "coverage"):
        assert word in text


def test_inspect_reads_stdin() -> None:
    path = data("msa/stockholm/hmmer_globins4.sto")
    result = foldserve("msa", "inspect", "--json", "-", stdin=path.read_bytes())
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["query_name"] == "HBB_HUMAN"


def test_convert_by_extension_and_by_flag(tmp_path: Path) -> None:
    source = data("msa/stockholm/hmmer_fn3.sto")
    out = tmp_path / "fn3.a3m"
    assert foldserve("msa", "convert", str(source), str(out)).exit_code == 0
    assert msa.read(out).format == "a3m"
    to_stdout = foldserve("msa", "convert", str(source), "-", "--to", "fasta")
    assert to_stdout.exit_code == 0
    assert to_stdout.stdout.startswith(">")
    assert foldserve("msa", "convert", str(source), "-").exit_code == 2


def test_filter_writes_the_most_diverse_rows(tmp_path: Path) -> None:
    source = data("msa/fasta_aligned/pfam_PF13354_full_4642seqs.fasta")
    out = tmp_path / "small.a3m"
    result = foldserve(
        "msa",
        "filter",
        str(source),
        str(out),
        "--max-seq-id",
        "90",
        "--min-coverage",
        "50",
        "--max-seqs",
        "300",
    )
    assert result.exit_code == 0, result.stderr
    filtered = msa.read(out)
    assert len(filtered) == 300
    assert filtered.query_name == "A0A1M5C3L1_9FLAO/47-254"
    assert "duplicates removed" in result.stderr


def test_bad_flag_value_is_a_user_error(tmp_path: Path) -> None:
    source = data("msa/stockholm/hmmer_fn3.sto")
    result = foldserve("msa", "filter", str(source), str(tmp_path / "x.a3m"), "--max-seq-id", "250")
    assert result.exit_code == 2
    assert "--max-seq-id" in result.stderr
    assert "Traceback" not in result.stderr

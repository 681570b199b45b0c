"""Neff, duplicates and the hhfilter-style filters, checked against plain definitions."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from foldserve import msa
from foldserve.msa.filtering import FilterSettings, filter_msa
from foldserve.msa.stats import inspect, neff
from tests.cli_runner import foldserve
from tests.conftest import data

pytestmark = pytest.mark.timeout(60)


def identity(a: str, b: str) -> float:
    """The documented definition: identical residues over columns where both have one."""
    both = [(x, y) for x, y in zip(a, b, strict=True) if x != "-" and y != "-"]
    return sum(x == y for x, y in both) / len(both) if both else 0.0


@pytest.fixture(scope="module")
def fn3() -> msa.Msa:
    return msa.read(data("msa/stockholm/hmmer_fn3.sto"))


def test_neff_matches_its_definition(fn3: msa.Msa) -> None:
    rows = fn3.sequences
    expected = sum(1.0 / sum(identity(r, other) >= 0.8 for other in rows) for r in rows)
    value, used = neff(fn3)
    assert used == len(fn3)
    assert value == pytest.approx(expected, rel=1e-6)


def test_neff_of_identical_rows_is_one() -> None:
    alignment = msa.read(data("edge_cases/colabfold_6A5J_duplicate_seq_no_trailing_newline.a3m"))
    assert neff(alignment)[0] == pytest.approx(1.0)


def test_inspect_report(fn3: msa.Msa) -> None:
    report = inspect(fn3).to_json()
    assert {"format", "query_name", "query_length", "depth", "unique", "neff"} <= set(report)
    assert report["format"] == "stockholm"
    assert report["depth"] == 98
    assert report["query_length"] == 86
    coverage = report["coverage"]
    assert len(coverage["per_position"]) == 86
    assert coverage["min"] <= coverage["mean"] <= coverage["max"] <= 1.0


def test_duplicates_are_counted_and_removed() -> None:
    alignment = msa.read(data("msa/fasta_aligned/prody_msa_Cys_knot_PF00007.fasta"))
    report = inspect(alignment)
    assert report.unique == report.depth - 1
    assert any("duplicate" in w for w in report.warnings)
    filtered, _ = filter_msa(alignment, FilterSettings())
    assert len(filtered) == len(alignment) - 1
    assert len(set(filtered.rows())) == len(filtered)


def test_max_seq_id_equals_greedy_definition(fn3: msa.Msa) -> None:
    filtered, _ = filter_msa(fn3, FilterSettings(remove_duplicates=False, max_seq_id=0.4))
    kept: list[int] = []
    rows = fn3.sequences
    for i, row in enumerate(rows):
        if all(identity(row, rows[j]) <= 0.4 for j in kept):
            kept.append(i)
    assert list(filtered.names) == [fn3.names[i] for i in kept]


def test_coverage_and_query_identity(fn3: msa.Msa) -> None:
    filtered, report = filter_msa(fn3, FilterSettings(min_coverage=0.8, min_query_id=0.25))
    query = filtered.query_sequence
    assert filtered.names[0] == fn3.names[0]
    for row in list(filtered.rows())[1:]:
        assert sum(c != "-" for c in row) / len(row) >= 0.8
        assert identity(row, query) >= 0.25
    assert [count for _, count in report.steps] == sorted(
        (count for _, count in report.steps), reverse=True
    )


def test_max_seqs_keeps_query_first_and_picks_diverse_rows() -> None:
    alignment = msa.read(data("msa/fasta_aligned/pfam_PF13354_full_4642seqs.fasta"))
    filtered, _ = filter_msa(alignment, FilterSettings(max_seqs=200))
    assert len(filtered) == 200
    assert filtered.names[0] == alignment.names[0]
    rng = np.random.default_rng(0)
    random_pick = msa.Msa.select(
        alignment,
        np.concatenate(
            ([0], np.sort(rng.choice(np.arange(1, len(alignment)), 199, replace=False)))
        ),
    )

    def mean_pairwise(a: msa.Msa) -> float:
        rows = a.sequences[:80]
        return float(np.mean([identity(x, y) for x, y in itertools.combinations(rows, 2)]))

    assert mean_pairwise(filtered) < mean_pairwise(random_pick)


def test_filter_settings_validate() -> None:
    with pytest.raises(ValueError, match=r"max_seq_id must be between 0 and 1, got 1\.5"):
        FilterSettings(max_seq_id=1.5)
    with pytest.raises(ValueError, match="max_seqs must be at least 1"):
        FilterSettings(max_seqs=0)


FLAGS = ["--max-seq-id", "--min-coverage", "--min-query-id"]


@pytest.mark.parametrize("flag", FLAGS)
@pytest.mark.parametrize(("value", "fix"), [("0.5", "50 for 50%"), ("1", "100 for 100%")])
def test_filter_refuses_a_value_that_reads_as_fraction_and_percentage(
    tmp_path: Path, flag: str, value: str, fix: str
) -> None:
    """hhfilter's -id/-cov/-qid take percentages: -cov 1 is 1%, which a fraction reads as 100%."""
    out = tmp_path / "x.a3m"
    result = foldserve(
        "msa", "filter", str(data("msa/stockholm/hmmer_fn3.sto")), str(out), flag, value
    )
    assert result.exit_code == 2
    assert f"{flag}: {value} is ambiguous" in result.stderr
    assert f"give a percentage: {fix}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("flag", FLAGS)
@pytest.mark.parametrize("value", ["-5", "100.5", "nan"])
def test_filter_refuses_a_value_that_is_no_percentage(
    tmp_path: Path, flag: str, value: str
) -> None:
    out = tmp_path / "x.a3m"
    result = foldserve(
        "msa", "filter", str(data("msa/stockholm/hmmer_fn3.sto")), str(out), flag, value
    )
    assert result.exit_code == 2
    assert f"{flag}: " in result.stderr and "not a percentage" in result.stderr


def test_filter_percentages_mean_what_hhfilter_means(tmp_path: Path, fn3: msa.Msa) -> None:
    out = tmp_path / "x.a3m"
    result = foldserve(
        "msa",
        "filter",
        str(data("msa/stockholm/hmmer_fn3.sto")),
        str(out),
        "--max-seq-id",
        "90",
        "--min-coverage",
        "50",
        "--min-query-id",
        "20",
    )
    assert result.exit_code == 0, result.stderr
    expected, _ = filter_msa(
        fn3, FilterSettings(max_seq_id=0.9, min_coverage=0.5, min_query_id=0.2)
    )
    assert msa.read(out).names == expected.names
    assert "coverage >= 50%" in result.stderr
    # 0 and 100 are unambiguous: no threshold, and everything up to identical rows kept.
    result = foldserve(
        "msa",
        "filter",
        str(data("msa/stockholm/hmmer_fn3.sto")),
        str(out),
        "--min-coverage",
        "0",
        "--max-seq-id",
        "100",
        "--keep-duplicates",
    )
    assert result.exit_code == 0, result.stderr
    assert len(msa.read(out)) == len(fn3)

"""``--max-seqs`` and the identity filters make exactly the choices of their plain definitions.

The filters keep identities lazily and in blocks (see ``foldserve.msa.identity``); these tests
spell each rule out as a straightforward loop that updates every row after every batch, and
compare the rows kept on real MSAs, ties included.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from foldserve import msa
from foldserve.msa import filtering, identity
from foldserve.msa.alphabet import GAP, STATE_OF
from foldserve.msa.filtering import (
    CANDIDATES_PER_PICK,
    PICK_BATCH,
    PICK_ROUNDS,
    FilterSettings,
    filter_msa,
    most_diverse,
)
from foldserve.msa.identity import Closeness, Encoded
from foldserve.msa.stats import unique_rows
from tests.conftest import data

pytestmark = pytest.mark.timeout(120)

Residues = npt.NDArray[np.uint8]
Floats = npt.NDArray[np.float32]


class Plain:
    """Identities of whole rows to one row, straight from the residues."""

    def __init__(self, residues: Residues) -> None:
        self.states = STATE_OF[residues]
        self.present = residues != GAP

    def to(self, row: int) -> Floats:
        both = self.present & self.present[row]
        matches = (both & (self.states == self.states[row])).sum(axis=1).astype(np.float32)
        overlap = both.sum(axis=1).astype(np.float32)
        return np.where(overlap > 0, matches / np.maximum(overlap, 1), np.float32(0.0))


def plain_most_diverse(residues: Residues, count: int) -> list[int]:
    """The selection rule, spelled out: rounds of candidates taken by lowest closeness (ties:
    the earlier row), each kept unless closer to a row kept in the same round than to the
    picked set; after each round every row's closeness is updated."""
    plain = Plain(residues)
    closeness = plain.to(0)
    closeness[0] = np.inf
    picked = [0]
    batch = max(PICK_BATCH, count // PICK_ROUNDS)
    while len(picked) < min(count, len(residues)):
        want = min(batch, count - len(picked))
        order = np.argsort(closeness, kind="stable")[: CANDIDATES_PER_PICK * want]
        chosen: list[tuple[int, Floats]] = []
        for row in (int(i) for i in order if np.isfinite(closeness[i])):
            if len(chosen) == want:
                break
            if all(to_kept[row] <= closeness[row] for _, to_kept in chosen):
                chosen.append((row, plain.to(row)))
        for _, to_row in chosen:
            closeness = np.maximum(closeness, to_row)
        for row, _ in chosen:
            closeness[row] = np.inf
            picked.append(row)
    return sorted(picked)


def plain_filter(alignment: msa.Msa, settings: FilterSettings) -> list[str]:
    """hhfilter's steps in hhfilter's order, each a plain loop over rows."""
    keep = unique_rows(alignment) if settings.remove_duplicates else np.arange(len(alignment))
    residues = alignment.residues
    if settings.min_coverage is not None:
        covered = (residues[keep] != GAP).mean(axis=1)
        keep = keep[(covered >= settings.min_coverage) | (keep == 0)]
    if settings.min_query_id is not None:
        to_query = Plain(residues[keep]).to(0)
        keep = keep[(to_query >= np.float32(settings.min_query_id)) | (keep == 0)]
    if settings.max_seq_id is not None:
        plain = Plain(residues[keep])
        limit = np.float32(settings.max_seq_id)
        alive = np.ones(len(keep), dtype=np.bool_)
        for row in range(len(keep)):
            if alive[row]:
                alive[row + 1 :] &= plain.to(row)[row + 1 :] <= limit
        keep = keep[alive]
    if settings.max_seqs is not None and len(keep) > settings.max_seqs:
        keep = keep[plain_most_diverse(residues[keep], settings.max_seqs)]
    return [alignment.names[i] for i in keep]


@pytest.fixture(scope="module")
def pfam() -> msa.Msa:
    return msa.read(data("msa/fasta_aligned/pfam_PF13354_full_4642seqs.fasta"))


@pytest.mark.parametrize(
    ("path", "max_seqs", "remove_duplicates"),
    [
        ("msa/fasta_aligned/pfam_PF13354_full_4642seqs.fasta", 300, True),
        # 7,797 rows of 59 columns with their duplicates: closeness ties everywhere.
        ("msa/a3m/colabfold_4OT_uniref_env.a3m", 600, False),
        ("msa/a3m/biotite_1a00_A_uniref90_openproteinset.a3m", 150, True),
        ("msa/a3m/openfold_short_bfd_uniclust_hits.a3m", 1000, False),
    ],
)
def test_max_seqs_equals_the_plain_rule(path: str, max_seqs: int, remove_duplicates: bool) -> None:
    alignment = msa.read(data(path))
    settings = FilterSettings(remove_duplicates=remove_duplicates, max_seqs=max_seqs)
    filtered, _ = filter_msa(alignment, settings)
    assert list(filtered.names) == plain_filter(alignment, settings)


def test_blocking_and_laziness_do_not_change_the_selection(
    pfam: msa.Msa, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tiny blocks and no look-ahead take every path of the lazy, blocked code."""
    alignment = pfam.select(np.arange(1500))
    settings = FilterSettings(max_seqs=150)
    expected = plain_filter(alignment, settings)
    monkeypatch.setattr(identity, "BLOCK_ROWS", 29)
    monkeypatch.setattr(identity, "MIN_SEGMENT", 1)
    monkeypatch.setattr(identity, "REFRESH_AHEAD", 1)
    monkeypatch.setattr(filtering, "WALK_BLOCK", 5)
    assert list(filter_msa(alignment, settings)[0].names) == expected
    monkeypatch.setattr(identity, "MIN_SEGMENT", 50)
    monkeypatch.setattr(identity, "REFRESH_AHEAD", 100)
    assert list(filter_msa(alignment, settings)[0].names) == expected


def test_all_steps_pass_their_rows_on_as_the_plain_steps_do() -> None:
    alignment = msa.read(
        data("msa/fasta_aligned/pfam_PF02518_HATPase_c_seed_hmmalign_no_inserts.fasta")
    )
    for settings in (
        FilterSettings(min_coverage=0.6, min_query_id=0.2, max_seq_id=0.6, max_seqs=100),
        FilterSettings(min_query_id=0.25, max_seqs=90),
        FilterSettings(max_seq_id=0.8, max_seqs=150),
        FilterSettings(max_seq_id=0.5),
    ):
        filtered, report = filter_msa(alignment, settings)
        assert list(filtered.names) == plain_filter(alignment, settings), settings
        assert report.steps[-1][1] == len(filtered)


def write_fasta(tmp_path: Path, rows: list[str]) -> msa.Msa:
    path = tmp_path / "rows.fasta"
    path.write_text("".join(f">r{i}\n{row}\n" for i, row in enumerate(rows)))
    return msa.read(path)


def test_equal_closeness_goes_to_the_earlier_row(tmp_path: Path) -> None:
    # r1, r2 and r3 are all 0% identical to the query: r1 comes first.
    alignment = write_fasta(tmp_path, ["AAAA", "CCCC", "DDDD", "CCCC"])
    settings = FilterSettings(remove_duplicates=False, max_seqs=2)
    assert filter_msa(alignment, settings)[0].names == ("r0", "r1")


def test_a_batch_mate_exactly_as_close_as_the_picked_set_does_not_exclude(
    tmp_path: Path,
) -> None:
    # r1, r2 and r3 are all 50% identical to the query, so one round takes them in order.
    # r2 is 75% identical to r1, more than its 50% to the picked set: skipped. r3 is 50%
    # identical to r1, no more than its 50% to the picked set: kept.
    alignment = write_fasta(tmp_path, ["AAAA", "CCAA", "CDAA", "CAAC"])
    filtered, _ = filter_msa(alignment, FilterSettings(max_seqs=3))
    assert filtered.names == ("r0", "r1", "r3")
    assert plain_most_diverse(alignment.residues, 3) == [0, 1, 3]


def test_asking_for_more_rows_than_there_are_keeps_all() -> None:
    residues = np.frombuffer(b"AAAACCAACAAC", dtype=np.uint8).reshape(3, 4)
    rows = np.arange(3)
    assert most_diverse(Encoded(residues), rows, 10).tolist() == [0, 1, 2]
    assert most_diverse(Encoded(residues[:1]), rows[:1], 10).tolist() == [0]


def test_closeness_answers_exactly_whatever_the_picks() -> None:
    """Short rows over three characters: identities take few values, so ties abound."""
    rng = np.random.default_rng(7)
    residues = rng.choice(np.frombuffer(b"AC-", dtype=np.uint8), size=(300, 6))
    plain = Plain(residues)
    rows = np.arange(len(residues))
    closeness = Closeness(Encoded(residues), rows, first=0, capacity=len(rows))
    picked = [0]
    while len(picked) < 120:
        count = int(rng.integers(1, 40))
        exact = np.max([plain.to(p) for p in picked], axis=0)
        exact[picked] = np.inf
        expected = np.argsort(exact, kind="stable")[:count]
        expected = expected[np.isfinite(exact[expected])]
        got = closeness.smallest(count)
        assert got.tolist() == expected.tolist()
        assert np.array_equal(closeness.value[got], exact[got])
        new = rng.choice(np.setdiff1d(rows, picked), size=int(rng.integers(1, 15)), replace=False)
        closeness.pick(new)
        picked.extend(int(i) for i in new)
    assert sorted(closeness.picked.tolist()) == sorted(picked)


@pytest.mark.parametrize("length", [1, 3, 255, 256, 4095, 4096])
def test_one_product_separates_matches_and_overlap_exactly(length: int) -> None:
    """Rows up to 4,095 columns are encoded in float32, longer ones in float64; either way the
    identity is the float32 quotient of the two exact counts."""
    rng = np.random.default_rng(length)
    alphabet = np.frombuffer(b"ACDEFGHIKLMNPQRSTVWYX-", dtype=np.uint8)
    residues = rng.choice(alphabet, size=(12, length))
    residues[0] = rng.choice(alphabet[:-1], size=length)
    residues[1] = residues[0]  # identical rows without gaps: the largest counts there are
    residues[2] = GAP  # shares no residue with any row: identity 0
    encoded = Encoded(residues)
    assert encoded.dtype == (np.float32 if length < 4096 else np.float64)
    plain = Plain(residues)
    expected = np.stack([plain.to(row) for row in range(len(residues))])
    got = encoded.identity(slice(None))
    assert got.dtype == np.float32
    assert np.array_equal(got, expected)

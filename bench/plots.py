"""Benchmark: the plots written beside every prediction, foldserve against colabfold_batch.

What it measures
----------------
Both tools draw the same three figures from the same data, ColabFold's real output folder in
``shared/testdata/predictions/colabfold_4OT_test_a5e17_25`` (5 models of the 59-residue 4OT
query, its 7,797-row MSA):

* foldserve: ``write_figures(prediction_dir.load(folder), out)``, which reads the folder
  (models, scores JSON, MSA) and writes ``plddt.png``, ``pae.png``, ``coverage.png`` at
  200 dpi (what ``predict``, ``submit`` and ``fetch`` do after a prediction);
* ColabFold 1.6: what ``colabfold.batch.run`` does at its default ``dpi=200``:
  ``plot_msa_v2(feature_dict)``, ``plot_paes(paes)``, ``plot_plddts(plddts)``, each saved
  with ``savefig(bbox_inches="tight")``. Its inputs are handed over already in memory (its
  feature dict is foldserve's ``msa_features``, equal to ColabFold's array for array, as
  tests/test_fold_engine.py checks); reading them is not timed, so ColabFold is favoured.

Each tool draws into its own temporary folder, 1 warm-up (imports, font cache) then the best
of 3 runs. No target: this records what the plots cost a prediction.

How to run
----------
``.venv/bin/python bench/plots.py`` (about a minute).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

FOLDER = (
    Path(__file__).resolve().parents[2] / "shared/testdata/predictions/colabfold_4OT_test_a5e17_25"
)
DPI = 200
RUNS = 3


def foldserve_plots(folder: Path, out: Path) -> None:
    from foldserve.pipeline import prediction_dir
    from foldserve.pipeline.figures import write_figures

    write_figures(prediction_dir.load(folder), out)


def colabfold_inputs(folder: Path) -> tuple[dict[str, np.ndarray], list[dict[str, object]]]:
    from foldserve.fold.alphafold2.features import msa_features
    from foldserve.msa.reading import read

    features = msa_features(read(str(next(folder.glob("*.a3m")))))
    scores = [json.loads(p.read_text()) for p in sorted(folder.glob("*_scores_rank_*.json"))]
    return features, scores


def colabfold_plots(
    features: dict[str, np.ndarray], scores: list[dict[str, object]], out: Path
) -> None:
    from colabfold.colabfold import plot_paes, plot_plddts
    from colabfold.plot import plot_msa_v2

    length = [len(features["msa"][0])]
    for name, plot in (
        ("coverage", plot_msa_v2(features, dpi=DPI)),
        ("pae", plot_paes([np.asarray(s["pae"]) for s in scores], Ls=length, dpi=DPI)),
        ("plddt", plot_plddts([np.asarray(s["plddt"]) for s in scores], Ls=length, dpi=DPI)),
    ):
        plot.savefig(str(out / f"{name}.png"), bbox_inches="tight")
        plot.close()


def best_of(draw: Callable[[Path], None]) -> float:
    times = []
    for run in range(RUNS + 1):
        with tempfile.TemporaryDirectory() as tmp:
            tick = time.perf_counter()
            draw(Path(tmp))
            if run:  # the first is the warm-up
                times.append(time.perf_counter() - tick)
    return min(times)


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    features, scores = colabfold_inputs(FOLDER)
    ours = best_of(lambda out: foldserve_plots(FOLDER, out))
    theirs = best_of(lambda out: colabfold_plots(features, scores, out))
    print(f"input: {FOLDER.name} (5 models, {len(features['msa'])} MSA rows), {DPI} dpi")
    print(f"foldserve  load + write_figures (reads the folder too): {ours:.2f} s")
    print(f"ColabFold  plot_msa_v2 + plot_paes + plot_plddts:     {theirs:.2f} s")
    print(f"foldserve speed-up: {theirs / ours:.1f}x")


if __name__ == "__main__":
    main()

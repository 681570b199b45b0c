"""The figures of a prediction, as PNG files beside it: ``plddt.png``, ``pae.png`` and
``coverage.png`` (ColabFold's sequence coverage plot), each drawn when the folder has its
data. ``foldserve predict`` and ``submit`` write them next to the models; the report shows the
same files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure

from foldserve.files import write_bytes
from foldserve.msa.reading import read as read_msa
from foldserve.pipeline import plots, prediction_dir
from foldserve.pipeline.prediction_dir import PredictionDir
from foldserve.structure.reading import read_chains

#: Figure name -> file name, in the order the report shows them.
FIGURES = {"plddt": "plddt.png", "pae": "pae.png", "coverage": "coverage.png"}


def write_figures_into(directory: Path) -> dict[str, Path]:
    """The figures of the prediction folder ``directory`` (as downloaded, or staged), into it."""
    return write_figures(prediction_dir.load(directory), directory)


def write_figures(prediction: PredictionDir, directory: Path) -> dict[str, Path]:
    """Write the figures whose data ``prediction`` has into ``directory``; by name.

    pLDDT comes from the models' B-factor column (skipped when it is flat, as in a file with
    no confidences), PAE from each model's PAE file, coverage from the run's MSA. A complex's
    chains are marked in the pLDDT and PAE plots.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}

    def put(name: str, figure: Figure) -> None:
        written[name] = write_bytes(directory / FIGURES[name], plots.png(figure))

    chains = [(c.id, c.start, c.end) for c in prediction.chains]
    series = [(m.label, _plddt(m.path)) for m in prediction.models]
    with_plddt = [(label, values) for label, values in series if values is not None]
    if with_plddt:
        put("plddt", plots.plddt_figure(with_plddt, chains))
    matrices = [(m.label, m.read_pae()) for m in prediction.models]
    with_pae = [(label, matrix) for label, matrix in matrices if matrix is not None]
    if with_pae:
        put("pae", plots.pae_figure(with_pae, chains))
    if prediction.msa is not None:
        put("coverage", plots.coverage_figure(read_msa(str(prediction.msa))))
    return written


def _plddt(path: Path) -> npt.NDArray[np.float64] | None:
    """The CA B-factors of every chain, chain after chain; None when the column is flat."""
    values = np.concatenate([chain.b_factors for chain in read_chains(path)])
    return None if bool(np.ptp(values) == 0) else values

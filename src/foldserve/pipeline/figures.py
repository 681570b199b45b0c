"""The figures of a prediction, as PNG files beside it: ``plddt.png``, ``pae.png`` and
``coverage.png`` (ColabFold's sequence coverage plot), each drawn when the folder has its
data. ``foldserve predict`` and ``submit`` write them next to the models; the report shows the
same files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure

from foldserve.files import write_bytes
from foldserve.fold.results import ChainInfo
from foldserve.msa.reading import read as read_msa
from foldserve.pipeline import plots, prediction_dir
from foldserve.pipeline.prediction_dir import PredictionDir, RankedModel
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
    models = [(model.label, model) for model in prediction.models]
    return write_model_figures(models, prediction.chains, prediction.msa, directory)


def write_model_figures(
    models: Sequence[tuple[str, RankedModel]],
    chains: Sequence[ChainInfo],
    msa: Path | None,
    directory: Path,
) -> dict[str, Path]:
    """The figures of ``models`` (each under its label: one line of the pLDDT plot, one PAE
    map) and the coverage of ``msa``, as :func:`write_figures` draws them; by name."""
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}

    def put(name: str, figure: Figure) -> None:
        written[name] = write_bytes(directory / FIGURES[name], plots.png(figure))

    spans = [(c.id, c.start, c.end) for c in chains]
    series = [(label, plddt_of(model.path)) for label, model in models]
    with_plddt = [(label, values) for label, values in series if values is not None]
    if with_plddt:
        put("plddt", plots.plddt_figure(with_plddt, spans))
    matrices = [(label, model.read_pae()) for label, model in models]
    with_pae = [(label, matrix) for label, matrix in matrices if matrix is not None]
    if with_pae:
        put("pae", plots.pae_figure(with_pae, spans))
    if msa is not None:
        put("coverage", plots.coverage_figure(read_msa(str(msa))))
    return written


def plddt_of(path: Path) -> npt.NDArray[np.float64] | None:
    """The CA B-factors of every chain of a model, chain after chain; None when the column is
    flat (a file with no confidences)."""
    values = np.concatenate([chain.b_factors for chain in read_chains(path)])
    return None if bool(np.ptp(values) == 0) else values

"""The report's figures, drawn with matplotlib's Agg canvas (no display, no pyplot state).

Each function returns a :class:`~matplotlib.figure.Figure`; :func:`png` renders it once, and the
same bytes go into the HTML page and into the PNG files kept for papers.
"""

from __future__ import annotations

import io
import math

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure

from foldserve.msa.model import Msa

PNG_DPI = 200
#: AlphaFold DB's pLDDT bands and colours (also used by the 3D viewer).
PLDDT_BANDS = ((90.0, "#0053D6"), (70.0, "#65CBF3"), (50.0, "#FFDB13"), (0.0, "#FF7D45"))
GAP = ord("-")


def png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=PNG_DPI, bbox_inches="tight")
    return buffer.getvalue()


def plddt_figure(series: list[tuple[str, npt.NDArray[np.float64]]]) -> Figure:
    """Per-residue pLDDT of every model on one axis, over the confidence bands."""
    figure = Figure(figsize=(8, 3.2))
    axes = figure.subplots()
    upper = 100.0
    for lower, colour in PLDDT_BANDS:
        axes.axhspan(lower, upper, color=colour, alpha=0.15, linewidth=0)
        upper = lower
    for label, values in series:
        axes.plot(np.arange(1, len(values) + 1), values, linewidth=1.2, label=label)
    axes.set(xlabel="residue", ylabel="pLDDT", ylim=(0, 100), title="Per-residue confidence")
    axes.legend(fontsize="small", ncol=min(5, len(series)), loc="lower left")
    return figure


def pae_figure(matrices: list[tuple[str, npt.NDArray[np.float64]]]) -> Figure:
    """One predicted-aligned-error heatmap per model, on a shared 0-30 Å scale."""
    columns = min(3, len(matrices))
    rows = math.ceil(len(matrices) / columns)
    figure = Figure(figsize=(3.4 * columns + 0.8, 3.2 * rows), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False).ravel())
    image = None
    for ax, (label, matrix) in zip(axes, matrices, strict=False):
        image = ax.imshow(matrix, cmap="Greens_r", vmin=0, vmax=30, interpolation="nearest")
        ax.set(title=label, xlabel="scored residue", ylabel="aligned residue")
    for ax in axes[len(matrices) :]:
        ax.set_axis_off()
    if image is not None:
        figure.colorbar(image, ax=list(axes), label="expected position error (Å)", shrink=0.8)
    return figure


def msa_depth_figure(msa: Msa) -> Figure:
    """How many MSA rows have a residue at each query position."""
    depth = (msa.residues != GAP).sum(axis=0)
    figure = Figure(figsize=(8, 2.6))
    axes = figure.subplots()
    positions = np.arange(1, msa.query_length + 1)
    axes.fill_between(positions, depth, step="mid", color="#4C72B0", alpha=0.8)
    axes.set(
        xlabel="query position",
        ylabel="sequences",
        xlim=(0.5, msa.query_length + 0.5),
        ylim=(0, max(1, len(msa)) * 1.05),
        title=f"MSA depth per position ({len(msa)} sequences)",
    )
    return figure

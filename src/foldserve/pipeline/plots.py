"""The report's figures, drawn with matplotlib's Agg canvas (no display, no pyplot state).

Each function returns a :class:`~matplotlib.figure.Figure`; :func:`png` renders it once, and the
same bytes go into the HTML page and into the PNG files kept for papers.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from foldserve.msa.model import Msa

PNG_DPI = 200
#: AlphaFold DB's pLDDT bands and colours (also used by the 3D viewer).
PLDDT_BANDS = ((90.0, "#0053D6"), (70.0, "#65CBF3"), (50.0, "#FFDB13"), (0.0, "#FF7D45"))
GAP = ord("-")
#: Rows of a deep MSA drawn in the coverage plot (an even sample of the sorted rows).
COVERAGE_ROWS = 2000
#: Chain boundaries in the pLDDT and PAE plots of a complex.
BOUNDARY_STYLE: dict[str, Any] = {
    "color": "black",
    "linewidth": 0.8,
    "linestyle": "--",
    "gid": "chain-boundary",
}
#: A chain of a complex on the residue axis: its id and the 0-based residues it spans.
Span = tuple[str, int, int]


def _boundaries(chains: Sequence[Span]) -> list[int]:
    """The 0-based residues where a chain other than the first begins."""
    return [start for _, start, _ in chains[1:]]


def series_colour(index: int) -> str:
    """The colour of a plot's ``index``-th line (matplotlib's default cycle): the 3D viewer
    draws each engine's model in its line's colour in the pLDDT plot."""
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    return str(colours[index % len(colours)])


def png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=PNG_DPI, bbox_inches="tight")
    return buffer.getvalue()


def plddt_figure(
    series: list[tuple[str, npt.NDArray[np.float64]]], chains: Sequence[Span] = ()
) -> Figure:
    """Per-residue pLDDT of every model on one axis, over the confidence bands; a complex's
    chains (more than one in ``chains``) are parted by dashed lines and named on top."""
    figure = Figure(figsize=(8, 3.2))
    axes = figure.subplots()
    upper = 100.0
    for lower, colour in PLDDT_BANDS:
        axes.axhspan(lower, upper, color=colour, alpha=0.15, linewidth=0)
        upper = lower
    for label, values in series:
        axes.plot(np.arange(1, len(values) + 1), values, linewidth=1.2, label=label)
    title = "Per-residue confidence"
    if len(chains) > 1:
        for start in _boundaries(chains):
            axes.axvline(start + 0.5, **BOUNDARY_STYLE)
        top = axes.secondary_xaxis("top")
        top.set_xticks([(start + end + 1) / 2 for _, start, end in chains])
        top.set_xticklabels([chain_id for chain_id, _, _ in chains])
        top.tick_params(length=0)
        top.set_gid("chain-ids")
        title += " (chains on top)"
    axes.set(xlabel="residue", ylabel="pLDDT", ylim=(0, 100), title=title)
    axes.legend(fontsize="small", ncol=min(5, len(series)), loc="lower left")
    return figure


def pae_figure(
    matrices: list[tuple[str, npt.NDArray[np.float64]]], chains: Sequence[Span] = ()
) -> Figure:
    """One predicted-aligned-error heatmap per model, on a shared 0-30 Å scale. A complex's
    chains (more than one in ``chains``) are parted by lines at each chain's first residue and
    named on both axes (ticks at each chain's middle), as AlphaFold's server draws them.

    No layout engine: constrained layout measures every tick label and made this plot cost
    seconds; shared axes and one colour bar beside the grid need none.
    """
    columns = min(3, len(matrices))
    rows = math.ceil(len(matrices) / columns)
    figure = Figure(figsize=(3.2 * columns + 1.2, 3.2 * rows))
    axes = figure.subplots(
        rows,
        columns,
        squeeze=False,
        sharex=True,
        sharey=True,
        gridspec_kw={"wspace": 0.08, "hspace": 0.42, "right": 0.86},
    )
    image = None
    for index, (ax, (label, matrix)) in enumerate(zip(axes.ravel(), matrices, strict=False)):
        image = ax.imshow(matrix, cmap="Greens_r", vmin=0, vmax=30, interpolation="nearest")
        ax.set_title(label)
        ax.tick_params(labelbottom=True)
        split = len(chains) > 1 and chains[-1][2] == len(matrix)
        if split:
            _mark_chains(ax, chains)
        ax.set_xlabel("scored residue (chain)" if split else "scored residue")
        if index % columns == 0:
            ax.set_ylabel("aligned residue (chain)" if split else "aligned residue")
    for ax in axes.ravel()[len(matrices) :]:
        ax.set_axis_off()
    if image is not None:
        bar = figure.add_axes((0.89, 0.2, 0.02, 0.6))
        figure.colorbar(image, cax=bar, label="expected position error (Å)")
    return figure


def _mark_chains(ax: Axes, chains: Sequence[Span]) -> None:
    """Lines where each chain after the first begins; chain ids at the chains' middles."""
    for start in _boundaries(chains):
        ax.axvline(start - 0.5, **BOUNDARY_STYLE)
        ax.axhline(start - 0.5, **BOUNDARY_STYLE)
    middles = [(start + end - 1) / 2 for _, start, end in chains]
    names = [chain_id for chain_id, _, _ in chains]
    ax.set_xticks(middles, names)
    ax.set_yticks(middles, names)
    ax.tick_params(length=0)


def coverage_figure(msa: Msa) -> Figure:
    """ColabFold's sequence coverage plot (``plot_msa_v2``): one line per MSA row, sorted by
    identity to the query (the query on top), coloured by that identity, white where the row
    has a gap; the black line counts the rows covering each position.

    A deep MSA is drawn from an even sample of at most ``COVERAGE_ROWS`` sorted rows (more
    than the picture has pixels); the counts and the axis are the whole MSA's.
    """
    residues = msa.residues
    rows, length = residues.shape
    identity = (residues == residues[0]).mean(axis=1)
    order = np.argsort(identity, kind="stable")
    if rows > COVERAGE_ROWS:
        order = order[np.linspace(0, rows - 1, COVERAGE_ROWS).round().astype(np.intp)]
    covered = residues[order] != GAP
    lines = np.where(covered, identity[order, None], np.nan)
    figure = Figure(figsize=(8, 5))
    axes = figure.subplots()
    image = axes.imshow(
        lines,
        interpolation="nearest",
        aspect="auto",
        cmap="rainbow_r",
        vmin=0,
        vmax=1,
        origin="lower",
        extent=(0, length, 0, rows),
    )
    axes.plot(np.arange(length) + 0.5, (residues != GAP).sum(axis=0), color="black")
    axes.set(
        xlim=(0, length),
        ylim=(0, rows),
        xlabel="Positions",
        ylabel="Sequences",
        title="Sequence coverage",
    )
    figure.colorbar(image, ax=axes, label="Sequence identity to query")
    return figure

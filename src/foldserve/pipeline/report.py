"""One self-contained HTML report of a prediction directory, plus its plots as PNG files.

The page needs nothing but a browser, offline: 3Dmol.js (:mod:`foldserve.pipeline.viewer_js`),
the models (superposed on the reference when one is given, else on the best model), the data
and the plots are all inlined. The same PNG bytes are also written beside the page for papers.
"""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import gemmi
import numpy as np

from foldserve._version import __version__
from foldserve.files import write_text
from foldserve.pipeline import viewer_js
from foldserve.pipeline.figures import write_figures
from foldserve.pipeline.prediction_dir import PredictionDir, RankedModel, RunSummary
from foldserve.structure.compare import (
    Comparison,
    Structure,
    compare_all,
    compare_structures,
    read_compared,
)
from foldserve.structure.reading import Chain, read_structure

TEMPLATE = "report_template.html"
LAYOUTS = {"foldserve": "foldserve", "colabfold": "ColabFold", "alphafold": "AlphaFold"}
TEST_WEIGHTS_WARNING = (
    '<p class="warning">Made with random TEST WEIGHTS: these models are not protein structures.</p>'
)


@dataclass(frozen=True)
class Report:
    html: Path
    figures: dict[str, Path]
    comparisons: list[Comparison]


def _chains(structure: Structure) -> tuple[Chain, ...]:
    return (structure,) if isinstance(structure, Chain) else structure


def _pdb_text(structure: Structure, onto: Comparison | None) -> str:
    """The structure (its chains only, no waters) as PDB, moved by ``onto``."""
    chains = _chains(structure)
    keep = {chain.chain_id for chain in chains}
    read = read_structure(chains[0].source)
    read.remove_waters()
    while len(read) > 1:
        del read[1]
    model = read[0]
    for name in {c.name for c in model if c.name not in keep}:
        model.remove_chain(name)
    if onto is not None:
        transform = gemmi.Transform()
        transform.mat.fromlist([list(row) for row in onto.rotation])
        transform.vec.fromlist(list(onto.translation))
        model.transform_pos_and_adp(transform)
    read.setup_entities()
    return str(read.make_pdb_string())


def _mean_plddt(model: RankedModel, structure: Structure) -> float | None:
    if model.mean_plddt is not None:
        return model.mean_plddt
    values = np.concatenate([chain.b_factors for chain in _chains(structure)])
    return None if bool(np.ptp(values) == 0) else round(float(np.mean(values)), 1)


def _short(label: str, labels: dict[str, str]) -> str:
    """A model's label for its file name (``rank_001`` for ColabFold's long name), ``:B``
    kept for one chain of it."""
    name, colon, chain = label.partition(":")
    return labels.get(name, name) + colon + chain if name in labels else label


def _rows(cells: list[list[str]]) -> str:
    return "".join(
        "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in cells
    )


SCORE_HEADS = ("TM (by A)", "TM (by B)", "RMSD (Å)", "pairs", "GDT-TS", "lDDT")


def _table(comparisons: list[Comparison], labels: dict[str, str]) -> str:
    """The comparisons, each model named by its label (ColabFold's file names are long); for
    complexes, a second table of the chain pairs."""
    if not comparisons:
        return '<p class="note">Only one model and no reference: nothing to compare.</p>'
    head = "".join(f"<th>{h}</th>" for h in ("A", "B", *SCORE_HEADS))
    rows = _rows(
        [
            [
                _short(c.a, labels) + (" (complex)" if c.is_complex else ""),
                _short(c.b, labels) + (f" ({c.picked})" if c.picked else ""),
                *c.score_cells(),
            ]
            for c in comparisons
        ]
    )
    table = f'<table id="comparison"><tr>{head}</tr>{rows}</table>'
    pairs = [match for c in comparisons for match in c.chains]
    if not pairs:
        return table
    chain_head = "".join(f"<th>{h}</th>" for h in ("A", "B", "paired by", *SCORE_HEADS))
    chain_rows = _rows(
        [
            [
                _short(m.comparison.a, labels),
                _short(m.comparison.b, labels),
                m.matched_by,
                *m.comparison.score_cells(),
            ]
            for m in pairs
        ]
    )
    return (
        f"{table}<h3>Per chain</h3>"
        '<p class="note">Each chain pair superposed on its own; the complex rows above '
        "superpose and score all paired chains at once.</p>"
        f'<table id="chain-comparison"><tr>{chain_head}</tr>{chain_rows}</table>'
    )


def _ranking_table(prediction: PredictionDir) -> str:
    """The ranked models with their scores; ipTM and AlphaFold-multimer's ranking confidence
    (0.8 ipTM + 0.2 pTM) when the models have them."""
    models = prediction.models
    columns: list[tuple[str, str]] = [("rank", ""), ("model", ""), ("run", "")]
    optional = [
        ("mean pLDDT", "mean_plddt", "{:.1f}"),
        ("pTM", "ptm", "{:.3f}"),
        ("ipTM", "iptm", "{:.3f}"),
        ("ranking confidence (0.8 ipTM + 0.2 pTM)", "ranking_confidence", "{:.3f}"),
    ]
    shown = [
        (head, key, fmt)
        for head, key, fmt in optional
        if any(getattr(m, key) is not None for m in models)
    ]
    head = "".join(f"<th>{html.escape(h)}</th>" for h, _ in columns) + "".join(
        f"<th>{html.escape(h)}</th>" for h, _, _ in shown
    )
    rows = _rows(
        [
            [
                str(m.rank),
                m.label,
                m.name,
                *(
                    "-" if getattr(m, key) is None else fmt.format(getattr(m, key))
                    for _, key, fmt in shown
                ),
            ]
            for m in models
        ]
    )
    return f'<table id="ranking"><tr>{head}</tr>{rows}</table>'


def _settings_table(summary: RunSummary) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(row.label)}</th><td>{html.escape(row.value)}</td></tr>"
        for row in summary.rows
    )
    return f'<table id="settings">{rows}</table>'


def _image(name: str, data: bytes | None, missing: str) -> str:
    if data is None:
        return f'<p class="note">{html.escape(missing)}</p>'
    encoded = base64.b64encode(data).decode()
    return f'<img class="plot" id="plot-{name}" alt="{name}" src="data:image/png;base64,{encoded}">'


def _fill(template: str, values: dict[str, str]) -> str:
    """Replace ``{{name}}`` in one pass, so inlined text is never scanned again."""
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], template)


def _script_safe(text: str) -> str:
    """Inline text cannot end its <script> early: ``</script`` becomes ``<\\/script``."""
    return re.sub(r"</(script)", r"<\\/\1", text, flags=re.IGNORECASE)


def write_report(
    prediction: PredictionDir,
    output: Path,
    *,
    reference: Path | None = None,
    reference_chain: str | None = None,
    figures_dir: Path | None = None,
) -> Report:
    """Write ``output`` (HTML) and the plots as PNG files into ``figures_dir``."""
    library = viewer_js.load()  # first: a missing library fails before any work
    structures = [read_compared(model.path) for model in prediction.models]
    ref = read_compared(reference, reference_chain) if reference else None
    comparisons = compare_all(structures, ref)
    target = ref if ref is not None else structures[0]
    placed = [
        compare_structures(structure, target) if structure is not target else None
        for structure in structures
    ]

    figures_dir = figures_dir or output.with_name(output.stem + "_figures")
    written = write_figures(prediction, figures_dir)
    figures = {name: path.read_bytes() for name, path in written.items()}

    models: list[dict[str, Any]] = [
        {
            "label": m.label,
            "name": m.name,
            "mean_plddt": _mean_plddt(m, c),
            "pdb": _pdb_text(c, onto),
        }
        for m, c, onto in zip(prediction.models, structures, placed, strict=True)
    ]
    ref_label = None if ref is None else Path(_chains(ref)[0].source).name
    if isinstance(ref, Chain):
        ref_label = ref.label
    data = {
        "models": models,
        "reference": {"label": ref_label, "pdb": _pdb_text(ref, None)} if ref else None,
    }
    name = prediction.path.name + (f" ({prediction.job})" if prediction.job else "")
    title = f"foldserve report: {name}"
    best = prediction.models[0]
    first = _chains(structures[0])
    size = f"{sum(len(c) for c in first)} residues"
    if len(first) > 1:
        size += f" in {len(first)} chains ({', '.join(c.chain_id for c in first)})"
    scores = [
        f"{name} {value}"
        for name, value in (("pLDDT", best.mean_plddt), ("pTM", best.ptm), ("ipTM", best.iptm))
        if value is not None
    ]
    summary = (
        f"{LAYOUTS[prediction.layout]} folder; {len(structures)} ranked model(s) of {size}; "
        f"best {best.name}"
    ) + (f" ({', '.join(scores)})" if scores else "")
    values = {
        "title": html.escape(title),
        "warning": (TEST_WEIGHTS_WARNING if prediction.test_weights else "")
        + "".join(f'<p class="warning">{html.escape(w)}</p>' for w in prediction.warnings),
        "summary": html.escape(summary),
        "superposition": html.escape(
            f"Superposed on the reference {ref_label}."
            if ref
            else f"Superposed on the best model ({best.label})."
        ),
        "settings_table": _settings_table(prediction.summary),
        "ranking_table": _ranking_table(prediction),
        "comparison_table": _table(comparisons, {m.path.name: m.label for m in prediction.models}),
        "plddt_plot": _image("plddt", figures.get("plddt"), "No pLDDT in the B-factor column."),
        "pae_plot": _image("pae", figures.get("pae"), "No predicted aligned error in the folder."),
        "msa_plot": _image("coverage", figures.get("coverage"), "No MSA in the folder."),
        "version": __version__,
        "viewer_version": viewer_js.VERSION,
        "data": _script_safe(json.dumps(data)),
        "viewer_js": _script_safe(library),
    }
    template = resources.files("foldserve.pipeline").joinpath(TEMPLATE).read_text("utf-8")
    write_text(output, _fill(template, values))
    return Report(output, written, comparisons)

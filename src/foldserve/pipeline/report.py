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
from foldserve.structure.compare import Comparison, compare, compare_all
from foldserve.structure.reading import Chain, read_chain, read_structure

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


def _pdb_text(chain: Chain, onto: Comparison | None) -> str:
    """The chain's structure (that chain only, no waters) as PDB, moved by ``onto``."""
    structure = read_structure(chain.source)
    structure.remove_waters()
    while len(structure) > 1:
        del structure[1]
    model = structure[0]
    for name in {c.name for c in model if c.name != chain.chain_id}:
        model.remove_chain(name)
    if onto is not None:
        transform = gemmi.Transform()
        transform.mat.fromlist([list(row) for row in onto.rotation])
        transform.vec.fromlist(list(onto.translation))
        model.transform_pos_and_adp(transform)
    structure.setup_entities()
    return str(structure.make_pdb_string())


def _mean_plddt(model: RankedModel, chain: Chain) -> float | None:
    if model.mean_plddt is not None:
        return model.mean_plddt
    return None if chain.plddt is None else round(float(np.mean(chain.plddt)), 1)


def _table(comparisons: list[Comparison], labels: dict[str, str]) -> str:
    """The comparisons, each model named by its label (ColabFold's file names are long)."""
    if not comparisons:
        return '<p class="note">Only one model and no reference: nothing to compare.</p>'
    head = "".join(
        f"<th>{h}</th>"
        for h in ("A", "B", "TM (by A)", "TM (by B)", "RMSD (Å)", "pairs", "GDT-TS", "lDDT")
    )
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(v))}</td>"
            for v in (
                labels.get(c.a, c.a),
                labels.get(c.b, c.b),
                f"{c.tm_score_a:.4f}",
                f"{c.tm_score_b:.4f}",
                f"{c.rmsd:.2f}",
                c.aligned_length,
                f"{c.gdt_ts:.4f}",
                f"{c.lddt:.4f}",
            )
        )
        + "</tr>"
        for c in comparisons
    )
    return f'<table id="comparison"><tr>{head}</tr>{rows}</table>'


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
    chains = [read_chain(model.path) for model in prediction.models]
    ref = read_chain(reference, reference_chain) if reference else None
    comparisons = compare_all(chains, ref)
    target = ref if ref is not None else chains[0]
    placed = [compare(chain, target) if chain is not target else None for chain in chains]

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
        for m, c, onto in zip(prediction.models, chains, placed, strict=True)
    ]
    data = {
        "models": models,
        "reference": {"label": ref.label, "pdb": _pdb_text(ref, None)} if ref else None,
    }
    name = prediction.path.name + (f" ({prediction.job})" if prediction.job else "")
    title = f"foldserve report: {name}"
    best = prediction.models[0]
    summary = (
        f"{LAYOUTS[prediction.layout]} folder; {len(chains)} ranked model(s) of "
        f"{len(chains[0])} residues; best {best.name}"
    ) + (f" (pLDDT {best.mean_plddt}, pTM {best.ptm})" if best.mean_plddt is not None else "")
    values = {
        "title": html.escape(title),
        "warning": (TEST_WEIGHTS_WARNING if prediction.test_weights else "")
        + "".join(f'<p class="warning">{html.escape(w)}</p>' for w in prediction.warnings),
        "summary": html.escape(summary),
        "superposition": html.escape(
            f"Superposed on the reference {ref.label}."
            if ref
            else f"Superposed on the best model ({best.label})."
        ),
        "settings_table": _settings_table(prediction.summary),
        "comparison_table": _table(
            comparisons, {c.label: m.label for m, c in zip(prediction.models, chains, strict=True)}
        ),
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

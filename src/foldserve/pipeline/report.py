"""One self-contained HTML report of a prediction directory, plus its plots as PNG files.

The page needs nothing but a browser, offline: 3Dmol.js (:mod:`foldserve.pipeline.viewer_js`),
the models (superposed on the reference when one is given, else on the best model), the data
and the plots are all inlined. The same PNG bytes are also written beside the page for papers.
:func:`write_engines_report` makes the same page for several engines' predictions on one MSA,
their best models side by side.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import gemmi
import numpy as np

from foldserve._version import __version__
from foldserve.files import write_text
from foldserve.fold.results import EngineName
from foldserve.pipeline import plots, viewer_js
from foldserve.pipeline.comparison import compare_engines
from foldserve.pipeline.figures import write_figures, write_model_figures
from foldserve.pipeline.prediction_dir import PredictionDir, RankedModel, RunSummary
from foldserve.structure.compare import (
    Comparison,
    Structure,
    chains_of,
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


def _pdb_text(structure: Structure, onto: Comparison | None) -> str:
    """The structure (its chains only, no waters) as PDB, moved by ``onto``."""
    chains = chains_of(structure)
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
    values = np.concatenate([chain.b_factors for chain in chains_of(structure)])
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


def _header_table(table_id: str, header: Sequence[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    return f'<table id="{table_id}"><tr>{head}</tr>{_rows(rows)}</table>'


def _table_id(name: str, engine: EngineName | None) -> str:
    """``ranking``, or ``ranking-openfold3`` for one engine's table of several."""
    return name if engine is None else f"{name}-{engine}"


def _ranking_table(prediction: PredictionDir, engine: EngineName | None = None) -> str:
    """The ranked models with their scores; ipTM, AlphaFold-multimer's ranking confidence
    (0.8 ipTM + 0.2 pTM) and the engine's own ranking score when the models have them."""
    models = prediction.models
    optional = [
        ("mean pLDDT", "mean_plddt", "{:.1f}"),
        ("pTM", "ptm", "{:.3f}"),
        ("ipTM", "iptm", "{:.3f}"),
        ("ranking confidence (0.8 ipTM + 0.2 pTM)", "ranking_confidence", "{:.3f}"),
        ("ranking score", "ranking_score", "{:.3f}"),
    ]
    shown = [
        (head, key, fmt)
        for head, key, fmt in optional
        if any(getattr(m, key) is not None for m in models)
    ]
    rows = [
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
    header = ["rank", "model", "run", *(head for head, _, _ in shown)]
    return _header_table(_table_id("ranking", engine), header, rows)


def _settings_table(summary: RunSummary, engine: EngineName | None = None) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(row.label)}</th><td>{html.escape(row.value)}</td></tr>"
        for row in summary.rows
    )
    return f'<table id="{_table_id("settings", engine)}">{rows}</table>'


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

    figures_dir = figures_dir or output.with_name(output.stem + "_figures")
    written = write_figures(prediction, figures_dir)

    models = [
        _viewer_model(m.label, m, c, onto)
        for m, c, onto in zip(
            prediction.models, structures, _superposed(structures, ref), strict=True
        )
    ]
    name = prediction.path.name + (f" ({prediction.job})" if prediction.job else "")
    best = prediction.models[0]
    scores = [
        f"{name} {value}"
        for name, value in (("pLDDT", best.mean_plddt), ("pTM", best.ptm), ("ipTM", best.iptm))
        if value is not None
    ]
    summary = (
        f"{LAYOUTS[prediction.layout]} folder; {len(structures)} ranked model(s) of "
        f"{_size(structures[0])}; best {best.name}"
    ) + (f" ({', '.join(scores)})" if scores else "")
    values = {
        "title": html.escape(f"foldserve report: {name}"),
        "warning": _warnings(prediction.test_weights, prediction.warnings),
        "summary": html.escape(summary),
        "engines_table": "",
        "superposition": html.escape(
            f"Superposed on the reference {_reference_label(ref)}."
            if ref
            else f"Superposed on the best model ({best.label})."
        ),
        "settings_table": _settings_table(prediction.summary),
        "ranking_table": _ranking_table(prediction),
        "comparison_table": _table(comparisons, {m.path.name: m.label for m in prediction.models}),
    }
    _write_page(
        output, values, written, {"models": models, "reference": _viewer_reference(ref)}, library
    )
    return Report(output, written, comparisons)


def write_engines_report(
    predictions: Sequence[tuple[EngineName, PredictionDir]],
    output: Path,
    *,
    reference: Path | None = None,
    reference_chain: str | None = None,
    figures_dir: Path | None = None,
) -> Report:
    """The report of several engines' predictions on one MSA: their best models superposed in
    one viewer (a toggle and a colour per engine), the engines table, the best models compared,
    their pLDDT in one plot and their PAE maps side by side, then each engine's settings and
    ranking. Written to ``output`` (HTML), the plots into ``figures_dir``."""
    library = viewer_js.load()  # first: a missing library fails before any work
    engines = [engine for engine, _ in predictions]
    bests = [prediction.models[0] for _, prediction in predictions]
    summary, comparisons = compare_engines(predictions, reference, reference_chain)
    structures = [read_compared(best.path) for best in bests]
    ref = read_compared(reference, reference_chain) if reference else None

    figures_dir = figures_dir or output.with_name(output.stem + "_figures")
    first = predictions[0][1]
    written = write_model_figures(
        list(zip(engines, bests, strict=True)), first.chains, first.msa, figures_dir
    )

    models = [
        {**_viewer_model(engine, best, structure, onto), "color": plots.series_colour(index)}
        for index, (engine, best, structure, onto) in enumerate(
            zip(engines, bests, structures, _superposed(structures, ref), strict=True)
        )
    ]
    header, rows = summary.table()
    values = {
        "title": html.escape(f"foldserve report: {' vs '.join(engines)}"),
        "warning": _warnings(
            any(prediction.test_weights for _, prediction in predictions),
            [f"{engine}: {w}" for engine, prediction in predictions for w in prediction.warnings],
        ),
        "summary": html.escape(
            f"{len(engines)} engines on the same MSA, each engine's best model of "
            f"{_size(structures[0])} compared"
        ),
        "engines_table": "<h2>Engines</h2>" + _header_table("engines", header, rows),
        "superposition": html.escape(
            f"Superposed on the reference {_reference_label(ref)}."
            if ref
            else f"Superposed on {engines[0]}'s best model."
        ),
        "settings_table": "".join(
            f"<h3>{engine}</h3>{_settings_table(prediction.summary, engine)}"
            for engine, prediction in predictions
        ),
        "ranking_table": "".join(
            f"<h3>{engine}</h3>{_ranking_table(prediction, engine)}"
            for engine, prediction in predictions
        ),
        "comparison_table": _table(comparisons, {}),
    }
    data = {"models": models, "reference": _viewer_reference(ref), "toggles": True}
    _write_page(output, values, written, data, library)
    return Report(output, written, comparisons)


def _superposed(structures: list[Structure], ref: Structure | None) -> list[Comparison | None]:
    """How each structure moves onto the reference, else onto the first (None: it stays)."""
    target = ref if ref is not None else structures[0]
    return [
        compare_structures(structure, target) if structure is not target else None
        for structure in structures
    ]


def _viewer_model(
    label: str, model: RankedModel, structure: Structure, onto: Comparison | None
) -> dict[str, Any]:
    return {
        "label": label,
        "name": model.name,
        "mean_plddt": _mean_plddt(model, structure),
        "pdb": _pdb_text(structure, onto),
    }


def _reference_label(ref: Structure) -> str:
    return ref.label if isinstance(ref, Chain) else Path(chains_of(ref)[0].source).name


def _viewer_reference(ref: Structure | None) -> dict[str, str] | None:
    return None if ref is None else {"label": _reference_label(ref), "pdb": _pdb_text(ref, None)}


def _size(structure: Structure) -> str:
    """``62 residues``, or ``132 residues in 2 chains (A, B)``."""
    chains = chains_of(structure)
    size = f"{sum(len(c) for c in chains)} residues"
    if len(chains) > 1:
        size += f" in {len(chains)} chains ({', '.join(c.chain_id for c in chains)})"
    return size


def _warnings(test_weights: bool, warnings: Sequence[str]) -> str:
    return (TEST_WEIGHTS_WARNING if test_weights else "") + "".join(
        f'<p class="warning">{html.escape(w)}</p>' for w in warnings
    )


def _write_page(
    output: Path,
    values: dict[str, str],
    written: dict[str, Path],
    data: dict[str, Any],
    library: str,
) -> None:
    """Fill the template with ``values``, the plots ``written``, the viewer's ``data`` and
    library, and write it to ``output``."""
    figures = {name: path.read_bytes() for name, path in written.items()}
    page = {
        **values,
        "plddt_plot": _image("plddt", figures.get("plddt"), "No pLDDT in the B-factor column."),
        "pae_plot": _image("pae", figures.get("pae"), "No predicted aligned error in the folder."),
        "msa_plot": _image("coverage", figures.get("coverage"), "No MSA in the folder."),
        "version": __version__,
        "viewer_version": viewer_js.VERSION,
        "data": _script_safe(json.dumps(data)),
        "viewer_js": _script_safe(library),
    }
    template = resources.files("foldserve.pipeline").joinpath(TEMPLATE).read_text("utf-8")
    write_text(output, _fill(template, page))

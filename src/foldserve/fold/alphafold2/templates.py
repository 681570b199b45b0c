"""AlphaFold template features, made exactly as ColabFold makes them.

* The user's files (``--templates PATH...``, ColabFold's ``--custom-template-path``):
  :func:`templates_from_files` copies them into a private folder, builds ColabFold's hhsearch
  database there (``colabfold.batch.mk_hhsearch_db``; :mod:`.template_files`), then for each
  distinct chain does what ``colabfold.batch.mk_template`` does: hhsearch with the chain's
  A3M, ``parsers.parse_hhr``, ``templates.HhsearchHitFeaturizer.get_templates``.
* The server's hits (``--templates server``): :func:`templates_from_server_dirs` does the same
  with the folders ``foldserve.msa.search.colabfold_server.fetch_server_templates`` fills from
  the server's ``/template/{ids}`` route, one per chain, as ``colabfold_batch`` does.

The chain's MSA is what hhsearch is given, as AlphaFold does and as ``colabfold_batch`` does with
its server's MSAs; given an A3M file, ``colabfold_batch`` searches custom templates with the
query sequence alone (its ``single_sequence`` call of ``get_msa_and_templates``), which finds
fewer remote homologues.

foldserve calls AlphaFold's functions itself instead of ``mk_template`` only to keep what that
function drops: the hits and the featurizer's warnings. The features are the same arrays. Two
things are added, each with a warning and never changing a kept template: a template whose
chain has no CA atom is dropped (AlphaFold would keep it, all its frames masked out), and a
chain left with no template gets ColabFold's mock features (``mk_mock_template``), as
``colabfold_batch`` gives it. Where ColabFold keeps up to 20 hits (``--max-template-hits``),
foldserve keeps :data:`MAX_TEMPLATES`, the number the AlphaFold models read: the same first
ones, since the featurizer takes hits in order of hhsearch's ``sum_probs``.

Release dates: the featurizer drops a template released after ``max_template_date``, reading
the date from the mmCIF. A PDB file, or an mmCIF without ``_pdbx_audit_revision_history``, is
given 1971-01-01 by ColabFold, so it is never dropped; :attr:`TemplateHit.release_date` is
None for it.

Heavy imports (AlphaFold, ColabFold) happen inside the functions.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from foldserve.errors import InputError
from foldserve.fold.alphafold2.template_files import (
    PreparedDir,
    PreparedTemplate,
    find_template_files,
    prepare_template_dir,
    release_date,
)

__all__ = [
    "MAX_TEMPLATES",
    "ChainTemplates",
    "TemplateHit",
    "TemplateSet",
    "find_template_files",
    "no_templates",
    "templates_from_files",
    "templates_from_server_dirs",
]

MAX_TEMPLATES = 4  # AlphaFold uses up to 4 templates
#: The date ColabFold passes when none is given: no template is too new.
NO_DATE_LIMIT = "2100-01-01"
#: A kept hit that covers less of its chain than this gets a warning (ColabFold keeps it).
WEAK_COVERAGE = 0.25
SERVER = "server"
_CA = 1  # residue_constants.atom_order["CA"]


@dataclass(frozen=True)
class TemplateHit:
    """One template used for one chain."""

    name: str  # e.g. "1ubi_A"  (pdb id + chain as AlphaFold names it)
    source: str  # the user's file path, or "server"
    release_date: str | None  # YYYY-MM-DD from the mmCIF when known
    aligned_residues: int
    identity: float  # 0..1 over the aligned residues

    def __post_init__(self) -> None:
        if self.aligned_residues < 0 or not 0.0 <= self.identity <= 1.0:
            raise ValueError(
                f"{self.name}: {self.aligned_residues} aligned residues, identity "
                f"{self.identity}: expected >= 0 and 0..1"
            )


@dataclass(frozen=True)
class ChainTemplates:
    """The template features of one distinct query chain."""

    sequence: str
    #: AlphaFold's template features (what ColabFold's mk_template returns; its
    #: mk_mock_template(sequence) when no template is used).
    features: dict[str, Any]
    hits: tuple[TemplateHit, ...]

    def __post_init__(self) -> None:
        count = len(self.features["template_domain_names"])
        if self.hits and count != len(self.hits):
            raise ValueError(f"{count} templates in the features but {len(self.hits)} hits")


@dataclass(frozen=True)
class TemplateSet:
    """Template features for every distinct chain of a query, and what went wrong."""

    chains: tuple[ChainTemplates, ...]  # one per DISTINCT query chain, in order
    warnings: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Every hit name, in chain order."""
        return tuple(hit.name for chain in self.chains for hit in chain.hits)


def mock_features(sequence: str) -> dict[str, Any]:
    """ColabFold's features for a chain without templates."""
    from colabfold.batch import mk_mock_template

    features: dict[str, Any] = mk_mock_template(sequence)
    return features


def no_templates(query_sequences: Sequence[str]) -> TemplateSet:
    """Mock templates for every distinct chain (``mk_mock_template``)."""
    sequences = list(dict.fromkeys(query_sequences))
    return TemplateSet(
        chains=tuple(ChainTemplates(s, mock_features(s), ()) for s in sequences), warnings=()
    )


def templates_from_files(
    files: Sequence[Path],
    chain_msas: Sequence[str],
    query_sequences: Sequence[str],
    *,
    max_template_date: str | None = None,
    max_hits: int = MAX_TEMPLATES,
    cache_dir: Path | None = None,
) -> TemplateSet:
    """Template features from the user's structure files (from :func:`find_template_files`)
    for each distinct chain, ``chain_msas[i]`` being the A3M of ``query_sequences[i]`` (its
    unpaired MSA; "" for the sequence alone).

    The files are copied into a private folder (a temporary one, removed after; or one under
    ``cache_dir`` named by the files' content, kept and reused). A file that cannot be used,
    aligns to no chain, has no CA atoms or is too new gets a warning naming it; a chain with
    no usable template gets mock features and a warning.
    """
    _check_date(max_template_date)
    msas, sequences = _distinct(chain_msas, query_sequences)
    if cache_dir is None:
        with tempfile.TemporaryDirectory(prefix="foldserve-templates-") as private:
            prepared = prepare_template_dir(files, Path(private) / "db")
            return _from_prepared(prepared, msas, sequences, max_template_date, max_hits)
    prepared = _cached_prepare(files, cache_dir)
    return _from_prepared(prepared, msas, sequences, max_template_date, max_hits)


def templates_from_server_dirs(
    template_dirs: Sequence[Path | None],
    chain_msas: Sequence[str],
    query_sequences: Sequence[str],
    *,
    max_template_date: str | None = None,
    max_hits: int = MAX_TEMPLATES,
) -> TemplateSet:
    """Template features from the folders of the server's templates, one per distinct chain
    (None: the server found none for it), as ``colabfold_batch --templates`` makes them."""
    _check_date(max_template_date)
    msas, sequences = _distinct(chain_msas, query_sequences)
    if len(template_dirs) != len(sequences):
        raise ValueError(f"{len(template_dirs)} template folders for {len(sequences)} chains")
    chains: list[ChainTemplates] = []
    warnings: list[str] = []
    for index, (folder, a3m, sequence) in enumerate(
        zip(template_dirs, msas, sequences, strict=True)
    ):
        label = _chain_label(index, sequence)
        if folder is None:
            warnings.append(f"{label}: the server found no template; it gets mock features")
            chains.append(ChainTemplates(sequence, mock_features(sequence), ()))
            continue
        chain, chain_warnings = _featurize_chain(
            folder, a3m, sequence, label, max_template_date, max_hits, lambda _: None
        )
        chains.append(chain)
        warnings += chain_warnings
    return TemplateSet(chains=tuple(chains), warnings=tuple(warnings))


def _check_date(max_template_date: str | None) -> None:
    """A date AlphaFold's featurizer reads (YYYY-MM-DD), else InputError."""
    if max_template_date is None:
        return
    try:
        datetime.date.fromisoformat(max_template_date)
    except ValueError:
        raise InputError(
            f"{max_template_date!r} is not a date",
            where="--max-template-date",
            fix="give it as YYYY-MM-DD, e.g. 2021-10-01",
        ) from None
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", max_template_date):
        raise InputError(
            f"{max_template_date!r} is not a YYYY-MM-DD date",
            where="--max-template-date",
            fix="give it as YYYY-MM-DD, e.g. 2021-10-01",
        )


def _distinct(
    chain_msas: Sequence[str], query_sequences: Sequence[str]
) -> tuple[list[str], list[str]]:
    if len(chain_msas) != len(query_sequences):
        raise ValueError(f"{len(chain_msas)} MSAs for {len(query_sequences)} chains")
    msas: list[str] = []
    sequences: list[str] = []
    for a3m, sequence in zip(chain_msas, query_sequences, strict=True):
        if sequence not in sequences:
            sequences.append(sequence)
            msas.append(_clean_a3m(a3m, sequence))
    return msas, sequences


def _clean_a3m(a3m: str, sequence: str) -> str:
    """The A3M hhsearch reads: comment lines (``;``, ``#``), NULs and blank lines dropped
    (hhsearch refuses comments); the query alone when ``a3m`` is empty. Its first record must
    be the chain's sequence (hhsearch takes the first record as the query)."""
    lines = [
        line
        for line in a3m.replace("\0", "").splitlines()
        if line.strip() and not line.startswith((";", "#"))
    ]
    if not lines:
        return f">101\n{sequence}\n"
    first: list[str] = []
    for line in lines[1:]:
        if line.startswith(">"):
            break
        first.append(line.strip())
    query = "".join(first).replace("-", "").upper()
    if not lines[0].startswith(">") or query != sequence.upper():
        raise ValueError(
            f"the chain's A3M does not open with its query {sequence[:20]}... "
            f"(it opens with {query[:20]}...)"
        )
    return "\n".join(lines) + "\n"


def _chain_label(index: int, sequence: str) -> str:
    return f"chain {index + 1} ({len(sequence)} residues)"


def _cached_prepare(files: Sequence[Path], cache_dir: Path) -> PreparedDir:
    """The prepared folder for ``files`` under ``cache_dir``, made once per content."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file}\0{hashlib.sha256(file.read_bytes()).hexdigest()}\0".encode())
    final = cache_dir / f"templates-{digest.hexdigest()[:24]}"
    record = final / "prepared.json"
    if record.is_file():
        saved = json.loads(record.read_text())
        return PreparedDir(
            path=final,
            templates=tuple(PreparedTemplate(**t) for t in saved["templates"]),
            warnings=tuple(saved["warnings"]),
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=".building-", dir=cache_dir))
    prepared = prepare_template_dir(files, building / "db")
    (building / "db" / "prepared.json").write_text(
        json.dumps(
            {"templates": [asdict(t) for t in prepared.templates], "warnings": prepared.warnings}
        )
    )
    with contextlib.suppress(OSError):  # another process made it first: theirs is the same
        os.replace(building / "db", final)
    shutil.rmtree(building, ignore_errors=True)
    return _cached_prepare(files, cache_dir)


def _from_prepared(
    prepared: PreparedDir,
    msas: list[str],
    sequences: list[str],
    max_template_date: str | None,
    max_hits: int,
) -> TemplateSet:
    warnings = list(prepared.warnings)
    if max_template_date is not None:
        for template in prepared.templates:
            if template.release_date is not None and template.release_date > max_template_date:
                warnings.append(
                    f"template {template.source} ({template.pdb_id}): released "
                    f"{template.release_date}, after the max template date "
                    f"{max_template_date}; not used"
                )
    if not prepared.templates:
        warnings += [
            f"{_chain_label(i, s)}: no usable template; it gets mock features"
            for i, s in enumerate(sequences)
        ]
        return TemplateSet(
            chains=tuple(ChainTemplates(s, mock_features(s), ()) for s in sequences),
            warnings=tuple(warnings),
        )
    aligned: set[str] = set()
    chains: list[ChainTemplates] = []
    for index, (a3m, sequence) in enumerate(zip(msas, sequences, strict=True)):
        chain, chain_warnings = _featurize_chain(
            prepared.path,
            a3m,
            sequence,
            _chain_label(index, sequence),
            max_template_date,
            max_hits,
            prepared.by_id,
            aligned,
        )
        chains.append(chain)
        warnings += chain_warnings
    for template in prepared.templates:
        if template.pdb_id not in aligned:
            warnings.append(
                f"template {template.source} ({template.pdb_id}): hhsearch aligned none of its "
                "chains to any query chain; not used"
            )
    return TemplateSet(chains=tuple(chains), warnings=tuple(warnings))


def _featurize_chain(
    folder: Path,
    a3m: str,
    sequence: str,
    label: str,
    max_template_date: str | None,
    max_hits: int,
    known: Any,
    aligned: set[str] | None = None,
) -> tuple[ChainTemplates, list[str]]:
    """``colabfold.batch.mk_template`` for one chain, keeping the hits and the warnings.

    ``known(pdb_id)`` is the user's file a hit comes from (None: the server's); the ids of
    every structure hhsearch aligned are added to ``aligned``.
    """
    from alphafold.data import parsers, templates
    from alphafold.data.tools import hhsearch
    from colabfold.batch import _tool_path

    templates._read_file.cache_clear()  # AlphaFold caches mmCIF text by path
    runner = hhsearch.HHSearch(binary_path=_tool_path("hhsearch"), databases=[f"{folder}/pdb70"])
    hits = parsers.parse_hhr(runner.query(a3m))
    warnings: list[str] = []
    if aligned is not None:
        aligned.update(hit.name[:4].lower() for hit in hits)
    if not hits:
        warnings.append(f"{label}: no template aligns to it; it gets mock features")
        return ChainTemplates(sequence, mock_features(sequence), ()), warnings
    featurizer = templates.HhsearchHitFeaturizer(
        mmcif_dir=str(folder),
        max_template_date=max_template_date or NO_DATE_LIMIT,
        # All of them, so that a template dropped below (no CA) leaves room for the next.
        max_hits=len(hits),
        kalign_binary_path=_tool_path("kalign"),
        release_dates_path=None,
        obsolete_pdbs_path=None,
    )
    result = featurizer.get_templates(query_sequence=sequence, hits=hits)
    warnings += [f"{label}: {message}" for message in (*result.errors, *result.warnings)]
    features = dict(result.features)
    names = [name.decode() for name in features["template_domain_names"]]
    keep: list[int] = []
    kept_hits: list[TemplateHit] = []
    for k, name in enumerate(names):
        user_file: PreparedTemplate | None = known(name[:4])
        source = user_file.source if user_file is not None else SERVER
        if not features["template_all_atom_masks"][k, :, _CA].any():
            warnings.append(f"template {source} ({name}): has no CA atoms; not used for {label}")
            continue
        if len(keep) == max_hits:
            break
        keep.append(k)
        kept_hits.append(_hit(name, source, user_file, folder, features, k, sequence))
    for hit in kept_hits:
        if hit.aligned_residues < WEAK_COVERAGE * len(sequence):
            warnings.append(
                f"template {hit.source} ({hit.name}): aligns to {label} over only "
                f"{hit.aligned_residues} residues; kept, as ColabFold keeps it"
            )
    if not keep:
        warnings.append(f"{label}: no usable template; it gets mock features")
        return ChainTemplates(sequence, mock_features(sequence), ()), warnings
    if keep != list(range(len(names))):
        index = np.asarray(keep)
        features = {key: np.asarray(value)[index] for key, value in features.items()}
    return ChainTemplates(sequence, features, tuple(kept_hits)), warnings


def _hit(
    name: str,
    source: str,
    user_file: PreparedTemplate | None,
    folder: Path,
    features: dict[str, Any],
    k: int,
    sequence: str,
) -> TemplateHit:
    """The :class:`TemplateHit` of template ``k``, its alignment read off the features."""
    aligned_row = features["template_sequence"][k].decode()
    pairs = [(t, q) for t, q in zip(aligned_row, sequence, strict=False) if t != "-"]
    identical = sum(t == q for t, q in pairs)
    if user_file is not None:
        date = user_file.release_date
    else:
        date = release_date(folder / f"{name[:4]}.cif")
    return TemplateHit(
        name=name,
        source=source,
        release_date=date,
        aligned_residues=len(pairs),
        identity=identical / len(pairs) if pairs else 0.0,
    )

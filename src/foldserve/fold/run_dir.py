"""A prediction directory that holds exactly one run: staged beside its target, swapped in whole.

Writing straight into ``--out-dir`` left an earlier run's ``ranked_1.pdb`` (of another protein)
beside the new ``ranked_0.pdb``. Instead every output is written into a fresh hidden folder next
to the target, and only a complete run is renamed into place. Everything that can be refused is
refused by :func:`prepare` before any work: a target that is a file, a folder holding files of
something else (never deleted, even with ``overwrite``), an earlier run without ``overwrite``, a
place that cannot be written.

When writing fails at the end anyway (a full disk, a folder removed meanwhile), :func:`rescue`
writes the results under the system's temporary folder and the error names it, so hours of GPU
time are never lost to a full disk.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from foldserve.errors import InputError, OutputNotWritten
from foldserve.fold.run_config import CONFIG_NAME, FORMAT

#: Files that mark a folder as a prediction (foldserve's, or DeepMind's layout).
_RUN_MARKERS = ("ranking_debug.json",)


@dataclass(frozen=True)
class StagedRun:
    """Where a run is written (``staging``) and where it goes once whole (``target``)."""

    target: Path
    staging: Path


def holds_a_run(directory: Path) -> bool:
    """Whether ``directory`` is a prediction folder (foldserve's or run_alphafold's)."""
    config = directory / CONFIG_NAME
    if config.is_file() and FORMAT in config.read_text(encoding="utf-8", errors="replace"):
        return True
    return any((directory / marker).is_file() for marker in _RUN_MARKERS)


def check_target(target: Path, *, overwrite: bool) -> None:
    """Refuse, before any work, a target the run must not be written over."""
    if target.exists() and not target.is_dir():
        raise InputError(
            "exists and is not a folder", where=str(target), fix="give a folder name for the run"
        )
    if not target.is_dir() or not any(target.iterdir()):
        return
    if not holds_a_run(target):
        raise InputError(
            "holds files that are not a prediction; foldserve writes a run into a new or empty "
            "folder, or over an earlier run",
            where=str(target),
            fix="choose a new or empty folder",
        )
    if not overwrite:
        raise InputError(
            "holds an earlier prediction",
            where=str(target),
            fix="add --overwrite to replace it whole, or choose a new folder",
        )


def prepare(target: Path, *, overwrite: bool) -> StagedRun:
    """Check ``target`` and make the staging folder beside it (which proves it writable)."""
    check_target(target, overwrite=overwrite)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    except OSError as exc:
        raise InputError(
            f"cannot write here: {exc.strerror or exc}",
            where=str(target.parent),
            fix="choose a folder you can write to",
        ) from None
    return StagedRun(target, staging)


def commit(run: StagedRun) -> Path:
    """Put the staged run in place of ``target`` (an earlier run there is replaced whole)."""
    old = None
    if run.target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{run.target.name}.old-", dir=run.target.parent))
        run.target.replace(old / "run")
    run.staging.replace(run.target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return run.target


def discard(run: StagedRun) -> None:
    shutil.rmtree(run.staging, ignore_errors=True)


def rescue(write: Callable[[Path], object], error: OSError, where: Path) -> OutputNotWritten:
    """After writing into ``where`` failed with ``error``: write the run again with ``write``
    into a new folder under the temporary directory; the error to raise names it."""
    problem = f"cannot write the results: {error.strerror or error}"
    try:
        kept = Path(tempfile.mkdtemp(prefix="foldserve-results-"))
        write(kept)
    except OSError:
        return OutputNotWritten(problem, where=str(where), kept_in=None)
    return OutputNotWritten(problem, where=str(where), kept_in=kept)

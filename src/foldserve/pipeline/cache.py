"""Step records that make a pipeline resumable: ``DIR/.steps/<step>.json``.

A step's record holds the hash of everything it was given and the files it wrote. It is saved
only after those files are complete, so a crash or Ctrl-C in the middle of a step leaves no
record and the step runs again; a record whose key differs (an input changed) or whose outputs
are gone does not count either. Later steps fold earlier outputs' hashes into their keys, so a
change re-runs the step it touches and every step after it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foldserve.errors import InputError
from foldserve.files import sha256_file, write_text

STEPS_DIR = ".steps"


def file_digest(path: Path) -> str:
    """SHA-256 of a file, or of every file under a directory (names and contents).

    A missing or unreadable input (the MSA, the reference) is the user's error, named here.
    """
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else "").encode())
        try:
            digest.update(bytes.fromhex(sha256_file(file)))
        except OSError as exc:
            raise InputError(
                exc.strerror or str(exc).lower(),
                where=str(file),
                fix="check the path and that the file is readable",
            ) from None
    return digest.hexdigest()


def key_of(**inputs: Any) -> str:
    """A stable hash of JSON-able inputs (paths: give their :func:`file_digest`)."""
    text = json.dumps(inputs, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class StepRecord:
    key: str
    outputs: dict[str, str]  # name -> path relative to the run directory
    info: dict[str, Any]
    seconds: float


class StepCache:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.directory = run_dir / STEPS_DIR

    def finished(self, step: str, key: str) -> StepRecord | None:
        """The step's record when it ran with this key and its outputs are all still there."""
        path = self.directory / f"{step}.json"
        try:
            record = StepRecord(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None
        if record.key != key:
            return None
        if not all((self.run_dir / output).exists() for output in record.outputs.values()):
            return None
        return record

    def save(self, step: str, record: StepRecord) -> None:
        write_text(self.directory / f"{step}.json", json.dumps(record.__dict__, indent=2) + "\n")

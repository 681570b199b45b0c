"""The cache of server searches: a rerun, or a second pipeline run, never asks the server again.

ColabFold's public MMseqs2 server is a shared resource with fair-use limits, and its answer
for a sequence depends only on that sequence, the mode asked for and the server. So each
answer is kept, per sequence, under the SHA-256 of exactly those (:class:`CacheKey`), in
``$FOLDSERVE_CACHE_DIR`` (else ``$XDG_CACHE_HOME/foldserve``, else ``~/.cache/foldserve``),
subfolder ``msa-search``. Entries are written atomically; one that cannot be read (damaged,
or from an older layout) is a miss, replaced by the next search.

What is kept is each database's hit rows without the query (:class:`HitRows`): a cached
answer then serves a query of any name.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from foldserve.files import write_text
from foldserve.msa.search.results import DatabaseHits, Query

SUBFOLDER = "msa-search"


def cache_dir() -> Path:
    """foldserve's cache folder: ``$FOLDSERVE_CACHE_DIR``, else ``$XDG_CACHE_HOME/foldserve``,
    else ``~/.cache/foldserve``."""
    explicit = os.environ.get("FOLDSERVE_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "foldserve"


class HitRows(BaseModel):
    """One database's hits for one sequence: A3M records, the query row left out."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    database: str
    rows: str

    def for_query(self, query: Query) -> DatabaseHits:
        """The hits as a search result has them: the query (by its name) first."""
        return DatabaseHits(self.database, f">{query.name}\n{query.sequence}\n{self.rows}")


@dataclass(frozen=True)
class CacheKey:
    """What a server's answer for one sequence depends on.

    ``mode`` is the mode sent (``env``, ``pairgreedy``, ...; the pairing modes are only sent
    to ``/ticket/pair``, so they also tell the two kinds of ticket apart). A chain's paired
    rows depend on every chain paired with it, so with pairing ``complex`` holds all the
    ticket's sequences in order; it is empty otherwise.
    """

    sequence: str
    mode: str
    server: str
    complex: tuple[str, ...] = ()

    def digest(self) -> str:
        """SHA-256 (hex) of the key's fields."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sequence: str
    mode: str
    server: str
    complex: tuple[str, ...]
    hits: tuple[HitRows, ...]


class SearchCache:
    """Server answers per :class:`CacheKey`, one JSON file each under ``root``."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else cache_dir() / SUBFOLDER

    def path(self, key: CacheKey) -> Path:
        digest = key.digest()
        return self.root / digest[:2] / f"{digest}.json"

    def get(self, key: CacheKey) -> tuple[HitRows, ...] | None:
        """The cached hits for ``key``, or None (also for an entry that cannot be read)."""
        try:
            entry = _Entry.model_validate_json(self.path(key).read_bytes())
        except (OSError, ValidationError):
            return None
        stored = CacheKey(entry.sequence, entry.mode, entry.server, entry.complex)
        return entry.hits if stored == key else None

    def put(self, key: CacheKey, hits: tuple[HitRows, ...]) -> Path:
        """Keep ``hits`` for ``key``, replacing what was there; the entry's path."""
        entry = _Entry(**asdict(key), hits=hits)
        return write_text(self.path(key), entry.model_dump_json())

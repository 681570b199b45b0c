"""What one pipeline run is given: from command-line flags or a TOML file.

A TOML file uses the flags' names with underscores, e.g.::

    msa = "family.a3m"            # or: sequence = "query.fasta" with databases or server
    models = [1, 2, 3]
    num_recycles = 3
    reference = "7abc.cif"
    out = "runs/family"

Relative paths in the file are relative to the file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, cast

from foldserve.errors import InputError
from foldserve.fold.results import PredictOptions
from foldserve.fold.run_config import check_relax
from foldserve.msa.search.settings import DEFAULT_MAX_HITS, SearchSettings, ServerMode, Tool

PATH_FIELDS = ("msa", "sequence", "out", "reference", "params_dir")
#: Where the search step writes the merged MSA, inside ``out``.
SEARCH_FILE = "search.a3m"


@dataclass(frozen=True)
class PipelineConfig:
    out: Path
    #: The MSA to fold, or ``sequence`` to search one first (with ``databases`` or ``server``).
    msa: Path | None = None
    sequence: Path | None = None
    databases: tuple[Path, ...] = ()
    search_tool: str = "jackhmmer"
    server: str | None = None
    search_mode: str = "env"
    max_hits: int = DEFAULT_MAX_HITS
    models: tuple[int, ...] = (1, 2, 3, 4, 5)
    num_recycles: int = 3
    seed: int = 0
    #: Amber relaxation of the predicted models: none, best or all.
    relax: str = "none"
    reference: Path | None = None
    reference_chain: str | None = None
    msa_format: str = "auto"
    params_dir: Path | None = None
    url: str | None = None
    endpoint_id: str | None = None
    tracking_uri: str | None = None

    def __post_init__(self) -> None:
        if self.url and self.endpoint_id:
            raise InputError(
                "both an endpoint id and a URL given",
                where="--endpoint-id/--url",
                fix="give one of them",
            )
        if (self.msa is None) == (self.sequence is None):
            raise InputError(
                "give an MSA or a sequence to search one for",
                where="--msa/--sequence",
                fix="give one of --msa FILE and --sequence FASTA",
            )
        self.search_settings()  # validates the search, when there is one
        check_relax(self.relax, where="relax")
        self.predict_options()  # validates models, recycles and seed

    @property
    def msa_input(self) -> Path:
        """The MSA the run checks and folds: the one given, or the search step's."""
        return self.msa if self.msa is not None else self.out / SEARCH_FILE

    @property
    def remote(self) -> bool:
        return bool(self.url or self.endpoint_id)

    def search_settings(self) -> SearchSettings | None:
        """How the MSA is searched for; None when an MSA was given."""
        if self.sequence is None:
            return None
        return SearchSettings(
            tool="colabfold-server" if self.server else cast(Tool, self.search_tool),
            databases=self.databases,
            server=self.server,
            mode=cast(ServerMode, self.search_mode),
            max_hits=self.max_hits,
        )

    def predict_options(self) -> PredictOptions:
        return PredictOptions(models=self.models, num_recycles=self.num_recycles, seed=self.seed)


def load_toml(path: Path, overrides: dict[str, Any]) -> PipelineConfig:
    """Read a run file; flags given on the command line (``overrides``) win."""
    try:
        values: dict[str, Any] = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InputError("no such file", where=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML ({exc})", where=str(path)) from None
    known = {f.name for f in fields(PipelineConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(
            f"unknown setting {unknown[0]!r}",
            where=str(path),
            fix=f"use only {', '.join(sorted(known))}",
        )
    for name in PATH_FIELDS:
        if isinstance(values.get(name), str):
            values[name] = path.parent / values[name]
    if isinstance(values.get("models"), list):
        values["models"] = tuple(values["models"])
    if isinstance(values.get("databases"), list):
        values["databases"] = tuple(path.parent / d for d in values["databases"])
    values.update({k: v for k, v in overrides.items() if v is not None})
    if "out" not in values:
        raise InputError("no out", where=str(path), fix="add out = ... or --out")
    try:
        return PipelineConfig(**values)
    except TypeError as exc:
        raise InputError(f"bad setting ({exc})", where=str(path)) from None

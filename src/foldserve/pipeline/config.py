"""What one pipeline run is given: from command-line flags or a TOML file.

A TOML file uses the flags' names with underscores, e.g.::

    msa = "family.a3m"
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
from typing import Any

from foldserve.errors import InputError
from foldserve.fold.results import PredictOptions

PATH_FIELDS = ("msa", "out", "reference", "params_dir")


@dataclass(frozen=True)
class PipelineConfig:
    msa: Path
    out: Path
    models: tuple[int, ...] = (1, 2, 3, 4, 5)
    num_recycles: int = 3
    seed: int = 0
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
        self.predict_options()  # validates models, recycles and seed

    @property
    def remote(self) -> bool:
        return bool(self.url or self.endpoint_id)

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
    values.update({k: v for k, v in overrides.items() if v is not None})
    for required in ("msa", "out"):
        if required not in values:
            raise InputError(
                f"no {required}", where=str(path), fix=f"add {required} = ... or --{required}"
            )
    try:
        return PipelineConfig(**values)
    except TypeError as exc:
        raise InputError(f"bad setting ({exc})", where=str(path)) from None

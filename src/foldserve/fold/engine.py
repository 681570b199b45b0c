"""The engine interface: one protocol that AlphaFold2 and OpenFold3 both implement.

An engine is loaded once (weights on the device, networks built) and then predicts many jobs.
Every engine takes foldserve's parsed MSA (one chain, or a complex in ColabFold's layout, see
:class:`~foldserve.msa.model.ComplexLayout`), reports progress through the same
:class:`~foldserve.fold.results.ProgressEvent`, honours cancellation at step boundaries and
returns the same engine-neutral :class:`~foldserve.fold.results.Prediction` (atom37
coordinates, per-residue pLDDT, PAE, pTM/ipTM, its own ranking score), so the prediction
directory, compare, report and the job output do not know which engine ran.

:class:`Engines` holds the warm engines one worker serves, keyed by name; the heavy packages
(JAX for AlphaFold2, PyTorch for OpenFold3) are imported only when that engine is loaded.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from foldserve.errors import InputError
from foldserve.fold.results import (
    ENGINE_NAMES,
    CancelCheck,
    EngineInfo,
    EngineName,
    Prediction,
    PredictOptions,
    ProgressCallback,
    TemplateSource,
    sibling_field,
)
from foldserve.msa.model import Msa

__all__ = ["ENGINE_NAMES", "Engine", "EngineName", "Engines", "load_engine", "parse_engine_names"]

DEFAULT_ENGINE: EngineName = "alphafold2"
Precision = Literal["auto", "bfloat16", "float32"]
PRECISIONS: tuple[Precision, ...] = ("auto", "bfloat16", "float32")


@runtime_checkable
class Engine(Protocol):
    """A structure predictor loaded once and kept warm across :meth:`predict` calls."""

    #: Which engine this is (``alphafold2`` or ``openfold3``).
    name: EngineName
    #: The weights, device and arithmetic every prediction of this engine records.
    engine: EngineInfo

    def load_all_params(self) -> None:
        """Put every model's weights on the device now, so no job pays for reading them."""

    def check_input(self, msa: Msa, options: PredictOptions, *, where: str = "models") -> None:
        """Refuse, before any work, what this engine cannot run (one line naming ``where``)."""

    def predict(
        self,
        msa: Msa,
        options: PredictOptions | None = None,
        *,
        templates: TemplateSource | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelCheck | None = None,
        keep_raw: bool = False,
    ) -> Prediction:
        """Every requested model/sample and seed on ``msa``, ranked best first."""
        ...


def parse_engine_names(
    text: str | Iterable[str], *, where: str = "engines"
) -> tuple[EngineName, ...]:
    """``alphafold2,openfold3`` (or a list) as engine names, in order, each once."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names: list[EngineName] = []
    for item in (raw.strip().lower() for raw in items):
        if not item:
            continue
        if item not in ENGINE_NAMES:
            raise InputError(
                f"unknown engine {item!r}", where=where, fix=f"use {' or '.join(ENGINE_NAMES)}"
            )
        if item not in names:
            names.append(item)
    if not names:
        raise InputError("no engine named", where=where, fix="give alphafold2 and/or openfold3")
    return tuple(names)


#: How many loaded engines a process keeps warm for :func:`load_engine` (AlphaFold2 and
#: OpenFold3 on one weights folder, say), the least recently asked for going first.
WARM_ENGINES = 2


@dataclass(frozen=True)
class _WarmKey:
    name: EngineName
    param_dir: Path
    precision: Precision
    #: Other weights put in the same folder are other weights: they are loaded afresh.
    fingerprint: str


_warm: OrderedDict[_WarmKey, Engine] = OrderedDict()
_warm_lock = threading.Lock()


def load_engine(
    name: EngineName, param_dir: Path | str | None = None, *, precision: Precision = "auto"
) -> Engine:
    """The named engine with its weights from ``param_dir`` (``PARAM_DIR`` by default).

    The same weights asked for again in this process (a notebook's next ``predict``, a
    pipeline run after another, the CLI run in process) give the engine already loaded, with
    its weights on the device and its compiled shapes: no second copy of the weights, no
    compile again. An engine runs one prediction at a time.

    A missing extra or missing weights are an :class:`InputError` saying what to install or
    fetch.
    """
    if precision not in PRECISIONS:  # a caller without a type checker may pass anything
        raise InputError(
            f"unknown precision {precision!r}",
            where="precision",
            fix=f"use {', '.join(PRECISIONS)}",
        )
    from foldserve.fold.weights import resolve_param_dir

    directory = resolve_param_dir(Path(param_dir) if param_dir is not None else None)
    key = _WarmKey(name, directory, precision, weights_identity(name, directory).fingerprint)
    with _warm_lock:
        engine = _warm.get(key)
        if engine is None:
            engine = _new_engine(name, directory, precision)
            _warm[key] = engine
            while len(_warm) > WARM_ENGINES:
                _warm.popitem(last=False)
        _warm.move_to_end(key)
        return engine


def _new_engine(name: EngineName, param_dir: Path, precision: Precision) -> Engine:
    if name == "openfold3":
        from foldserve.fold.openfold3.engine import OpenFold3Engine

        return OpenFold3Engine(param_dir, precision=precision)
    from foldserve.fold.alphafold2.predictor import Predictor

    return Predictor(param_dir, precision=precision)


@dataclass(frozen=True)
class WeightsIdentity:
    """Which weights an engine would load, told without reading a weight file."""

    fingerprint: str
    test_weights: bool


def weights_identity(name: EngineName, param_dir: Path) -> WeightsIdentity:
    """The fingerprint of engine ``name``'s weights in ``param_dir`` (what a cache key or a
    run record names them by) and whether they are test weights."""
    if name == "openfold3":
        from foldserve.fold.openfold3.layout import checkpoint_fingerprint, is_test_checkpoint

        return WeightsIdentity(checkpoint_fingerprint(param_dir), is_test_checkpoint(param_dir))
    from foldserve.fold.weights import fingerprint, is_test_weights

    return WeightsIdentity(fingerprint(param_dir), is_test_weights(param_dir))


ENGINE_ONLY_OPTIONS: dict[EngineName, tuple[str, ...]] = {
    "alphafold2": (
        "models",
        "model_type",
        "recycle_early_stop_tolerance",
        "stop_at_score",
        "max_msa_clusters",
        "max_extra_msa",
        "templates",
    ),
    "openfold3": ("num_diffusion_samples",),
}
ENGINE_TITLES: dict[str, str] = {"alphafold2": "AlphaFold2", "openfold3": "OpenFold3"}


def check_engine_options(
    engine: EngineName, options: PredictOptions, *, where: str | None = None
) -> None:
    """Refuse an option that only the other engine has, set away from its default (AlphaFold2's
    ``models`` for OpenFold3, OpenFold3's ``num_diffusion_samples`` for AlphaFold2); the
    error's ``where`` is the option's field name (for the caller to make a JSON path or a flag
    of), or that field beside ``where`` (``input.models`` -> ``input.num_diffusion_samples``)."""
    default = PredictOptions()
    for owner, names in ENGINE_ONLY_OPTIONS.items():
        if owner == engine:
            continue
        for name in names:
            if getattr(options, name) != getattr(default, name):
                raise InputError(
                    f"an {ENGINE_TITLES[owner]} option, which {engine} does not take",
                    where=name if where is None else sibling_field(where, name),
                    fix=f"leave it out for {engine}, or use engine {owner}",
                )


class Engines:
    """The warm engines a worker serves, each loaded once, on first use or by :meth:`load`."""

    def __init__(
        self,
        names: Iterable[EngineName] = (DEFAULT_ENGINE,),
        param_dir: Path | str | None = None,
        *,
        precision: Precision = "auto",
    ) -> None:
        self.names = tuple(names)
        self.param_dir = param_dir
        self.precision = precision
        self._loaded: dict[EngineName, Engine] = {}

    @classmethod
    def of(cls, engine: Engine) -> Engines:
        """A set holding one engine that is already loaded."""
        engines = cls((engine.name,))
        engines._loaded[engine.name] = engine
        return engines

    def load(self) -> Engines:
        """Load every engine now (a worker does this before taking jobs)."""
        for name in self.names:
            self.get(name).load_all_params()
        return self

    def check_served(self, name: EngineName, *, where: str = "engine") -> None:
        """Refuse, in one line naming ``where``, an engine this worker does not serve (nothing
        is loaded)."""
        if name not in self.names:
            raise InputError(
                f"{name} is not served here (this worker runs {', '.join(self.names)})",
                where=where,
                fix=f"use {' or '.join(self.names)}, or start the endpoint with "
                f"--engines {','.join((*self.names, name))}",
            )

    def get(self, name: EngineName, *, where: str = "engine") -> Engine:
        """The warm engine ``name``; an :class:`InputError` when this worker does not serve it."""
        self.check_served(name, where=where)
        if name not in self._loaded:
            self._loaded[name] = load_engine(name, self.param_dir, precision=self.precision)
        return self._loaded[name]

    @property
    def loaded(self) -> dict[EngineName, Engine]:
        return dict(self._loaded)

    def describe(self) -> list[str]:
        """One line per loaded engine for a worker's log: device, depth, test weights."""
        return [
            f"{engine.name} ready on {engine.engine.device}, {engine.engine.evoformer_blocks} "
            "blocks"
            + (" (TEST WEIGHTS: outputs are meaningless)" if engine.engine.test_weights else "")
            for engine in self._loaded.values()
        ]

"""Which shape a job runs at: a compiled padded shape, or a new compile, chosen by cost.

A job can run at any shape that covers its own (padded residues and rows are masked). Running
at a bigger shape costs extra forward work; running at a shape not yet compiled costs a compile
(or a load, when the persistent compilation cache holds it). Which is cheaper depends on the
device: on two CPU cores a 48-block compile takes about 7 s while padding 70 residues to 96
adds about 15 s of forward passes; on a GPU a compile takes tens of seconds and a whole forward
pass a fraction of one. So the choice is made per job from the device's own costs
(:class:`DeviceCosts`: measured in this process, else recorded by earlier processes beside the
compilation cache, else unknown) and the work each shape needs
(:func:`~foldserve.fold.alphafold2.shapes.forward_work`).

The rule (:func:`choose_shape`), with ``F(S)`` the estimated seconds of the job's forward
passes at shape ``S`` and ``C`` a compile's seconds:

1. Reuse the compiled (or load the cached) shape that covers the job at the least cost, if
   that cost is at most what compiling the exact shape would cost, ``C + F(exact)``: padding
   is worth up to one compile.
2. Otherwise compile, at the coarsest ladder shape whose padding costs at most half a compile,
   ``F(S) - F(exact) <= C / 2`` (the exact shape if none does). The coarser the shape, the more
   later lengths it serves; half a compile bounds what that bet can lose.

With no costs known (a new device, nothing measured), a job runs at its exact shape: there is
nothing to weigh padding against. The choice is a pure function of its inputs, and its
:attr:`ShapeChoice.reason` states the numbers it compared.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Literal

from foldserve.fold.alphafold2.features import InputShape
from foldserve.fold.alphafold2.shapes import (
    ALPHAFOLD_CHUNK,
    covers,
    estimate_bytes,
    forward_work,
    ladder_shapes,
)

#: The fraction of a compile a new shape's padding may cost, betting that later jobs reuse it.
PADDING_ALLOWANCE = 0.5
#: A cache load's share of a compile until one is measured: on two CPU cores a 48-block
#: network loads from the persistent cache in about a fifth of its compile time.
LOAD_SHARE = 0.25
GIGA = 1e9

Action = Literal["reuse", "load", "compile"]


@dataclass(frozen=True)
class DeviceCosts:
    """What compiling and running cost on this device, for this network and precision."""

    #: Seconds to compile one shape (tracing included).
    compile_seconds: float
    #: Seconds to load a shape the persistent compilation cache holds.
    load_seconds: float
    #: Seconds of one forward pass per 10**9 multiply-adds of :func:`forward_work`.
    seconds_per_gwork: float
    #: Where the figures come from, for the reason a choice gives.
    source: str

    def __post_init__(self) -> None:
        for name in ("compile_seconds", "load_seconds", "seconds_per_gwork"):
            value = getattr(self, name)
            if not value >= 0:  # also refuses NaN
                raise ValueError(f"{name} must be at least 0, got {value}")


#: Costs of a device where compiling never pays (forward passes free, compiles endless): a job
#: reuses a compiled shape that covers it, else loads a cached one, else compiles the coarse
#: ladder's shape. Without a compilation cache, the fixed ladder of before the policy.
COARSE_LADDER = DeviceCosts(
    compile_seconds=math.inf,
    load_seconds=0.0,
    seconds_per_gwork=0.0,
    source="pinned: the coarse ladder",
)


@dataclass(frozen=True)
class ShapeRequest:
    """What the choice for one network of one job depends on."""

    #: The job's own shape (no padding).
    exact: InputShape
    #: Forward passes the job makes on this network: models x seeds x (recycles + 1).
    passes: int
    evoformer_blocks: int
    #: Shapes compiled in this process, and shapes the persistent cache holds.
    compiled: frozenset[InputShape] = frozenset()
    cached: frozenset[InputShape] = frozenset()
    #: Device memory a job may use (0: no limit) and the parameters' share of it.
    memory_limit_bytes: int = 0
    param_bytes: int = 0

    def fits(self, shape: InputShape) -> bool:
        limit = self.memory_limit_bytes
        return not limit or estimate_bytes(shape, self.param_bytes) <= limit


@dataclass(frozen=True)
class ShapeChoice:
    """The shape a job runs at, and why."""

    exact: InputShape
    shape: InputShape
    action: Action
    reason: str
    #: AlphaFold's inference chunk at ``shape``; ``None``: its layers run whole
    #: (:func:`~foldserve.fold.alphafold2.shapes.chunk_for`, which the predictor applies).
    chunk: int | None = ALPHAFOLD_CHUNK

    def as_json(self) -> dict[str, int | str | None]:
        """What ``timings.json`` records under ``shape``."""
        return {
            "length": self.exact.length,
            "padded_to": self.shape.length,
            "clusters": self.exact.clusters,
            "clusters_padded_to": self.shape.clusters,
            "extra": self.exact.extra,
            "extra_padded_to": self.shape.extra,
            "action": self.action,
            "reason": self.reason,
            "chunk": self.chunk,
        }


@dataclass(frozen=True)
class _Option:
    shape: InputShape
    action: Action
    seconds: float


def exact_choice(request: ShapeRequest, reason: str) -> ShapeChoice:
    """The job's exact shape: kept compiled, loaded from the cache or compiled."""
    exact = request.exact
    action: Action = "compile"
    if exact in request.compiled:
        action = "reuse"
    elif exact in request.cached:
        action = "load"
    return ShapeChoice(exact, exact, action, reason)


def choose_shape(request: ShapeRequest, costs: DeviceCosts | None) -> ShapeChoice:
    """The shape ``request``'s job runs at (the rule is in the module's docstring)."""
    exact = request.exact
    if costs is None:
        return exact_choice(
            request, "no compile or forward pass measured on this device yet: the exact shape"
        )

    def forward(shape: InputShape) -> float:
        work = forward_work(shape, request.evoformer_blocks)
        return request.passes * costs.seconds_per_gwork * work / GIGA

    def option(shape: InputShape) -> _Option:
        if shape in request.compiled:
            return _Option(shape, "reuse", forward(shape))
        if shape in request.cached:
            return _Option(shape, "load", costs.load_seconds + forward(shape))
        return _Option(shape, "compile", costs.compile_seconds + forward(shape))

    ready = [
        option(shape)
        for shape in sorted(request.compiled | request.cached, key=_size)
        if covers(shape, exact) and request.fits(shape)
    ]
    fresh = costs.compile_seconds + forward(exact)
    best = min(ready, key=lambda o: o.seconds, default=None)
    if best is not None and best.seconds <= fresh:
        reason = (
            f"{best.action} {_describe(best.shape)}: ~{best.seconds:.1f} s, against "
            f"~{fresh:.1f} s to compile and run {exact.length} ({_costs(costs)})"
        )
        return ShapeChoice(exact, best.shape, best.action, reason)
    # Shapes ready to run were weighed above: what is left is which shape to compile.
    allowance = PADDING_ALLOWANCE * costs.compile_seconds
    ready_shapes = request.compiled | request.cached
    shape = next(
        (
            s
            for s in ladder_shapes(exact)  # coarsest first
            if s not in ready_shapes
            and request.fits(s)
            and forward(s) - forward(exact) <= allowance
        ),
        exact,
    )
    chosen = option(shape)
    if shape == exact:
        why = f"no shape above it pads for at most half a compile ({allowance:.1f} s)"
    else:
        padding = forward(shape) - forward(exact)
        why = (
            f"padding from {exact.length} costs ~{padding:.1f} s, within half a compile "
            f"({allowance:.1f} s)"
        )
    if best is not None:
        why += f"; reusing {_describe(best.shape)} would cost ~{best.seconds:.1f} s"
    reason = f"{chosen.action} {_describe(shape)}: {why} ({_costs(costs)})"
    return ShapeChoice(exact, chosen.shape, chosen.action, reason)


@dataclass
class CostLog:
    """Measured compiles, cache loads and forward passes: this process's, or those earlier
    processes recorded beside the compilation cache."""

    compiles: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)
    #: (multiply-adds, seconds) of each measured run of forward passes.
    passes: list[tuple[float, float]] = field(default_factory=list)

    def compile_seconds(self) -> float | None:
        return statistics.median(self.compiles) if self.compiles else None

    def seconds_per_gwork(self) -> float | None:
        work = sum(w for w, _ in self.passes)
        return GIGA * sum(s for _, s in self.passes) / work if work else None


def device_costs(here: CostLog, recorded: CostLog) -> DeviceCosts | None:
    """Each figure as measured ``here``, else as ``recorded``; a load not yet measured is
    taken as :data:`LOAD_SHARE` of a compile. None while a compile or a forward pass is known
    from neither."""
    compile_seconds = here.compile_seconds()
    rate = here.seconds_per_gwork()
    source = "measured in this process"
    if compile_seconds is None or rate is None:
        source = "recorded by earlier processes" if not here.passes else "partly recorded earlier"
        compile_seconds = recorded.compile_seconds() if compile_seconds is None else compile_seconds
        rate = recorded.seconds_per_gwork() if rate is None else rate
    if compile_seconds is None or rate is None:
        return None
    load = statistics.median(here.loads) if here.loads else LOAD_SHARE * compile_seconds
    return DeviceCosts(compile_seconds, load, rate, source)


def _size(shape: InputShape) -> tuple[int, int, int]:
    return (shape.length, shape.clusters, shape.extra)


def _describe(shape: InputShape) -> str:
    return f"{shape.length} residues x {shape.clusters}+{shape.extra} rows"


def _costs(costs: DeviceCosts) -> str:
    return (
        f"compile {costs.compile_seconds:.1f} s, load {costs.load_seconds:.1f} s, "
        f"{costs.seconds_per_gwork * 1000:.2f} ms per 10^9 multiply-adds; {costs.source}"
    )

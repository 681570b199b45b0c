"""``Predictor``: AlphaFold2 kept warm across jobs.

Loading parameters and compiling the network cost far more than a small prediction. A Predictor
pays for them once: each model's parameters are loaded on first use and kept on the device, all
five are swapped into one compiled function (ColabFold's trick), and compiled functions are kept
per padded input shape, so a stream of jobs compiles only when it meets a new bucket. A
persistent compilation cache beside the weights lets a fresh worker process skip even that.

The recycle loop is ColabFold's ``RunModel.predict`` (same key splitting, same float16 hand-over
between recycles), written out here so that progress is reported and cancellation honoured at
every recycle boundary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from foldserve.errors import Cancelled, InputError, TooLarge
from foldserve.fold import network
from foldserve.fold.features import InputShape, msa_sizes, process_features, raw_features
from foldserve.fold.results import (
    CancelCheck,
    EngineInfo,
    ModelRun,
    Prediction,
    PredictOptions,
    ProgressCallback,
    ProgressEvent,
)
from foldserve.fold.shapes import GIB, bucket_shape, estimate_bytes, exact_shape, reduced_depth_hint
from foldserve.fold.weights import (
    MODEL_NUMBERS,
    fingerprint,
    is_test_weights,
    model_param_file,
    resolve_param_dir,
)
from foldserve.msa.model import Msa

Precision = Literal["auto", "bfloat16", "float32"]
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
COMPILE_CACHE_DIRNAME = "jax-cache"


def enable_compile_cache(directory: Path) -> None:
    """Persist compiled XLA executables in ``directory`` (shared by every worker using it)."""
    import jax

    directory.mkdir(parents=True, exist_ok=True)
    settings = {
        "jax_compilation_cache_dir": str(directory),
        # Cache everything: on a worker every compile avoided is time the user does not pay.
        "jax_persistent_cache_min_entry_size_bytes": -1,
        "jax_persistent_cache_min_compile_time_secs": 0.0,
    }
    for name, value in settings.items():
        jax.config.update(name, value)  # type: ignore[no-untyped-call]


def device_description() -> tuple[str, int]:
    """The first JAX device's name and the memory a job may use on it, in bytes."""
    import jax

    device = jax.devices()[0]
    if device.platform == "cpu":
        import psutil

        return "CPU", int(psutil.virtual_memory().available)
    stats = device.memory_stats() or {}
    return str(device.device_kind), int(stats.get("bytes_limit", 0))


class Predictor:
    """AlphaFold2 pTM models from an MSA, warm across calls to :meth:`predict`."""

    def __init__(
        self,
        param_dir: Path | str | None = None,
        *,
        precision: Precision = "auto",
        bucketing: bool = True,
        compile_cache: bool = True,
        memory_limit_bytes: int | None = None,
    ) -> None:
        if precision not in PRECISIONS:  # a caller without a type checker may pass anything
            raise InputError(
                f"unknown precision {precision!r}",
                where="precision",
                fix=f"use {', '.join(PRECISIONS[:-1])} or {PRECISIONS[-1]}",
            )
        import jax

        self.param_dir = resolve_param_dir(Path(param_dir) if param_dir is not None else None)
        missing = [n for n in MODEL_NUMBERS if not model_param_file(self.param_dir, n).is_file()]
        if 3 in missing:
            raise InputError(
                f"no AlphaFold2 parameters in {self.param_dir / 'params'}",
                where="params",
                fix="run `foldserve weights fetch`, or `foldserve weights make-test` for random "
                "test weights, or point --params-dir / PARAM_DIR at an existing copy",
            )
        self.available_models = tuple(n for n in MODEL_NUMBERS if n not in missing)
        self.test_weights = is_test_weights(self.param_dir)
        if compile_cache:
            enable_compile_cache(self.param_dir / COMPILE_CACHE_DIRNAME)
        on_cpu = jax.devices()[0].platform == "cpu"
        # bfloat16 halves memory on GPUs; CPUs have no fast bfloat16 matrix units.
        self.bfloat16 = precision == "bfloat16" or (precision == "auto" and not on_cpu)
        self.bucketing = bucketing
        self.device, device_bytes = device_description()
        self.memory_limit_bytes = memory_limit_bytes or device_bytes
        model_3 = network.load_params(self.param_dir, 3)
        self._network = network.build_network(self.param_dir, model_3, bfloat16=self.bfloat16)
        self._params: dict[int, network.Params] = {3: model_3}
        self._compiled: dict[InputShape, Any] = {}
        self.compile_count = 0
        self.engine = EngineInfo(
            params_dir=str(self.param_dir),
            weights_fingerprint=fingerprint(self.param_dir),
            test_weights=self.test_weights,
            evoformer_blocks=self._network.evoformer_blocks,
            device=self.device,
            precision="bfloat16" if self.bfloat16 else "float32",
        )

    @property
    def evoformer_blocks(self) -> int:
        return self._network.evoformer_blocks

    def load_all_params(self) -> None:
        """Load every available model's parameters now rather than at its first use.

        A serverless worker calls this at start, so no job pays for reading weights from the
        network volume.
        """
        for number in self.available_models:
            self._model_params(number)

    def shape_for(self, msa: Msa, options: PredictOptions | None = None) -> InputShape:
        """The padded (or, without bucketing, exact) input shape ``msa`` runs at."""
        options = options or PredictOptions()
        choose = bucket_shape if self.bucketing else exact_shape
        return choose(msa.query_length, _sizes(msa, options))

    def check_input(self, msa: Msa, options: PredictOptions, *, where: str = "models") -> None:
        """Everything that can be refused before any work: a complex (not supported yet),
        models without parameters, a job too large for the device."""
        if msa.complex is not None:
            raise InputError(
                f"a ColabFold complex A3M ({msa.complex.describe()}); foldserve folds single "
                "chains for now",
                where=f"{msa.source}:1",
                fix="fold one chain's MSA (the query's unpaired block), "
                "or use colabfold_batch for complexes",
            )
        self.check_models(options.models, where=where)
        self.check_fits(msa, options)

    def check_models(self, models: tuple[int, ...], *, where: str = "models") -> None:
        """Refuse models whose parameters are not installed; the message names no path (a
        job's sender is told it too)."""
        unavailable = sorted(set(models) - set(self.available_models))
        if unavailable:
            raise InputError(
                f"model {unavailable[0]} has no parameters installed here",
                where=where,
                fix=f"choose among {', '.join(map(str, self.available_models))}, "
                "or fetch all weights (`foldserve weights fetch`)",
            )

    def check_fits(self, msa: Msa, options: PredictOptions | None = None) -> None:
        """Refuse, before any work, a job whose estimated memory exceeds the device's."""
        shape = self.shape_for(msa, options)
        needed = estimate_bytes(shape, self._param_bytes())
        if self.memory_limit_bytes and needed > self.memory_limit_bytes:
            raise TooLarge(
                f"this job needs about {needed / GIB:.1f} GiB ({msa.query_length} residues, "
                f"{len(msa)} MSA rows) but {self.device} has "
                f"{self.memory_limit_bytes / GIB:.1f} GiB",
                where=msa.source,
                fix=reduced_depth_hint(shape),
            )

    def predict(
        self,
        msa: Msa,
        options: PredictOptions | None = None,
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelCheck | None = None,
        keep_raw: bool = False,
    ) -> Prediction:
        """Run every requested model and seed on ``msa``; return the runs ranked best first.

        With ``options.stop_at_score``, no further model runs once one has reached it
        (ColabFold's rule: easy targets cost one model). ``keep_raw`` keeps every array the
        network returned (``--save-all``).
        """
        options = options or PredictOptions()
        self.check_input(msa, options)
        started = time.perf_counter()
        report = _Reporter(progress, started)
        timings: dict[str, float] = {}

        report(ProgressEvent(stage="features", elapsed=0.0))
        tick = time.perf_counter()
        raw = raw_features(msa)
        shape = self.shape_for(msa, options)
        timings["features"] = _since(tick)

        runs: list[ModelRun] = []
        num_runs = len(options.models) * options.num_seeds
        for seed in range(options.seed, options.seed + options.num_seeds):
            if _reached(runs, options):
                break
            tick = time.perf_counter()
            batch = process_features(
                raw,
                self._network.config,
                seed=seed,
                num_recycles=options.num_recycles,
                sizes=_sizes(msa, options),
                shape=shape,
            )
            timings[f"process_features_pred_{seed}"] = _since(tick)
            for number in options.models:
                if _reached(runs, options):
                    break
                model_name = f"model_{number}_ptm"
                tick = time.perf_counter()
                params = self._model_params(number)
                timings["load_params"] = timings.get("load_params", 0.0) + _since(tick)
                tick = time.perf_counter()
                apply = self._compiled_apply(shape, params, batch, report, model_name)
                timings["compile"] = timings.get("compile", 0.0) + _since(tick)
                run = self._run_model(
                    apply,
                    params,
                    batch,
                    msa.query_length,
                    model_name,
                    seed,
                    options,
                    report.at(run_index=len(runs), num_runs=num_runs),
                    cancel,
                    keep_raw=keep_raw,
                )
                timings[f"predict_{run.name}"] = run.seconds
                runs.append(run)

        ranked = tuple(sorted(runs, key=lambda r: r.score(options.rank_by), reverse=True))
        timings["predict"] = sum(r.seconds for r in runs)
        timings["total"] = _since(started)
        report(ProgressEvent(stage="done", elapsed=timings["total"]))
        length = msa.query_length
        return Prediction(
            msa=msa,
            aatype=np.asarray(raw["aatype"].argmax(-1), dtype=np.int32)[:length],
            residue_index=np.asarray(raw["residue_index"], dtype=np.int32)[:length],
            ranked=ranked,
            options=options,
            shape=shape,
            engine=self.engine,
            timings=timings,
            skipped_runs=num_runs - len(runs),
        )

    def _param_bytes(self) -> int:
        return model_param_file(self.param_dir, 3).stat().st_size

    def _model_params(self, number: int) -> network.Params:
        if number not in self._params:
            full = network.load_params(self.param_dir, number)
            # Models 1 and 2 carry template weights the template-free network does not use.
            self._params[number] = {k: full[k] for k in self._network.param_keys}
        return self._params[number]

    def _compiled_apply(
        self,
        shape: InputShape,
        params: network.Params,
        batch: dict[str, Any],
        report: _Reporter,
        model_name: str,
    ) -> Any:
        if shape not in self._compiled:
            import jax

            report(ProgressEvent(stage="compile", elapsed=report.elapsed(), model=model_name))
            example = {**_recycle_slice(batch, 0), "prev": _zero_prev(shape.length)}
            lowered = self._network.apply.lower(params, jax.random.PRNGKey(0), example)
            self._compiled[shape] = lowered.compile()
            self.compile_count += 1
        return self._compiled[shape]

    def _run_model(
        self,
        apply: Callable[..., Any],
        params: network.Params,
        batch: dict[str, Any],
        length: int,
        model_name: str,
        seed: int,
        options: PredictOptions,
        report: _Reporter,
        cancel: CancelCheck | None,
        *,
        keep_raw: bool,
    ) -> ModelRun:
        import jax

        tick = time.perf_counter()
        padded_length = batch["aatype"].shape[1]
        prev = _zero_prev(padded_length)
        key = jax.random.PRNGKey(seed)
        result: dict[str, Any] = {}
        recycle = 0
        for recycle in range(options.num_recycles + 1):
            if cancel is not None and cancel():
                raise Cancelled(f"{model_name} seed {seed}, before recycle {recycle}")
            key, sub_key = jax.random.split(key)
            output = apply(params, sub_key, {**_recycle_slice(batch, recycle), "prev": prev})
            prev = {k: np.asarray(v, np.float16) for k, v in output.pop("prev").items()}
            result = output
            report(
                ProgressEvent(
                    stage="predict",
                    elapsed=report.elapsed(),
                    model=model_name,
                    seed=seed,
                    recycle=recycle,
                    num_recycles=options.num_recycles,
                    mean_plddt=float(output["mean_plddt"]),
                    ptm=float(output["ptm"]),
                )
            )
            tolerance = options.recycle_early_stop_tolerance
            if recycle > 0 and tolerance is not None and float(output["tol"]) < tolerance:
                break
        structure = result["structure_module"]
        pae = np.asarray(result["predicted_aligned_error"], np.float32)[:length, :length]
        return ModelRun(
            model=model_name,
            seed=seed,
            positions=np.asarray(structure["final_atom_positions"], np.float32)[:length],
            atom_mask=np.asarray(structure["final_atom_mask"], np.float32)[:length],
            plddt=np.asarray(result["plddt"], np.float32)[:length],
            pae=pae,
            max_pae=float(result["max_predicted_aligned_error"]),
            ptm=float(result["ptm"]),
            mean_plddt=float(result["mean_plddt"]),
            recycles=recycle,
            tolerance=float(result["tol"]) if recycle > 0 else None,
            seconds=_since(tick),
            raw=_unpadded(result, padded_length, length) if keep_raw else None,
        )


class _Reporter:
    """Stamps progress events with the run's position and forwards them."""

    def __init__(
        self,
        callback: ProgressCallback | None,
        started: float,
        run_index: int = 0,
        num_runs: int = 0,
    ) -> None:
        self.callback = callback
        self.started = started
        self.run_index = run_index
        self.num_runs = num_runs

    def elapsed(self) -> float:
        return _since(self.started)

    def at(self, *, run_index: int, num_runs: int) -> _Reporter:
        return _Reporter(self.callback, self.started, run_index, num_runs)

    def __call__(self, event: ProgressEvent) -> None:
        if self.callback is not None:
            self.callback(replace(event, run_index=self.run_index, num_runs=self.num_runs))


def _sizes(msa: Msa, options: PredictOptions) -> tuple[int, int]:
    return msa_sizes(len(msa), options.max_msa_clusters, options.max_extra_msa)


def _reached(runs: list[ModelRun], options: PredictOptions) -> bool:
    """Whether a run so far scored at least ``options.stop_at_score``."""
    limit = options.stop_at_score
    return limit is not None and any(run.score_100(options.rank_by) >= limit for run in runs)


def _unpadded(result: dict[str, Any], padded: int, length: int) -> dict[str, Any]:
    """The network's outputs as numpy arrays, residue axes (the leading two) cut to
    ``length``."""
    import jax

    def cut(value: Any) -> Any:
        array = np.asarray(value)
        for axis in range(min(2, array.ndim)):
            if array.shape[axis] == padded:
                array = array.take(np.arange(length), axis=axis)
        return array

    return dict(jax.tree_util.tree_map(cut, result))


def _since(tick: float) -> float:
    return time.perf_counter() - tick


def _recycle_slice(batch: dict[str, Any], recycle: int) -> dict[str, Any]:
    return {k: v[recycle : recycle + 1] for k, v in batch.items()}


def _zero_prev(length: int) -> dict[str, np.ndarray[Any, Any]]:
    return {
        "prev_msa_first_row": np.zeros((length, 256), np.float16),
        "prev_pair": np.zeros((length, length, 128), np.float16),
        "prev_pos": np.zeros((length, 37, 3), np.float16),
    }

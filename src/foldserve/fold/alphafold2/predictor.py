"""``Predictor``: AlphaFold2 kept warm across jobs.

Loading parameters and compiling the network cost far more than a small prediction. A Predictor
pays for them once: each model's parameters are loaded on first use and kept on the device, all
five are swapped into one compiled function (ColabFold's trick), and compiled functions are kept
per input shape. Each job runs at the shape the shape policy (:mod:`.shape_policy`) finds
cheapest on this device: a compiled padded shape, or a new compile of its exact or a finer
padded shape. A persistent compilation cache beside the weights lets a fresh worker process
skip compiles an earlier one made.

The recycle loop is ColabFold's ``RunModel.predict`` (same key splitting, same float16 hand-over
between recycles), written out here so that progress is reported and cancellation honoured at
every recycle boundary.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from foldserve.errors import Cancelled, InputError, TooLarge
from foldserve.fold.alphafold2 import network
from foldserve.fold.alphafold2.compiled_shapes import CompileTarget, ShapeRecord, ShapeRecords
from foldserve.fold.alphafold2.features import (
    FeatureDict,
    InputShape,
)
from foldserve.fold.alphafold2.job_inputs import (
    PreparedJob,
    chain_templates,
    complex_length,
    input_shape,
    multimer_key,
    network_name,
    prepare_job,
    template_names,
)
from foldserve.fold.alphafold2.network import MONOMER, MULTIMER, NetworkKey
from foldserve.fold.alphafold2.shape_policy import (
    Action,
    CostLog,
    DeviceCosts,
    ShapeChoice,
    ShapeRequest,
    choose_shape,
    device_costs,
    exact_choice,
)
from foldserve.fold.alphafold2.shapes import (
    GIB,
    chunk_for,
    estimate_bytes,
    forward_work,
    reduced_depth_hint,
)
from foldserve.fold.engine import PRECISIONS, Precision, check_engine_options
from foldserve.fold.results import (
    CancelCheck,
    EngineInfo,
    EngineName,
    ModelRun,
    Prediction,
    PredictOptions,
    ProgressCallback,
    ProgressEvent,
    RankBy,
    TemplateSource,
    sibling_field,
)
from foldserve.fold.weights import (
    MODEL_NUMBERS,
    fingerprint,
    is_test_weights,
    model_param_file,
    multimer_param_file,
    resolve_param_dir,
)
from foldserve.msa.model import Msa

COMPILE_CACHE_DIRNAME = "jax-cache"
#: Where hhsearch databases of users' template files are kept between jobs.
TEMPLATE_CACHE_DIRNAME = "template-cache"
#: XLA's options for compiling the float32 network on a CPU, where every job of a new length
#: compiles: LLVM's cheaper pipeline. Measured with bench/cpu_forward.py (48 blocks, one run):
#: compiles 2 to 3 s shorter at 73 and 141 residues (14.1 to 12.5 s, 15.3 to 12.4 s), passes no
#: slower (8.78 to 8.04 s, 28.80 to 24.78 s) and the same pLDDT. In bfloat16, which a CPU
#: emulates, the same options make passes 37% slower (104 residues: 7.13 to 9.76 s) and
#: compiles no shorter, so bfloat16 and GPU compiles keep XLA's defaults.
CPU_COMPILER_OPTIONS: dict[str, int | bool] = {
    "xla_backend_optimization_level": 1,
    "xla_llvm_disable_expensive_passes": True,
}


def compiler_options(*, on_cpu: bool, bfloat16: bool) -> dict[str, int | bool] | None:
    """XLA's options for foldserve's compiles: :data:`CPU_COMPILER_OPTIONS` for float32 on a
    CPU, less any that ``XLA_FLAGS`` sets (a compile option would silently override the user's
    flag); None (XLA's defaults) otherwise."""
    if not on_cpu or bfloat16:
        return None
    flags = os.environ.get("XLA_FLAGS", "")
    return {name: value for name, value in CPU_COMPILER_OPTIONS.items() if name not in flags}


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
    """AlphaFold2 from an MSA, warm across calls to :meth:`predict`: the monomer pTM models
    for one chain, the multimer v3 models for a complex.

    The ``alphafold2`` :class:`~foldserve.fold.engine.Engine`. With ``bucketing`` (the
    default) each monomer job runs at the shape the shape policy chooses from this device's
    costs, measured as jobs run; ``shape_costs`` pins those costs instead (the same choices on
    every worker of a fleet, or :data:`~.shape_policy.COARSE_LADDER`); without, every job runs
    at its exact shape, as ColabFold runs it. A complex runs at the multimer's ladder shape.
    """

    name: EngineName = "alphafold2"

    def __init__(
        self,
        param_dir: Path | str | None = None,
        *,
        precision: Precision = "auto",
        bucketing: bool = True,
        shape_costs: DeviceCosts | None = None,
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
        self.available_multimer_models = tuple(
            n for n in MODEL_NUMBERS if multimer_param_file(self.param_dir, n).is_file()
        )
        self.test_weights = is_test_weights(self.param_dir)
        cache_dir = self.param_dir / COMPILE_CACHE_DIRNAME
        if compile_cache:
            enable_compile_cache(cache_dir)
        self._records = ShapeRecords(cache_dir) if compile_cache else None
        self.on_cpu = jax.devices()[0].platform == "cpu"
        # bfloat16 halves memory on GPUs; CPUs have no fast bfloat16 matrix units.
        self.bfloat16 = precision == "bfloat16" or (precision == "auto" and not self.on_cpu)
        self.bucketing = bucketing
        self.shape_costs = shape_costs
        #: The shape policy's measurements, per network (``alphafold2_ptm``, …).
        self._measured: dict[str, CostLog] = {}
        self.device, device_bytes = device_description()
        self.memory_limit_bytes = memory_limit_bytes or device_bytes
        self._full_params: dict[tuple[str, int], network.Params] = {}
        self._networks: dict[NetworkKey, network.Network] = {}
        self._params: dict[tuple[NetworkKey, int], network.Params] = {}
        self._compiled: dict[tuple[NetworkKey, InputShape], Any] = {}
        #: Compiles not yet recorded beside the cache: their seconds, until a pass is measured.
        self._unrecorded: dict[tuple[NetworkKey, InputShape], float] = {}
        self.compile_count = 0
        monomer = self._network(NetworkKey(MONOMER))
        self.engine = EngineInfo(
            params_dir=str(self.param_dir),
            weights_fingerprint=fingerprint(self.param_dir),
            test_weights=self.test_weights,
            evoformer_blocks=monomer.evoformer_blocks,
            device=self.device,
            precision="bfloat16" if self.bfloat16 else "float32",
        )

    @property
    def evoformer_blocks(self) -> int:
        return self.engine.evoformer_blocks

    def load_all_params(self) -> None:
        """Load every available model's parameters now rather than at its first use.

        A serverless worker calls this at start, so no job pays for reading weights from the
        network volume.
        """
        for number in self.available_models:
            self._loaded(MONOMER, number)
        for number in self.available_multimer_models:
            self._loaded(MULTIMER, number)

    def shape_for(self, msa: Msa, options: PredictOptions | None = None) -> InputShape:
        """The input shape ``msa`` runs at next (:meth:`shape_choice`)."""
        return self.shape_choice(msa, options).shape

    def shape_choice(self, msa: Msa, options: PredictOptions | None = None) -> ShapeChoice:
        """The shape ``msa`` would run at if predicted now, and why: :meth:`predict` makes
        the same choice for the models without templates."""
        options = options or PredictOptions()
        exact = input_shape(msa, options, bucketing=False)
        if network_name(msa, options) == MULTIMER:
            padded = input_shape(msa, options, bucketing=self.bucketing)
            return self._multimer_choice(multimer_key(options), exact, padded)
        passes = len(options.models) * options.num_seeds * (options.num_recycles + 1)
        return self._choose(NetworkKey(MONOMER), exact, passes)

    def check_input(self, msa: Msa, options: PredictOptions, *, where: str = "models") -> None:
        """Everything that can be refused before any work: a network without parameters,
        models without parameters, a job too large for the device."""
        check_engine_options("alphafold2", options, where=where)
        runs_on = network_name(msa, options)
        if msa.complex is not None and runs_on == MONOMER:
            raise InputError(
                f"a {msa.complex.describe()} with the monomer pTM models",
                where=sibling_field(where, "model_type"),
                fix="use --model-type multimer (or auto) for a complex, or fold one chain's MSA",
            )
        if runs_on == MULTIMER and not self.available_multimer_models:
            raise InputError(
                "the AlphaFold2-multimer parameters are not installed here",
                where=msa.source if msa.complex is not None else sibling_field(where, "model_type"),
                fix="run `foldserve weights fetch` (DeepMind's archive holds them), or "
                "`foldserve weights make-test --multimer` for random test weights",
            )
        self.check_models(options.models, where=where, network=runs_on)
        self.check_fits(msa, options)

    def check_models(
        self, models: tuple[int, ...], *, where: str = "models", network: str = MONOMER
    ) -> None:
        """Refuse models whose parameters are not installed; the message names no path (a
        job's sender is told it too)."""
        available = self.available_multimer_models if network == MULTIMER else self.available_models
        unavailable = sorted(set(models) - set(available))
        if unavailable:
            raise InputError(
                f"{network} model {unavailable[0]} has no parameters installed here",
                where=where,
                fix=f"choose among {', '.join(map(str, available))}, "
                "or fetch all weights (`foldserve weights fetch`)",
            )

    def check_fits(self, msa: Msa, options: PredictOptions | None = None) -> None:
        """Refuse, before any work, a job whose estimated memory exceeds the device's."""
        options = options or PredictOptions()
        shape = self.shape_for(msa, options)
        needed = estimate_bytes(shape, self._param_bytes())
        if self.memory_limit_bytes and needed > self.memory_limit_bytes:
            raise TooLarge(
                f"this job needs about {needed / GIB:.1f} GiB ({complex_length(msa)} residues, "
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
        templates: TemplateSource | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelCheck | None = None,
        keep_raw: bool = False,
    ) -> Prediction:
        """Run every requested model and seed on ``msa``; return the runs ranked best first.

        ``templates`` are aligned to each chain and read by the models that take them
        (monomer models 1 and 2, every multimer model). With ``options.stop_at_score``, no
        further model runs once one has reached it (ColabFold's rule: easy targets cost one
        model). ``keep_raw`` keeps every array the network returned (``--save-all``).
        """
        options = options or PredictOptions()
        self.check_input(msa, options)
        started = time.perf_counter()
        report = _Reporter(progress, started)
        timings: dict[str, float] = {}

        template_set = None
        if templates is not None and templates.given:
            report(ProgressEvent(stage="templates", elapsed=0.0))
            tick = time.perf_counter()
            template_set = chain_templates(
                msa, options, templates, cache_dir=self.param_dir / TEMPLATE_CACHE_DIRNAME
            )
            timings["templates"] = _since(tick)
        report(ProgressEvent(stage="features", elapsed=report.elapsed()))
        tick = time.perf_counter()
        job = prepare_job(
            msa,
            options,
            template_set,
            # A monomer's features are padded per seed, to the shape chosen below.
            bucketing=self.bucketing and network_name(msa, options) == MULTIMER,
            config_of=lambda key: self._network(key).config,
        )
        timings["features"] = _since(tick)
        choices = self._choose_shapes(job, options)
        job = replace(job, shapes={key: choice.shape for key, choice in choices.items()})

        runs: list[ModelRun] = []
        num_runs = len(options.models) * options.num_seeds
        rank_by = options.ranking_for(job.is_complex)
        for seed in range(options.seed, options.seed + options.num_seeds):
            if _reached(runs, options, rank_by):
                break
            batches: dict[NetworkKey, FeatureDict] = {}
            for number in options.models:
                if _reached(runs, options, rank_by):
                    break
                key = job.key_for(number)
                if key not in batches:
                    tick = time.perf_counter()
                    batches[key] = job.batch_for(key, seed, options)
                    name = f"process_features_pred_{seed}"
                    timings[name] = timings.get(name, 0.0) + _since(tick)
                model_name = job.model_name(number)
                tick = time.perf_counter()
                params = self._model_params(key, number)
                timings["load_params"] = timings.get("load_params", 0.0) + _since(tick)
                tick = time.perf_counter()
                apply = self._compiled_apply(
                    job, key, params, batches[key], report, model_name, choices[key]
                )
                timings["compile"] = timings.get("compile", 0.0) + _since(tick)
                run = self._run_model(
                    apply,
                    params,
                    job,
                    key,
                    batches[key],
                    model_name,
                    seed,
                    options,
                    report.at(run_index=len(runs), num_runs=num_runs),
                    cancel,
                    keep_raw=keep_raw,
                )
                timings[f"predict_{run.name}"] = run.seconds
                self._measure_passes(key, job.shapes[key], run)
                runs.append(run)

        ranked = tuple(sorted(runs, key=lambda r: r.score(rank_by), reverse=True))
        timings["predict"] = sum(r.seconds for r in runs)
        timings["total"] = _since(started)
        report(ProgressEvent(stage="done", elapsed=timings["total"]))
        main_key = job.key_for(3)
        return Prediction(
            msa=msa,
            aatype=job.aatype,
            residue_index=job.residue_index,
            ranked=ranked,
            options=replace(options, templates=template_set is not None),
            shape=job.shapes[main_key],
            engine=replace(
                self.engine,
                network=main_key.network,
                evoformer_blocks=self._networks[main_key].evoformer_blocks,
            ),
            timings=timings,
            skipped_runs=num_runs - len(runs),
            chains=job.chains,
            rank_by=rank_by,
            templates=template_names(job.chains, template_set),
            template_source=templates if template_set is not None else None,
            warnings=template_set.warnings if template_set is not None else (),
            shape_choice=choices[main_key],
        )

    def _param_bytes(self) -> int:
        return model_param_file(self.param_dir, 3).stat().st_size

    def _target(self, key: NetworkKey) -> CompileTarget:
        import jax

        return CompileTarget(
            network=key,
            evoformer_blocks=self._network(key).evoformer_blocks,
            precision=self.engine.precision,
            device=self.device,
            jax_version=jax.__version__,
        )

    def _choose_shapes(
        self, job: PreparedJob, options: PredictOptions
    ) -> dict[NetworkKey, ShapeChoice]:
        """Each network's shape for ``job``, whose monomer shapes are still exact."""
        if job.multimer_batch is not None:
            return {
                key: self._multimer_choice(key, replace(shape, length=len(job.aatype)), shape)
                for key, shape in job.shapes.items()
            }
        per_model = options.num_seeds * (options.num_recycles + 1)
        return {
            key: self._choose(
                key, exact, per_model * sum(job.key_for(n) == key for n in options.models)
            )
            for key, exact in job.shapes.items()
        }

    def _choose(self, key: NetworkKey, exact: InputShape, passes: int) -> ShapeChoice:
        """The shape policy's choice for ``passes`` forward passes of network ``key``."""
        target = self._target(key)
        records = self._records.read(target) if self._records is not None else ()
        request = ShapeRequest(
            exact=exact,
            passes=passes,
            evoformer_blocks=target.evoformer_blocks,
            compiled=frozenset(shape for k, shape in self._compiled if k == key),
            cached=frozenset(r.shape for r in records),
            memory_limit_bytes=self.memory_limit_bytes,
            param_bytes=self._param_bytes(),
        )
        if not self.bucketing:
            return self._chunked(exact_choice(request, "exact shapes: bucketing is off"))
        recorded = CostLog(
            compiles=[r.compile_seconds for r in records],
            passes=[
                (forward_work(r.shape, target.evoformer_blocks), r.pass_seconds) for r in records
            ],
        )
        costs = self.shape_costs or device_costs(self._log(key), recorded)
        return self._chunked(choose_shape(request, costs))

    def _multimer_choice(
        self, key: NetworkKey, exact: InputShape, shape: InputShape
    ) -> ShapeChoice:
        """A complex's shape: the multimer's ladder with bucketing, else its exact shape."""
        action: Action = "reuse" if (key, shape) in self._compiled else "compile"
        if self.bucketing:
            reason = "a complex runs at the multimer ladder's shape"
        else:
            reason = "exact shapes: bucketing is off"
        return self._chunked(ShapeChoice(exact, shape, action, reason))

    def _chunked(self, choice: ShapeChoice) -> ShapeChoice:
        """``choice`` with AlphaFold's chunking for its shape on this device."""
        return replace(choice, chunk=chunk_for(choice.shape, on_cpu=self.on_cpu))

    def _log(self, key: NetworkKey) -> CostLog:
        """The shape policy's measurements on ``key``'s network."""
        return self._measured.setdefault(key.network, CostLog())

    def _measure_passes(self, key: NetworkKey, shape: InputShape, run: ModelRun) -> None:
        """Keep ``run``'s forward time for the shape policy, and record a shape compiled
        for it beside the compilation cache now that its pass time is known."""
        passes = run.recycles + 1
        blocks = self._networks[key].evoformer_blocks
        self._log(key).passes.append((passes * forward_work(shape, blocks), run.seconds))
        compile_seconds = self._unrecorded.pop((key, shape), None)
        if compile_seconds is not None and self._records is not None:
            self._records.add(
                ShapeRecord(self._target(key), shape, compile_seconds, run.seconds / passes)
            )

    def _loaded(self, network_name: str, number: int) -> network.Params:
        """One model's full parameter set, read once."""
        if (network_name, number) not in self._full_params:
            self._full_params[network_name, number] = network.load_params(
                self.param_dir, network_name, number
            )
        return self._full_params[network_name, number]

    def _network(self, key: NetworkKey) -> network.Network:
        if key not in self._networks:
            reference = self._loaded(key.network, key.reference_model())
            self._networks[key] = network.build_network(
                self.param_dir, reference, key, bfloat16=self.bfloat16
            )
        return self._networks[key]

    def _model_params(self, key: NetworkKey, number: int) -> network.Params:
        """Model ``number``'s parameters as network ``key`` takes them: models 1 and 2 carry
        template weights a template-free network does not use."""
        if (key, number) not in self._params:
            full = self._loaded(key.network, number)
            keys = self._network(key).param_keys
            self._params[key, number] = {k: full[k] for k in keys}
        return self._params[key, number]

    def _compiled_apply(
        self,
        job: PreparedJob,
        key: NetworkKey,
        params: network.Params,
        batch: FeatureDict,
        report: _Reporter,
        model_name: str,
        choice: ShapeChoice,
    ) -> Any:
        """The function compiled for ``key`` at the job's shape: kept, loaded from the
        persistent cache or compiled, the time each takes measured for the shape policy."""
        shape = job.shapes[key]
        slot = (key, shape)
        if slot not in self._compiled:
            import jax

            report(ProgressEvent(stage="compile", elapsed=report.elapsed(), model=model_name))
            tick = time.perf_counter()
            example = {**job.recycle_input(batch, 0), "prev": _zero_prev(shape.length)}
            apply = self._network(key).apply(choice.chunk)
            lowered = apply.lower(params, jax.random.PRNGKey(0), example)
            options = compiler_options(on_cpu=self.on_cpu, bfloat16=self.bfloat16)
            self._compiled[slot] = lowered.compile(options)
            self.compile_count += 1
            seconds = _since(tick)
            if choice.action == "load":
                self._log(key).loads.append(seconds)
            else:
                self._log(key).compiles.append(seconds)
                self._unrecorded[slot] = seconds
        return self._compiled[slot]

    def _run_model(
        self,
        apply: Callable[..., Any],
        params: network.Params,
        job: PreparedJob,
        key: NetworkKey,
        batch: FeatureDict,
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
        length = len(job.aatype)
        padded = job.shapes[key].length
        prev = _zero_prev(padded)
        rng = jax.random.PRNGKey(seed)
        result: dict[str, Any] = {}
        recycle = 0
        for recycle in range(options.num_recycles + 1):
            if cancel is not None and cancel():
                raise Cancelled(f"{model_name} seed {seed}, before recycle {recycle}")
            rng, sub_key = jax.random.split(rng)
            output = apply(params, sub_key, {**job.recycle_input(batch, recycle), "prev": prev})
            prev = {k: np.asarray(v, np.float16) for k, v in output.pop("prev").items()}
            result = output
            iptm = _iptm(output, job)
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
                    iptm=iptm,
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
            raw=_unpadded(result, padded, length) if keep_raw else None,
            iptm=_iptm(result, job),
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


def _reached(runs: list[ModelRun], options: PredictOptions, rank_by: RankBy) -> bool:
    """Whether a run so far scored at least ``options.stop_at_score``."""
    limit = options.stop_at_score
    return limit is not None and any(run.score_100(rank_by) >= limit for run in runs)


def _iptm(output: dict[str, Any], job: PreparedJob) -> float | None:
    """The multimer's interface pTM; None for one chain, where it means nothing."""
    if job.multimer_batch is None or not job.is_complex or "iptm" not in output:
        return None
    return float(output["iptm"])


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


def _zero_prev(length: int) -> dict[str, np.ndarray[Any, Any]]:
    return {
        "prev_msa_first_row": np.zeros((length, 256), np.float16),
        "prev_pair": np.zeros((length, length, 128), np.float16),
        "prev_pos": np.zeros((length, 37, 3), np.float16),
    }

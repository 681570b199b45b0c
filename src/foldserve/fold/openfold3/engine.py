"""OpenFold3 from the user's MSA, warm across jobs: the ``openfold3`` package's model and data
pipeline driven in process, not one ``run_openfold`` process per job.

Per job, the MSA is written where OpenFold3's data pipeline reads it (:mod:`.query`), the
pipeline's own :class:`InferenceDataset` builds the features, the loaded model runs one
forward per seed (recycles and diffusion samples as the job asks), and the all-atom result is
turned into foldserve's engine-neutral :class:`~foldserve.fold.results.Prediction` (atom37
coordinates, per-residue pLDDT averaged over each residue's atoms, token PAE, pTM, ipTM and
OpenFold3's own sample ranking score), so outputs, compare and report are shared with
AlphaFold2. OpenFold3's MSA server is never used: the MSA is the user's, as given.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from foldserve.errors import Cancelled, InputError, WeightsError
from foldserve.fold.alphafold2.features import InputShape
from foldserve.fold.engine import Precision, check_engine_options
from foldserve.fold.openfold3.atoms import AllAtomSample, to_atom37
from foldserve.fold.openfold3.layout import (
    CPU_MODEL_UPDATE,
    checkpoint_dir,
    checkpoint_fingerprint,
    installed_checkpoint,
    is_test_checkpoint,
    test_model_update,
)
from foldserve.fold.openfold3.query import OpenFold3Query, write_query
from foldserve.fold.results import (
    CancelCheck,
    EngineInfo,
    EngineName,
    ModelRun,
    Prediction,
    PredictOptions,
    ProgressCallback,
    ProgressEvent,
    TemplateSource,
    sibling_field,
)
from foldserve.fold.weights import resolve_param_dir
from foldserve.msa.model import Msa

if TYPE_CHECKING:
    import torch

#: OpenFold3's PAE bins run 0-32 Å in 64 bins: the largest value it can report is the last
#: bin's centre, as AlphaFold's ``max_predicted_aligned_error``.
MAX_PAE = 31.75
INSTALL_FIX = "install the extra: pip install 'foldserve[openfold3]'"
WEIGHTS_FIX = (
    "run `foldserve weights fetch --engine openfold3`, or `foldserve weights make-test "
    "--engine openfold3` for random test weights, or point --params-dir / PARAM_DIR at a copy"
)


@contextlib.contextmanager
def quiet_openfold3() -> Iterator[None]:
    """Drop the warnings OpenFold3 raises on every CPU run (Triton absent, CUDA autocast
    disabled): facts of the device, which foldserve reports itself. OpenFold3 installs
    ``filterwarnings("once")`` at import, overriding any filter, so the warnings are recorded
    and dropped here rather than filtered."""
    with warnings.catch_warnings(record=True):
        yield


def load_openfold3() -> Any:
    """OpenFold3's project entry (model class and configuration); one line when the extra is
    not installed."""
    try:
        with quiet_openfold3():
            from openfold3.projects.of3_all_atom.project_entry import OF3ProjectEntry
    except ImportError as exc:
        raise InputError(
            f"OpenFold3 is not installed here ({exc.name} is missing)",
            where="engine",
            fix=INSTALL_FIX,
        ) from None
    return OF3ProjectEntry()


def model_config(update: dict[str, Any], on_cuda: bool) -> Any:
    """OpenFold3's inference configuration (its ``predict`` preset) with ``update`` applied
    (test weights' configuration), Triton kernels only where Triton runs."""
    from openfold3.core.config.config_utils import deep_update
    from openfold3.projects.of3_all_atom.project_entry import ModelUpdate

    custom: dict[str, Any] = copy.deepcopy(update)
    if not (on_cuda and _triton_available()):
        deep_update(custom, copy.deepcopy(CPU_MODEL_UPDATE))
    return load_openfold3().get_model_config_with_update(
        ModelUpdate(presets=["predict"], custom=custom)
    )


def _triton_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("triton") is not None


class OpenFold3Engine:
    """The ``openfold3`` :class:`~foldserve.fold.engine.Engine`: one model, loaded once."""

    name: EngineName = "openfold3"

    def __init__(self, param_dir: Path | str | None = None, *, precision: Precision = "auto"):
        entry = load_openfold3()
        import torch

        self.param_dir = resolve_param_dir(Path(param_dir) if param_dir is not None else None)
        checkpoint = installed_checkpoint(self.param_dir)
        if checkpoint is None:
            raise InputError(
                f"no OpenFold3 checkpoint in {checkpoint_dir(self.param_dir)}",
                where="params",
                fix=WEIGHTS_FIX,
            )
        self.test_weights = is_test_checkpoint(self.param_dir)
        on_cuda = torch.cuda.is_available()
        self.device = torch.device("cuda" if on_cuda else "cpu")
        # OpenFold3 runs float32 by default ("32-true"); bfloat16 autocast on request, on a GPU.
        self.bfloat16 = precision == "bfloat16" and on_cuda
        update = test_model_update(self.param_dir) if self.test_weights else {}
        self.config = model_config(update, on_cuda)
        _quiet_openfold3_logs()
        self._module = _load_module(entry, self.config, checkpoint, self.device)
        self._ccd: Any = None
        self.engine = EngineInfo(
            params_dir=str(self.param_dir),
            weights_fingerprint=checkpoint_fingerprint(self.param_dir),
            test_weights=self.test_weights,
            evoformer_blocks=int(self.config.architecture.pairformer.no_blocks),
            device=torch.cuda.get_device_name() if on_cuda else "cpu",
            precision="bfloat16" if self.bfloat16 else "float32",
            network="openfold3",
            name="openfold3",
        )
        self.load_count = 1

    def load_all_params(self) -> None:
        """The checkpoint is on the device from construction on: nothing more to load."""

    def check_input(self, msa: Msa, options: PredictOptions, *, where: str = "models") -> None:
        """OpenFold3 takes every MSA foldserve reads; only AlphaFold2's own options are refused."""
        check_engine_options("openfold3", options, where=where)
        if options.rank_by not in ("auto", "plddt", "ptm", "iptm", "engine"):
            raise InputError(
                f"ranking by {options.rank_by} is AlphaFold2-multimer's",
                where=sibling_field(where, "rank_by"),
                fix="use auto (OpenFold3's own sample ranking score), plddt, ptm or iptm",
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
        """One forward per seed, each giving ``num_diffusion_samples`` structures; ranked by
        OpenFold3's sample ranking score unless ``options.rank_by`` says otherwise."""
        options = options or PredictOptions()
        self.check_input(msa, options)
        if templates is not None and templates.given:
            raise InputError(
                "templates are not passed to OpenFold3 by foldserve yet",
                where="templates",
                fix="leave templates out for openfold3, or use --engine alphafold2",
            )
        started = time.perf_counter()

        def report(event: ProgressEvent) -> None:
            if progress is not None:
                progress(event)

        report(ProgressEvent(stage="features", elapsed=0.0))
        samples = options.num_diffusion_samples or int(
            self.config.architecture.shared.diffusion.no_full_rollout_samples
        )
        seeds = list(range(options.seed, options.seed + options.num_seeds))
        timings: dict[str, float] = {}
        runs: list[ModelRun] = []
        with tempfile.TemporaryDirectory(prefix="foldserve-of3-") as work:
            tick = time.perf_counter()
            query = write_query(msa, Path(work))
            with quiet_openfold3():
                dataset = self._dataset(query, seeds)
            timings["features"] = time.perf_counter() - tick
            msa_rows = 0
            for index, seed in enumerate(seeds):
                tick = time.perf_counter()
                # The features hold random choices too (reference conformers): one seed
                # fixes the whole job, so a seed gives the same structure every time.
                self._module.reseed(seed)
                with quiet_openfold3():
                    features = dataset[index]
                timings["features"] += time.perf_counter() - tick
                if not features.get("valid_sample", True):
                    raise InputError(
                        "OpenFold3's data pipeline could not build features for this input",
                        where=msa.source,
                        fix="check the MSA's query row; the worker log has OpenFold3's reason",
                    )
                msa_rows = int(features["msa"].shape[0])
                tick = time.perf_counter()
                batch, outputs = self._forward(
                    features, seed, samples, options, report, cancel, index, len(seeds)
                )
                seconds = time.perf_counter() - tick
                timings[f"predict_seed_{seed}"] = seconds
                for sample in _samples(batch, outputs, query, samples):
                    runs.append(
                        _model_run(
                            sample, seed, options.num_recycles, seconds / samples, query, keep_raw
                        )
                    )
        rank_by = "engine" if options.rank_by == "auto" else options.rank_by
        ranked = tuple(sorted(runs, key=lambda r: r.score(rank_by), reverse=True))
        timings["predict"] = sum(v for k, v in timings.items() if k.startswith("predict_seed"))
        timings["compile"] = 0.0
        timings["total"] = time.perf_counter() - started
        report(ProgressEvent(stage="done", elapsed=timings["total"]))
        return Prediction(
            msa=msa,
            aatype=query.aatype,
            residue_index=query.residue_index,
            ranked=ranked,
            options=replace(options, num_diffusion_samples=samples),
            shape=InputShape(length=query.length, clusters=msa_rows, extra=0),
            engine=self.engine,
            timings=timings,
            chains=query.chains if len(query.chains) > 1 else (),
            rank_by=rank_by,
        )

    def _dataset(self, query: OpenFold3Query, seeds: list[int]) -> Any:
        """OpenFold3's own inference dataset for this one query (features per seed); the
        chemical component dictionary it reads is kept across jobs."""
        from openfold3.core.data.framework.single_datasets.inference import InferenceDataset
        from openfold3.core.data.pipelines.preprocessing.template import (
            TemplatePreprocessorSettings,
        )
        from openfold3.projects.of3_all_atom.config.dataset_config_components import (
            MSASettings,
        )
        from openfold3.projects.of3_all_atom.config.dataset_configs import InferenceJobConfig
        from openfold3.projects.of3_all_atom.config.inference_query_format import (
            InferenceQuerySet,
        )

        job = InferenceJobConfig(
            query_set=InferenceQuerySet(queries={query.name: query.query}),
            seeds=seeds,
            # Every row of the user's MSA, as run_openfold's inference settings give it
            # (InferenceJobConfig's own default subsamples rows at random, as in training).
            msa=MSASettings(subsample_main=False),
            template_preprocessor_settings=TemplatePreprocessorSettings(),
        )
        dataset = InferenceDataset(job)
        # InferenceDataset sorts (query, seed) pairs; one query keeps seeds in order.
        if self._ccd is None:
            self._ccd = dataset.ccd
        dataset.ccd = self._ccd
        return dataset

    def _forward(
        self,
        features: dict[str, Any],
        seed: int,
        samples: int,
        options: PredictOptions,
        report: ProgressCallback,
        cancel: CancelCheck | None,
        run_index: int,
        num_runs: int,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The model on one seed's features: recycles and samples as asked, progress per
        recycle, cancellation honoured before each pass through the trunk."""
        import torch
        from openfold3.core.data.framework.data_module import openfold_batch_collator
        from openfold3.core.utils.tensor_utils import tensor_tree_map

        module = self._module
        shared = module.model.shared
        shared.num_recycles = options.num_recycles
        shared.diffusion.no_full_rollout_samples = samples
        started = time.perf_counter()
        cycle = [0]

        def before_cycle(*_: Any) -> None:
            if cancel is not None and cancel():
                raise Cancelled()
            report(
                ProgressEvent(
                    stage="predict",
                    elapsed=time.perf_counter() - started,
                    model="openfold3",
                    seed=seed,
                    recycle=cycle[0],
                    num_recycles=options.num_recycles,
                    run_index=run_index,
                    num_runs=num_runs,
                )
            )
            cycle[0] += 1

        batch = openfold_batch_collator([features])
        if self.device.type != "cpu":
            batch = tensor_tree_map(lambda t: t.to(self.device), batch, strict_type=False)
        hook = module.model.pairformer_stack.register_forward_pre_hook(before_cycle)
        try:
            module.reseed(seed)
            with (
                quiet_openfold3(),
                torch.no_grad(),
                torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bfloat16),
            ):
                batch, outputs = module.model(batch)
                outputs["confidence_scores"] = module._compute_confidence_scores(batch, outputs)
        finally:
            hook.remove()
        return batch, outputs


def _samples(
    batch: dict[str, Any], outputs: dict[str, Any], query: OpenFold3Query, samples: int
) -> list[AllAtomSample]:
    """Each diffusion sample's atoms and confidences, as numpy."""
    scores = outputs["confidence_scores"]

    def take(name: str, index: int) -> np.ndarray[Any, Any]:
        return np.asarray(scores[name][0, index].detach().float().cpu().numpy())

    positions = outputs["atom_positions_predicted"][0].detach().float().cpu().numpy()
    return [
        AllAtomSample(
            index=index,
            atom_array=batch["atom_array"][0],
            positions=positions[index],
            atom_plddt=take("plddt", index),
            pae=take("pae", index),
            ptm=float(take("ptm", index)),
            iptm=float(take("iptm", index)),
            ranking_score=float(take("sample_ranking_score", index)),
        )
        for index in range(samples)
    ]


def _model_run(
    sample: AllAtomSample,
    seed: int,
    recycles: int,
    seconds: float,
    query: OpenFold3Query,
    keep_raw: bool,
) -> ModelRun:
    positions, mask, plddt = to_atom37(sample, query)
    return ModelRun(
        model=f"openfold3_sample_{sample.index + 1}",
        seed=seed,
        positions=positions,
        atom_mask=mask,
        plddt=plddt,
        pae=sample.pae.astype(np.float32),
        max_pae=MAX_PAE,
        ptm=sample.ptm,
        mean_plddt=float(plddt.mean()),
        recycles=recycles,
        tolerance=None,
        seconds=seconds,
        raw={"atom_plddt": sample.atom_plddt, "atom_positions": sample.positions}
        if keep_raw
        else None,
        iptm=sample.iptm if len(query.chains) > 1 else None,
        engine_score=sample.ranking_score,
    )


def _load_module(entry: Any, config: Any, checkpoint: Path, device: torch.device) -> Any:
    """The model with the checkpoint's weights (EMA weights, as OpenFold3's inference runner
    loads them), in eval mode on ``device``; a checkpoint that does not fit is one line."""
    from openfold3.core.utils.checkpoint_loading_utils import (
        get_state_dict_from_checkpoint,
        load_checkpoint,
    )
    from openfold3.entry_points.experiment_runner import skip_random_init

    with skip_random_init():
        module = entry.runner(config)
    try:
        state_dict, _ = get_state_dict_from_checkpoint(
            load_checkpoint(checkpoint), init_from_ema_weights=True
        )
    except (OSError, RuntimeError, KeyError, EOFError) as exc:
        raise WeightsError(
            f"cannot read the OpenFold3 checkpoint ({exc})", where=str(checkpoint), fix=WEIGHTS_FIX
        ) from exc
    missing, unexpected = module.load_state_dict(state_dict, strict=False)
    missing = [key for key in missing if key != "model.version_tensor"]
    if missing or unexpected:
        raise WeightsError(
            f"the checkpoint does not fit OpenFold3's model: {len(missing)} missing and "
            f"{len(unexpected)} unexpected parameters (e.g. {(missing or unexpected)[0]})",
            where=str(checkpoint),
            fix="fetch the checkpoint made for this openfold3 version "
            "(`foldserve weights fetch --engine openfold3`)",
        )
    return module.eval().to(device)


def _quiet_openfold3_logs() -> None:
    """OpenFold3 logs every featurisation step at INFO; foldserve reports progress itself."""
    for name in ("openfold3", "pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)

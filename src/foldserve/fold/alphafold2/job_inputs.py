"""What every model run of one prediction shares: the networks it runs on, their input shapes
and the features, built once per job (the predictor runs them).

A monomer's MSA is sampled per seed before the network; with templates, monomer models 1 and 2
run on the template network (ColabFold's split: models 3 to 5 were trained without them). A
complex's features are merged by ColabFold's own functions (:mod:`.multimer_features`) and the
multimer samples its MSA inside the network, so one padded batch serves every run.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from foldserve.errors import InputError
from foldserve.fold.alphafold2 import multimer_features, network
from foldserve.fold.alphafold2.features import (
    FeatureDict,
    InputShape,
    msa_sizes,
    process_features,
    raw_features,
)
from foldserve.fold.alphafold2.network import MONOMER, MULTIMER, NetworkKey
from foldserve.fold.alphafold2.shapes import bucket_shape, exact_shape, multimer_shape
from foldserve.fold.complex_msa import split_complex
from foldserve.fold.results import (
    NETWORK_NAMES,
    ChainInfo,
    PredictOptions,
    TemplateSource,
)
from foldserve.fold.weights import MODEL_NUMBERS
from foldserve.msa.model import Msa
from foldserve.msa.writing import write_a3m

if TYPE_CHECKING:
    from foldserve.fold.alphafold2.templates import TemplateSet

#: Templates AlphaFold reads per chain.
MAX_TEMPLATES = 4


def network_name(msa: Msa, options: PredictOptions) -> str:
    """The network ``msa`` runs on: ``alphafold2_ptm`` or ``alphafold2_multimer_v3``."""
    return NETWORK_NAMES[options.network_for(msa.complex is not None)]


def input_shape(msa: Msa, options: PredictOptions, *, bucketing: bool) -> InputShape:
    """The padded (or, without bucketing, exact) input shape ``msa`` runs at, known before
    its features are built (for the memory check and progress)."""
    if network_name(msa, options) == MULTIMER:
        key = multimer_key(options)
        # The merged MSA is at most every row plus the gap rows of the other chains.
        rows = len(msa) * len(_copies(msa))
        return multimer_shape(
            complex_length(msa), rows, key.num_msa, key.num_extra_msa, bucketing=bucketing
        )
    choose = bucket_shape if bucketing else exact_shape
    return choose(msa.query_length, _sizes(msa, options))


@dataclass(frozen=True)
class PreparedJob:
    """What every model run of one prediction shares: the networks, shapes and features.

    A monomer's MSA is sampled per seed before the network (``batch_for`` processes ``raw``
    and the batch holds one slice per recycle), for each network its models use; the multimer
    samples inside the network, so its one padded ``multimer_batch`` serves every run.
    """

    #: The network each model number runs on.
    keys: dict[int, NetworkKey]
    shapes: dict[NetworkKey, InputShape]
    chains: tuple[ChainInfo, ...]
    aatype: npt.NDArray[np.int32]
    residue_index: npt.NDArray[np.int32]
    raw: FeatureDict | None = None
    sizes: dict[NetworkKey, tuple[int, int]] = field(default_factory=dict)
    configs: dict[NetworkKey, Any] = field(default_factory=dict)
    multimer_batch: FeatureDict | None = None

    @property
    def is_complex(self) -> bool:
        return len(self.chains) > 1

    def key_for(self, number: int) -> NetworkKey:
        return self.keys[number]

    def model_name(self, number: int) -> str:
        """DeepMind's name: ``model_1_ptm``, ``model_1_multimer_v3``."""
        if self.key_for(number).multimer:
            return f"model_{number}_multimer_v3"
        return f"model_{number}_ptm"

    def batch_for(self, key: NetworkKey, seed: int, options: PredictOptions) -> FeatureDict:
        if self.multimer_batch is not None:
            return self.multimer_batch
        assert self.raw is not None
        return process_features(
            self.raw,
            self.configs[key],
            seed=seed,
            num_recycles=options.num_recycles,
            sizes=self.sizes[key],
            shape=self.shapes[key],
        )

    def recycle_input(self, batch: FeatureDict, recycle: int) -> FeatureDict:
        """The features one recycle reads: the monomer's slice of it, the multimer's all."""
        if self.multimer_batch is not None:
            return batch
        return {k: v[recycle : recycle + 1] for k, v in batch.items()}


def chain_templates(
    msa: Msa, options: PredictOptions, source: TemplateSource, *, cache_dir: Path
) -> TemplateSet:
    """Each distinct chain's templates, aligned with its MSA as ColabFold aligns them."""
    from foldserve.fold.alphafold2 import templates

    if network_name(msa, options) == MULTIMER:
        split = split_complex(msa)
        chain_msas, sequences = list(split.unpaired), list(split.sequences)
    else:
        text = io.StringIO()
        write_a3m(msa, text)
        chain_msas, sequences = [text.getvalue()], [msa.query_sequence]
    if source.files:
        found = templates.templates_from_files(
            source.files,
            chain_msas,
            sequences,
            max_template_date=source.max_template_date,
            cache_dir=cache_dir,
        )
        if not found.names:
            raise InputError(
                f"none of the {len(source.files)} template file(s) aligns to the query: "
                + "; ".join(found.warnings),
                where=str(source.files[0]),
                fix="give structures of the query's family (mmCIF or PDB), or leave "
                "--templates out",
            )
        return found
    return templates.templates_from_server_dirs(
        source.server_chain_dirs(len(sequences)),
        chain_msas,
        sequences,
        max_template_date=source.max_template_date,
    )


def prepare_job(
    msa: Msa,
    options: PredictOptions,
    template_set: TemplateSet | None,
    *,
    bucketing: bool,
    config_of: Callable[[NetworkKey], Any],
) -> PreparedJob:
    """The features every model run of ``msa`` shares; ``config_of`` gives the AlphaFold
    config of a network (its data pipeline settings)."""
    chain_features = (
        [chain.features for chain in template_set.chains] if template_set is not None else None
    )
    if network_name(msa, options) == MULTIMER:
        key = multimer_key(options)
        complex_input = split_complex(msa)
        features = multimer_features.multimer_features(
            complex_input, num_msa=key.num_msa, template_features=chain_features
        )
        shape = multimer_shape(
            int(features["aatype"].shape[0]),
            multimer_features.msa_rows(features),
            key.num_msa,
            key.num_extra_msa,
            bucketing=bucketing,
        )
        return PreparedJob(
            keys={number: key for number in MODEL_NUMBERS},
            shapes={key: shape},
            chains=complex_input.chains,
            aatype=np.asarray(features["aatype"], dtype=np.int32),
            residue_index=np.asarray(features["residue_index"], dtype=np.int32),
            multimer_batch=_canonical(multimer_features.pad_to(features, shape)),
        )
    raw = raw_features(msa)
    if chain_features is not None:
        # The chain's template features in place of the mock ones, as ColabFold's
        # build_monomer_feature takes them.
        raw = {k: v for k, v in raw.items() if not k.startswith("template_")}
        raw.update(chain_features[0])
    length = msa.query_length
    plain = NetworkKey(MONOMER)
    keys = {number: plain for number in MODEL_NUMBERS}
    sizes = {plain: _sizes(msa, options)}
    if chain_features is not None:
        # ColabFold's choice: models 1 and 2 read the templates, 3 to 5 cannot.
        with_templates = NetworkKey(MONOMER, templates=True)
        keys.update({1: with_templates, 2: with_templates})
        sizes[with_templates] = _template_sizes(msa, options)
    choose = bucket_shape if bucketing else exact_shape
    return PreparedJob(
        keys=keys,
        shapes={key: choose(length, _sampled(key, size)) for key, size in sizes.items()},
        chains=(ChainInfo("A", 1, msa.query_sequence, 0),),
        aatype=np.asarray(raw["aatype"].argmax(-1), dtype=np.int32)[:length],
        residue_index=np.asarray(raw["residue_index"], dtype=np.int32)[:length],
        raw=raw,
        sizes=sizes,
        configs={key: config_of(key) for key in sizes},
    )


def _sizes(msa: Msa, options: PredictOptions) -> tuple[int, int]:
    return msa_sizes(len(msa), options.max_msa_clusters, options.max_extra_msa)


def _template_sizes(msa: Msa, options: PredictOptions) -> tuple[int, int]:
    """Cluster centres (as the template network's config takes them) and extra rows.

    AlphaFold's template models give four of their cluster rows to template torsion angles
    (``reduce_msa_clusters_by_max_templates``): they sample ``clusters - 4`` MSA rows.
    """
    depth = len(msa)
    sampled = min(depth, options.max_msa_clusters - MAX_TEMPLATES)
    extra = max(min(depth - sampled, options.max_extra_msa), 1)
    return sampled + MAX_TEMPLATES, extra


def _sampled(key: NetworkKey, sizes: tuple[int, int]) -> tuple[int, int]:
    """The MSA rows a network's batch holds for ``sizes``: the template network's four
    template rows are added inside the network."""
    clusters, extra = sizes
    return (clusters - MAX_TEMPLATES, extra) if key.templates else sizes


def template_names(
    chains: tuple[ChainInfo, ...], template_set: TemplateSet | None
) -> dict[str, tuple[str, ...]]:
    """The templates each chain (every copy of a distinct chain alike) was given."""
    if template_set is None:
        return {}
    return {
        chain.id: tuple(hit.name for hit in template_set.chains[chain.entity - 1].hits)
        for chain in chains
    }


def multimer_key(options: PredictOptions) -> NetworkKey:
    """The multimer network for ``options``: ColabFold's 508:2048 MSA sizes, or fewer when
    ``--max-msa`` asks for fewer."""
    return NetworkKey(
        MULTIMER,
        num_msa=min(options.max_msa_clusters, network.MULTIMER_NUM_MSA),
        num_extra_msa=min(options.max_extra_msa, network.MULTIMER_NUM_EXTRA_MSA),
    )


def _copies(msa: Msa) -> tuple[int, ...]:
    return msa.complex.copies if msa.complex is not None else (1,)


def complex_length(msa: Msa) -> int:
    """Residues of the whole complex: every copy of every chain."""
    if msa.complex is None:
        return msa.query_length
    return sum(n * c for n, c in zip(msa.complex.lengths, msa.complex.copies, strict=True))


def _canonical(features: FeatureDict) -> FeatureDict:
    """64-bit arrays as the 32-bit ones JAX computes with, so every job of a shape has the
    dtypes the compiled function was made for."""
    converted: FeatureDict = {}
    for name, value in features.items():
        array = np.asarray(value)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        elif array.dtype == np.int64:
            array = array.astype(np.int32)
        converted[name] = array
    return converted

"""ColabFold's own run of an A3M, the reference the engine's coordinates are held to."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from foldserve.fold.alphafold2.network import evoformer_blocks
from foldserve.fold.weights import model_param_file

CA = 1
TOLERANCE = 0.05  # Å, on every CA atom


@contextmanager
def depth_of(param_dir: Path) -> Iterator[None]:
    """ColabFold's networks built with the evoformer depth of the weights in ``param_dir``.

    ColabFold assumes 48 evoformer blocks; the reduced-depth test weights need their own,
    which is the only change made to ColabFold's run.
    """
    from alphafold.model import config as alphafold_config

    original = alphafold_config.model_config
    blocks = evoformer_blocks(model_param_file(param_dir, 3))

    def with_depth(name: str) -> object:
        cfg = original(name)
        cfg.model.embeddings_and_evoformer.evoformer_num_block = blocks
        return cfg

    alphafold_config.model_config = with_depth
    try:
        yield
    finally:
        alphafold_config.model_config = original


def colabfold_ca(
    param_dir: Path,
    a3m: Path,
    out: Path,
    model: int,
    recycles: int,
    model_type: str = "alphafold2_ptm",
) -> np.ndarray:
    """CA coordinates of ColabFold's own run (``colabfold.batch.run``) of ``a3m``, every chain
    in order, at the depth of the weights (:func:`depth_of`)."""
    from colabfold.batch import get_queries, run

    queries, is_complex = get_queries(str(a3m))
    with depth_of(param_dir):
        run(
            queries=queries,
            result_dir=out,
            num_models=1,
            model_order=[model],
            is_complex=is_complex,
            num_recycles=recycles,
            model_type=model_type,
            data_dir=param_dir,
            random_seed=0,
            use_bfloat16=False,
            user_agent="foldserve-tests",
            skip_output=["plots"],
        )
    (pdb,) = out.glob("*_unrelaxed_rank_001_*.pdb")
    return np.array(
        [
            [float(line[30:38]), float(line[38:46]), float(line[46:54])]
            for line in pdb.read_text().splitlines()
            if line.startswith("ATOM") and line[12:16] == " CA "
        ]
    )

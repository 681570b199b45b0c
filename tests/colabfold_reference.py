"""ColabFold's own run of an A3M, the reference the engine's coordinates are held to."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from foldserve.fold.network import evoformer_blocks
from foldserve.fold.weights import model_param_file

CA = 1
TOLERANCE = 0.05  # Å, on every CA atom


def colabfold_ca(
    param_dir: Path,
    a3m: Path,
    out: Path,
    model: int,
    recycles: int,
    model_type: str = "alphafold2_ptm",
) -> np.ndarray:
    """CA coordinates of ColabFold's own run (``colabfold.batch.run``) of ``a3m``, every chain
    in order.

    ColabFold assumes 48 evoformer blocks; the reference run is told the depth of the test
    weights, which is the only change made to it.
    """
    from alphafold.model import config as alphafold_config
    from colabfold.batch import get_queries, run

    original = alphafold_config.model_config
    blocks = evoformer_blocks(model_param_file(param_dir, 3))

    def with_depth(name: str) -> object:
        cfg = original(name)
        cfg.model.embeddings_and_evoformer.evoformer_num_block = blocks
        return cfg

    queries, is_complex = get_queries(str(a3m))
    alphafold_config.model_config = with_depth
    try:
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
    finally:
        alphafold_config.model_config = original
    (pdb,) = out.glob("*_unrelaxed_rank_001_*.pdb")
    return np.array(
        [
            [float(line[30:38]), float(line[38:46]), float(line[46:54])]
            for line in pdb.read_text().splitlines()
            if line.startswith("ATOM") and line[12:16] == " CA "
        ]
    )

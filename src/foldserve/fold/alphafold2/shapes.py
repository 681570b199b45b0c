"""Shape buckets and the memory a job of a given shape needs.

Every distinct input shape costs one XLA compilation (tens of seconds on a GPU, minutes for the
full network on a CPU). Padding the query length and the two MSA depths up to a short ladder of
sizes lets a stream of jobs of different lengths share a handful of compiled functions. Padded
residues and rows are masked, so they change nothing but the cost.
"""

from __future__ import annotations

from foldserve.fold.alphafold2.features import MAX_EXTRA_MSA, MAX_MSA_CLUSTERS, InputShape

CLUSTER_BUCKETS = (32, 64, 128, 256, MAX_MSA_CLUSTERS)
EXTRA_BUCKETS = (1, 1024, 2048, MAX_EXTRA_MSA)

GIB = 1 << 30


def length_bucket(length: int) -> int:
    """Round a query length up: to 32 below 256, 64 below 1024, 128 below 2048, then 256."""
    for limit, granule in ((256, 32), (1024, 64), (2048, 128)):
        if length <= limit:
            return -(-length // granule) * granule
    return -(-length // 256) * 256


def _first_at_least(value: int, ladder: tuple[int, ...]) -> int:
    """The first rung at least ``value``; above the ladder (a raised ``--max-msa``), the value."""
    return next((size for size in ladder if size >= value), value)


def bucket_shape(length: int, sizes: tuple[int, int]) -> InputShape:
    """The padded shape a query of ``length`` residues runs at, sampling ``sizes`` (cluster
    centres, extra rows: :func:`~foldserve.fold.alphafold2.features.msa_sizes`)."""
    clusters, extra = sizes
    return InputShape(
        length=length_bucket(length),
        clusters=_first_at_least(clusters, CLUSTER_BUCKETS),
        extra=_first_at_least(extra, EXTRA_BUCKETS),
    )


def exact_shape(length: int, sizes: tuple[int, int]) -> InputShape:
    """The unpadded shape: what ColabFold runs for a single query."""
    clusters, extra = sizes
    return InputShape(length=length, clusters=clusters, extra=extra)


def estimate_bytes(shape: InputShape, param_bytes: int) -> int:
    """Peak device memory of one forward pass, from the activations that dominate it.

    Pair activations grow with length squared, MSA activations with rows times length. The
    per-element factors cover AlphaFold's live intermediates with its default chunking; they
    are deliberately conservative, so a refused job would at best have just fitted.
    """
    pair = 3 * 1024 * shape.length**2
    clusters = 4 * 1024 * shape.clusters * shape.length
    extra = 1024 * shape.extra * shape.length
    return param_bytes + GIB + pair + clusters + extra


def reduced_depth_hint(shape: InputShape) -> str:
    """What to change when a shape does not fit."""
    if shape.extra > 1:
        return (
            f"keep fewer rows (e.g. `foldserve msa filter --max-seqs {MAX_MSA_CLUSTERS}`), "
            "or run on a GPU with more memory"
        )
    return "run on a GPU with more memory, or predict a shorter part of the sequence"


#: Rows beyond the cluster centres a multimer job's MSA is padded to. The multimer samples its
#: ``num_msa`` centres inside the network and gives the extra-MSA stack the rows left, up to
#: ``num_extra_msa``: padding past the real rows (masked, sorted last) makes that stack read
#: masked rows, so the rungs stay close together below ``num_extra_msa``.
MULTIMER_EXTRA_ROW_BUCKETS = (4, 32, 64, 128, 256, 512, 1024, 2048)


def multimer_shape(
    length: int, rows: int, num_msa: int, num_extra_msa: int, *, bucketing: bool
) -> InputShape:
    """The shape a complex of ``length`` residues and ``rows`` MSA rows runs at: ``clusters``
    is the full MSA depth the network is given (at least ``num_msa + 4``, as ColabFold pads
    it), ``extra`` the extra rows it samples."""
    rows = max(rows, num_msa + 4)
    if not bucketing:
        return InputShape(length=length, clusters=rows, extra=num_extra_msa)
    beyond = _first_at_least(rows - num_msa, MULTIMER_EXTRA_ROW_BUCKETS)
    if beyond == rows - num_msa and beyond > MULTIMER_EXTRA_ROW_BUCKETS[-1]:
        beyond = 1 << (beyond - 1).bit_length()  # past the ladder: powers of two
    return InputShape(length=length_bucket(length), clusters=num_msa + beyond, extra=num_extra_msa)

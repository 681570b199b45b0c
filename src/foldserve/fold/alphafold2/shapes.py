"""Shape buckets, and what a job of a given shape costs: forward-pass work and memory.

Every distinct input shape costs one XLA compilation (tens of seconds on a GPU, several on a
CPU). Padding the query length and the two MSA depths up to a ladder of sizes lets a stream of
jobs of different lengths share a handful of compiled functions; padded residues and rows are
masked, so they change nothing but the cost. The coarse ladder (32 residues below 256) shares
the most; the finer ladders (8 and 16 residues below 256) pad less. Which one a job runs at is
the shape policy's choice (:mod:`.shape_policy`), from :func:`forward_work` and the device's
measured costs.
"""

from __future__ import annotations

from foldserve.fold.alphafold2.features import MAX_EXTRA_MSA, MAX_MSA_CLUSTERS, InputShape

CLUSTER_BUCKETS = (32, 64, 128, 256, MAX_MSA_CLUSTERS)
EXTRA_BUCKETS = (1, 1024, 2048, MAX_EXTRA_MSA)

GIB = 1 << 30


#: The ladders' fineness, coarsest first: each divides the coarse granule (32 below 256, 64
#: below 1024, 128 below 2048, then 256) by this much.
GRANULE_DIVISORS = (1, 2, 4)


def _granule(size: int, divisor: int = 1) -> int:
    for limit, granule in ((256, 32), (1024, 64), (2048, 128)):
        if size <= limit:
            return granule // divisor
    return 256 // divisor


def _round_up(size: int, granule: int) -> int:
    return -(-size // granule) * granule


def length_bucket(length: int) -> int:
    """Round a query length up: to 32 below 256, 64 below 1024, 128 below 2048, then 256."""
    return _round_up(length, _granule(length))


def _first_at_least(value: int, ladder: tuple[int, ...]) -> int:
    """The first rung at least ``value``; above the ladder (a raised ``--max-msa``), the value."""
    return next((size for size in ladder if size >= value), value)


def _rows(rows: int, ladder: tuple[int, ...], divisor: int) -> int:
    """MSA rows on the ladder of fineness ``divisor``: the coarse rung, or a multiple of the
    finer granule when that is smaller (one extra row stays one)."""
    coarse = _first_at_least(rows, ladder)
    return coarse if divisor == 1 else min(coarse, _round_up(rows, _granule(rows, divisor)))


def bucket_shape(length: int, sizes: tuple[int, int], divisor: int = 1) -> InputShape:
    """The padded shape a query of ``length`` residues runs at, sampling ``sizes`` (cluster
    centres, extra rows: :func:`~foldserve.fold.alphafold2.features.msa_sizes`), on the ladder
    whose granule is the coarse one divided by ``divisor`` (:data:`GRANULE_DIVISORS`)."""
    clusters, extra = sizes
    return InputShape(
        length=_round_up(length, _granule(length, divisor)),
        clusters=_rows(clusters, CLUSTER_BUCKETS, divisor),
        extra=_rows(extra, EXTRA_BUCKETS, divisor),
    )


def ladder_shapes(exact: InputShape) -> tuple[InputShape, ...]:
    """The shapes ``exact`` rounds up to on each ladder, coarsest first, without repeats."""
    shapes = (
        bucket_shape(exact.length, (exact.clusters, exact.extra), d) for d in GRANULE_DIVISORS
    )
    return tuple(dict.fromkeys(shapes))


def covers(padded: InputShape, exact: InputShape) -> bool:
    """Whether a function compiled for ``padded`` can run a job of shape ``exact``."""
    return (
        padded.length >= exact.length
        and padded.clusters >= exact.clusters
        and padded.extra >= exact.extra
    )


def exact_shape(length: int, sizes: tuple[int, int]) -> InputShape:
    """The unpadded shape: what ColabFold runs for a single query."""
    clusters, extra = sizes
    return InputShape(length=length, clusters=clusters, extra=extra)


#: The pTM models' channels (MSA, extra MSA, pair; the outer product's) and extra-MSA blocks.
_MSA, _EXTRA, _PAIR, _OUTER, _EXTRA_BLOCKS = 256, 64, 128, 32, 4


def forward_work(shape: InputShape, evoformer_blocks: int) -> float:
    """Multiply-adds of one forward pass at ``shape``, counted over the layers that dominate.

    Per block and pair element (``c`` = 128 pair channels): the triangle multiplications,
    triangle attention and transition project ``30 c**2``, the outer product's output
    ``32 * 32 * c``, and the triangle updates and attention sum over a third residue,
    ``6 c * L``. The MSA stack (``m`` channels, 256; 64 in the extra-MSA stack's four blocks)
    projects ``18 m**2 + 64 m`` per row and residue, and attends along rows (``2 m * L`` per
    row and residue, plus the outer product's ``32 * 32 * L``) and, in the main stack, columns
    (``2 m * rows``). Pair work grows with length squared, MSA work with rows times length.
    On two CPU cores the ratios of this count between 64 and 160 residues match measured
    forward times within 6%; seconds per unit are measured on the device (:mod:`.shape_policy`).
    """
    length = shape.length
    pair = length**2 * (30 * _PAIR**2 + _OUTER**2 * _PAIR + 6 * _PAIR * length)
    main = _msa_work(shape.clusters, length, _MSA) + 2 * _MSA * length * shape.clusters**2
    extra = _msa_work(shape.extra, length, _EXTRA)
    return float(evoformer_blocks * (pair + main) + _EXTRA_BLOCKS * (pair + extra))


def _msa_work(rows: int, length: int, channels: int) -> int:
    """An MSA stack's projections, transition, outer product and row attention."""
    per_row_residue = 18 * channels**2 + 64 * channels + (2 * channels + _OUTER**2) * length
    return rows * length * per_row_residue


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


#: AlphaFold's inference chunk (``global_config.subbatch_size``): its attention and transition
#: layers run over this many rows at a time, to bound memory.
ALPHAFOLD_CHUNK = 4
#: On a CPU, the largest chunked intermediate below which those layers run faster whole.
#: Measured on two EPYC cores (bench/fold_engine.py, 48 blocks, float32, one run each way): whole
#: was faster at 62 to 73 residues (18.9 s against 30.3 s, 24.7 against 32.6, 34.7 against 40.3
#: per job; largest intermediates 8 to 11 MB) and slower from 104 (81.0 against 61.3 s; 22 MB
#: and up), where the whole layers no longer stay in the caches.
WHOLE_LAYERS_BYTES = 16 << 20


def chunked_intermediate_bytes(shape: InputShape) -> int:
    """The largest intermediate of AlphaFold's chunked layers run whole, in float32: attention
    logits (8 heads along MSA rows and columns, 4 along a triangle's edges) or a transition's
    fourfold expansion (256 MSA, 64 extra-MSA, 128 pair channels)."""
    length = shape.length
    largest = max(
        8 * max(shape.clusters, shape.extra) * length**2,
        8 * shape.clusters**2 * length,
        4 * length**3,
        4 * _MSA * shape.clusters * length,
        4 * _EXTRA * shape.extra * length,
        4 * _PAIR * length**2,
    )
    return 4 * largest


def chunk_for(shape: InputShape, *, on_cpu: bool) -> int | None:
    """AlphaFold's chunk for a pass at ``shape``: ``None`` (the layers run whole) on a CPU where
    :func:`chunked_intermediate_bytes` is within :data:`WHOLE_LAYERS_BYTES`, else
    :data:`ALPHAFOLD_CHUNK`, as AlphaFold and ColabFold run them (on a GPU, unmeasured yet:
    ``bench/gpu.sh`` records the chunk with every job)."""
    small = chunked_intermediate_bytes(shape) <= WHOLE_LAYERS_BYTES
    return None if on_cpu and small else ALPHAFOLD_CHUNK


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

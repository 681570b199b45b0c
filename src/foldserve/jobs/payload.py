"""The MSA inside a job: packed by the client, unpacked (with limits) by the worker.

The client sends the alignment as gzip + base64 A3M (``msa_gz_b64``), already parsed and
validated, so a bad file never costs GPU time. The worker accepts plain text, the packed form
or a URL, and refuses anything that would inflate past :data:`MAX_MSA_BYTES` (a gzip bomb
gets a clear error, not an exhausted worker) or hold more than the :class:`MsaLimits` allow
(reading stops there). Row names may be any Unicode: the packed A3M is UTF-8.

A complex comes as one MSA per chain (``chains``): each is read the same way, and all of them
together are held to the same limits; :func:`unpack_job_msa` lays them out as ColabFold's
complex MSA. Template structures sent with the job are written to files
(:func:`unpack_templates`).
"""

from __future__ import annotations

import base64
import gzip
import io
import zlib
from dataclasses import dataclass
from pathlib import Path

from foldserve import remote
from foldserve.errors import InputError, MsaError, TooLarge
from foldserve.jobs.input import MAX_TEMPLATE_BYTES, ChainInput, FoldJobInput
from foldserve.msa.builder import MsaLimits
from foldserve.msa.model import Msa
from foldserve.msa.pairing import ChainMsa, pair_chains
from foldserve.msa.reading import read
from foldserve.msa.writing import write_a3m
from foldserve.outbound import STRICT, OutboundPolicy

#: The largest MSA text a job may carry once inflated. ColabFold's models see at most 5,632
#: rows; at 2,500 residues that is 14 MB of A3M, so this leaves ample room for insertions.
MAX_MSA_BYTES = 64_000_000
#: The most rows a job's MSA may hold: about 0.5 s to read. The model uses at most 5,632.
MAX_MSA_ROWS = 100_000
#: The longest query: by :func:`foldserve.fold.alphafold2.shapes.estimate_bytes` the largest
#: GPU (141 GB) fits 6,000 residues with a single-sequence MSA, and no more.
MAX_QUERY_LENGTH = 6_000
DEFAULT_LIMITS = MsaLimits(max_rows=MAX_MSA_ROWS, max_query_length=MAX_QUERY_LENGTH)


def a3m_text(msa: Msa) -> str:
    out = io.StringIO()
    write_a3m(msa, out)
    return out.getvalue()


def pack_msa(msa: Msa) -> str:
    """``msa`` as gzip + base64 A3M, the ``msa_gz_b64`` field."""
    packed = gzip.compress(a3m_text(msa).encode("utf-8"), compresslevel=6, mtime=0)
    return base64.b64encode(packed).decode("ascii")


def inflate(data: bytes, *, limit: int, where: str) -> bytes:
    """Decompress gzip ``data``, refusing to produce more than ``limit`` bytes."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        text = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise InputError(
            f"not valid gzip data ({exc})",
            where=where,
            fix="send gzip-compressed bytes (Python: gzip.compress)",
        ) from None
    if len(text) <= limit and not inflater.eof:
        raise InputError(
            "the gzip data ends early (truncated)",
            where=where,
            fix="send the whole gzip-compressed file (Python: gzip.compress)",
        )
    if len(text) > limit:
        raise TooLarge(
            f"inflates to more than {limit / 1e6:g} MB",
            where=where,
            fix="reduce the MSA first (foldserve msa filter --max-seqs 5632)",
        )
    return text


@dataclass(frozen=True)
class UnpackedMsa:
    """The job's MSA as the model reads it, and where it came from.

    ``msa`` is a complex (``msa.complex`` set) for a job of several chains or copies, given as
    ``chains`` or as a ColabFold complex A3M. ``chain_ids`` are the labels of ``chains[i].id``
    (None where not given), one per distinct chain; empty for a job sent as ``msa``.
    """

    msa: Msa
    chain_ids: tuple[str | None, ...] = ()
    paired_rows: int | None = None


def unpack_msa(
    job_input: FoldJobInput,
    *,
    limits: MsaLimits = DEFAULT_LIMITS,
    outbound: OutboundPolicy = STRICT,
) -> Msa:
    """The job's MSA, parsed and validated within ``limits``; errors name the ``input.`` field.
    An ``msa_url`` is fetched under ``outbound``, the server's policy (the strictest by
    default). A job of ``chains`` gives the complex MSA (:func:`unpack_job_msa`)."""
    return unpack_job_msa(job_input, limits=limits, outbound=outbound).msa


def unpack_job_msa(
    job_input: FoldJobInput,
    *,
    limits: MsaLimits = DEFAULT_LIMITS,
    outbound: OutboundPolicy = STRICT,
) -> UnpackedMsa:
    """The job's MSA: its ``msa`` read, or its ``chains`` read one by one and laid out as
    ColabFold's complex MSA (:func:`foldserve.msa.pairing.pair_chains`: the ``paired_msa`` as
    the paired block, else rows paired by species). Each chain is held to ``limits`` and
    :data:`MAX_MSA_BYTES`, and so are all of them together; the complex's residues, copies
    counted, to ``limits.max_query_length``."""
    if job_input.chains is None:
        source = _MsaSource("input", job_input.msa, job_input.msa_gz_b64, job_input.msa_url)
        budget = _Budget(MAX_MSA_BYTES, limits)
        msa = _read_msa(source, job_input.msa_format, job_input.query, budget, outbound)
        return UnpackedMsa(msa)
    return _unpack_chains(job_input, job_input.chains, limits, outbound)


def _unpack_chains(
    job_input: FoldJobInput,
    chains: list[ChainInput],
    limits: MsaLimits,
    outbound: OutboundPolicy,
) -> UnpackedMsa:
    budget = _Budget(MAX_MSA_BYTES, limits)
    read_chains = []
    for index, chain in enumerate(chains):
        field = f"input.chains[{index}]"
        source = _MsaSource(field, chain.msa, chain.msa_gz_b64, chain.msa_url)
        msa = _read_msa(source, chain.msa_format, chain.query, budget, outbound)
        if msa.complex is not None:
            raise InputError(
                f"is already a complex MSA ({msa.complex.describe()}); a chain's MSA is the "
                "MSA of that one chain",
                where=source.where,
                fix="send it alone as msa, or send one single-chain MSA per chain",
            )
        read_chains.append(ChainMsa(msa, chain.copies))
    residues = sum(c.msa.query_length * c.copies for c in read_chains)
    if residues > limits.max_query_length:
        lengths = " + ".join(
            f"{c.copies} x {c.msa.query_length}" if c.copies > 1 else str(c.msa.query_length)
            for c in read_chains
        )
        raise TooLarge(
            f"the complex has {lengths} = {residues:,} residues, more than the "
            f"{limits.max_query_length:,} this endpoint predicts",
            where="input.chains",
            fix="predict fewer chains or copies, or parts of them (domains)",
        )
    paired = None
    if job_input.paired_msa is not None:
        given = job_input.paired_msa
        source = _MsaSource("input.paired_msa", given.msa, given.msa_gz_b64, given.msa_url)
        paired = _read_msa(source, given.msa_format, None, budget, outbound)
        _check_paired_width(paired, [c.msa for c in read_chains])
    try:
        result = pair_chains(read_chains, paired=paired)
    except InputError as exc:
        where = exc.where or ""
        if where.startswith("--"):  # pair_chains names the command line's flags
            where = "input.paired_msa" if where == "--paired-msa" else "input.chains"
        raise InputError(exc.problem, where=where, fix=exc.fix) from None
    if len(result.msa) > limits.max_rows:
        raise TooLarge(
            f"the complex MSA holds {len(result.msa):,} rows ({result.paired_rows:,} paired), "
            f"more than the {limits.max_rows:,} this endpoint takes",
            where="input.chains",
            fix="keep the rows the model can use: `foldserve msa filter --max-seqs 5632` on "
            "each chain's MSA",
        )
    return UnpackedMsa(
        result.msa, tuple(chain.id for chain in chains), paired_rows=result.paired_rows
    )


def _check_paired_width(paired: Msa, chains: list[Msa]) -> None:
    """The paired MSA's rows must hold every chain side by side: named by its JSON field."""
    lengths = [m.query_length for m in chains]
    if paired.query_length != sum(lengths):
        raise InputError(
            f"its rows have {paired.query_length} columns, but the chains have "
            f"{' + '.join(map(str, lengths))} = {sum(lengths)} residues",
            where="input.paired_msa",
            fix="send the paired MSA of these chains: each row the chains' rows side by side, "
            "in the order of chains",
        )


@dataclass(frozen=True)
class _MsaSource:
    """One MSA field of the job: ``{field}.msa``, ``.msa_gz_b64`` or ``.msa_url``."""

    field: str
    text: str | None
    gz_b64: str | None
    url: str | None

    @property
    def where(self) -> str:
        if self.text is not None:
            return f"{self.field}.msa"
        name = "msa_gz_b64" if self.gz_b64 is not None else "msa_url"
        return f"{self.field}.{name}"


class _Budget:
    """What the MSAs of one job may still take together: bytes, and rows."""

    def __init__(self, max_bytes: int, limits: MsaLimits) -> None:
        self.total_bytes = self.bytes_left = max_bytes
        self.limits = limits
        self.rows_left = limits.max_rows

    def take(self, data: bytes, where: str) -> None:
        if len(data) > self.bytes_left:
            together = self.bytes_left < self.total_bytes
            raise TooLarge(
                f"{'with the MSAs before it, ' if together else ''}is larger than "
                f"{self.total_bytes / 1e6:g} MB",
                where=where,
                fix="reduce the MSA first (foldserve msa filter --max-seqs 5632)",
            )
        self.bytes_left -= len(data)

    def read_limits(self) -> MsaLimits:
        return MsaLimits(max_rows=self.rows_left, max_query_length=self.limits.max_query_length)


def _read_msa(
    source: _MsaSource,
    msa_format: str,
    query: str | None,
    budget: _Budget,
    outbound: OutboundPolicy,
) -> Msa:
    where = source.where
    if source.text is not None:
        data = source.text.encode()
        budget.take(data, where)
    elif source.gz_b64 is not None:
        data = inflate(_b64(source.gz_b64, where), limit=budget.bytes_left, where=where)
        budget.take(data, where)
    else:
        assert source.url is not None
        data = _download(source.url, outbound, where=where, limit=budget.bytes_left, what="MSA")
        budget.take(data, where)
    stream = io.BytesIO(data)
    stream.name = where
    rows_before = budget.rows_left
    try:
        msa = read(stream, format=msa_format, query=query, limits=budget.read_limits())
    except TooLarge as exc:
        if rows_before == budget.limits.max_rows:
            raise
        raise TooLarge(
            f"{exc.problem}: with the MSAs before it, more than the "
            f"{budget.limits.max_rows:,} rows a job may hold",
            where=exc.where,
            fix=exc.fix,
        ) from None
    except MsaError as exc:
        if source.url is None:
            raise
        # A reader's message can quote the file; what a URL served is never shown back.
        raise MsaError(
            "the downloaded file is not a usable MSA",
            source=where,
            line=exc.line,
            fix="check it with `foldserve msa inspect FILE`, or send the MSA inline",
        ) from None
    budget.rows_left -= len(msa)
    return msa


def _b64(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:  # binascii.Error, or a character outside ASCII
        raise InputError(
            "not valid base64",
            where=where,
            fix="send base64(gzip(text)) with no line breaks",
        ) from None


def unpack_templates(
    job_input: FoldJobInput, directory: Path, *, outbound: OutboundPolicy = STRICT
) -> tuple[Path, ...]:
    """Write the job's template files into ``directory`` (made if need be), under their names;
    their paths, in the job's order. Each may hold :data:`MAX_TEMPLATE_BYTES`, all together
    :data:`MAX_MSA_BYTES`; errors name the ``input.templates[i]`` field."""
    if not job_input.templates:
        return ()
    directory.mkdir(parents=True, exist_ok=True)
    left = MAX_MSA_BYTES
    paths = []
    for index, template in enumerate(job_input.templates):
        field = f"input.templates[{index}]"
        limit = min(MAX_TEMPLATE_BYTES, left)
        if template.data is not None:
            where, data = f"{field}.data", template.data.encode()
        elif template.data_gz_b64 is not None:
            where = f"{field}.data_gz_b64"
            data = inflate(_b64(template.data_gz_b64, where), limit=limit, where=where)
        else:
            assert template.url is not None
            where = f"{field}.url"
            data = _download(template.url, outbound, where=where, limit=limit, what="template")
        if len(data) > limit:
            raise TooLarge(
                f"is larger than {limit / 1e6:g} MB"
                + (" with the templates before it" if limit < MAX_TEMPLATE_BYTES else ""),
                where=where,
                fix="send only the chains the template needs, or fewer templates",
            )
        if not data.strip():
            raise InputError("is empty", where=where, fix="send the structure file's text")
        left -= len(data)
        path = directory / template.name
        path.write_bytes(data)
        paths.append(path)
    return tuple(paths)


def _download(url: str, outbound: OutboundPolicy, *, where: str, limit: int, what: str) -> bytes:
    received = bytearray()
    try:
        with outbound.open(url, where=where) as (chunks, size):
            if size is not None and size > limit:
                raise _too_large(where, limit)
            for chunk in chunks:
                received += chunk
                if len(received) > limit:
                    raise _too_large(where, limit)
    except remote.SourceFailed as exc:
        raise InputError(
            f"could not download the {what} ({exc})",
            where=where,
            fix=f"check the URL is reachable from the worker, or send the {what} inline",
        ) from None
    data = bytes(received)
    # A gzip object is inflated here, under the same limit as msa_gz_b64.
    return inflate(data, limit=limit, where=where) if data[:2] == b"\x1f\x8b" else data


def _too_large(where: str, limit: int) -> TooLarge:
    return TooLarge(
        f"is larger than {limit / 1e6:g} MB",
        where=where,
        fix="reduce the MSA first (foldserve msa filter --max-seqs 5632)",
    )

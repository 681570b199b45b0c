"""The MSA inside a job: packed by the client, unpacked (with limits) by the worker.

The client sends the alignment as gzip + base64 A3M (``msa_gz_b64``), already parsed and
validated, so a bad file never costs GPU time. The worker accepts plain text, the packed form
or a URL, and refuses anything that would inflate past :data:`MAX_MSA_BYTES` (a gzip bomb
gets a clear error, not an exhausted worker) or hold more than the :class:`MsaLimits` allow
(reading stops there). Row names may be any Unicode: the packed A3M is UTF-8.
"""

from __future__ import annotations

import base64
import gzip
import io
import zlib

from foldserve import remote
from foldserve.errors import InputError, MsaError, TooLarge
from foldserve.jobs.input import FoldJobInput
from foldserve.msa.builder import MsaLimits
from foldserve.msa.model import Msa
from foldserve.msa.reading import read
from foldserve.msa.writing import write_a3m
from foldserve.outbound import STRICT, OutboundPolicy

#: The largest MSA text a job may carry once inflated. ColabFold's models see at most 5,632
#: rows; at 2,500 residues that is 14 MB of A3M, so this leaves ample room for insertions.
MAX_MSA_BYTES = 64_000_000
#: The most rows a job's MSA may hold: about 0.5 s to read. The model uses at most 5,632.
MAX_MSA_ROWS = 100_000
#: The longest query: by :func:`foldserve.fold.shapes.estimate_bytes` the largest GPU (141 GB)
#: fits 6,000 residues with a single-sequence MSA, and no more.
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
    if len(text) > limit:
        raise TooLarge(
            f"inflates to more than {limit / 1e6:g} MB",
            where=where,
            fix="reduce the MSA first (foldserve msa filter --max-seqs 5632)",
        )
    return text


def unpack_msa(
    job_input: FoldJobInput,
    *,
    limits: MsaLimits = DEFAULT_LIMITS,
    outbound: OutboundPolicy = STRICT,
) -> Msa:
    """The job's MSA, parsed and validated within ``limits``; errors name the ``input.`` field.
    An ``msa_url`` is fetched under ``outbound``, the server's policy (the strictest by
    default)."""
    if job_input.msa is not None:
        where, text = "input.msa", job_input.msa.encode()
        if len(text) > MAX_MSA_BYTES:
            raise _msa_too_large(where)
    elif job_input.msa_gz_b64 is not None:
        where = "input.msa_gz_b64"
        try:
            packed = base64.b64decode(job_input.msa_gz_b64, validate=True)
        except ValueError:  # binascii.Error, or a character outside ASCII
            raise InputError(
                "not valid base64",
                where=where,
                fix="send base64(gzip(MSA text)) with no line breaks",
            ) from None
        text = inflate(packed, limit=MAX_MSA_BYTES, where=where)
    else:
        assert job_input.msa_url is not None
        where, text = "input.msa_url", _download(job_input.msa_url, outbound)
    stream = io.BytesIO(text)
    stream.name = where
    try:
        return read(stream, format=job_input.msa_format, query=job_input.query, limits=limits)
    except MsaError as exc:
        if job_input.msa_url is None:
            raise
        # A reader's message can quote the file; what a URL served is never shown back.
        raise MsaError(
            "the downloaded file is not a usable MSA",
            source=where,
            line=exc.line,
            fix="check it with `foldserve msa inspect FILE`, or send the MSA inline",
        ) from None


def _download(url: str, outbound: OutboundPolicy) -> bytes:
    where = "input.msa_url"
    received = bytearray()
    try:
        with outbound.open(url, where=where) as (chunks, size):
            if size is not None and size > MAX_MSA_BYTES:
                raise _msa_too_large(where)
            for chunk in chunks:
                received += chunk
                if len(received) > MAX_MSA_BYTES:
                    raise _msa_too_large(where)
    except remote.SourceFailed as exc:
        raise InputError(
            f"could not download the MSA ({exc})",
            where=where,
            fix="check the URL is reachable from the worker, or send the MSA inline",
        ) from None
    data = bytes(received)
    # A gzip object is inflated here, under the same limit as msa_gz_b64.
    return inflate(data, limit=MAX_MSA_BYTES, where=where) if data[:2] == b"\x1f\x8b" else data


def _msa_too_large(where: str) -> TooLarge:
    return TooLarge(
        f"is larger than {MAX_MSA_BYTES / 1e6:g} MB",
        where=where,
        fix="reduce the MSA first (foldserve msa filter --max-seqs 5632)",
    )

"""The MSA inside a job: packed by the client, unpacked (with limits) by the worker.

The client sends the alignment as gzip + base64 A3M (``msa_gz_b64``), already parsed and
validated, so a bad file never costs GPU time. The worker accepts plain text, the packed form
or a URL, and refuses anything that would inflate past :data:`MAX_MSA_BYTES` (a gzip bomb
gets a clear error, not an exhausted worker).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import zlib

from foldserve import remote
from foldserve.errors import InputError, TooLarge
from foldserve.jobs.input import FoldJobInput
from foldserve.msa.model import Msa
from foldserve.msa.reading import read
from foldserve.msa.writing import write_a3m

#: The largest MSA text a job may carry once inflated. ColabFold's models see at most 5,632
#: rows; at 2,500 residues that is 14 MB of A3M, so this leaves ample room for insertions.
MAX_MSA_BYTES = 64 << 20


def a3m_text(msa: Msa) -> str:
    out = io.StringIO()
    write_a3m(msa, out)
    return out.getvalue()


def pack_msa(msa: Msa) -> str:
    """``msa`` as gzip + base64 A3M, the ``msa_gz_b64`` field."""
    packed = gzip.compress(a3m_text(msa).encode("ascii"), compresslevel=6, mtime=0)
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
            f"inflates to more than {limit >> 20} MB",
            where=where,
            fix="reduce the MSA first (foldserve msa filter --max-seqs 5632)",
        )
    return text


def unpack_msa(job_input: FoldJobInput, *, connect_timeout: float = 10.0) -> Msa:
    """The job's MSA, parsed and validated; errors name the ``input.`` field."""
    if job_input.msa is not None:
        where, text = "input.msa", job_input.msa.encode()
        if len(text) > MAX_MSA_BYTES:
            raise _msa_too_large(where)
    elif job_input.msa_gz_b64 is not None:
        where = "input.msa_gz_b64"
        try:
            packed = base64.b64decode(job_input.msa_gz_b64, validate=True)
        except binascii.Error:
            raise InputError(
                "not valid base64",
                where=where,
                fix="send base64(gzip(MSA text)) with no line breaks",
            ) from None
        text = inflate(packed, limit=MAX_MSA_BYTES, where=where)
    else:
        assert job_input.msa_url is not None
        where, text = "input.msa_url", _download(job_input.msa_url, connect_timeout)
    stream = io.BytesIO(text)
    stream.name = where
    return read(stream, format=job_input.msa_format, query=job_input.query)


def _download(url: str, connect_timeout: float) -> bytes:
    where = "input.msa_url"
    if not remote.supported(url, allow_local=False):
        raise InputError(
            "not an http(s):// or s3:// URL", where=where, fix="give an http(s) or s3 URL"
        )
    received = bytearray()
    try:
        with remote.open_source(url, connect_timeout=connect_timeout) as (chunks, _):
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
        f"is larger than {MAX_MSA_BYTES >> 20} MB",
        where=where,
        fix="reduce the MSA first (foldserve msa filter --max-seqs 5632)",
    )

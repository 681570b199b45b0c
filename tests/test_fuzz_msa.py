"""Property-based fuzzing of the MSA readers: random bytes, and real files from
../shared/testdata (the malformed ones of MANIFEST.md's edge_cases too) mutated, in every
format. :func:`foldserve.msa.read` either reads them or raises :class:`InputError` (an
:class:`MsaError` with file and line, or :class:`TooLarge`), never anything else.
"""

from __future__ import annotations

import contextlib
import gzip
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foldserve.errors import InputError
from foldserve.msa import read
from foldserve.msa.sniff import FORMATS
from tests.conftest import TESTDATA

#: Real files small enough to mutate quickly: every format, and every malformed edge case.
SEEDS = sorted(
    path
    for path in [*TESTDATA.glob("msa/*/*"), *TESTDATA.glob("edge_cases/*")]
    if path.is_file() and path.stat().st_size <= 8_000
)
formats = st.sampled_from(("auto", *FORMATS))


def read_or_input_error(payload: bytes, fmt: str) -> None:
    source = io.BytesIO(payload)
    source.name = "fuzzed.msa"
    with contextlib.suppress(InputError):
        read(source, format=fmt)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A seed file with a few byte-level and line-level edits."""
    data = bytearray(draw(st.sampled_from(SEEDS)).read_bytes())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(("insert", "delete", "replace", "truncate", "dup_line")))
        if edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8) | st.sampled_from(FRAGMENTS))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif edit == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif edit == "truncate":
            del data[at:]
        elif edit == "dup_line":
            start = data.rfind(b"\n", 0, at) + 1
            end = data.find(b"\n", at)
            line = bytes(data[start : end + 1 if end >= 0 else len(data)])
            data[start:start] = line
    return bytes(data)


#: Pieces of MSA syntax, so mutations reach deeper than random bytes do.
FRAGMENTS = (
    b">", b"\n>", b"\r\n", b"#=GC SS_cons ", b"# STOCKHOLM 1.0\n", b"//\n", b"CLUSTAL W\n",
    b"#62\t1\n", b"-", b".", b"\x00", b"\xe2\x98\x83", b"\xe2\x80\xae", b"\xff\xfe", b"\t",
)  # fmt: skip


def test_seeds_cover_the_malformed_files() -> None:
    names = {path.name for path in SEEDS}
    assert {"easel_fasta.bad.1_bad_char.fa", "colabfold_empty.a3m"} <= names
    assert len(SEEDS) >= 15


@pytest.mark.timeout(120)
@settings(max_examples=300)
@given(payload=st.binary(max_size=2000), fmt=formats, compress=st.booleans())
def test_random_bytes(payload: bytes, fmt: str, compress: bool) -> None:
    read_or_input_error(gzip.compress(payload) if compress else payload, fmt)


@pytest.mark.timeout(180)
@settings(max_examples=500)
@given(payload=mutated(), fmt=formats)
def test_mutated_real_files(payload: bytes, fmt: str) -> None:
    read_or_input_error(payload, fmt)

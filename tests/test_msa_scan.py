"""The block scanner (records.py, scan_block.py) and the block projection (scan_build.py,
scan_project.py) against the record-at-a-time reading they replace.

The reference below is the reader foldserve had before: the text split into records at
'\\n>', each record's header decoded and split, its body stripped of whitespace, ';' lines and
a final '*', and every row handed to ``MsaBuilder.add`` one at a time. The new code must give
the same rows, the same ``Msa`` and the same error, however the text is cut into blocks.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foldserve.errors import InputError, MsaError
from foldserve.msa import read, records, source
from foldserve.msa.alphabet import UPPER_AND_GAP
from foldserve.msa.builder import ColumnRule, MsaBuilder, MsaLimits, RawRow
from foldserve.msa.model import Msa
from foldserve.msa.records import _prelude_lines, scan_records
from foldserve.msa.scan_build import BlockBuilder
from foldserve.msa.sniff import sniff
from tests.conftest import TESTDATA, same_msa

SOURCE = "t.fa"


# -- the reference --------------------------------------------------------------------------
def reference_rows(text: bytes) -> list[RawRow]:
    """The rows of ``text`` as the record-at-a-time scanner read them."""
    if text.startswith(b">"):
        first = 0
    elif (found := text.find(b"\n>")) >= 0:
        first = found + 1
    else:
        _prelude_lines(text, SOURCE, 1)
        return []
    _prelude_lines(text[:first], SOURCE, 1)
    line = 1 + text.count(b"\n", 0, first)
    chunks = text[first + 1 :].split(b"\n>")
    rows = []
    for number, chunk in enumerate(chunks, start=1):
        header, newline, body = chunk.partition(b"\n")
        header_text = header.decode("utf-8", errors="replace").strip()
        if not newline and number == len(chunks):
            raise MsaError(
                f"the file ends inside the header of record {header_text[:40]!r}",
                source=SOURCE,
                line=line,
                fix="the file looks truncated; download or export it again",
            )
        name, description = [*header_text.split(None, 1), ""][:2] if header_text else ("", "")
        body = b"\n".join(x for x in body.split(b"\n") if not x.startswith(b";"))
        sequence = body.translate(None, b" \t\n\x0b\x0c")
        if sequence.endswith(b"*"):
            sequence = sequence[:-1]
        rows.append(RawRow(name, description.strip(), sequence, line))
        line += chunk.count(b"\n") + 1
    return rows


def reference_msa(text: bytes, rule: ColumnRule, **options: Any) -> Msa:
    builder = MsaBuilder(source=SOURCE, format="fasta", rule=rule, **options)
    for row in reference_rows(text):
        builder.add(row)
    return builder.finish()


def pieces(text: bytes, cuts: list[int]) -> Iterator[bytes]:
    """``text`` cut at the given offsets (blocks of any size, empty ones included)."""
    start = 0
    for cut in sorted(cuts):
        yield text[start:cut]
        start = cut
    yield text[start:]


def new_rows(text: bytes, cuts: list[int]) -> list[RawRow]:
    return [row for block in scan_records(pieces(text, cuts), SOURCE) for row in block.rows()]


def new_msa(text: bytes, cuts: list[int], rule: ColumnRule, **options: Any) -> Msa:
    builder = BlockBuilder(source=SOURCE, format="fasta", rule=rule, **options)
    for block in scan_records(pieces(text, cuts), SOURCE):
        builder.add_block(block)
    return builder.finish()


def outcome(function: Any, *args: Any, **kwargs: Any) -> Any:
    """What a call gives: its value, or the one-line text of the input error it raises."""
    try:
        return function(*args, **kwargs)
    except InputError as exc:
        return ("error", type(exc).__name__, str(exc))


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse every record boundary that arrives at once (no gathering up to a megabyte)."""
    monkeypatch.setattr(records, "SCAN_SIZE", 1)


# -- the scanner ----------------------------------------------------------------------------
ASCII_HEADER = [b"a", b"Q", b"_", b"/", b"1", b" ", b"\t", b"\x0b", b"\x1c", b">", b";", b"*"]
#: A letter, an em space (whitespace to ``str.split``), an invalid byte, a character cut short.
UTF8_HEADER = [b"\xc3\xa9", b"\xe2\x80\x83", b"\xff", b"\xe2\x82"]
HEADER_BYTES = st.sampled_from([*ASCII_HEADER, b"\r", *UTF8_HEADER])
SEQUENCE_BYTES = st.sampled_from(
    [b"A", b"C", b"W", b"-", b"a", b"y", b".", b"*", b" ", b"\t", b"\x0c", b"1", b"\r", b"\xe9"]
)


@st.composite
def fasta_lines(draw: st.DrawFn) -> bytes:
    """Text made of FASTA-ish lines: headers, sequences, comments, blanks and junk."""
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["header", "sequence", "sequence", "comment", "blank", "#"]))
        if kind == "header":
            lines.append(b">" + b"".join(draw(st.lists(HEADER_BYTES, max_size=12))))
        elif kind == "sequence":
            lines.append(b"".join(draw(st.lists(SEQUENCE_BYTES, max_size=12))))
        elif kind == "comment":
            lines.append(b";" + b"".join(draw(st.lists(HEADER_BYTES, max_size=4))))
        elif kind == "blank":
            lines.append(b"")
        else:
            lines.append(b"#1\t1")
    return b"\n".join(lines) + draw(st.sampled_from([b"", b"\n", b"\n\n"]))


@settings(max_examples=600, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=fasta_lines(), data=st.data())
def test_scanner_gives_the_records_of_the_reference(
    text: bytes, data: st.DataObject, small_blocks: None
) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=6))
    assert outcome(new_rows, text, cuts) == outcome(reference_rows, text)


def test_blocks_of_one_byte_give_the_same_records(small_blocks: None) -> None:
    text = b"#2\t1\n;c\n>q  first one \nAC-D\n; x\n\n>r\tdesc\nA C*\nGG*\n>\n>s\nAa.-\n"
    rows = reference_rows(text)
    assert len(rows) == 4
    assert new_rows(text, list(range(len(text)))) == rows
    assert new_rows(text, []) == rows


def test_a_header_longer_than_many_blocks(small_blocks: None) -> None:
    name = "N" * 5000
    text = f">{name} d\nACDE\n>x\nAC-E\n".encode()
    rows = new_rows(text, list(range(0, len(text), 7)))
    assert [(r.name, r.description, r.text, r.line) for r in rows] == [
        (name, "d", b"ACDE", 1),
        ("x", "", b"AC-E", 3),
    ]


@pytest.mark.parametrize("cut", range(1, 12))
def test_truncated_header_at_the_end_is_refused_wherever_the_cut(
    cut: int, small_blocks: None
) -> None:
    text = b">q\nACDE\n>last one"
    with pytest.raises(
        MsaError, match=r"^t.fa:3: the file ends inside the header of record 'last one'"
    ):
        new_rows(text, [cut])


# -- the projection -------------------------------------------------------------------------
ALIGNED = st.sampled_from([b"A", b"C", b"K", b"W", b"-", b"-", b"a", b"k", b"."])
RARE = st.sampled_from([b"1", b"*", b"?", b"\xc3\xa9", b" "])


@st.composite
def alignments(draw: st.DrawFn) -> tuple[bytes, ColumnRule, dict[str, Any]]:
    """A FASTA text of rows of mostly one width, with at most one defect (an invalid
    character, a row of another width, an empty row, an annotation row, too many rows, a query
    named further down); the rule to read it with, and builder options."""
    rule: ColumnRule = draw(st.sampled_from(["aligned", "a3m"]))
    width = draw(st.integers(1, 9))
    # The query of an aligned file may hold lower case and '.'; in A3M, '.' only (no column).
    query_bytes = [b"A", b"C", b"-", b"D", *([b"a", b"."] if rule == "aligned" else [b".D"])]
    query = [draw(st.sampled_from(query_bytes)) for _ in range(width)]
    query[draw(st.integers(0, width - 1))] = b"M"  # never all gaps
    rows = [b"".join(query)]
    for _ in range(draw(st.integers(0, 14))):
        row = [draw(ALIGNED) for _ in range(width)]
        if rule == "a3m":  # lower case and '.' are no columns in A3M: put them before one
            row = [
                c if c.isupper() or c == b"-" else c * draw(st.integers(0, 3)) + b"Y" for c in row
            ]
            row.append(draw(st.sampled_from([b"", b"", b"k", b"ky.", b"."])))  # after the last
        rows.append(b"".join(row))
    names = [f"r{i}" for i in range(len(rows))]
    options: dict[str, Any] = {}
    defect = draw(
        st.sampled_from(["none"] * 6 + ["char", "width", "empty", "annotation", "limit", "query"])
    )
    victim = draw(st.integers(1, len(rows) - 1)) if len(rows) > 1 else 0
    if defect == "char" and victim:
        rows[victim] += draw(RARE)
    elif defect == "width" and victim:
        rows[victim] = rows[victim][:-1] if draw(st.booleans()) else rows[victim] + b"C"
    elif defect == "empty" and victim:
        rows[victim] = b""
    elif defect == "annotation" and victim:
        names[victim] = draw(st.sampled_from(["ss_pred", "ss_conf", "Consensus"]))
    elif defect == "limit":
        options["limits"] = MsaLimits(max_rows=draw(st.integers(1, 16)), max_query_length=999)
    elif defect == "query" and victim:
        options["query"] = names[victim]
    text = b"".join(f">{n} d\n".encode() + r + b"\n" for n, r in zip(names, rows, strict=True))
    return text, rule, options


@settings(max_examples=800, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=alignments(), data=st.data())
def test_block_projection_gives_the_msa_of_the_row_by_row_builder(
    case: tuple[bytes, ColumnRule, dict[str, Any]], data: st.DataObject, small_blocks: None
) -> None:
    text, rule, options = case
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=4))
    expected = outcome(reference_msa, text, rule, **options)
    found = outcome(new_msa, text, cuts, rule, **options)
    if isinstance(expected, Msa):
        assert isinstance(found, Msa), found
        assert same_msa(found, expected)
    else:
        assert found == expected


def test_with_several_defects_one_of_them_is_reported(small_blocks: None) -> None:
    """Which comes first may depend on where the blocks end; each message is the builder's."""
    fixes = {b">a\nAC\n": b">a\nACD\n", b"A1D": b"AKD", b">c\n\n": b""}
    text = b">q\nACD\n>a\nAC\n>b\nA1D\n>c\n\n"
    alone = set()
    for defect in fixes:
        single = text
        for other, fixed in fixes.items():
            single = single if other == defect else single.replace(other, fixed)
        alone.add(outcome(reference_msa, single, "aligned"))
    assert len(alone) == 3
    for cut in range(len(text)):
        assert outcome(new_msa, text, [cut], "aligned") in alone


# -- whole files, cut by the source into small blocks -----------------------------------------
@pytest.fixture
def tiny_source_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "SNIFF_SIZE", 16)
    monkeypatch.setattr(source, "BLOCK_SIZE", 5)
    monkeypatch.setattr(records, "SCAN_SIZE", 1)


def read_bytes(payload: bytes) -> Msa:
    stream = io.BytesIO(payload)
    stream.name = SOURCE
    return read(stream)


CRLF_A3M = (
    b"#8\t1\r\n>query one\r\nMKVLA-ACD\r\n>hit_1 e=0.1\r\nMK--A-yyACD\r\n"
    b">hit_2\r\nMKV\r\nLAwCACD\r\n>hit_3\r\n-KVLA-AC-*\r\n"
)


def test_crlf_cut_anywhere_reads_as_one_block(tiny_source_blocks: None) -> None:
    expected = reference_msa(CRLF_A3M.replace(b"\r", b""), "a3m")
    msa = read_bytes(CRLF_A3M)
    assert same_msa(msa, expected)
    assert msa.insertions == (b"", b"yy", b"wc", b"")
    assert msa.deletions[1:3].tolist() == [[0, 0, 0, 0, 0, 2, 0, 0]] * 2


@pytest.mark.parametrize("shift", range(7))
def test_crlf_and_record_starts_across_block_boundaries(
    shift: int, tiny_source_blocks: None
) -> None:
    """Each shift moves every '\\r', '\\n' and '>' to another place relative to the blocks."""
    payload = b"\r\n" * shift + CRLF_A3M.replace(b"#8\t1\r\n", b"")
    assert same_msa(read_bytes(payload), read_bytes(payload.replace(b"\r", b"")))


def test_header_longer_than_a_source_block(tiny_source_blocks: None) -> None:
    name = "x" * 200
    msa = read_bytes(f">q\r\nACDE\r\n>{name} long description\r\nAC-E\r\n".encode())
    assert msa.names == ("q", name)
    assert msa.descriptions == ("", "long description")


def test_bad_character_after_many_good_blocks_names_its_line() -> None:
    rows = b"".join(b">r%d\nACDEFGHIK\n" % i for i in range(30_000))
    with pytest.raises(MsaError, match=r"^t.fa:60003: invalid character '1' at position 3 of"):
        read_bytes(b">q\nACDEFGHIK\n" + rows + b">bad\nAC1EFGHIK\n")
    with pytest.raises(MsaError, match=r"^t.fa:60003: record 'short' has 8 aligned columns but"):
        read_bytes(b">q\nACDEFGHIK\n" + rows + b">short\nACDEFGHI\n")


# -- fixed costs outside the scanner ---------------------------------------------------------
@pytest.mark.parametrize("code", range(256))
def test_msa_refuses_every_byte_but_upper_case_and_gap(code: int) -> None:
    """The comparisons that replaced the table lookup accept exactly 'A'-'Z' and '-', and the
    message names the first bad cell, here in a later chunk of the check."""
    rows = 20_000
    residues = np.full((rows, 7), ord("A"), dtype=np.uint8)
    residues[15_000, 3] = code

    def build() -> Msa:
        return Msa(
            names=("q",) * rows,
            descriptions=("",) * rows,
            residues=residues,
            deletions=np.zeros(residues.shape, dtype=np.uint16),
            insertions=(b"",) * rows,
        )

    if bytes([code]) in UPPER_AND_GAP:
        assert len(build()) == rows
        return
    message = (
        f"row 15000 column 3 holds {chr(code)!r}; only upper-case residues and '-' are allowed"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        build()


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b">q\nAC\nDE\n>a\nAc\nDE\n>cut\nA", ("fasta", "aligned")),  # same width, lower case
        (b">q\nACDE\n>a\nAcDEF\n>b\nACDE\n", ("a3m", "a3m")),  # widths differ
        (b">q\nAC.DE\n>a\nAcDE\n>b\n", ("a2m", "aligned")),  # widths differ, '.' and lower case
        (b";c\n;x\n\n>q\n  AC  \n;AAAAAA\n\n#ACGT\n>e\n>a\nAC\n>b\nac", ("fasta", "a3m")),
        (b">q\n>a\nacgt", ("fasta", "aligned")),  # the only sequence is the last record's
        (b"#2\t1\n>q\nAC\n>a\nA.\n", ("a3m", "a3m")),  # ColabFold's first line
        (b"  >q\nAC\n >a\nA.\n>b\n", ("fasta", "aligned")),  # headers stripped first
    ],
)
def test_sniff_reads_the_complete_records_of_the_sample(
    head: bytes, expected: tuple[str, str]
) -> None:
    assert sniff(head, SOURCE) == expected


@pytest.mark.parametrize(
    "path",
    sorted((TESTDATA / "msa" / "a3m").glob("*.a3m"))
    + sorted((TESTDATA / "msa" / "fasta_aligned").glob("*.fasta")),
    ids=lambda path: path.name,
)
def test_sniff_finds_the_same_format_whether_or_not_lines_need_cleaning(path: Path) -> None:
    """A clean sample is sniffed without the per-line clean-up; one with a comment, a blank
    line and indented lines goes through it, and must be named the same."""
    head = path.read_bytes()[: source.SNIFF_SIZE].replace(b"\r", b"")
    if head.startswith(b"#"):
        pytest.skip("ColabFold's '#' first line names A3M either way")
    untidy = b";exported\n\n" + head.replace(b"\n>", b"\n  \n >", 3)
    assert sniff(untidy, SOURCE) == sniff(head, SOURCE)

"""Stockholm reader.

Written by hand rather than with Easel because real Pfam-derived files repeat a sequence name
within one block (a duplicate row), which Easel rejects outright; here the k-th occurrence of a
name in a block continues the k-th row of that name. ``#=GF``/``#=GC``/``#=GR`` markup is
skipped, ``#=GS name DE`` becomes the row's description. Only the first alignment of a file
with several is read, with a warning.
"""

from __future__ import annotations

from collections.abc import Iterable

from foldserve.errors import MsaError
from foldserve.msa.builder import MsaBuilder, RawRow


def read_stockholm(blocks: Iterable[bytes], builder: MsaBuilder) -> None:
    source = builder.source
    order: list[tuple[str, int]] = []
    parts: dict[tuple[str, int], list[bytes]] = {}
    first_line: dict[tuple[str, int], int] = {}
    descriptions: dict[str, str] = {}
    seen_in_block: dict[str, int] = {}
    repeated: set[str] = set()
    alignments = 0
    finished = False
    text = b"".join(blocks)
    for number, raw in enumerate(text.split(b"\n"), start=1):
        line = raw.strip()
        if line.startswith(b"# STOCKHOLM"):
            alignments += 1
            continue
        if finished:
            continue
        if not line:
            seen_in_block.clear()
            continue
        if line.startswith(b"//"):
            finished = True
            continue
        if line.startswith(b"#"):
            fields = line.decode("utf-8", errors="replace").split(None, 3)
            if len(fields) == 4 and fields[0] == "#=GS" and fields[2] == "DE":
                descriptions[fields[1]] = fields[3]
            continue
        fields_b = line.split()
        if len(fields_b) != 2:
            raise MsaError(
                f"expected 'name sequence', found {len(fields_b)} fields",
                source=source,
                line=number,
                fix="Stockholm sequence lines hold a name and the aligned sequence, "
                "separated by spaces",
            )
        name = fields_b[0].decode("utf-8", errors="replace")
        occurrence = seen_in_block.get(name, 0)
        seen_in_block[name] = occurrence + 1
        if occurrence:
            repeated.add(name)
        key = (name, occurrence)
        if key not in parts:
            order.append(key)
            parts[key] = []
            first_line[key] = number
        parts[key].append(fields_b[1])
    if alignments == 0 and order:
        builder.warnings.append("no '# STOCKHOLM 1.0' header line")
    if alignments > 1:
        builder.warnings.append(
            f"the file holds {alignments} alignments; read the first only "
            "(split the file, e.g. with esl-afetch, to use another)"
        )
    if repeated:
        shown = ", ".join(sorted(repeated)[:3])
        builder.warnings.append(
            f"{len(repeated)} name(s) appear more than once in a block ({shown}); "
            "kept as separate rows"
        )
    for key in order:
        name = key[0]
        builder.add(
            RawRow(
                name=name,
                description=descriptions.get(name, ""),
                text=b"".join(parts.pop(key)),
                line=first_line[key],
            )
        )

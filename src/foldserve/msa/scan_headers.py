"""Names and descriptions of a block of FASTA-style header lines, decoded in one call.

A record's header is decoded as UTF-8 (undecodable bytes become U+FFFD), stripped, and split at
its first run of whitespace (``str.split``'s definition, which includes ``\\x1c``-``\\x1f`` and
the Unicode spaces): the name before, the description after. Decoding the block's headers
together gives the same text as decoding each alone, because the newline between two headers
cannot be part of a multi-byte character.
"""

from __future__ import annotations

#: Bytes that ``str.split()`` treats as whitespace in ASCII text, the newline aside.
ASCII_SPACE = b"\t\x0b\x0c\r\x1c\x1d\x1e\x1f "


def split_headers(headers: bytes) -> tuple[list[str], list[str]]:
    """Names and descriptions of ``headers``: every header line without its '>', each line
    ended by a newline."""
    if not headers:
        return [], []
    text = headers[:-1]
    if text.isascii() and len(text.translate(None, ASCII_SPACE)) == len(text):
        # The common case (Pfam, UniProt accessions, numbered rows): every header is a name.
        names = text.decode("ascii").split("\n")
        return names, [""] * len(names)
    # Splitting header by header costs about as much as making the two strings of each.
    parts = [header.split(None, 1) for header in text.decode("utf-8", "replace").split("\n")]
    names = [part[0] if part else "" for part in parts]
    descriptions = [part[1].rstrip() if len(part) == 2 else "" for part in parts]
    return names, descriptions

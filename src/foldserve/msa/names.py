"""Names that must be unique (Stockholm rows, one folder per alignment) or safe as file names."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
#: Longest name :func:`safe_name` returns; file systems allow 255 bytes, and a folder's name
#: also gets suffixes (``_2``) and lives inside paths of its own.
MAX_SAFE_NAME = 100


def safe_name(text: str) -> str:
    """``text`` as a file or folder name: letters, digits, '.', '_' and '-' are kept, every other
    character becomes '_', at most ``MAX_SAFE_NAME`` characters. Never empty (``unnamed``), never
    '.' or '..' (dots only become underscores)."""
    name = _UNSAFE.sub("_", text)[:MAX_SAFE_NAME]
    if not name:
        return "unnamed"
    if not name.strip("."):
        return "_" * len(name)
    return name


def _same(name: str) -> str:
    return name


class UniqueNames:
    """Hands out names, renaming a repeat: the first keeps its name, later ones get ``_2``,
    ``_3``..., skipping any suffixed name already given or reserved.

    ``reserved``: names still to come that must keep their name (all of them, when the list is
    known up front). ``fold_case``: names that differ only in case count as the same, as folder
    names do on macOS and Windows.
    """

    def __init__(self, reserved: Iterable[str] = (), *, fold_case: bool = False) -> None:
        self._key: Callable[[str], str] = str.casefold if fold_case else _same
        self._reserved = {self._key(name) for name in reserved}
        self._given: set[str] = set()
        self._next: dict[str, int] = {}

    def add(self, name: str) -> str:
        key = self._key(name)
        if key not in self._given:
            self._given.add(key)
            return name
        number = self._next.get(key, 2)
        while (candidate := self._key(f"{name}_{number}")) in self._given or (
            candidate in self._reserved
        ):
            number += 1
        self._next[key] = number + 1
        self._given.add(candidate)
        return f"{name}_{number}"

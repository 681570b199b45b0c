"""The chains of a complex on the command line: ``--msa A.a3m --msa B.sto --copies 2,1
[--paired-msa PAIR.a3m]``, shared by ``predict`` and ``submit``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from foldserve.cli.options import parse_copies
from foldserve.errors import InputError
from foldserve.msa.model import Msa
from foldserve.msa.names import safe_name
from foldserve.msa.pairing import ChainMsa, pair_chains
from foldserve.msa.reading import NamedMsa, read


@dataclass(frozen=True)
class ComplexChains:
    """One MSA file per distinct chain, the copies of each and an optional paired MSA."""

    paths: tuple[str, ...]
    copies: tuple[int, ...]
    paired: Path | None = None

    @property
    def where(self) -> str:
        """The files, as an error or a log names the input."""
        return ", ".join(self.paths)

    @property
    def name(self) -> str:
        """The complex's name: its chain files' names joined, e.g. ``relb_rele``."""
        return safe_name("_".join(Path(path).name.split(".")[0] for path in self.paths))

    def read(self, msa_format: str = "auto") -> NamedMsa:
        """Every chain's MSA read and checked, paired into ColabFold's complex MSA."""
        msas = [read(path, format=msa_format) for path in self.paths]
        paired: Msa | None = None
        if self.paired is not None:
            paired = read(self.paired, format="auto")
        result = pair_chains(
            [ChainMsa(msa, count) for msa, count in zip(msas, self.copies, strict=True)],
            paired=paired,
        )
        return NamedMsa(self.name, result.msa)


def complex_chains(
    msa_paths: list[str], copies: str | None, paired: Path | None
) -> ComplexChains | None:
    """The complex the flags describe, or None when they give one chain in one copy."""
    if not msa_paths:
        if copies is not None or paired is not None:
            flag = "--copies" if copies is not None else "--paired-msa"
            raise InputError(
                f"{flag} without --msa",
                where=flag,
                fix="give each distinct chain's MSA with --msa (--msa A.a3m --msa B.a3m)",
            )
        return None
    counts = parse_copies(copies, len(msa_paths))
    if len(msa_paths) == 1 and counts == (1,) and paired is None:
        return None
    if "-" in msa_paths and len(msa_paths) > 1:
        raise InputError(
            "standard input given as one chain of several",
            where="--msa",
            fix="give every chain's MSA as a file",
        )
    return ComplexChains(tuple(msa_paths), counts, paired)

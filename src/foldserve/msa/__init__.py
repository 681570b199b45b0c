"""Reading, checking, filtering and writing multiple sequence alignments.

>>> from foldserve import msa
>>> alignment = msa.read("family.sto")          # any format, sniffed from the content
>>> len(alignment), alignment.query_length
>>> for each in msa.read_each("Pfam-A.seed"):  # every alignment of a file that holds several
...     each.name, len(each.msa)
"""

from foldserve.msa.filtering import FilterSettings, filter_msa
from foldserve.msa.model import ComplexLayout, Msa
from foldserve.msa.names import safe_name
from foldserve.msa.reading import NamedMsa, read, read_each
from foldserve.msa.stats import MsaReport, inspect
from foldserve.msa.writing import write

__all__ = [
    "ComplexLayout",
    "FilterSettings",
    "Msa",
    "MsaReport",
    "NamedMsa",
    "filter_msa",
    "inspect",
    "read",
    "read_each",
    "safe_name",
    "write",
]

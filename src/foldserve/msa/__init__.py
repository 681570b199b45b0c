"""Reading, checking, filtering and writing multiple sequence alignments.

>>> from foldserve import msa
>>> alignment = msa.read("family.sto")          # any format, sniffed from the content
>>> len(alignment), alignment.query_length
>>> for each in msa.read_each("Pfam-A.seed"):  # every alignment of a file that holds several
...     each.name, len(each.msa)
>>> searched = msa.search("query.fasta", databases=("uniref90.fasta.gz",))  # build one

``msa.search`` is the function :func:`foldserve.msa.search.search`: importing it binds its name
over the attribute the import system set for the subpackage of the same name. The subpackage's
docstring says why, and how to reach its other contents (by import, not by attribute).
"""

from foldserve.msa.filtering import FilterSettings, filter_msa
from foldserve.msa.model import ComplexLayout, Msa
from foldserve.msa.names import safe_name
from foldserve.msa.reading import NamedMsa, read, read_each
from foldserve.msa.search import search
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
    "search",
    "write",
]

"""Reading, checking, filtering and writing multiple sequence alignments.

>>> from foldserve import msa
>>> alignment = msa.read("family.sto")          # any format, sniffed from the content
>>> len(alignment), alignment.query_length
"""

from foldserve.msa.filtering import FilterSettings, filter_msa
from foldserve.msa.model import Msa
from foldserve.msa.reading import read
from foldserve.msa.stats import MsaReport, inspect
from foldserve.msa.writing import write

__all__ = ["FilterSettings", "Msa", "MsaReport", "filter_msa", "inspect", "read", "write"]

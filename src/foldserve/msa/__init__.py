"""Reading, checking, filtering and writing multiple sequence alignments.

>>> from foldserve import msa
>>> alignment = msa.read("family.sto")          # any format, sniffed from the content
>>> len(alignment), alignment.query_length
"""

from foldserve.msa.model import Msa
from foldserve.msa.reading import read

__all__ = ["Msa", "read"]

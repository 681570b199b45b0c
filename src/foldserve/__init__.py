"""foldserve: protein structure prediction from the multiple sequence alignment you already have."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("foldserve")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

__all__ = ["__version__"]

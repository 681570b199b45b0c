"""The version of foldserve: the one place it is written (pyproject.toml reads it from here).

A literal, not ``importlib.metadata``: every command imports this, and reading the installed
metadata costs about 70 ms of start-up.
"""

__version__ = "0.1.0"

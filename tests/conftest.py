"""Shared fixtures: the real test files in ../shared/testdata, read in place.

A checkout that does not sit beside ``shared/`` names the folder with ``FOLDSERVE_TESTDATA``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TESTDATA = Path(
    os.environ.get("FOLDSERVE_TESTDATA")
    or Path(__file__).resolve().parents[2] / "shared" / "testdata"
)


def data(relative: str) -> Path:
    path = TESTDATA / relative
    if not path.exists():
        pytest.fail(
            f"missing test file {path}: put the shared test data beside the repository "
            "or point FOLDSERVE_TESTDATA at it"
        )
    return path

"""Shared fixtures: the real test files in ../shared/testdata, read in place."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata"


def data(relative: str) -> Path:
    path = TESTDATA / relative
    if not path.exists():
        pytest.fail(f"missing test file {path}: the shared test data must sit beside the repo")
    return path

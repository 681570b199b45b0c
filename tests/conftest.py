"""Shared fixtures: the real test files in ../shared/testdata, read in place.

A checkout that does not sit beside ``shared/`` names the folder with ``FOLDSERVE_TESTDATA``.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import hypothesis
import numpy as np
import pytest

from foldserve.fold.alphafold2.predictor import Predictor
from foldserve.msa.model import Msa

# Tests run two at a time (pytest -n 2) on two cores: one thread each for PyTorch (OpenFold3)
# and the BLAS, set before either is imported, or the two oversubscribe the cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

# Some tests press Ctrl-C on a CLI process they start. A shell that starts the suite in the
# background (`make test &`, a CI runner's job) starts it with SIGINT ignored, and an ignored
# signal is inherited by every process started from here: those CLI processes would never see
# their Ctrl-C. Python's own default is restored, in this process and so in its children.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

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


def same_msa(a: Msa, b: Msa, *, warnings: bool = True) -> bool:
    """Whether two alignments hold the same rows, names and insertions, and (``warnings``) the
    same warnings, which name the file they were read from."""
    return (
        a.names == b.names
        and a.descriptions == b.descriptions
        and np.array_equal(a.residues, b.residues)
        and np.array_equal(a.deletions, b.deletions)
        and a.insertions == b.insertions
        and (not warnings or a.warnings == b.warnings)
    )


@pytest.fixture(autouse=True)
def _job_records_kept_out_of_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Every job a client submits is recorded (``Client.submit``), also from a CLI process a
    test starts: into the test session's folder, never the home of whoever runs the tests."""
    monkeypatch.setenv("FOLDSERVE_STATE_DIR", str(tmp_path_factory.getbasetemp() / "state"))
    # MSA search results are cached per user; a test's never reach the real cache.
    monkeypatch.setenv("FOLDSERVE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


TEST_WEIGHT_BLOCKS = 2
WEIGHTS_CACHE = Path(
    os.environ.get("FOLDSERVE_TEST_WEIGHTS_CACHE")
    or Path(__file__).resolve().parents[1] / ".pytest_cache" / "foldserve-test-weights"
)


@pytest.fixture(scope="session")
def test_params() -> Path:
    """Reduced-depth random weights with the official keys (pTM and multimer v3), generated
    once and cached.

    Never committed: they are made here at test time (a few seconds) and reused by later runs.
    """
    from foldserve._version import __version__
    from foldserve.fold.alphafold2.test_weights import make_test_weights
    from foldserve.fold.weights import TEST_WEIGHTS_MARKER

    param_dir = WEIGHTS_CACHE / f"v{__version__}-blocks{TEST_WEIGHT_BLOCKS}-seed0-multimer"
    if not (param_dir / "params" / TEST_WEIGHTS_MARKER).exists():
        make_test_weights(param_dir, evoformer_blocks=TEST_WEIGHT_BLOCKS, seed=0, multimer=True)
    return param_dir


@pytest.fixture(scope="session")
def predictor(test_params: Path) -> Predictor:
    """One warm Predictor shared by the engine tests, as a worker would keep it: the one
    ``load_engine`` keeps for the process, which the CLI run in process also gets."""
    from foldserve.fold.engine import load_engine

    engine = load_engine("alphafold2", test_params)
    assert isinstance(engine, Predictor)
    return engine


@pytest.fixture(scope="session")
def openfold3_params() -> Path:
    """Random OpenFold3 weights for the reduced test configuration, made once and cached
    (about 80 MB, never committed)."""
    import hashlib
    import json

    from foldserve._version import __version__
    from foldserve.fold.openfold3.layout import TEST_MODEL_UPDATE, is_test_checkpoint
    from foldserve.fold.openfold3.test_weights import make_test_checkpoint

    configuration = json.dumps(TEST_MODEL_UPDATE, sort_keys=True).encode()
    version = hashlib.sha256(configuration).hexdigest()[:8]
    param_dir = WEIGHTS_CACHE / f"v{__version__}-openfold3-{version}-seed0"
    if not is_test_checkpoint(param_dir):
        make_test_checkpoint(param_dir, seed=0)
    return param_dir


# Hypothesis: "ci" (the default) is reproducible (a fixed derandomised search, no example
# database written into the checkout); FOLDSERVE_HYPOTHESIS=explore searches at random, longer.
hypothesis.settings.register_profile(
    "ci", derandomize=True, database=None, deadline=None, print_blob=True
)
hypothesis.settings.register_profile("explore", max_examples=2000, deadline=None)
hypothesis.settings.load_profile(os.environ.get("FOLDSERVE_HYPOTHESIS", "ci"))

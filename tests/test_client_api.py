"""Checks the Python client makes itself, before anything is sent, with the errors the command
line gives: the command line reuses them and names its flag instead of the parameter."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from foldserve.cli import app
from foldserve.client.batch import run_batch
from foldserve.client.client import Client
from foldserve.client.request import build_request
from foldserve.errors import InputError
from foldserve.fold.results import PredictOptions
from tests.conftest import data
from tests.serving import SMALL_MSA

UNREACHABLE = "http://127.0.0.1:9"


@pytest.mark.parametrize("seconds", [0, -5, 8 * 24 * 3600, float("nan")])
def test_an_unusable_execution_timeout_is_refused_before_the_msa_is_read(
    seconds: float, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match="out of range") as caught:
        build_request(tmp_path / "not-read.a3m", execution_timeout_s=seconds)
    assert caught.value.where == "execution_timeout_s"
    assert "604800 seconds" in (caught.value.fix or "")


def test_an_unusable_ttl_names_its_parameter() -> None:
    with pytest.raises(InputError) as caught:
        build_request(data(SMALL_MSA), ttl_s=0)
    assert caught.value.where == "ttl_s"


def test_the_command_line_names_its_flag(tmp_path: Path) -> None:
    ran = CliRunner().invoke(
        app,
        ["submit", "--msa", str(tmp_path / "not-read.a3m"), "--url", UNREACHABLE,
         "--timeout", "0", "--no-wait"],
    )  # fmt: skip
    assert ran.exit_code == 2, ran.output
    assert "error: --timeout: 0 s is out of range" in ran.output


def test_batch_concurrency_is_checked_by_the_api() -> None:
    with (
        Client(url=UNREACHABLE, api_key="k") as client,
        pytest.raises(InputError, match="0 is out of range") as caught,
    ):
        run_batch(
            client,
            [],
            options=PredictOptions(),
            execution_timeout_s=60,
            concurrency=0,
            report=lambda event: None,
        )
    assert caught.value.where == "concurrency"

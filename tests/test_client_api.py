"""Checks the Python client makes itself, before anything is sent, with the errors the command
line gives: the command line reuses them and names its flag instead of the parameter."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from foldserve.cli import app
from foldserve.client.batch import run_batch
from foldserve.client.client import Client
from foldserve.client.request import ChainSpec, build_request
from foldserve.errors import InputError
from foldserve.fold.results import PredictOptions
from tests.conftest import data
from tests.serving import SMALL_MSA

UNREACHABLE = "http://127.0.0.1:9"
CHAIN_B = "msa/stockholm/openfold_2q2k_A_uniref90_hits.sto"


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


@pytest.mark.timeout(60)
def test_a_complex_is_checked_by_the_api_before_anything_is_sent() -> None:
    chains = [ChainSpec(data(SMALL_MSA)), ChainSpec(data(CHAIN_B))]
    with Client(url=UNREACHABLE, api_key="k") as client:
        with pytest.raises(InputError, match="62 columns") as narrow:
            client.submit(chains=chains, paired_msa=data(SMALL_MSA))
        assert narrow.value.where == str(data(SMALL_MSA))
        with pytest.raises(InputError, match="no such template") as missing:
            client.submit(chains=chains, templates=[data(SMALL_MSA).parent / "none.cif"])
        assert missing.value.where == str(data(SMALL_MSA).parent / "none.cif")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("flags", "where"),
    [
        (["--msa", "A", "--msa", "B", "--copies", "1,x"], "--copies"),
        (["--msa-dir", ".", "--copies", "2"], "--copies"),
        (["--msa", "A", "--templates", "server"], "--templates"),
        (["--msa", "A", "--max-template-date", "2021-01-01"], "--max-template-date"),
        (["--msa", "A", "--model-type", "monomer"], "--model-type"),
        (["--msa", "A", "--num-seeds", "2", "--num-predictions-per-model", "3"],
         "--num-predictions-per-model"),
    ],
)  # fmt: skip
def test_the_command_line_checks_complex_flags_first(flags: list[str], where: str) -> None:
    ran = CliRunner().invoke(app, ["submit", *flags, "--url", UNREACHABLE, "--no-wait"])
    assert ran.exit_code == 2, ran.output
    assert f"error: {where}:" in ran.output

"""Server hygiene decided at start: API keys that can work, at least one worker; and a client
given a key that can never be sent says so in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from foldserve.client.client import Client
from foldserve.errors import InputError
from tests.cli_runner import foldserve
from tests.serving import free_port


def serve(tmp_path: Path, *extra: str, key: str | None) -> tuple[int, str]:
    ran = foldserve(
        "serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "server"), *extra,
        env={"FOLDSERVE_API_KEY": key, "FOLDSERVE_CONFIG": str(tmp_path / "none.toml")},
    )  # fmt: skip
    return ran.exit_code, ran.stderr


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("k\u00e9y-with-an-accent-0123", "non-ASCII"),
        ("key with a space 0123456", "space"),
        ("short-key", "shorter than 16"),
    ],
)
def test_unusable_server_key_is_refused_at_start(tmp_path: Path, key: str, says: str) -> None:
    code, stderr = serve(tmp_path, key=key)
    assert code == 2
    (line,) = stderr.strip().splitlines()
    assert says in line and "FOLDSERVE_API_KEY" in line
    assert key not in line  # never echoed


@pytest.mark.timeout(30)
def test_zero_workers_is_refused(tmp_path: Path) -> None:
    code, stderr = serve(tmp_path, "--workers", "0", "--no-auth", key=None)
    assert code == 2
    assert "--workers" in stderr and "1 to 64" in stderr


@pytest.mark.timeout(30)
def test_client_with_a_non_ascii_key_says_so(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="non-ASCII"):
        Client(url="http://127.0.0.1:9/v2/local", api_key="\u2603-key-0123456789")
    ran = foldserve(
        "status", "--url", "http://127.0.0.1:9", "job-1",
        env={"FOLDSERVE_API_KEY": "\u2603-key-0123456789"},
    )  # fmt: skip
    assert ran.exit_code == 2
    (line,) = ran.stderr.strip().splitlines()
    assert "non-ASCII" in line

"""AWS on loopback for tests: one moto server per use, and the environment that points boto3 at it
and away from any real account (no profile, no credentials file, no real endpoint)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from moto.server import ThreadedMotoServer

REGION = "us-east-1"


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 (any free port); yields its URL, stops it on exit."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def aws_env(endpoint: str, home: Path) -> dict[str, str | None]:
    """Environment for boto3 (and any child process) that reaches only the moto server at
    ``endpoint``; ``None`` values are variables to unset."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        **dict.fromkeys(["AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"]),
    }

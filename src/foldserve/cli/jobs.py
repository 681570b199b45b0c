"""``foldserve jobs schema``: the job contract as JSON Schema, for clients in other languages."""

from __future__ import annotations

import json
import sys

import typer

app = typer.Typer(
    help="The job contract: JSON Schema of job input and output.", no_args_is_help=True
)


@app.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of the /run body and of the job output."""
    from foldserve.jobs.schema import job_schema

    sys.stdout.write(json.dumps(job_schema(), indent=2) + "\n")

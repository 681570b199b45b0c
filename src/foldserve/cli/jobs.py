"""``foldserve jobs schema``: the job contract as JSON Schema, for clients in other languages."""

from __future__ import annotations

import sys

import typer

app = typer.Typer(
    help="The job contract: JSON Schema of job input and output.", no_args_is_help=True
)


@app.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of the /run body, the job output and a progress event."""
    from foldserve.jobs.schema import job_schema_text

    sys.stdout.write(job_schema_text())

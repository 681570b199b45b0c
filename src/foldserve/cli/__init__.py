"""The ``foldserve`` command line: one thin module per command group, imported on first use.

``foldserve --help`` and every command import only what they use: the top-level group knows
each command's name and one-line help without importing its module, so starting the CLI costs
click alone, and ``foldserve msa inspect`` never loads FastAPI, JAX or matplotlib.

Errors foldserve raises on purpose (:mod:`foldserve.errors`) become one line on stderr and an
exit code chosen here (:func:`exit_code_for`); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import PurePath
from typing import Annotated, Any, get_args

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from foldserve._version import __version__
from foldserve.errors import FoldserveError, InputError, Refused, WeightsError

__all__ = ["app", "exit_code_for", "main"]


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives: ``module`` holds a Typer ``app`` (a group) or ``function``."""

    module: str
    help: str
    function: str | None = None


COMMANDS: dict[str, LazyCommand] = {
    "msa": LazyCommand(
        "msa", "Inspect, convert, filter and search MSAs (A3M, Stockholm, FASTA, ...)."
    ),
    "predict": LazyCommand(
        "predict",
        "Predict structures from an MSA with AlphaFold2 or OpenFold3, in this process.",
        "predict_command",
    ),
    "submit": LazyCommand(
        "client",
        "Predict on a RunPod, self-hosted or SageMaker endpoint; the MSA is checked here first.",
        "submit_command",
    ),
    "status": LazyCommand(
        "client", "Show a job's status: queued, running, finished.", "status_command"
    ),
    "fetch": LazyCommand("client", "Download a finished job's files.", "fetch_command"),
    "cancel": LazyCommand("client", "Cancel a queued or running job.", "cancel_command"),
    "serve": LazyCommand(
        "serve", "Serve the job API (RunPod-compatible) with warm GPU workers.", "serve_command"
    ),
    "jobs": LazyCommand("jobs", "The job contract: JSON Schema of job input and output."),
    "weights": LazyCommand("weights", "Fetch, check or generate AlphaFold2 and OpenFold3 weights."),
    "deploy": LazyCommand(
        "deploy",
        "Deploy foldserve: RunPod serverless workers, SageMaker async endpoints, Ray cluster "
        "files (VMs, KubeRay).",
    ),
    "compare": LazyCommand(
        "compare", "TM-score, RMSD, GDT-TS and lDDT of structures.", "compare_command"
    ),
    "report": LazyCommand(
        "report", "Write an offline HTML report of a prediction directory.", "report_command"
    ),
    "pipeline": LazyCommand(
        "pipeline", "Multi-step runs: MSA search, check, predict, compare, report.", None
    ),
    "runs": LazyCommand("pipeline", "The record of pipeline runs (MLflow).", None),
}
#: Typer apps that are not called ``app`` in their module.
_APP_NAMES = {"pipeline": "pipeline_app", "runs": "runs_app"}


def exit_code_for(error: FoldserveError) -> int:
    """2 for what the user can fix in what they gave (a file, a flag, a key, the weights), 1 for
    what went wrong elsewhere (an endpoint down, a job that failed)."""
    return 2 if isinstance(error, InputError | Refused | WeightsError) else 1


def print_error(error: FoldserveError) -> None:
    """One line on stderr: ``error: where: what. Fix: how``."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True).print(
        f"[bold red]error:[/bold red] {escape(error.one_line())}", highlight=False, soft_wrap=True
    )


def _one_value(param: TyperArgument | TyperOption) -> str:
    """What one value of a list parameter is, as Typer names a single one: ``<path>``, ``<str>``."""
    (element,) = get_args(param.type_descriptor.annotation)
    if isinstance(element, type) and issubclass(element, PurePath):
        return f"<{param.type_descriptor.path_type}>"
    return f"<{getattr(element, '__name__', element)}>"


class _ListArgument(TyperArgument):
    """An argument taking many values, labelled in help by what one value is (``paths...
    <path>``): Typer labels it with its annotation (``<list[Path]>``) and, unlike an option's,
    an argument's metavar does not replace that label."""

    def display_type(self, ctx: Any) -> str:
        return _one_value(self)


def _plain_help(command: Any) -> Any:
    """``command`` and its subcommands with the help ``foldserve --help`` has: click's plain
    layout, and each value labelled by its kind, never by a Python annotation.

    Typer's default, Rich's option table, gives each part of an option its own column and cuts
    a long option name short (``--recycle-early-stop-…``) at 80 columns; click's layout puts
    such a name on a line of its own, and shows a flag without a ``<bool>`` label. A
    repeatable option or an argument taking many values is labelled by one value's kind, and a
    group lists its commands as ``foldserve --help`` does, by their whole first paragraph.
    """
    if isinstance(command, TyperCommand | TyperGroup):
        command.rich_markup_mode = None
    for param in command.params:
        if isinstance(param, TyperOption) and param.multiple and param.metavar is None:
            param.metavar = _one_value(param)
        elif isinstance(param, TyperArgument) and param.type_descriptor.is_list:
            param.__class__ = _ListArgument  # Typer takes no class for the arguments it builds
    for subcommand in getattr(command, "commands", {}).values():
        if subcommand.short_help is None and subcommand.help:
            # A group lists its commands by their first paragraph, wrapped (click would cut it).
            subcommand.short_help = subcommand.help.split("\n\n")[0]
        _plain_help(subcommand)
    return command


class LazyGroup(TyperGroup):
    """The top-level group: a command's module is imported only when it runs or shows help."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module = importlib.import_module(f"foldserve.cli.{spec.module}")
        if spec.function is not None:
            single = typer.Typer(add_completion=False)
            single.command(cmd_name)(getattr(module, spec.function))
            command = typer.main.get_command(single)
        else:
            # A group even with one command (Typer would run that command in its place).
            command = typer.main.get_group(getattr(module, _APP_NAMES.get(cmd_name, "app")))
        command.name = cmd_name
        return _plain_help(command)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, spec.help) for name, spec in COMMANDS.items()])

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except FoldserveError as error:
            print_error(error)
            raise typer.Exit(exit_code_for(error)) from None


app = typer.Typer(
    cls=LazyGroup,
    name="foldserve",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: Rich's would import every command to list them
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    add_completion=False,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"foldserve {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Protein structure prediction from the MSA you already have: read any MSA, check it
    before GPU time is spent, fold it in process, on your own endpoint or on RunPod."""


def main() -> None:
    """Console-script entry point."""
    try:
        typer.main.get_command(app).main(prog_name="foldserve")
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise SystemExit(130) from None
    except BrokenPipeError:
        raise SystemExit(0) from None

"""The package layout stays what the README's "Architecture" section says.

Imports point one way: cli → pipeline/cloud/server/client → jobs → fold → msa/structure →
errors/files/config/remote/outbound/retry/_version. Every import counts, also one inside a
function (a lazy import is still a dependency); only imports under ``if TYPE_CHECKING:`` are
annotations and exempt. Nothing imports the package root ``foldserve`` itself, whose lazy
attributes are for users.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "foldserve"

#: Rank of each top-level part of the package: a part may import parts of higher rank only.
RANKS = {
    "cli": 0,
    "pipeline": 1,
    "cloud": 1,
    "server": 1,
    "client": 1,
    "jobs": 2,
    "fold": 3,
    "msa": 4,
    "structure": 4,
    "errors": 5,
    "files": 5,
    "config": 5,
    "remote": 5,
    "outbound": 5,
    "retry": 5,
    "aws": 5,
    "graceful": 5,
    "_version": 5,
}
#: Same-rank imports that are part of the design: a pipeline may predict on an endpoint, and
#: the lowest layer's modules are small utilities that may use one another.
ALLOWED_SIDEWAYS = {("pipeline", "client")} | {
    (a, b) for a in RANKS for b in RANKS if RANKS[a] == RANKS[b] == 5
}


def _part(module: str) -> str | None:
    """``foldserve.jobs.schema`` -> ``jobs``; None outside foldserve."""
    parts = module.split(".")
    if parts[0] != "foldserve":
        return None
    return parts[1] if len(parts) > 1 else ""


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, imported module) for every import outside ``if TYPE_CHECKING:`` blocks."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if base == "foldserve":
                # `from foldserve import msa` names a subpackage, checked as such.
                found.extend((node.lineno, f"foldserve.{alias.name}") for alias in node.names)
            else:
                found.append((node.lineno, base))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _violations() -> list[str]:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        importer = _part(module)
        if importer == "":  # the package root's lazy attributes may reach anything
            continue
        assert importer in RANKS, f"{path}: add {importer!r} to RANKS in this test"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for line, imported_module in _imports(tree, module, path.name == "__init__.py"):
            imported = _part(imported_module)
            where = f"{path.relative_to(PACKAGE.parent)}:{line}"
            if imported is None or imported == importer:
                continue
            if imported == "" or imported not in RANKS:
                problems.append(f"{where} imports the package root ({imported_module})")
                continue
            if RANKS[importer] < RANKS[imported] or (importer, imported) in ALLOWED_SIDEWAYS:
                continue
            problems.append(f"{where}: {importer} must not import {imported_module}")
    return problems


@pytest.mark.timeout(60)
def test_imports_point_one_way() -> None:
    assert _violations() == []


@pytest.mark.timeout(60)
def test_the_check_sees_a_wrong_import(tmp_path: Path) -> None:
    """The checker itself finds an upward import, a root import and a relative one."""
    source = (
        "from foldserve.server.app import create_app\n"
        "from foldserve import __version__\n"
        "def f():\n    from ..cli import app\n"
    )
    found = _imports(ast.parse(source), "foldserve.jobs.run", is_package=False)
    assert [name for _, name in found] == [
        "foldserve.server.app",
        "foldserve.__version__",
        "foldserve.cli",
    ]
    assert _part("foldserve.__version__") not in RANKS

"""The layout follows the data: no stage imports a later one, no module reaches into another
package's private names, and files and functions stay short (ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "contrastkit"
# The stages in the order data flows through them; a module may import its own stage and the
# stages before it. (The package's __init__ is a lazy front door and is left out.)
STAGES = (
    "errors",
    "io",
    "config",
    "data",
    "views",
    "models",
    "losses",
    "methods",
    "training",
    "index",
    "evaluation",
    "refiner",
    "run",
    "demo",
    "apps",
    "cli",
)
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p != SRC / "__init__.py")


def _stage(parts: tuple[str, ...]) -> str:
    return parts[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, imported names, line) of every `contrastkit` import in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("contrastkit"):
                found.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            package = path.relative_to(SRC).parts[:-1]
            base = package[: len(package) - node.level + 1]
            module = ".".join(("contrastkit", *base, *([node.module] if node.module else [])))
            found.append((module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            found += [
                (a.name, [], node.lineno) for a in node.names if a.name.startswith("contrastkit")
            ]
    return found


def test_every_module_belongs_to_a_stage():
    stages = {_stage(p.relative_to(SRC).parts) for p in _modules()}
    assert stages <= set(STAGES), sorted(stages - set(STAGES))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_stage_imports_a_later_one(path):
    own = STAGES.index(_stage(path.relative_to(SRC).parts))
    for module, _, line in _imports(path):
        parts = module.split(".")[1:]
        if not parts:
            continue  # `from contrastkit import __version__`, `losses`
        target = STAGES.index(parts[0]) if parts[0] in STAGES else -1
        assert target <= own, f"{path.name}:{line} ({STAGES[own]}) imports {module} (a later stage)"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_uses_another_packages_private_names(path):
    own = path.relative_to(SRC).parts[0]
    for module, names, line in _imports(path):
        parts = module.split(".")[1:]
        if not parts or parts[0] == own.removesuffix(".py"):
            continue
        private = [p for p in parts if p.startswith("_")] + [n for n in names if n.startswith("_")]
        assert not private, f"{path.name}:{line} imports private {private} from {module}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_files_and_functions_are_short(path):
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_FILE_LINES, (
        f"{path.name} has {len(text.splitlines())} lines"
    )
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, (
                f"{path.name}:{node.lineno} {node.name} has {length} lines"
            )

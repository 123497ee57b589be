"""The layering of docs/design.md holds: no package imports one below it in the table."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "bertforge"
# package -> bertforge packages it must never import (at module level or inside functions)
FORBIDDEN = {
    "families": ("models", "heads", "interop", "objectives", "data", "training", "cli", "peft"),
    "models": ("heads", "interop", "families", "objectives", "data", "training", "cli", "peft"),
    "heads": ("interop", "objectives", "data", "training", "cli", "peft"),
    "objectives": ("models", "heads", "interop", "training", "cli", "data"),
    "interop": ("training", "cli", "data"),
    "tokenization": ("models", "heads", "interop", "families", "training", "cli", "data"),
}


def imported(path: Path) -> set[str]:
    """The bertforge subpackages a module imports."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n.split(".")[1] for n in names if n.startswith("bertforge.") and n.count(".")}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_upward_imports(package: str) -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(imported(path) & set(FORBIDDEN[package]))
        for path in (PACKAGE / package).rglob("*.py")
    }
    assert not {k: v for k, v in offenders.items() if v}

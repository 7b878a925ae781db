"""The three layers, one direction: checked by parsing the code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in a file."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


@pytest.mark.parametrize("path", sorted((ROOT / "analytics").glob("*.py")), ids=lambda p: p.name)
def test_analytics_never_imports_streamlit_or_ui(path: Path) -> None:
    for module, _ in _imports(path):
        assert not module.startswith(("streamlit", "ui")), f"{path.name} imports {module}"


@pytest.mark.parametrize("path", sorted((ROOT / "pages").glob("*.py")), ids=lambda p: p.name)
def test_pages_use_only_public_names_and_no_database(path: Path) -> None:
    for module, names in _imports(path):
        assert not module.startswith(("sqlalchemy", "polars", "pandas")), (
            f"{path.name} imports {module}: pages render, ui and analytics compute"
        )
        private = [n for n in names if n.startswith("_")]
        assert not private, f"{path.name} imports private names {private} from {module}"
        if module.startswith("analytics."):
            public = getattr(__import__(module, fromlist=["__all__"]), "__all__", [])
            assert set(names) <= set(public), f"{path.name}: {set(names) - set(public)}"


def test_pages_are_thin() -> None:
    for path in (ROOT / "pages").glob("*.py"):
        assert ".group_by(" not in path.read_text(), f"{path.name} reshapes data"

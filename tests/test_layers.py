"""The three layers, one direction: checked by parsing the code."""

from __future__ import annotations

import ast
import importlib
import importlib.util
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


@pytest.mark.parametrize(
    "path", sorted((ROOT / "analytics").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
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
            parent = importlib.import_module(module)
            public = set(getattr(parent, "__all__", []))
            is_package = hasattr(parent, "__path__")
            modules = {n for n in names if is_package and importlib.util.find_spec(f"{module}.{n}")}
            assert set(names) <= public | modules, f"{path.name}: {set(names) - public}"


def test_pages_are_thin() -> None:
    for path in (ROOT / "pages").glob("*.py"):
        assert ".group_by(" not in path.read_text(), f"{path.name} reshapes data"


_APP = [
    p
    for folder in ("analytics", "ui", "pages")
    for p in sorted((ROOT / folder).rglob("*.py"))
    if not p.is_relative_to(ROOT / "analytics" / "demo")
    and not p.is_relative_to(ROOT / "analytics" / "cli")
]


@pytest.mark.parametrize("path", _APP, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_app_never_imports_the_demo_generator(path: Path) -> None:
    """The demo generator and its evaluation are fixtures: only the CLI (seed, evaluate)
    reaches them, never a page, ``ui`` or the analytics the pages read."""
    for module, names in _imports(path):
        reached = [module] + [f"{module}.{n}" for n in names]
        assert not any(m == "analytics.demo" or m.startswith("analytics.demo.") for m in reached), (
            f"{path.relative_to(ROOT)} imports the demo generator ({module})"
        )

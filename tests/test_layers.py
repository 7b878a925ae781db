"""The layers, one direction: checked by parsing the code.

``analytics`` never imports Streamlit or ``ui``; ``ui`` runs only the views
(:mod:`analytics.views`), access, presentation, the core vocabulary, the briefs and the
alerts
(plus, in ``ui/data.py``, the snapshot's state for its banners); pages run only ``ui``
and those. Imports under ``if TYPE_CHECKING:`` name types for annotations and run
nothing, so they are not counted.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path, *, typing: bool = True) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in a file (without ``typing``: not those under
    ``if TYPE_CHECKING:``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped: set[int] = set()
    if not typing:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and ast.unparse(node.test) in (
                "TYPE_CHECKING",
                "typing.TYPE_CHECKING",
            ):
                skipped |= {id(n) for child in node.body for n in ast.walk(child)}
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def _reached(path: Path) -> set[str]:
    """The ``analytics`` and ``ui`` modules a file runs (a name imported from a package
    that is one of its modules counts as that module)."""
    reached: set[str] = set()
    for module, names in _imports(path, typing=False):
        if not module.startswith(("analytics", "ui")):
            continue
        package = hasattr(importlib.import_module(module), "__path__")
        subs = [n for n in names if package and importlib.util.find_spec(f"{module}.{n}")]
        reached |= {f"{module}.{n}" for n in subs}
        if not subs or len(subs) < len(names):
            reached.add(module)
    return reached


def _within(module: str, allowed: tuple[str, ...]) -> bool:
    return any(module == a or module.startswith(a + ".") for a in allowed)


#: What ``ui`` may run: the views, access (sign-in, the viewer), presentation (charts,
#: formatting, exports), the core vocabulary (roles, filters), the briefs and the
#: alerts (what people do about incidents: follow them up, escalate, subscribe).
UI_MAY = ("analytics.views", "analytics.access", "analytics.present", "analytics.core",
          "analytics.reports", "analytics.alerts", "ui")  # fmt: skip
#: ``ui/data.py`` also sets up the engines and watches the snapshot's state for its
#: banners (refresh, rebuild, read around it).
SNAPSHOT_STATE = ("analytics.sources.snapshot", "analytics.sources.fingerprint",
                  "analytics.sources.load")  # fmt: skip
#: What pages may run: ``ui`` and the views, presentation, core vocabulary and briefs.
PAGES_MAY = ("ui", "analytics.views", "analytics.present", "analytics.core", "analytics.reports",
             "analytics.alerts")  # fmt: skip


@pytest.mark.parametrize("path", sorted((ROOT / "ui").glob("*.py")), ids=lambda p: p.name)
def test_ui_only_caches_and_draws_what_the_views_compute(path: Path) -> None:
    allowed = UI_MAY + (SNAPSHOT_STATE if path.name == "data.py" else ())
    wrong = sorted(m for m in _reached(path) if not _within(m, allowed))
    assert not wrong, f"ui/{path.name} runs {wrong}: ui caches and draws, analytics.views computes"


@pytest.mark.parametrize("path", sorted((ROOT / "pages").glob("*.py")), ids=lambda p: p.name)
def test_pages_run_only_ui_and_the_views(path: Path) -> None:
    wrong = sorted(m for m in _reached(path) if not _within(m, PAGES_MAY))
    assert not wrong, f"pages/{path.name} runs {wrong}: pages draw through ui and the views"


_PUBLIC = [
    *sorted((ROOT / "ui").glob("*.py")),
    *sorted((ROOT / "analytics" / "views").glob("*.py")),
]


@pytest.mark.parametrize("path", _PUBLIC, ids=lambda p: str(p.relative_to(ROOT)))
def test_ui_and_views_modules_say_what_they_export(path: Path) -> None:
    if path.name == "__init__.py":
        return
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert not [n for n in exported if not hasattr(module, n)], f"{name}.__all__ names nothing"
    assert module.__doc__, f"{name} has no docstring"


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


def test_the_project_root_is_the_repository() -> None:
    """Default database, snapshots and ground truth live under the repository's ``data/``
    (a module moved one package deeper once pointed them at ``analytics/data/``)."""
    from analytics.core import database

    assert database.PROJECT_ROOT == ROOT
    assert (database.PROJECT_ROOT / "app.py").is_file()


@pytest.mark.parametrize(
    "path",
    [p for folder in ("analytics", "ui", "pages") for p in sorted((ROOT / folder).rglob("*.py"))],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_no_module_reaches_into_another_for_a_private_name(path: Path) -> None:
    """What one module needs from another is public there (in its ``__all__``), so a
    module's private names can change without breaking its neighbours."""
    for module, names in _imports(path):
        if module.startswith(("analytics", "ui")):
            private = [n for n in names if n.startswith("_")]
            assert not private, f"{path.relative_to(ROOT)} imports {private} from {module}"


#: The analytics packages in order: each imports only packages before it.
PACKAGES = (
    "core", "access", "sources", "metrics", "present", "detectors", "views", "reports", "alerts",
    "demo", "cli",
)  # fmt: skip


@pytest.mark.parametrize(
    "path", sorted((ROOT / "analytics").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_analytics_packages_import_one_way(path: Path) -> None:
    """``analytics/__init__.py`` lists the packages; a package reaching one after it
    (a detector importing a view, say) would make the layers a tangle."""
    parts = path.relative_to(ROOT / "analytics").parts
    if len(parts) == 1:
        return  # analytics/__init__.py, __main__.py
    mine = PACKAGES.index(parts[0])
    for module, names in _imports(path):
        reached = [module] if module != "analytics" else [f"analytics.{n}" for n in names]
        for name in reached:
            bits = name.split(".")
            if bits[0] == "analytics" and len(bits) > 1 and bits[1] != parts[0]:
                assert PACKAGES.index(bits[1]) < mine, (
                    f"{path.relative_to(ROOT)} ({parts[0]}) imports {name}, which comes after it"
                )

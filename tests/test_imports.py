"""What importing Lookout loads: heavy libraries only where they are used (issue 17).

Each check runs a fresh interpreter and reads its ``sys.modules``: deterministic, no
clock. The libraries below cost a tenth of a second to seconds each to import
(``scipy.stats`` about a second; scikit-learn, which brings pandas and pyarrow, more),
so a module that needs one in a few functions imports it inside them. The README's
Weekly trends benchmark measures the times.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from analytics.core import database
from analytics.sources.snapshot_refresh import refresh

pytestmark = pytest.mark.slow  # new processes

ROOT = Path(__file__).resolve().parent.parent

#: Libraries no page should load before it uses them.
HEAVY = ("adbc_driver_manager", "argon2", "bottleneck", "connectorx", "pandas", "plotly",
         "psycopg", "pyarrow", "scipy", "sklearn", "statsmodels", "streamlit")  # fmt: skip
#: What the Weekly Trends page's numbers are computed with: the page's view and what
#: ``bench/page.py``'s lookout mode imports.
WEEKLY = ("analytics.views.trends", "analytics.core.database", "analytics.core.filters",
          "analytics.metrics.weekly", "analytics.sources.load")  # fmt: skip
#: The modules the Weekly Trends page runs in the app (``app.py`` and ``pages/trends.py``).
WEEKLY_PAGE = ("ui.auth", "ui.data", "ui.nav", "ui.session", "ui.widgets", "ui.explorer",
               "ui.filters", "analytics.present.trend_charts", "analytics.views.selection",
               "analytics.views.trends")  # fmt: skip
VIEWS = tuple(
    f"analytics.views.{p.stem}"
    for p in sorted((ROOT / "analytics" / "views").glob("*.py"))
    if p.stem != "__init__"
)


def _run(*args: str) -> str:
    """The standard output of ``python args`` run in the repository; its error if it fails."""
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _loaded(*modules: str) -> set[str]:
    """Every module loaded by importing ``modules`` in a fresh interpreter."""
    code = (
        "import importlib, json, sys\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    return set(json.loads(_run("-c", code, *modules).splitlines()[-1]))


def _packages(modules: set[str], among: tuple[str, ...]) -> list[str]:
    return sorted({m.partition(".")[0] for m in modules} & set(among))


def _under(modules: set[str], package: str) -> list[str]:
    return sorted(m for m in modules if m == package or m.startswith(package + "."))


def test_import_analytics_loads_nothing_heavy() -> None:
    loaded = _loaded("analytics")
    assert _packages(loaded, (*HEAVY, "numpy", "polars", "sqlalchemy")) == []


def test_the_weekly_numbers_import_no_heavy_library() -> None:
    # scipy.stats comes with the first KPI test, inside analytics.metrics.stats
    loaded = _loaded(*WEEKLY)
    assert _packages(loaded, HEAVY) == []
    assert _under(loaded, "analytics.detectors") == []
    assert _under(loaded, "analytics.reports") == []


def test_the_weekly_page_in_the_app_loads_no_other_page_s_libraries() -> None:
    # streamlit brings plotly; the detectors, the briefs, scipy and scikit-learn are
    # the other pages'
    loaded = _loaded(*WEEKLY_PAGE)
    assert _packages(loaded, HEAVY) == ["plotly", "streamlit"]
    assert _under(loaded, "analytics.detectors") == []
    assert _under(loaded, "analytics.reports") == []


def test_every_page_s_view_imports_its_detectors_on_first_use() -> None:
    loaded = _loaded(*VIEWS)
    assert len(VIEWS) >= 7
    assert _packages(loaded, HEAVY) == []
    assert _under(loaded, "analytics.detectors") == []


def test_the_import_pipeline_loads_pyarrow_only_to_read_parquet() -> None:
    assert _packages(_loaded("analytics.sources.ingest"), HEAVY) == []


def test_computing_the_weekly_page_loads_only_scipy_stats_more(
    own_small_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The benchmark's page, from a fresh snapshot: its imports load numpy, polars and
    SQLAlchemy; its computation scipy.stats (timed apart) and no other package."""
    monkeypatch.setenv("LOOKOUT_SNAPSHOT_DIR", str(tmp_path / "snapshots"))
    engine = database.make_engine(own_small_db)
    try:
        refresh(engine)  # as the benchmark does before its runs
    finally:
        engine.dispose()
    page = ["--start", "2026-01-05", "--end", "2026-04-26", "--week", "2026-04-20"]
    out = _run("-m", "bench.page", "lookout", "--database", own_small_db, *page)
    report = json.loads(out.splitlines()[-1])
    assert report["cases"] > 0
    assert report["loaded"] == {
        "imports": ["numpy", "polars", "sqlalchemy"],
        "first_use": ["scipy.stats"],
        "computing": [],
    }

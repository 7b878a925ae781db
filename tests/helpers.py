"""Shared test helpers: reference p-values computed independently, the small demo."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

from scipy.stats import binomtest, fisher_exact

from analytics import demo
from analytics.core import database

#: The small demo every page test uses ends here (a Friday, so its last week is partial).
SMALL_DEMO_END = date(2026, 5, 1)

#: Seconds a page run or a command may take before its test fails as hung. A guard
#: against a hang, not a speed check: far above the slowest run seen on a loaded machine
#: (about 40 s), so that no test depends on how busy the machine is.
HANG_S = 900


def central_p(k: int, n: int, p: float) -> float:
    """Exact two-sided binomial p-value: twice the smaller one-sided tail, at most 1."""
    if n == 0:
        return 1.0
    less = binomtest(k, n, p, alternative="less").pvalue
    greater = binomtest(k, n, p, alternative="greater").pvalue
    return float(min(1.0, 2 * min(less, greater)))


def fisher_central_p(a1: int, n1: int, a0: int, n0: int) -> float:
    """Two-sided Fisher p-value of [[a1, n1-a1], [a0, n0-a0]] by doubling the smaller tail."""
    table = [[a1, n1 - a1], [a0, n0 - a0]]
    less = fisher_exact(table, alternative="less").pvalue
    greater = fisher_exact(table, alternative="greater").pvalue
    return float(min(1.0, 2 * min(less, greater)))


def seed_small_demo(url: str) -> dict:
    """Seed the small demo (seed 7, 240 days to :data:`SMALL_DEMO_END`) into the database
    at ``url``; return its manifest (the ground truth)."""
    engine = database.make_engine(url)
    try:
        return demo.seed_database(engine, scale="small", seed=7, days=240, end=SMALL_DEMO_END)
    finally:
        engine.dispose()


def small_demo(folder: Path) -> str:
    """Seed the small demo into a new SQLite file in ``folder``; return its URL. Tests
    share one (the ``small_db`` fixture) or copy it (:func:`copy_small_demo`)."""
    url = f"sqlite:///{folder / 'lookout.db'}"
    seed_small_demo(url)
    return url


def copy_small_demo(demo_file: Path, folder: Path) -> str:
    """Copy the SQLite database ``demo_file`` (the ``small_demo_file`` fixture) to
    ``lookout.db`` in ``folder``, a private copy to write to; return its URL."""
    target = folder / "lookout.db"
    source = sqlite3.connect(demo_file)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)  # consistent even with a write-ahead log beside the file
    finally:
        copy.close()
        source.close()
    return f"sqlite:///{target}"


def app_as(role: str = "associate", *, name: str = "tester"):  # noqa: ANN201
    """An AppTest of the app with someone already signed in (``role``)."""
    from streamlit.testing.v1 import AppTest

    from analytics.access import Viewer
    from analytics.core.models import Role
    from ui.auth import KEY

    at = AppTest.from_file(
        str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=HANG_S
    )
    at.session_state[KEY] = Viewer(name=name, role=Role(role))
    return at


def open_page(
    monkeypatch,  # noqa: ANN001
    url: str,
    script: str,
    *,
    role: str = "associate",
    params: dict[str, str] | None = None,
):  # noqa: ANN201
    """Run one page of the app on ``url`` as ``role``, with ``params`` in the URL."""
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", url)
    at = app_as(role)
    for key, value in (params or {}).items():
        at.query_params[key] = value
    at.switch_page(script)
    return at.run()

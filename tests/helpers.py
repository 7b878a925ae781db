"""Shared test helpers: reference p-values computed independently, the small demo."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from scipy.stats import binomtest, fisher_exact

from analytics import demo
from analytics.core import database

#: The small demo every page test uses ends here (a Friday, so its last week is partial).
SMALL_DEMO_END = date(2026, 5, 1)


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


def small_demo(folder: Path) -> str:
    """Seed the small demo (seed 7, 240 days to :data:`SMALL_DEMO_END`) into a new SQLite
    file in ``folder``; return its URL."""
    url = f"sqlite:///{folder / 'lookout.db'}"
    engine = database.make_engine(url)
    demo.seed_database(engine, scale="small", seed=7, days=240, end=SMALL_DEMO_END)
    engine.dispose()
    return url


def app_as(role: str = "associate", *, name: str = "tester", timeout: int = 240):  # noqa: ANN201
    """An AppTest of the app with someone already signed in (``role``)."""
    from streamlit.testing.v1 import AppTest

    from analytics.access import Viewer
    from analytics.core.models import Role
    from ui.auth import KEY

    at = AppTest.from_file(
        str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=timeout
    )
    at.session_state[KEY] = Viewer(name=name, role=Role(role))
    return at


def open_page(
    monkeypatch,  # noqa: ANN001
    url: str,
    script: str,
    *,
    role: str = "associate",
    timeout: int = 240,
    params: dict[str, str] | None = None,
):  # noqa: ANN201
    """Run one page of the app on ``url`` as ``role``, with ``params`` in the URL."""
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", url)
    at = app_as(role, timeout=timeout)
    for key, value in (params or {}).items():
        at.query_params[key] = value
    at.switch_page(script)
    return at.run()

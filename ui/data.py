"""Cached access to the database for the pages."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import streamlit as st
from sqlalchemy.engine import Engine, make_url

from analytics import access, reports
from analytics.core import db
from analytics.core.db import Role
from analytics.core.filters import Filters
from analytics.metrics import trends
from analytics.sources import cases, load
from analytics.sources.fingerprint import data_fingerprint
from analytics.sources.snapshot import (
    SnapshotBroken,
    SnapshotError,
    SnapshotUnwritable,
    bypass_snapshot,
    snapshot_bypassed,
    snapshot_dir,
    snapshot_is_fresh,
    snapshot_problem,
)
from analytics.views import monitor

__all__ = [
    "DataUnavailable",
    "account",
    "brief",
    "brief_files",
    "case_detail",
    "case_page",
    "account_timeline",
    "evidence",
    "incidents",
    "readiness",
    "record_feedback",
    "data_token",
    "database_label",
    "engine",
    "overview",
    "weekly_view",
    "weeks_of",
]


class DataUnavailable(RuntimeError):
    """The data could not be read or refreshed; the message says what to check."""


@st.cache_resource(max_entries=4)
def _engine_for(url: str) -> Engine:
    """The pages' reader: read-only, with a query timeout
    (:func:`analytics.core.db.make_reader`)."""
    parsed = make_url(url)
    if parsed.get_backend_name() in ("sqlite", "postgresql") and parsed.database not in (
        None,
        "",
        ":memory:",
    ):
        return db.make_reader(db.reader_database_url(url))  # LOOKOUT_READER_DATABASE_URL
    return db.make_engine(url)


@st.cache_resource(max_entries=4)
def _writer_for(url: str) -> Engine:
    return db.make_engine(url)


def engine() -> Engine:
    """The read-only engine of the configured database (one per process)."""
    return _engine_for(db.database_url())


def writer() -> Engine:
    """The engine that writes feedback, users and the audit log; nothing else uses it."""
    return _writer_for(db.database_url())


def audit(
    viewer: access.Viewer, action: str, *, target: str | None = None, filters: Any = None
) -> None:
    """Append to the audit log (a failure to write it is shown, never swallowed)."""
    shown = filters
    if isinstance(filters, Filters):
        shown = {k: v for k, v in asdict(filters).items() if v not in (None, ())}
    access.audit(writer(), viewer, action, target=target, filters=shown)


def database_label() -> str:
    """The active database URL with its password hidden."""
    return db.safe_url(db.database_url())


@st.cache_data(ttl=60, max_entries=8, show_spinner="Reading the database…")
def _overview(url: str) -> dict[str, Any]:
    parsed = make_url(url)
    path = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if path and path != ":memory:" and not Path(path).exists():
        # No file yet: nothing to read (the reader never creates one).
        return {
            "counts": dict.fromkeys(db.TABLES, 0), "first_event": None, "last_event": None,
            "first_case": None, "last_case": None, "newest": None, "demo": None,
        }  # fmt: skip
    return db.dataset_overview(_engine_for(url))


def overview() -> dict[str, Any]:
    """Row counts, date range and freshness (cached for a minute per database)."""
    return _overview(db.database_url())


def weeks_of(info: dict[str, Any]) -> tuple[date, date, date] | None:
    """First day, last day and the latest complete week's Monday, or None without cases."""
    if not info["first_case"] or not info["newest"]:
        return None
    first, newest = info["first_case"].date(), info["newest"]
    this_monday = newest.date() - timedelta(days=newest.date().weekday())
    end_of_week = datetime.combine(this_monday + timedelta(days=7), datetime.min.time())
    complete = (
        this_monday
        if newest >= end_of_week - timedelta(seconds=1)
        else (this_monday - timedelta(days=7))
    )
    return first, newest.date(), max(complete, first - timedelta(days=first.weekday()))


def _on_snapshot(eng: Engine) -> bool:
    """Whether the configured loader is the snapshot (bypassed or not)."""
    return load.loader_for(eng) == "snapshot" or snapshot_bypassed(eng) is not None


@st.cache_data(ttl=30, max_entries=8, show_spinner=False)
def _state(url: str) -> tuple[bool, str, SnapshotError | None]:
    """Whether the snapshot is up to date, a token that changes with the data, and what
    stops the snapshot from being used (unwritable folder, broken file), if anything."""
    eng = _engine_for(url)
    token = data_fingerprint(eng)
    if not _on_snapshot(eng):
        return True, token, None
    return snapshot_is_fresh(eng), token, snapshot_problem(eng)


#: Per database URL: the data token a refresh failed at and why (not retried at that token).
_FAILED: dict[str, tuple[str, SnapshotError]] = {}
#: Per database URL: the data token a background rebuild of a broken snapshot started
#: at (one attempt per token) and its process, None once it has ended.
_REBUILDS: dict[str, tuple[str, subprocess.Popen[bytes] | None]] = {}
#: The snapshot problem already on this script run's banner (a run has its own thread).
_SHOWN = threading.local()


def _refresh_command(url: str) -> tuple[list[str], dict[str, str]]:
    return [sys.executable, "-m", "analytics", "refresh"], {
        **os.environ,
        "LOOKOUT_DATABASE_URL": url,
    }


def _refresh_now(url: str, token: str) -> SnapshotError | None:
    """Refresh a stale snapshot in a separate process; what went wrong, or None."""
    failed = _FAILED.get(url)
    if failed is not None and failed[0] == token:
        return failed[1]
    command, env = _refresh_command(url)
    with st.spinner("Refreshing the snapshot with the newest data…"):
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=1800, check=False
        )
    if done.returncode == 0:
        _FAILED.pop(url, None)
        return None
    eng = _engine_for(url)
    folder = snapshot_dir(eng)
    last = (done.stderr.strip().splitlines() or ["unknown error"])[-1]
    problem = snapshot_problem(eng) or SnapshotError(
        folder, "its refresh failed (" + last.replace(str(folder.parent), "…")[-300:] + ")"
    )
    _FAILED[url] = (token, problem)
    return problem


def _rebuild_later(url: str, token: str) -> None:
    """Rebuild a broken snapshot in a separate process, in the background, once per data
    token (the pages read the database meanwhile)."""
    if url in _REBUILDS and _REBUILDS[url][0] == token:
        return
    command, env = _refresh_command(url)
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _REBUILDS[url] = (token, process)


def _rebuilt(url: str) -> None:
    """Check the snapshot again as soon as a background rebuild has ended."""
    token, process = _REBUILDS.get(url, ("", None))
    if process is not None and process.poll() is not None:
        _REBUILDS[url] = (token, None)
        _state.clear()


def _key(problem: SnapshotError | None) -> tuple[type, str] | None:
    return None if problem is None else (type(problem), str(problem))


def data_token() -> str:
    """A token that changes with the data; a stale snapshot is refreshed first.

    The refresh runs in a separate process: the fast reader links its own SQLite
    library, which must never share a process with the engine's open connections.
    A snapshot that cannot be used (its folder cannot be written, a file is broken, the
    refresh failed) is bypassed: the pages read the database directly (pushdown) with
    the banner of :func:`readiness`, and a broken snapshot is rebuilt in the background.
    """
    url = db.database_url()
    _rebuilt(url)
    fresh, token, problem = _state(url)
    eng = _engine_for(url)
    if not _on_snapshot(eng):
        return token
    if problem is None and not fresh:
        known = _FAILED.get(url, ("", None))[0] == token  # on the banner of readiness
        problem = _refresh_now(url, token)
        if problem is None:
            _state.clear()
            fresh, token, problem = _state(url)
        elif not known:
            st.warning(_banner(problem), icon=":material/database:")
    _SHOWN.key = _key(problem)
    bypass_snapshot(eng, problem)
    if problem is None:
        return token
    if isinstance(problem, SnapshotBroken):
        _rebuild_later(url, token)
    return f"{token}:pushdown"


def _banner(problem: SnapshotError) -> str:
    """What the pages say while they read around the snapshot."""
    if isinstance(problem, SnapshotBroken):
        then = "it will be rebuilt"
    elif isinstance(problem, SnapshotUnwritable):
        then = "check the folder (LOOKOUT_SNAPSHOT_DIR) and its disk"
    else:
        then = "it will be refreshed again when the data changes"
    return (
        f"Reading the database directly: {problem}; {then}. The numbers are the same, "
        "pages may be slower."
    )


def _snapshot_notice(url: str) -> str:
    """The banner while the pages read around the snapshot, else ``""``."""
    _rebuilt(url)
    try:
        _fresh, token, problem = _state(url)
    except Exception:  # noqa: BLE001 - the database banner is readiness's job
        return ""
    failed = _FAILED.get(url)
    if problem is None and failed is not None and failed[0] == token:
        problem = failed[1]
    return _banner(problem) if problem is not None else ""


@st.cache_data(ttl=3600, max_entries=32, show_spinner="Computing the week…")
def _weekly_view(
    url: str, filters: Filters, week: date, count: str, token: str
) -> trends.WeeklyView:
    cube = load.load_cube(_engine_for(url), filters)
    return trends.weekly_view(cube, week=week, count=count)  # type: ignore[arg-type]


_CHECK = " Check that the database is reachable and that LOOKOUT_DATABASE_URL is right."


@contextmanager
def _reading(what: str, hint: str = _CHECK) -> Iterator[str]:
    """Yield the database URL; any failure inside (but a :class:`DataUnavailable`)
    becomes a :class:`DataUnavailable` saying ``what`` failed, for the page's banner
    (the snapshot's fault, not the database's, when the snapshot failed).

    A snapshot found broken while reading is read around by the analytics themselves
    (:func:`analytics.sources.snapshot.bypass_snapshot`); the banner is shown here, once.
    """
    url = db.database_url()
    try:
        yield url
    except DataUnavailable:
        raise
    except SnapshotError as exc:
        raise DataUnavailable(f"{what}: {exc}. Run `python -m analytics refresh --full`.") from exc
    except Exception as exc:  # noqa: BLE001 - the page shows a banner, not a traceback
        raise DataUnavailable(
            f"{what} at {db.safe_url(url)} ({type(exc).__name__}).{hint}"
        ) from exc
    after = _bypassed(url)
    if after is not None and _key(after) != getattr(_SHOWN, "key", None):
        _SHOWN.key = _key(after)
        _state.clear()  # the snapshot is marked broken: the next check rebuilds it
        st.warning(_banner(after), icon=":material/database:")


def _bypassed(url: str) -> SnapshotError | None:
    try:
        return snapshot_bypassed(_engine_for(url))
    except Exception:  # noqa: BLE001 - an unusable URL is reported by the read itself
        return None


def weekly_view(filters: Filters, week: date, count: str, *, role: Role) -> trends.WeeklyView:
    """Every number of the Weekly Trends page, cached per filter set and data version."""
    access.require(role, "aggregates")
    with _reading("Cannot read the data") as url:
        return _weekly_view(url, filters, week, count, data_token())


def _newest_day() -> date:
    newest = overview()["newest"]
    return (newest + timedelta(days=1)).date() if newest else date.today()


@st.cache_data(ttl=600, max_entries=8, show_spinner="Scanning every slice…")
def _incidents(url: str, end: date, token: str, role: Role, per_month: float) -> pl.DataFrame:
    return monitor.recent_incidents(_engine_for(url), end=end, role=role, per_month=per_month)


def incidents(*, role: Role, per_month: float = monitor.DEFAULT_SENSITIVITY) -> pl.DataFrame:
    """Current incidents with a budget of ``per_month`` false alerts per slice per month
    (cached per data version, feedback and budget)."""
    with _reading("Cannot scan the data") as url:
        token = f"{data_token()}:{_feedback_version()}"
        return _incidents(url, _newest_day(), token, role, per_month)


@st.cache_data(ttl=600, max_entries=8, show_spinner=False)
def _alert_precision(url: str, version: int) -> pl.DataFrame:
    return monitor.alert_precision(monitor.read_feedback(_engine_for(url)))


def alert_precision(*, role: Role) -> pl.DataFrame:
    """The measured precision of the alerts per metric, from the feedback (cached per
    feedback version)."""
    access.require(role, "cases")
    with _reading("Cannot read the feedback") as url:
        return _alert_precision(url, _feedback_version())


@st.cache_data(ttl=600, max_entries=16, show_spinner="Clustering case narratives…")
def _emerging(
    url: str, filters: Filters, as_of: datetime, token: str, role: Role
) -> tuple[pl.DataFrame, pl.DataFrame]:
    return monitor.emerging_view(_engine_for(url), filters, as_of=as_of, role=role)


def emerging(filters: Filters, as_of: datetime, *, role: Role) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Narrative clusters and their (masked) cases, cached per filters and data version."""
    with _reading("Cannot read the case narratives") as url:
        return _emerging(url, filters, as_of, data_token(), role)


@st.cache_data(ttl=600, max_entries=16, show_spinner="Linking accounts…")
def _rings(url: str, as_of: datetime, token: str, role: Role) -> tuple[pl.DataFrame, ...]:
    return monitor.ring_view(_engine_for(url), as_of=as_of, role=role)


def rings(as_of: datetime, *, role: Role) -> tuple[pl.DataFrame, ...]:
    """Rings, their members and edges as of ``as_of`` (cached per data version)."""
    with _reading("Cannot link accounts") as url:
        return _rings(url, as_of, data_token(), role)


@st.cache_data(ttl=300, max_entries=32, show_spinner=False)
def _ring_cases(url: str, accounts: tuple[int, ...], token: str, role: Role) -> pl.DataFrame:
    return monitor.ring_cases(_engine_for(url), list(accounts), role=role)


def ring_cases(accounts: list[int], *, role: Role) -> pl.DataFrame:
    """Cases about a ring's accounts (masked)."""
    with _reading("Cannot read the ring's cases") as url:
        return _ring_cases(url, tuple(sorted(accounts)), data_token(), role)


def no_filters() -> Filters:
    """Filters that keep everything."""
    return Filters()


def week_end(week: date | None) -> datetime:
    """The ``as_of`` of a focus week: midnight after it, or after the newest day with
    data when that comes first (or when no week is chosen)."""
    newest = datetime.combine(_newest_day(), datetime.min.time())
    if week is None:
        return newest
    return min(newest, datetime.combine(week + timedelta(days=7), datetime.min.time()))


def _feedback_version() -> int:
    return monitor.feedback_version(engine())


@st.cache_data(ttl=600, max_entries=64, show_spinner="Loading the incident…")
def _evidence(
    url: str, incident: dict[str, Any], end: date, token: str, role: Role, per_month: float
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    eng = _engine_for(url)
    return (
        monitor.incident_series(eng, incident, end=end, per_month=per_month),
        monitor.incident_root_cause(eng, incident, end=end),
        monitor.incident_cases(eng, incident, end=end, role=role),
    )


def evidence(
    incident: dict[str, Any], *, role: Role, per_month: float = monitor.DEFAULT_SENSITIVITY
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """An incident's scored series (its band at the level of the budget), root cause
    and cases."""
    return _evidence(db.database_url(), incident, _newest_day(), data_token(), role, per_month)


@st.cache_data(ttl=300, max_entries=32, show_spinner=False)
def _timeline(
    url: str, account_id: int, token: str, role: Role
) -> tuple[pl.DataFrame, pl.DataFrame]:
    return monitor.account_timeline(_engine_for(url), account_id, role=role)


def account_timeline(account_id: int, *, role: Role) -> tuple[pl.DataFrame, pl.DataFrame]:
    """An account's latest events and its cases."""
    return _timeline(db.database_url(), account_id, data_token(), role)


def record_feedback(incident: dict[str, Any], verdict: str, *, user: str) -> None:
    """Store a verdict; the incident list recomputes with it (its cache key changes)."""
    monitor.record_feedback(
        writer(),
        user=user,
        metric=str(incident["metric"]),
        slice_key=str(incident["slice"]),
        alert_start=incident["start"],
        verdict=verdict,
        value=incident["peak_value"],
    )


def readiness() -> tuple[str, str]:
    """``("ok", notice)``, or ``("down" | "empty", what to tell the user)``; the notice
    is ``""``, or the banner saying the pages read around a snapshot they cannot use."""
    label = database_label()
    try:
        info = overview()
    except Exception as exc:  # noqa: BLE001 - reported as a banner
        return "down", (
            f"Cannot read the database at `{label}` ({type(exc).__name__}). Check that the "
            "server is running and that LOOKOUT_DATABASE_URL is right."
        )
    if not any(info["counts"][t] for t in ("events", "cases")):
        return "empty", (
            "The database has no cases or events yet. Load the demo with "
            "`python -m analytics seed` or import your data with "
            "`python -m analytics import TABLE FILE`."
        )
    return "ok", _snapshot_notice(db.database_url())


@st.cache_data(ttl=300, max_entries=64, show_spinner="Searching cases…")
def _case_page(url: str, query: cases.CaseQuery, token: str, role: Role) -> cases.CasePage:
    return cases.search_cases(_engine_for(url), query, role=role)


def case_page(query: cases.CaseQuery, *, role: Role) -> cases.CasePage:
    """One page of the Case Explorer's list (cached per query and data version)."""
    with _reading("Cannot search the cases") as url:
        return _case_page(url, query, data_token(), role)


@st.cache_data(ttl=300, max_entries=64, show_spinner=False)
def _case_detail(
    url: str, case_id: int, token: str, role: Role
) -> tuple[dict[str, Any] | None, pl.DataFrame]:
    return cases.case_detail(_engine_for(url), case_id, role=role)


def case_detail(case_id: int, *, role: Role) -> tuple[dict[str, Any] | None, pl.DataFrame]:
    """A case (masked) and its actions timeline."""
    with _reading("Cannot read the case") as url:
        return _case_detail(url, case_id, data_token(), role)


@st.cache_data(ttl=300, max_entries=32, show_spinner="Reading the account…")
def _account(url: str, account_id: int, as_of: datetime, token: str, role: Role) -> dict[str, Any]:
    eng = _engine_for(url)
    start = as_of - timedelta(days=2 * monitor.RING_DAYS)
    return {
        "profile": cases.account_profile(eng, account_id, role=role),
        "events": cases.account_events(eng, account_id, role=role, end=as_of),
        "cases": cases.account_cases(eng, account_id, role=role),
        "linked": cases.linked_accounts(eng, account_id, role=role, start=start, end=as_of),
        "window": (start, as_of),
    }


def account(account_id: int, as_of: datetime, *, role: Role) -> dict[str, Any]:
    """An account (identity masked), its events before ``as_of``, its cases and the
    accounts linked to it in the 28 days before ``as_of``."""
    with _reading("Cannot read the account") as url:
        return _account(url, account_id, as_of, data_token(), role)


@st.cache_data(ttl=600, max_entries=16, show_spinner="Writing the brief…")
def _brief(
    url: str, filters: Filters, week: date, audience: reports.Audience, token: str, role: Role
) -> reports.Brief:
    return reports.build_brief(
        _engine_for(url), week=week, audience=audience, filters=filters, role=role
    )


def brief(
    filters: Filters, week: date, audience: reports.Audience, note: str, *, role: Role
) -> reports.Brief:
    """The weekly brief for ``audience`` with the user's note (cached without the note)."""
    undated = replace(filters, start=None, end=None)
    with _reading("Cannot write the brief") as url:
        built = _brief(url, undated, week, audience, data_token(), role)
    return replace(built, note=note.strip()[:2000] or None)


@st.cache_data(ttl=600, max_entries=16, show_spinner="Rendering the files…")
def brief_files(_brief: reports.Brief, key: tuple[Any, ...]) -> tuple[str, str]:
    """The brief as one HTML file and as Markdown (cached per ``key``)."""
    return reports.render_html(_brief), reports.render_markdown(_brief)


def reveal(case_id: int, viewer: access.Viewer) -> tuple[dict[str, Any] | None, pl.DataFrame]:
    """A case unmasked, for a role that may reveal; audited before it is read (no cache)."""
    with _reading("Cannot reveal the case") as url:
        return cases.reveal_case(_engine_for(url), writer(), case_id, viewer=viewer)

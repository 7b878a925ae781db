"""Cached access to the data for the pages: wrappers around :mod:`analytics.views`.

Each wrapper caches a view function per database, data version and argument (the
engines are made here once per process), and turns any failure to read into a
:class:`DataUnavailable` for the page's banner. The snapshot's state is watched here
too: a stale snapshot is refreshed before the pages read it, and one that cannot be
used is read around, with a banner saying so. No number is computed here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from datetime import date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import polars as pl
import streamlit as st
from sqlalchemy.engine import Engine, make_url

from analytics import access
from analytics.access import Viewer
from analytics.core import database, taxonomy
from analytics.core.filters import Filters
from analytics.core.models import Role
from analytics.sources import load
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
from analytics.views import admin, anomalies, feedback, selection
from analytics.views import cases as case_views
from analytics.views import emerging as emerging_views
from analytics.views import trends as trends_view
from analytics.views.anomalies import Evidence, Incident
from analytics.views.cases import AccountView, ExplorerQuery
from analytics.views.emerging import RingView, TopicsView
from analytics.views.overview import Overview, dataset_overview, empty_overview
from analytics.views.selection import DataSpan

if TYPE_CHECKING:
    from analytics import reports
    from analytics.metrics.weekly import WeeklyView
    from analytics.sources.cases import CasePage, CaseQuery

__all__ = [
    "DataUnavailable",
    "account",
    "account_timeline",
    "alert_precision",
    "audit",
    "audit_log",
    "brief",
    "brief_files",
    "case_detail",
    "case_page",
    "data_changed",
    "data_span",
    "data_token",
    "database_label",
    "emerging",
    "engine",
    "evidence",
    "explorer_query",
    "incidents",
    "overview",
    "readiness",
    "record_feedback",
    "reveal",
    "ring_cases",
    "rings",
    "users",
    "warm_brief",
    "week_end",
    "weekly_view",
    "writer",
]


class DataUnavailable(RuntimeError):
    """The data could not be read or refreshed; the message says what to check."""


@st.cache_resource(max_entries=4)
def _engine_for(url: str) -> Engine:
    """The pages' reader: read-only, with a query timeout
    (:func:`analytics.core.database.make_reader`)."""
    parsed = make_url(url)
    if parsed.get_backend_name() in ("sqlite", "postgresql") and parsed.database not in (
        None,
        "",
        ":memory:",
    ):
        # the reader's URL: LOOKOUT_READER_DATABASE_URL when set
        return database.make_reader(database.reader_database_url(url))
    return database.make_engine(url)


@st.cache_resource(max_entries=4)
def _writer_for(url: str) -> Engine:
    return database.make_engine(url)


def engine() -> Engine:
    """The read-only engine of the configured database (one per process)."""
    return _engine_for(database.database_url())


def writer() -> Engine:
    """The engine that writes feedback, users and the audit log; nothing else uses it."""
    return _writer_for(database.database_url())


def audit(viewer: Viewer, action: str, *, target: str | None = None, filters: Any = None) -> None:
    """Append to the audit log (a failure to write it is shown, never swallowed)."""
    shown = filters
    if isinstance(filters, Filters):
        shown = {k: v for k, v in asdict(filters).items() if v not in (None, ())}
    access.audit(writer(), viewer, action, target=target, filters=shown)


def database_label() -> str:
    """The active database URL with its password hidden."""
    return database.safe_url(database.database_url())


@st.cache_data(ttl=60, max_entries=8, show_spinner="Reading the database…")
def _overview(url: str) -> Overview:
    parsed = make_url(url)
    path = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if path and path != ":memory:" and not Path(path).exists():
        return empty_overview()  # no file yet: the reader never creates one
    return dataset_overview(_engine_for(url))


def overview() -> Overview:
    """Row counts, date range and freshness (cached for a minute per database)."""
    return _overview(database.database_url())


def data_span() -> DataSpan | None:
    """The days with cases and the default focus week, or None without cases."""
    return selection.data_span(overview())


def week_end(week: date | None) -> datetime:
    """The ``as_of`` of a focus week (:func:`analytics.views.selection.week_end`)."""
    return selection.week_end(overview(), week)


def _newest_day() -> date:
    return selection.newest_day(overview())


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


#: Per database URL: when the last copy through the source map started, its process and
#: the file its errors go to; and the last copy's failure, if it failed.
_SYNCS: dict[str, tuple[float, subprocess.Popen[bytes], IO[bytes]]] = {}
_SYNC_FAILED: dict[str, str] = {}
#: Sessions run in threads of one process: one of them at a time looks and starts a copy.
_SYNC_LOCK = threading.Lock()


def _sync_later(url: str) -> str | None:
    """:func:`_start_sync` under :data:`_SYNC_LOCK`: two sessions arriving together start
    one copy, not two."""
    with _SYNC_LOCK:
        return _start_sync(url)


_ADDRESS = re.compile(r"\b[a-z][\w+.-]*://\S+", re.IGNORECASE)
_CANNOT_OPEN = re.compile(r"cannot open \S+: (\w+):.*")
_WAREHOUSE_FAILED = re.compile(r"loading the warehouse failed \(.*")
_ERROR_KIND = re.compile(r"\b(\w+(?:Error|Exception))\b")
_CHDB_BUSY = "chdb cannot open its folder: one process at a time may"
_WAREHOUSE_CLI = "python -m analytics warehouse load"
#: How a copy whose rows landed but whose warehouse load failed is told.
_WAREHOUSE_TOLD = "loading the warehouse failed"


def _without_addresses(line: str) -> str:
    """A copy's error as every signed-in role may read it: no database address (hosts,
    users, paths; passwords are already hidden), and for a database that cannot be opened
    only the kind of error (the driver's own text names the host); the command line gives
    the whole message.

    >>> _without_addresses("error: cannot open postgresql://u:***@db.internal/hd: "
    ...     "OperationalError: failed to resolve host 'db.internal'")
    'error: cannot open their database (OperationalError); python -m analytics sources \
sync says why'
    >>> _without_addresses("error: data written, but loading the warehouse failed (cannot "
    ...     "use the warehouse clickhousedb://u:***@wh.internal:8123/db: (clickhouse_connect."
    ...     "driver.exceptions.OperationalError) Error HTTPConnectionPool(host='wh.internal'")
    'loading the warehouse failed (OperationalError); python -m analytics warehouse load \
says why'
    """
    if _WAREHOUSE_FAILED.search(line):  # the driver's text names the host: only its kind
        kind = _ERROR_KIND.search(line)
        why = _CHDB_BUSY if _CHDB_BUSY in line else kind.group(1) if kind else ""
        return f"{_WAREHOUSE_TOLD}{f' ({why})' if why else ''}; {_WAREHOUSE_CLI} says why"
    line = _CANNOT_OPEN.sub(
        r"cannot open their database (\1); python -m analytics sources sync says why", line
    )
    return _ADDRESS.sub("their database", line)


def _start_sync(url: str) -> str | None:
    """With ``LOOKOUT_SOURCE_MAP`` set, copy the team's new rows through the map in a
    separate process, in the background, at most every ``LOOKOUT_SYNC_EVERY`` seconds
    (default 300); the pages see them by the data token once the copy has landed.
    Returns why the last copy failed (its one-line error), if it did."""
    if not os.environ.get("LOOKOUT_SOURCE_MAP", "").strip():
        return None
    try:
        every = float(os.environ.get("LOOKOUT_SYNC_EVERY", "300"))
    except ValueError:
        every = 300.0
    if url in _SYNCS:
        started, process, errors = _SYNCS[url]
        if process.poll() is None:
            return _SYNC_FAILED.get(url)
        if not errors.closed:
            errors.seek(0)
            told = errors.read().decode("utf-8", "replace").strip().splitlines()
            errors.close()
            if process.returncode:
                last = (told or ["it stopped with no message"])[-1]
                _SYNC_FAILED[url] = _without_addresses(last)[:300]
            else:
                _SYNC_FAILED.pop(url, None)
                _state.clear()
                _overview.clear()
        if started + every > time.monotonic():
            return _SYNC_FAILED.get(url)
    command = [sys.executable, "-m", "analytics", "sources", "sync"]
    env = {**os.environ, "LOOKOUT_DATABASE_URL": url}
    errors = tempfile.TemporaryFile()  # noqa: SIM115 - read and closed once the copy ends
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=errors)
    _SYNCS[url] = (time.monotonic(), process, errors)
    return _SYNC_FAILED.get(url)


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
    url = database.database_url()
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


_CHECK = " Check that the database is reachable and that LOOKOUT_DATABASE_URL is right."


@contextmanager
def _reading(what: str, hint: str = _CHECK) -> Iterator[str]:
    """Yield the database URL; any failure inside (but a :class:`DataUnavailable`)
    becomes a :class:`DataUnavailable` saying ``what`` failed, for the page's banner
    (the snapshot's fault, not the database's, when the snapshot failed).

    A snapshot found broken while reading is read around by the analytics themselves
    (:func:`analytics.sources.snapshot.bypass_snapshot`); the banner is shown here, once.
    """
    url = database.database_url()
    try:
        yield url
    except DataUnavailable:
        raise
    except SnapshotError as exc:
        raise DataUnavailable(f"{what}: {exc}. Run `python -m analytics refresh --full`.") from exc
    except Exception as exc:  # noqa: BLE001 - the page shows a banner, not a traceback
        raise DataUnavailable(
            f"{what} at {database.safe_url(url)} ({type(exc).__name__}).{hint}"
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


@st.cache_data(ttl=3600, max_entries=32, show_spinner="Computing the week…")
def _weekly_view(
    url: str, filters: Filters, week: date, count: str, token: str, role: Role
) -> WeeklyView:
    return trends_view.weekly_view(
        _engine_for(url), filters, week=week, count=trends_view.count_of(count), role=role
    )


def weekly_view(filters: Filters, week: date, count: str, *, role: Role) -> WeeklyView:
    """Every number of the Weekly Trends page, cached per filter set and data version."""
    with _reading("Cannot read the data") as url:
        return _weekly_view(url, filters, week, count, data_token(), role)


@st.cache_data(ttl=600, max_entries=8, show_spinner="Scanning every slice…")
def _incidents(url: str, end: date, token: str, role: Role, per_month: float) -> pl.DataFrame:
    return anomalies.recent_incidents(_engine_for(url), end=end, role=role, per_month=per_month)


def incidents(*, role: Role, per_month: float = anomalies.DEFAULT_SENSITIVITY) -> pl.DataFrame:
    """Current incidents with a budget of ``per_month`` false alerts per slice per month
    (cached per data version, feedback and budget)."""
    with _reading("Cannot scan the data") as url:
        token = f"{data_token()}:{_feedback_version()}"
        return _incidents(url, _newest_day(), token, role, per_month)


@st.cache_data(ttl=600, max_entries=8, show_spinner=False)
def _alert_precision(url: str, version: int, role: Role) -> pl.DataFrame:
    return feedback.measured_precision(_engine_for(url), role=role)


def alert_precision(*, role: Role) -> pl.DataFrame:
    """The measured precision of the alerts per metric, from the feedback (cached per
    feedback version)."""
    with _reading("Cannot read the feedback") as url:
        return _alert_precision(url, _feedback_version(), role)


@st.cache_data(ttl=600, max_entries=16, show_spinner="Clustering case narratives…")
def _emerging(url: str, filters: Filters, as_of: datetime, token: str, role: Role) -> TopicsView:
    return emerging_views.emerging_view(_engine_for(url), filters, as_of=as_of, role=role)


def emerging(filters: Filters, as_of: datetime, *, role: Role) -> TopicsView:
    """Narrative topics and their (masked) cases, cached per filters and data version."""
    with _reading("Cannot read the case narratives") as url:
        return _emerging(url, filters, as_of, data_token(), role)


@st.cache_data(ttl=600, max_entries=16, show_spinner="Linking accounts…")
def _rings(url: str, as_of: datetime, token: str, role: Role) -> RingView:
    return emerging_views.ring_view(_engine_for(url), as_of=as_of, role=role)


def rings(as_of: datetime, *, role: Role) -> RingView:
    """Rings, their members and edges as of ``as_of`` (cached per data version)."""
    with _reading("Cannot link accounts") as url:
        return _rings(url, as_of, data_token(), role)


@st.cache_data(ttl=300, max_entries=32, show_spinner=False)
def _ring_cases(url: str, accounts: tuple[int, ...], token: str, role: Role) -> pl.DataFrame:
    return emerging_views.ring_cases(_engine_for(url), list(accounts), role=role)


def ring_cases(accounts: list[int], *, role: Role) -> pl.DataFrame:
    """Cases about a ring's accounts (masked)."""
    with _reading("Cannot read the ring's cases") as url:
        return _ring_cases(url, tuple(sorted(accounts)), data_token(), role)


def _feedback_version() -> int:
    return feedback.feedback_version(engine())


@st.cache_data(ttl=600, max_entries=64, show_spinner="Loading the incident…")
def _evidence(
    url: str, incident: Incident, end: date, token: str, role: Role, per_month: float
) -> Evidence:
    return anomalies.incident_evidence(
        _engine_for(url), incident, end=end, role=role, per_month=per_month
    )


def evidence(
    incident: Incident, *, role: Role, per_month: float = anomalies.DEFAULT_SENSITIVITY
) -> Evidence:
    """An incident's scored series (its band at the level of the budget), the reason it
    was raised, its root cause and its cases."""
    return _evidence(
        database.database_url(), incident, _newest_day(), data_token(), role, per_month
    )


@st.cache_data(ttl=300, max_entries=32, show_spinner=False)
def _timeline(
    url: str, account_id: int, token: str, role: Role
) -> tuple[pl.DataFrame, pl.DataFrame]:
    return anomalies.account_timeline(_engine_for(url), account_id, role=role)


def account_timeline(account_id: int, *, role: Role) -> tuple[pl.DataFrame, pl.DataFrame]:
    """An account's latest events and its cases."""
    return _timeline(database.database_url(), account_id, data_token(), role)


def record_feedback(incident: Incident, verdict: str, *, viewer: Viewer) -> None:
    """Store a verdict; the incident list recomputes with it (its cache key changes)."""
    feedback.record_feedback(
        writer(),
        viewer=viewer,
        metric=incident.metric,
        slice_key=incident.slice,
        alert_start=incident.start,
        verdict=verdict,
        value=incident.peak_value,
    )


def readiness() -> tuple[str, str]:
    """``("ok", notice)``, or ``("down" | "empty", what to tell the user)``; the notice
    is ``""``, or the banner saying the pages read around a snapshot they cannot use."""
    label = database_label()
    failed = _sync_later(database.database_url())
    copying = ""
    if failed and failed.startswith(_WAREHOUSE_TOLD):
        copying = (
            "The team's data was copied through the source map, but not into the warehouse "
            f"(LOOKOUT_WAREHOUSE_URL); the charts show its last load: {failed}"
        )
    elif failed:
        copying = (
            "The copy of the team's data through the source map failed; the pages show the "
            f"last copy. {failed.removeprefix('error: ')}"
        )
    try:
        info = overview()
    except Exception as exc:  # noqa: BLE001 - reported as a banner
        return "down", (
            f"Cannot read the database at `{label}` ({type(exc).__name__}). Check that the "
            "server is running and that LOOKOUT_DATABASE_URL is right."
        )
    if not info.has_data and os.environ.get("LOOKOUT_SOURCE_MAP", "").strip():
        return "empty", copying or (
            "The team's data is being copied through the source map (`LOOKOUT_SOURCE_MAP`); "
            "the pages fill in once the first copy has landed. Reload in a minute."
        )
    if not info.has_data:
        return "empty", (
            "The database has no cases or events yet. Load the demo with "
            "`python -m analytics seed` or import your data with "
            "`python -m analytics import TABLE FILE`."
        )
    notices = (copying, _snapshot_notice(database.database_url()), taxonomy.stale())
    return "ok", " ".join(m for m in notices if m)


def explorer_query(
    params: dict[str, str], shown: Filters, loaded: Filters, as_of: datetime, *, role: Role
) -> ExplorerQuery:
    """The Case Explorer's list for its page parameters under the filters ``shown``; a
    topic or a ring named in them is looked up in the week's topics (of the ``loaded``
    filters, as the Emerging Threats page reads them) and rings, both cached."""
    with _reading("Cannot search the cases"):
        return case_views.explorer_query(
            params,
            shown,
            topics=lambda: emerging(loaded, as_of, role=role),
            rings=lambda: rings(as_of, role=role),
            role=role,
        )


@st.cache_data(ttl=300, max_entries=64, show_spinner="Searching cases…")
def _case_page(url: str, query: CaseQuery, token: str, role: Role) -> CasePage:
    return case_views.case_list(_engine_for(url), query, role=role)


def case_page(found: ExplorerQuery, *, role: Role) -> CasePage:
    """One page of the Case Explorer's list (cached per query and data version)."""
    with _reading("Cannot search the cases") as url:
        return _case_page(url, found.query, data_token(), role)


@st.cache_data(ttl=300, max_entries=64, show_spinner=False)
def _case_detail(
    url: str, case_id: int, token: str, role: Role
) -> tuple[dict[str, Any] | None, pl.DataFrame]:
    return case_views.case_detail(_engine_for(url), case_id, role=role)


def case_detail(case_id: int, *, role: Role) -> tuple[dict[str, Any] | None, pl.DataFrame]:
    """A case (masked) and its actions timeline."""
    with _reading("Cannot read the case") as url:
        return _case_detail(url, case_id, data_token(), role)


def reveal(case_id: int, viewer: Viewer) -> tuple[dict[str, Any] | None, pl.DataFrame]:
    """A case unmasked, for a role that may reveal; audited before it is read (no cache)."""
    with _reading("Cannot reveal the case") as url:
        return case_views.reveal_case(_engine_for(url), writer(), case_id, viewer=viewer)


@st.cache_data(ttl=300, max_entries=32, show_spinner="Reading the account…")
def _account(url: str, account_id: int, as_of: datetime, token: str, role: Role) -> AccountView:
    return case_views.account_view(_engine_for(url), account_id, as_of=as_of, role=role)


def account(account_id: int, as_of: datetime, *, role: Role) -> AccountView:
    """An account (identity masked), its events before ``as_of``, its cases and the
    accounts linked to it in the 28 days before ``as_of``."""
    with _reading("Cannot read the account") as url:
        return _account(url, account_id, as_of, data_token(), role)


@st.cache_data(ttl=600, max_entries=16, show_spinner="Writing the brief…")
def _brief(
    url: str, filters: Filters, week: date, audience: reports.Audience, token: str, role: Role
) -> reports.Brief:
    from analytics import reports  # the brief's charts and sections: the Reports page only

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


#: The briefs being computed in the background (:func:`warm_brief`), by cache key.
_WARMING: set[tuple[Any, ...]] = set()
_WARMING_LOCK = threading.Lock()


def warm_brief(filters: Filters, week: date, audience: reports.Audience, *, role: Role) -> None:
    """Compute the brief of ``audience`` in a background thread (the Reports page asks
    for the audience it does not show), so that switching to it reads the cache. Once
    per brief and data version; a failure is left for the page to report if it asks."""
    from streamlit.runtime.scriptrunner_utils.script_run_context import in_cached_function

    undated = replace(filters, start=None, end=None)
    url, token = database.database_url(), data_token()
    key = (url, undated, week, audience, token, role)
    with _WARMING_LOCK:
        if key in _WARMING:
            return
        if len(_WARMING) > 64:
            _WARMING.clear()
        _WARMING.add(key)

    def work() -> None:
        in_cached_function.set(True)  # no spinner: no page is waiting for it
        try:
            _brief(url, undated, week, audience, token, role)
        except Exception:  # noqa: BLE001 - computed again, and reported, when asked for
            with _WARMING_LOCK:
                _WARMING.discard(key)

    threading.Thread(target=work, name="lookout-warm-brief", daemon=True).start()


@st.cache_data(ttl=600, max_entries=16, show_spinner="Rendering the files…")
def brief_files(_brief: reports.Brief, key: tuple[Any, ...]) -> tuple[str, str]:
    """The brief as one HTML file and as Markdown (cached per ``key``)."""
    from analytics import reports

    return reports.render_html(_brief), reports.render_markdown(_brief)


def data_changed() -> None:
    """Forget the cached data token after the app itself wrote data (a known event), so
    the next page reads it: every cache keyed on the token (the weekly view, the brief,
    the scan) recomputes, and a snapshot is refreshed first."""
    _state.clear()
    _overview.clear()


def users(*, role: Role) -> pl.DataFrame:
    """Every user without their password hash (not cached: it changes by hand)."""
    return admin.users(engine(), role=role)


def audit_log(
    *, role: Role, user: str, action: str, days: tuple[date, date] | None
) -> pl.DataFrame:
    """The audit log as the Admin page filters it (not cached: it grows with every view)."""
    return admin.audit_log(engine(), role=role, user=user, action=action, days=days)

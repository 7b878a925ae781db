"""The Anomalies page's pieces: its cached reads and what it draws.

The incidents current in the focus week (:func:`analytics.views.anomalies.current_incidents`),
one incident's evidence and the accounts to review
(:mod:`analytics.views.account_review`), each cached per database, data version and
arguments; then the tables in words, the cases underneath (descriptions masked and
wrapped) and the accounts, each with a link to the Case Explorer.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import polars as pl
import streamlit as st

from analytics.access import Viewer
from analytics.core import database
from analytics.core.models import Role
from analytics.present import exports
from analytics.present.formatting import (
    format_count,
    format_day,
    format_slice,
    humanise,
    humanised,
)
from analytics.views import account_review, anomalies, feedback, selection
from analytics.views.account_review import AccountsToReview
from analytics.views.anomalies import Evidence, Incident
from ui import data, explorer
from ui.filters import link_params
from ui.widgets import plain

__all__ = [
    "CASE_ROWS",
    "accounts_section",
    "as_of",
    "cases_underneath",
    "cause_rows",
    "evidence",
    "incident_columns",
    "incidents",
    "newest_day",
    "picked_days",
    "review",
    "scan_end",
    "verdicts",
]

#: Cases shown in words under an incident (all of them are one link away).
CASE_ROWS = 25


def newest_day() -> date:
    """The day after the newest data."""
    return selection.newest_day(data.overview())


def scan_end(week: date) -> date:
    """Where the focus week's scan ends (:func:`analytics.views.anomalies.scan_end`)."""
    return anomalies.scan_end(week, newest_day())


def as_of(week: date) -> datetime:
    """The moment the focus week's scan ends (accounts are shown as they were then)."""
    return datetime.combine(scan_end(week), datetime.min.time())


@st.cache_data(ttl=600, max_entries=8, show_spinner="Scanning every slice…")
def _incidents(
    url: str, week: date, newest: date, token: str, role: Role, per_month: float
) -> pl.DataFrame:
    return anomalies.current_incidents(
        data.engine(), week=week, newest=newest, role=role, per_month=per_month
    )


def incidents(week: date, *, role: Role, per_month: float) -> pl.DataFrame:
    """The incidents current in the focus week (cached per data version, feedback and
    budget); :class:`ui.data.DataUnavailable` when the data cannot be read."""
    try:
        token = f"{data.data_token()}:{feedback.feedback_version(data.engine())}"
        return _incidents(database.database_url(), week, newest_day(), token, role, per_month)
    except Exception as exc:  # noqa: BLE001 - the page shows a banner, not a traceback
        raise data.DataUnavailable(f"Cannot scan the data ({type(exc).__name__}).") from exc


@st.cache_data(ttl=600, max_entries=64, show_spinner="Loading the incident…")
def _evidence(
    url: str, incident: Incident, end: date, token: str, role: Role, per_month: float
) -> Evidence:
    return anomalies.incident_evidence(
        data.engine(), incident, end=end, role=role, per_month=per_month
    )


def evidence(incident: Incident, week: date, *, role: Role, per_month: float) -> Evidence:
    """An incident's series and band, the reason in words, its root cause and its cases
    (descriptions masked), as of the end of the focus week's scan."""
    url = database.database_url()
    return _evidence(url, incident, scan_end(week), data.data_token(), role, per_month)


@st.cache_data(ttl=600, max_entries=32, show_spinner="Scoring the accounts…")
def _review(
    url: str, incident: Incident | None, week: date, end: date, token: str, role: Role
) -> AccountsToReview:
    engine = data.engine()
    if incident is None:
        start = datetime.combine(week, datetime.min.time())
        stop = datetime.combine(min(week + timedelta(days=7), end), datetime.min.time())
        focus: list[int] | None = None
    else:
        start, stop = account_review.review_window(*anomalies.incident_days(incident))
        cases = anomalies.incident_cases(engine, incident, end=end, role=role)
        focus = account_review.incident_accounts(engine, incident, cases=cases, role=role)
    return account_review.accounts_to_review(engine, start=start, end=stop, focus=focus, role=role)


def review(incident: Incident | None, week: date, *, role: Role) -> AccountsToReview:
    """The accounts to review: the incident's most unusual accounts, or without an
    incident the focus week's (cached per data version)."""
    url = database.database_url()
    return _review(url, incident, week, scan_end(week), data.data_token(), role)


def incident_columns() -> dict[str, Any]:
    """Column formats of the incident tables (:data:`anomalies.TABLE_COLUMNS`)."""
    return {
        "Slice": st.column_config.TextColumn("Slice", width="medium"),
        "Source": st.column_config.TextColumn("Source"),
        "Scale": st.column_config.TextColumn("Scale"),
        "Days": st.column_config.TextColumn("Days"),
        "Status": st.column_config.TextColumn(
            "Status", help="Ongoing: the newest day (or week) scanned is still unusual."
        ),
        "Peak": st.column_config.NumberColumn("Peak", format="localized"),
        "Expected": st.column_config.NumberColumn("Expected", format="%.1f"),
        "Score": st.column_config.NumberColumn(
            "Score",
            format="%.1f",
            help="How unusual the peak is: −log10 of its p-value (3 means p = 0.001). "
            "Every listed incident is significant after false-discovery control.",
        ),
        "Move": st.column_config.TextColumn("Move"),
        "Explained by": st.column_config.TextColumn("Explained by"),
        "Dismissed earlier": st.column_config.CheckboxColumn("Dismissed earlier"),
    }


def cause_rows(rows: pl.DataFrame) -> None:
    """The values that stand out, with their share of the change against their usual
    share (:func:`analytics.views.anomalies.cause_table`)."""
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        placeholder="–",
        column_config={
            "Actual": st.column_config.NumberColumn("Actual", format="localized"),
            "Expected": st.column_config.NumberColumn("Expected", format="%.1f"),
        },
    )


def picked_days(chosen: Any) -> list[date]:
    """The days of the points picked on the incident's chart (none: every day)."""
    try:
        points = chosen.selection.points  # plotly selection event
    except AttributeError:
        return []
    days = set()
    for point in points or []:
        x = point.get("x") if isinstance(point, dict) else None
        if x:
            days.add(date.fromisoformat(str(x)[:10]))
    return sorted(days)


def verdicts(incident: Incident, viewer: Viewer) -> None:
    """The three verdict buttons; a verdict is stored and the page reruns with it (the
    toast that says so, naming the slice in words, is shown by the next run)."""
    st.markdown("**Your verdict**")
    labels = {"confirmed": "Confirmed", "expected": "Expected", "not_useful": "Not useful"}
    for verdict, label in labels.items():
        if st.button(label, key=f"anomalies_verdict_{verdict}", width="stretch"):
            data.record_feedback(incident, verdict, viewer=viewer)
            st.session_state["anomalies_recorded"] = (
                f"Recorded: {label.lower()} for {format_slice(incident.slice)}."
            )
            st.rerun()


def _masked_cell(text: object) -> str:
    """A (masked) description for a Markdown table cell: escaped, on one line."""
    return plain(" ".join(str(text or "–").split()))


def cases_underneath(cases: pl.DataFrame, days: list[date], incident: Incident) -> None:
    """The newest cases under the incident (narrowed to ``days`` picked on the chart),
    each with its description masked and wrapped, and a link to all of them."""
    st.markdown("**Cases underneath**")
    if cases.is_empty():
        st.caption("Event slices have no cases of their own: see the accounts below.")
        return
    picked = anomalies.cases_on(cases, days)
    if days:
        st.caption(f"Narrowed to {len(days)} day(s) picked on the chart.")
    shown = exports.neutralise(picked.head(CASE_ROWS))
    rows = pl.DataFrame(
        {
            "Case": [str(c) for c in shown["id"]],
            "Opened": [format_day(t.date()) for t in shown["opened_at"]],
            "Category": [humanise(c) for c in shown["category"]],
            "Severity": [humanise(s) for s in shown["severity"]],
            "Status": [humanise(s) for s in shown["status"]],
            "Account": ["–" if a is None else str(a) for a in shown["subject_account_id"]],
            "Description (masked)": [_masked_cell(d) for d in shown["description"]],
        }
    )
    st.caption(
        f"The {rows.height} newest of {format_count(picked.height)} cases, descriptions "
        "masked (phone numbers, emails, links and names)."
    )
    st.table(rows, hide_index=True)
    first, last = anomalies.incident_days(incident)
    explorer.link(
        f"Open all {format_count(cases.height)} in Case Explorer",
        slice=incident.slice, opened_from=first.isoformat(), opened_to=last.isoformat(),
    )  # fmt: skip


def _account_url(account_id: int) -> str:
    """A relative link to the Case Explorer opened on an account, global filters kept."""
    return "cases?" + urlencode(link_params(explorer.CASES.page, account=account_id))


def accounts_section(found: AccountsToReview, viewer: Viewer, as_of: datetime) -> None:
    """The accounts to review: their scores and reasons in words (wrapped), a link to
    each in the Case Explorer, and the one picked opened below."""
    st.subheader("Accounts to review")
    table = found.accounts
    if found.none_active:
        st.info(
            f"None of this incident's accounts was active in {found.days}, so none could be "
            "scored; its own accounts are listed below, unscored. No other account is shown "
            "in their place."
        )
    else:
        whose = "of this incident" if found.of_incident else "active"
        st.caption(
            f"The most unusual accounts {whose}, scored over {found.days} against all "
            f"{format_count(found.active)} accounts active then (0 is typical; rank 1 is the "
            "most unusual of them all; the reasons are what sets each apart, against the "
            "median account)."
        )
    if table.is_empty():
        st.info(
            "This incident has no accounts of its own."
            if found.of_incident
            else "No account was active in these days."
        )
        return
    unscored = account_review.NOT_ACTIVE
    rows = pl.DataFrame(
        {
            "Account": [f"[{a}]({_account_url(a)})" for a in table["account_id"]],
            "Kind": table["kind"],
            "Region": table["region"],
            "Status": table["status"],
            "Score": [unscored if x is None else f"{x:.1f}" for x in table["score"]],
            "Rank": ["–" if r is None else format_count(r) for r in table["rank"]],
            "Why": [plain(w) for w in table["why"]],
        }
    )
    st.table(rows, hide_index=True)
    labels = dict(zip(table["account_id"].to_list(), table["label"].to_list(), strict=True))
    account = st.selectbox(
        "Open an account", list(labels), format_func=labels.__getitem__, key="anomalies_account"
    )
    if account is not None:
        _account(int(account), table, viewer, as_of)


#: The account's tables in words: column -> label.
_EVENT_LABELS = {
    "ts": "When", "kind": "Event", "platform": "Platform", "region": "Region",
    "device_hash": "Device (hashed)", "ip_hash": "IP address (hashed)",
    "target_account_id": "Other account", "rating": "Rating",
}  # fmt: skip
_CASE_LABELS = {
    "case_id": "Case", "role": "Its role", "opened_at": "Opened", "category": "Category",
    "severity": "Severity", "status": "Status", "resolution": "Resolution",
    "description": "Description (masked)",
}  # fmt: skip
_WORDED = ("kind", "platform", "role", "category", "severity", "status", "resolution")
_HASHES = ("device_hash", "ip_hash")


def _in_words(frame: pl.DataFrame, labels: dict[str, str]) -> tuple[pl.DataFrame, dict[str, Any]]:
    """A frame's codes as words (``login_failed`` -> ``Login failed``, missing -> ``–``)
    and the column labels for ``st.dataframe``."""
    worded = frame.with_columns(
        humanised(pl.col(c).cast(pl.String)).fill_null("–") for c in _WORDED if c in frame.columns
    ).with_columns(  # enough of a hash to tell two apart, without a table too wide to read
        pl.col(c).cast(pl.String).str.slice(0, 8) for c in _HASHES if c in frame.columns
    )
    config: dict[str, Any] = {c: st.column_config.Column(label) for c, label in labels.items()}
    for moment in ("ts", "opened_at"):
        config[moment] = st.column_config.DatetimeColumn(
            labels.get(moment, moment), format="D MMM YYYY, HH:mm"
        )
    for number in ("case_id", "target_account_id"):
        config[number] = st.column_config.NumberColumn(labels.get(number, number), format="%d")
    config["description"] = st.column_config.TextColumn("Description (masked)", width="medium")
    return exports.neutralise(worded), {c: v for c, v in config.items() if c in frame.columns}


def _account(account_id: int, table: pl.DataFrame, viewer: Viewer, as_of: datetime) -> None:
    """One account: who (masked), why it scores, its latest events and its cases."""
    row = table.filter(pl.col("account_id") == account_id).row(0, named=True)
    found = data.account(account_id, as_of, role=viewer.role)
    profile = found.profile
    name = "" if profile is None or not profile.display_name else f" · {profile.display_name}"
    st.markdown(f"**{plain(row['label'])}**{plain(name)}")
    st.caption(f"Why: {row['why']}.")
    explorer.link(f"Open account {account_id} in Case Explorer", account=account_id)
    events, event_columns = _in_words(found.events, _EVENT_LABELS)
    st.markdown(f"**Latest events** ({format_count(events.height)})")
    st.dataframe(
        events,
        hide_index=True,
        width="stretch",
        height=260,
        column_config=event_columns,
        placeholder="–",
    )
    history, case_columns = _in_words(found.cases, _CASE_LABELS)
    st.markdown(f"**Cases about it or reported by it** ({format_count(history.height)})")
    st.dataframe(
        history,
        hide_index=True,
        width="stretch",
        height=min(38 + 35 * max(history.height, 1), 260),
        column_config=case_columns,
        placeholder="–",
    )

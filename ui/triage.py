"""The Anomalies page's follow-up of one incident: its stored life and the escalation.

The incident open on the page is matched to the incident the watch run stored
(:mod:`analytics.alerts.incidents`: the same series, an overlapping episode). Its state
reads in words ("Acknowledged by ann · assigned to lee"); people who may triage
(leadership, associates) act on it, each action carrying the version read when the page
was drawn (a button's callback gets it as drawn, not as re-read on the click), so that
someone else's change meanwhile is reported instead of overwritten. An associate also
escalates the incident to leadership (:func:`analytics.alerts.escalations.escalate`)
with the incident's numbers and a link to the page. No rule is decided here: every
check is the analytics function's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

import polars as pl
import streamlit as st

from analytics import access
from analytics.access import Viewer
from analytics.alerts import followup
from analytics.alerts import incidents as stored_incidents
from analytics.alerts.incidents import IncidentConflict, IncidentNotFound, InvalidAction
from analytics.core.models import Role
from analytics.present.formatting import format_count, format_day, format_days, format_slice
from analytics.views import anomalies
from analytics.views.anomalies import Incident
from ui import data, escalate
from ui.widgets import plain

__all__ = [
    "CONFLICT", "URGENCIES", "escalate_form", "followed_up_section", "section", "state_line",
    "stored",
]  # fmt: skip

#: What the page says when someone changed the incident between reading and acting.
CONFLICT = "Someone else changed this incident meanwhile; the page now shows their change."
#: The urgencies offered, in words (:class:`analytics.core.models.Urgency`).
URGENCIES = escalate.URGENCIES
#: The message shown by the next run (set by an action's callback).
_NOTICE = "triage_notice"
#: The toast the Anomalies page shows on its next run.
_TOAST = "anomalies_recorded"


def stored(incident: Incident, *, role: Role) -> tuple[dict[str, Any] | None, pl.DataFrame]:
    """The stored incident of the page's ``incident`` (same series, overlapping
    episode; the latest if several), and every stored incident (for the names).
    :class:`ui.data.DataUnavailable` when they cannot be read."""
    try:
        every = stored_incidents.list_incidents(data.engine(), states=None, role=role)
    except Exception as exc:  # noqa: BLE001 - the page shows a banner, not a traceback
        raise data.DataUnavailable(
            f"Cannot read the stored incidents ({type(exc).__name__})."
        ) from exc
    key = stored_incidents.incident_key(
        {
            "source": incident.source,
            "freq": incident.freq,
            "metric": incident.metric,
            "direction": incident.direction,
            "slice": incident.slice,
        }
    )
    same = every.filter(
        (pl.col("key") == key)
        & (pl.col("start") <= incident.end)
        & (pl.col("end") >= incident.start)
    ).sort("start", descending=True)
    return (None if same.is_empty() else same.row(0, named=True)), every


def state_line(row: dict[str, Any]) -> str:
    """A stored incident's state and assignee in words
    (:func:`analytics.alerts.followup.state_words`)."""
    return followup.state_words(row)


def followed_up_section(viewer: Viewer) -> None:
    """The incidents being followed up: every stored incident still open, acknowledged
    or snoozed, whatever week it began in, each linking to itself."""
    try:
        rows = followup.followed_up(data.engine(), role=viewer.role)
    except Exception as exc:  # noqa: BLE001 - a banner, never a traceback
        st.error(f"Cannot read the incidents being followed up ({type(exc).__name__}).")
        return
    with st.expander(f"Being followed up: open, acknowledged or snoozed ({rows.height})"):
        if rows.is_empty():
            st.caption(
                "No stored incident is open. The scheduled watch run stores each alerted "
                "incident; it stays here until someone resolves or dismisses it."
            )
            return
        st.dataframe(
            rows, hide_index=True, width="stretch", placeholder="–",
            column_config={
                "slice": st.column_config.TextColumn("Slice", width="medium"),
                "source": "Source", "days": "Days", "severity": "Severity",
                "state": st.column_config.TextColumn("Follow-up", width="medium"),
                "link": st.column_config.LinkColumn("Incident", display_text="Open"),
            },
        )  # fmt: skip


def _act(
    action: Callable[..., Any],
    viewer: Viewer,
    incident_id: int,
    version: int,
    done: str,
    **kw: Any,
) -> None:
    """A button's callback: run ``action`` with the version drawn on the page; the
    outcome is shown by the run that follows."""
    try:
        action(data.writer(), incident_id, viewer=viewer, version=version, **kw)
    except (IncidentConflict, IncidentNotFound):
        st.session_state[_NOTICE] = ("warning", CONFLICT)
    except (InvalidAction, access.AccessDenied) as exc:
        st.session_state[_NOTICE] = ("error", f"Not saved: {exc}")
    else:
        st.session_state[_TOAST] = done


def _assign(viewer: Viewer, incident_id: int, version: int, key: str) -> None:
    person = str(st.session_state.get(key) or "")
    _act(stored_incidents.assign, viewer, incident_id, version, f"Assigned to {person}.", to=person)


def _snooze(viewer: Viewer, incident_id: int, version: int, key: str) -> None:
    day: date = st.session_state[key]
    until = datetime.combine(day, time.min)
    done = f"Snoozed until {format_day(day)}."
    _act(stored_incidents.snooze, viewer, incident_id, version, done, until=until)


def _note(viewer: Viewer, incident_id: int, key: str) -> None:
    try:
        stored_incidents.add_note(
            data.writer(), incident_id, str(st.session_state.get(key) or ""), viewer=viewer
        )
    except IncidentNotFound:
        st.session_state[_NOTICE] = ("warning", CONFLICT)
    except (InvalidAction, access.AccessDenied) as exc:
        st.session_state[_NOTICE] = ("error", f"Not saved: {exc}")
    else:
        st.session_state[key] = ""
        st.session_state[_TOAST] = "Note saved."


#: The buttons: label, the states it applies to, the action, what the toast says.
_BUTTONS: tuple[tuple[str, tuple[str, ...], Callable[..., Any], str], ...] = (
    ("Acknowledge", ("open", "snoozed"), stored_incidents.acknowledge, "Acknowledged."),
    ("Resolve", ("open", "acknowledged", "snoozed"), stored_incidents.resolve, "Resolved."),
    ("Dismiss", ("open", "acknowledged", "snoozed"), stored_incidents.dismiss, "Dismissed."),
    (
        "Reopen",
        ("acknowledged", "snoozed", "resolved", "dismissed"),
        stored_incidents.reopen,
        "Open again.",
    ),
)


def _people(every: pl.DataFrame, row: dict[str, Any], viewer: Viewer) -> list[str]:
    """Names seen on the stored incidents and this one's notes, the viewer first."""
    seen = [*every["assignee"].to_list(), *every["acknowledged_by"].to_list()]
    seen += stored_incidents.notes(data.engine(), int(row["id"]))["user_name"].to_list()
    others = sorted({str(n) for n in seen if n} - {viewer.name}, key=str.lower)
    return [viewer.name, *others]


def _actions(row: dict[str, Any], every: pl.DataFrame, viewer: Viewer) -> None:
    incident_id, version, state = int(row["id"]), int(row["version"]), str(row["state"])
    shown = [b for b in _BUTTONS if state in b[1]]
    for column, (label, _, action, done) in zip(st.columns(len(shown)), shown, strict=True):
        column.button(
            label,
            key=f"triage_{label.lower()}_{incident_id}",
            on_click=_act,
            args=(action, viewer, incident_id, version, done),
            width="stretch",
        )
    if state in ("resolved", "dismissed"):
        return
    left, right = st.columns(2)
    with left:
        who = f"triage_assignee_{incident_id}"
        st.selectbox(
            "Assign to",
            _people(every, row, viewer),
            index=None,
            key=who,
            placeholder="Pick or type a name",
            accept_new_options=True,
        )
        st.button(
            "Assign", key=f"triage_assign_{incident_id}", on_click=_assign,
            args=(viewer, incident_id, version, who),
        )  # fmt: skip
    with right:
        day = f"triage_until_{incident_id}"
        tomorrow = date.today() + timedelta(days=1)
        st.date_input(
            "Snooze until", value=tomorrow + timedelta(days=6), min_value=tomorrow, key=day,
            format="DD/MM/YYYY",
        )  # fmt: skip
        st.button(
            "Snooze", key=f"triage_snooze_{incident_id}", on_click=_snooze,
            args=(viewer, incident_id, version, day),
        )  # fmt: skip


def _notes(row: dict[str, Any], viewer: Viewer) -> None:
    incident_id = int(row["id"])
    written = stored_incidents.notes(data.engine(), incident_id)
    st.markdown(f"**Notes** ({format_count(written.height)})")
    if access.allowed(viewer.role, "triage"):
        text = f"triage_note_{incident_id}"
        st.text_area("Note", key=text, max_chars=stored_incidents.NOTE_MAX, height=80)
        st.button(
            "Add note", key=f"triage_add_note_{incident_id}", on_click=_note,
            args=(viewer, incident_id, text),
        )  # fmt: skip
    for note in reversed(written.rows(named=True)):  # newest first
        when = note["created_at"]
        st.markdown(
            f"**{plain(note['user_name'])}** · {format_day(when.date())}, {when:%H:%M} UTC  \n"
            + plain(note["text"])
        )


def escalate_form(
    incident: Incident, expected: float | None, row: dict[str, Any] | None, viewer: Viewer
) -> None:
    """ "Escalate to leadership": a sentence or two and an urgency, sent with the
    incident's numbers (peak, expected, days) and a link to this page."""
    first, last = anomalies.incident_days(incident)
    title = f"{format_slice(incident.slice)} · {format_days(first, last)}"
    evidence = {
        "Peak": format_count(incident.peak_value),
        "Expected": "–" if expected is None else f"{expected:,.1f}",
        "Days": f"{format_days(first, last)} ({incident.days} unusual "
        f"{'week' if incident.freq == 'weekly' else 'day'}{'s' if incident.days > 1 else ''})",
    }
    subject = str(row["id"]) if row is not None else stored_incidents.incident_key(
        {"source": incident.source, "freq": incident.freq, "metric": incident.metric,
         "direction": incident.direction, "slice": incident.slice}
    )  # fmt: skip
    escalate.form(
        "triage_escalate", viewer=viewer, subject_kind="incident", subject_ref=subject,
        title=title, evidence=evidence, page="anomalies",
    )  # fmt: skip


def section(incident: Incident, alerted: pl.DataFrame, viewer: Viewer) -> None:
    """The incident's follow-up: its stored state, the actions that fit it (for roles
    that triage), its notes, and for associates the escalation form."""
    if notice := st.session_state.pop(_NOTICE, None):
        kind, text = notice
        (st.warning if kind == "warning" else st.error)(text)
    here = alerted.filter((pl.col("slice") == incident.slice) & (pl.col("start") == incident.start))
    expected = None if here.is_empty() else here["peak_expected"][0]
    with st.container(border=True):
        try:
            row, every = stored(incident, role=viewer.role)
        except data.DataUnavailable as exc:
            st.error(str(exc))
            return
        if row is None:
            st.markdown("**Follow-up:** not stored yet")
            st.caption(
                "The scheduled watch run stores each alerted incident; once it has, you can "
                "acknowledge, assign, snooze, resolve and write notes on it here."
            )
        else:
            st.markdown(f"**Follow-up:** {plain(state_line(row))}")
            if access.allowed(viewer.role, "triage"):
                _actions(row, every, viewer)
            _notes(row, viewer)
        if access.allowed(viewer.role, "escalate"):
            escalate_form(incident, None if expected is None else float(expected), row, viewer)

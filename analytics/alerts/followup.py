"""The incidents being followed up (issue 19): the stored incidents still open,
acknowledged or snoozed, whatever week they began in, as the Anomalies page lists them.

An incident stays here until someone resolves or dismisses it, so it no longer vanishes
when the focus week moves on; each row says its state in words and links to the
incident on the Anomalies page of its week.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime  # noqa: F401 - the examples use it
from typing import Any

import polars as pl
from sqlalchemy import Engine

from analytics.alerts import incidents, messages
from analytics.core.models import Role
from analytics.present.formatting import format_day, format_days, format_slice, humanise
from analytics.views.anomalies import Incident, incident_days

__all__ = ["COLUMNS", "followed_up", "follow_up_rows", "state_words"]

#: The columns of :func:`follow_up_rows`, in order.
COLUMNS = ("slice", "source", "days", "severity", "state", "link")
_SOURCES = {"cases": "Cases", "events": "Events", "detections": "Automated detections"}


def state_words(row: Mapping[str, Any]) -> str:
    """A stored incident's state and assignee in words.

    >>> t = datetime(2026, 11, 17, 9)
    >>> state_words({"state": "open", "first_seen": t, "assignee": None})
    'Open since 17 Nov 2026 · not assigned'
    >>> state_words({"state": "acknowledged", "acknowledged_by": "ann", "assignee": "lee"})
    'Acknowledged by ann · assigned to lee'
    >>> state_words({"state": "snoozed", "snoozed_until": datetime(2026, 12, 3),
    ...              "assignee": None})
    'Snoozed until 3 Dec 2026 · not assigned'
    >>> state_words({"state": "resolved", "updated_at": t, "assignee": "lee",
    ...              "changed_by": "lee"})
    'Resolved by lee on 17 Nov 2026 · assigned to lee'
    """
    state = str(row["state"])
    if state == "open":
        words = f"Open since {format_day(row['first_seen'].date())}"
    elif state == "acknowledged":
        words = f"Acknowledged by {row.get('acknowledged_by') or 'someone'}"
    elif state == "snoozed":
        words = f"Snoozed until {format_day(row['snoozed_until'].date())}"
    else:  # resolved, dismissed
        by = f" by {row['changed_by']}" if row.get("changed_by") else ""
        words = f"{state.capitalize()}{by} on {format_day(row['updated_at'].date())}"
    who = row.get("assignee")
    return f"{words} · {f'assigned to {who}' if who else 'not assigned'}"


def follow_up_rows(stored: pl.DataFrame, *, role: Role | str) -> pl.DataFrame:
    """Stored incidents (rows of :func:`analytics.alerts.incidents.list_incidents`) as
    the page lists them: the slice and days in words, the source, the severity, the
    state in words and a link to the incident on the Anomalies page of its week.

    >>> stored = pl.DataFrame({"slice": ["category=spam|region=FL"], "source": ["cases"],
    ...     "freq": ["daily"], "metric": ["cases_daily"], "direction": ["up"],
    ...     "start": [datetime(2026, 11, 16)], "end": [datetime(2026, 11, 18)],
    ...     "peak_ts": [datetime(2026, 11, 17)], "peak_value": [120.0], "severity": ["high"],
    ...     "state": ["acknowledged"], "acknowledged_by": ["ann"], "assignee": [None]})
    >>> follow_up_rows(stored, role="associate").drop("link").rows()
    [('Spam · FL', 'Cases', '16–18 Nov', 'High', 'Acknowledged by ann · not assigned')]
    >>> follow_up_rows(stored, role="associate")["link"][0]
    '/anomalies?week=2026-W47&anomalies.incident=category%3Dspam%7Cregion%3DFL&anomalies.source=cases'
    """  # noqa: E501 - a link is one line
    rows = []
    for row in stored.iter_rows(named=True):
        first, last = incident_days(Incident.of(row))
        rows.append(
            (
                format_slice(str(row["slice"])),
                _SOURCES.get(str(row["source"]), humanise(str(row["source"]))),
                format_days(first, last),
                str(row["severity"]).capitalize(),
                state_words(row),
                messages.incident_link(row, role=role, base_url=""),
            )
        )
    return pl.DataFrame(rows, schema=dict.fromkeys(COLUMNS, pl.String), orient="row")


def followed_up(engine: Engine, *, role: Role | str) -> pl.DataFrame:
    """The incidents still open, acknowledged or snoozed (highest score first), as
    :func:`follow_up_rows` lists them; for roles that see case lists."""
    return follow_up_rows(incidents.list_incidents(engine, role=role), role=role)

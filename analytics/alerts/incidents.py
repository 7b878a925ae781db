"""Stored incidents and their life: open, acknowledged, snoozed, resolved, dismissed.

:func:`sync` keeps the alerted incidents of a scan (a frame shaped like
:func:`analytics.views.anomalies.recent_incidents`) in the ``incidents`` table: one row
per episode of one series (:func:`incident_key`), updated while the episode lasts and
never duplicated. It returns what changed (:class:`Change`), so that the caller queues
one message per incident that is new, back, or out of its snooze, not one per point.

People who may triage (leadership and associates) move an incident through its life
with :func:`acknowledge`, :func:`assign`, :func:`snooze`, :func:`resolve`,
:func:`dismiss` and :func:`reopen`, and write on it with :func:`add_note`. Each
change is audited in the same transaction (who, what, the state before and after), and
each carries the ``version`` its author read: when someone (or the watch run) changed
the incident's state meanwhile, nothing is written and :class:`IncidentConflict` says so.

``version`` counts changes of state, not the episode growing: a watch run that only
extends an episode (a later end, a higher peak) does not make an open page stale.
Times are naive UTC, as the database stores them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine, insert, select, update

from analytics import access
from analytics.access import Viewer
from analytics.access.audit import utc_now, write_audit
from analytics.core.models import IncidentNote, IncidentState, StoredIncident

__all__ = [
    "ACTIVE",
    "CHANGE_KINDS",
    "HIGH_SCORE",
    "MEDIUM_SCORE",
    "NOTE_MAX",
    "NOTIFY",
    "Change",
    "IncidentConflict",
    "IncidentNotFound",
    "InvalidAction",
    "acknowledge",
    "add_note",
    "assign",
    "dismiss",
    "incident_key",
    "list_incidents",
    "notes",
    "read_incident",
    "reopen",
    "resolve",
    "severity",
    "snooze",
    "sync",
]

#: Scores (``-log10 p`` of an incident's peak) from which an incident is of medium and
#: of high severity; below :data:`MEDIUM_SCORE` it is low. On the medium demo's eight
#: months the alerted incidents' median score is about 6 and a quarter score above 12.
MEDIUM_SCORE = 6.0
HIGH_SCORE = 12.0
#: The states :func:`list_incidents` lists by default: those someone still has to act on.
ACTIVE: tuple[IncidentState, ...] = (
    IncidentState.open,
    IncidentState.acknowledged,
    IncidentState.snoozed,
)
#: What :func:`sync` reports; the caller tells people about :data:`NOTIFY` only.
CHANGE_KINDS: tuple[str, ...] = ("opened", "reopened", "unsnoozed", "updated")
NOTIFY: frozenset[str] = frozenset({"opened", "reopened", "unsnoozed"})
#: The longest note.
NOTE_MAX = 2000

_PERIOD = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}
_CLOSED = (IncidentState.resolved, IncidentState.dismissed)
_VERBS = {"incident_ack": "acknowledge"}
_COLUMNS = (
    "id", "key", "source", "freq", "metric", "direction", "slice_key", "start", "end",
    "peak_ts", "peak_value", "expected", "score", "severity", "state", "assignee",
    "acknowledged_by", "snoozed_until", "first_seen", "last_seen", "updated_at", "version",
    "changed_by",
)  # fmt: skip
_SCHEMA: dict[str, Any] = {
    "id": pl.Int64,
    "key": pl.String,
    "source": pl.String,
    "freq": pl.String,
    "metric": pl.String,
    "direction": pl.String,
    "slice": pl.String,
    "start": pl.Datetime("us"),
    "end": pl.Datetime("us"),
    "peak_ts": pl.Datetime("us"),
    "peak_value": pl.Float64,
    "expected": pl.Float64,
    "score": pl.Float64,
    "severity": pl.String,
    "state": pl.String,
    "assignee": pl.String,
    "acknowledged_by": pl.String,
    "snoozed_until": pl.Datetime("us"),
    "first_seen": pl.Datetime("us"),
    "last_seen": pl.Datetime("us"),
    "updated_at": pl.Datetime("us"),
    "version": pl.Int64,
    "changed_by": pl.String,
}


class IncidentNotFound(LookupError):
    """No stored incident has this id."""


class IncidentConflict(RuntimeError):
    """The incident changed since its author read it; nothing was written."""


class InvalidAction(ValueError):
    """The action does not apply to the incident as it is (or its input is wrong)."""


@dataclass(frozen=True)
class Change:
    """What :func:`sync` did to one stored incident: ``kind`` (one of
    :data:`CHANGE_KINDS`), its ``id``, and the incident as stored afterwards (``row``:
    the columns of :func:`list_incidents`, plus ``ongoing``, true while the episode
    covers the newest data)."""

    kind: str
    id: int
    row: dict[str, Any]

    @property
    def incident_id(self) -> int:
        """The stored incident's id (the same as :attr:`id`)."""
        return self.id

    @property
    def notify(self) -> bool:
        """Whether people are told (opened, reopened or unsnoozed; not a mere update)."""
        return self.kind in NOTIFY


def incident_key(row: Mapping[str, Any]) -> str:
    """The series an incident belongs to: source, frequency, metric, direction, slice.

    >>> incident_key({"source": "cases", "freq": "daily", "metric": "cases_daily",
    ...               "direction": "up", "slice": "category=spam|region=FL"})
    'cases|daily|cases_daily|up|category=spam|region=FL'
    """
    return f"{row['source']}|{row['freq']}|{row['metric']}|{row['direction']}|{row['slice']}"


def severity(score: float) -> str:
    """``low``, ``medium`` (from :data:`MEDIUM_SCORE`) or ``high`` (from
    :data:`HIGH_SCORE`) for an incident whose peak scores ``score`` (``-log10 p``).

    >>> severity(4.2), severity(6.0), severity(30.0)
    ('low', 'medium', 'high')
    """
    if score >= HIGH_SCORE:
        return "high"
    return "medium" if score >= MEDIUM_SCORE else "low"


# --------------------------------------------------------------------------- sync


def _naive_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def _stored(conn: Connection, incident_id: int) -> dict[str, Any] | None:
    found = conn.execute(
        select(*[getattr(StoredIncident, c) for c in _COLUMNS]).where(
            StoredIncident.id == incident_id
        )
    ).first()
    return None if found is None else _as_row(found)


def _as_row(values: Iterable[Any]) -> dict[str, Any]:
    row = {c: getattr(v, "value", v) for c, v in zip(_COLUMNS, values, strict=True)}
    row["slice"] = row.pop("slice_key")
    return row


def _ongoing(row: Mapping[str, Any], newest: datetime) -> bool:
    """Whether the episode covers the day before ``newest`` (a weekly point its week)."""
    covered = timedelta(days=6) if row["freq"] == "weekly" else timedelta(0)
    return bool((row["end"] + covered).date() >= (newest - timedelta(days=1)).date())


def _episode(row: Mapping[str, Any]) -> dict[str, Any]:
    """The episode's values of one scan row, as the table stores them."""
    expected = row.get("expected", row.get("peak_expected"))
    score = float(row["score"])
    return {
        "end": row["end"],
        "peak_ts": row["peak_ts"],
        "peak_value": float(row["peak_value"]),
        "expected": None if expected is None else float(expected),
        "score": score,
        "severity": severity(score),
    }


def _alerted(scanned: pl.DataFrame) -> list[dict[str, Any]]:
    """The alerted rows of a scan, by series and start (so that an episode's earlier
    run is stored before a later one that continues it)."""
    if scanned.is_empty():
        return []
    rows = scanned.filter(pl.col("alerted")) if "alerted" in scanned.columns else scanned
    found = [dict(r, key=incident_key(r)) for r in rows.iter_rows(named=True)]
    return sorted(found, key=lambda r: (r["key"], r["start"]))


def _match(stored: list[dict[str, Any]], row: Mapping[str, Any]) -> dict[str, Any] | None:
    """The stored episode of the same series that ``row`` overlaps or continues (starts
    within it or within one period after its end), the latest if several."""
    period = _PERIOD.get(str(row["freq"]), timedelta(days=1))
    found = [s for s in stored if row["start"] <= s["end"] + period and row["end"] >= s["start"]]
    return max(found, key=lambda s: s["start"]) if found else None


def sync(
    conn: Connection, scanned: pl.DataFrame, *, now: datetime, newest: datetime
) -> list[Change]:
    """Store the alerted incidents of ``scanned`` (a scan read up to ``newest``, the
    day after its newest data) as of ``now``, on ``conn`` (the caller's transaction, so
    that the messages it queues for the changes commit with them, or not at all).

    A row whose series has a stored episode that it overlaps or continues updates it
    (a later ``end``, a higher peak, ``last_seen``): ``updated`` when the episode
    grew, nothing when the run saw nothing new. A resolved or dismissed incident whose
    episode goes on after its ``end`` is open again (``reopened``). Any other row is a
    new incident (``opened``). Independently of the scan, a snoozed incident whose
    snooze is over is open again (``unsnoozed``). One change per incident, at most.
    Opening, reopening and unsnoozing set ``told_at`` to ``now`` (what a digest reads).
    """
    now, newest = _naive_utc(now), _naive_utc(newest)
    rows = _alerted(scanned)
    keys = sorted({r["key"] for r in rows})
    if keys:
        # Lock the series' rows first (a no-op update): a person's action waits for
        # this transaction, then finds the version changed if the state did.
        conn.execute(
            update(StoredIncident)
            .where(StoredIncident.key.in_(keys))
            .values(version=StoredIncident.version)
        )
    changes: dict[int, Change] = {}
    for key, group in _by_key(rows).items():
        stored = _series(conn, key)
        for row in group:
            _merge(changes, _sync_row(conn, row, stored, now=now))
    for change in _unsnooze(conn, now=now):
        _merge(changes, change)
    result = []
    for change in sorted(changes.values(), key=lambda c: c.id):
        after = _stored(conn, change.id)
        assert after is not None  # written by this transaction
        result.append(Change(change.kind, change.id, dict(after, ongoing=_ongoing(after, newest))))
    return result


def _merge(changes: dict[int, Change], change: Change | None) -> None:
    """Keep one change per incident, the one that says most (opened or reopened, then
    unsnoozed, then updated)."""
    rank = {"updated": 0, "unsnoozed": 1, "opened": 2, "reopened": 2}
    if change is None:
        return
    known = changes.get(change.id)
    if known is None or rank[change.kind] > rank[known.kind]:
        changes[change.id] = change


def _by_key(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["key"], []).append(row)
    return grouped


def _series(conn: Connection, key: str) -> list[dict[str, Any]]:
    found = conn.execute(
        select(*[getattr(StoredIncident, c) for c in _COLUMNS]).where(StoredIncident.key == key)
    ).all()
    return [_as_row(r) for r in found]


def _sync_row(
    conn: Connection, row: dict[str, Any], stored: list[dict[str, Any]], *, now: datetime
) -> Change | None:
    """Insert or update the stored episode for one alerted scan row; keeps ``stored``
    (the series' episodes) in step."""
    episode = _episode(row)
    match = _match(stored, row)
    if match is None:
        new = {
            "key": row["key"],
            "source": str(row["source"]),
            "freq": str(row["freq"]),
            "metric": str(row["metric"]),
            "direction": str(row["direction"]),
            "slice_key": str(row["slice"]),
            "start": row["start"],
            **episode,
            "state": IncidentState.open,
            "first_seen": now,
            "last_seen": now,
            "updated_at": now,
            "told_at": now,
            "version": 1,
        }
        new_id = int(
            conn.execute(
                insert(StoredIncident).values(**new).returning(StoredIncident.id)
            ).scalar_one()
        )
        stored.append({**new, "id": new_id, "state": "open"})
        return Change("opened", new_id, {})
    grew = row["end"] > match["end"]
    higher = episode["score"] > match["score"]
    values: dict[str, Any] = {"last_seen": now}
    if grew:
        values["end"] = row["end"]
    if higher:
        values.update({k: episode[k] for k in episode if k != "end"})
    kind = "updated" if grew or higher else None
    if match["state"] in _CLOSED:
        if not grew:  # the closed episode, seen again as it was: leave it closed
            values = {"last_seen": now}
            kind = None
        else:
            kind = "reopened"
            values.update(
                state=IncidentState.open,
                snoozed_until=None,
                told_at=now,
                version=StoredIncident.version + 1,
            )
    if kind is not None:
        values["updated_at"] = now
    conn.execute(update(StoredIncident).where(StoredIncident.id == match["id"]).values(**values))
    match.update({k: v for k, v in values.items() if k in ("end", "score")})
    if kind == "reopened":
        match["state"] = "open"
    return None if kind is None else Change(kind, int(match["id"]), {})


def _unsnooze(conn: Connection, *, now: datetime) -> list[Change]:
    """Open again every snoozed incident whose snooze is over at ``now``."""
    due = conn.execute(
        select(StoredIncident.id).where(
            StoredIncident.state == IncidentState.snoozed, StoredIncident.snoozed_until <= now
        )
    ).all()
    changes = []
    for (incident_id,) in due:
        done = conn.execute(
            update(StoredIncident)
            .where(StoredIncident.id == incident_id, StoredIncident.state == IncidentState.snoozed)
            .values(
                state=IncidentState.open,
                snoozed_until=None,
                updated_at=now,
                told_at=now,
                version=StoredIncident.version + 1,
            )
        )
        if done.rowcount:
            changes.append(Change("unsnoozed", int(incident_id), {}))
    return changes


# --------------------------------------------------------------------------- actions


def read_incident(engine: Engine, incident_id: int, *, role: Any) -> dict[str, Any]:
    """One stored incident (the columns of :func:`list_incidents`), or
    :class:`IncidentNotFound`."""
    access.require(role, "cases")
    with engine.connect() as conn:
        row = _stored(conn, incident_id)
    if row is None:
        raise IncidentNotFound(f"there is no incident {incident_id}")
    return row


def _act(
    engine: Engine,
    incident_id: int,
    *,
    viewer: Viewer,
    version: int,
    action: str,
    allowed: tuple[IncidentState, ...],
    values: dict[str, Any],
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``values`` on the incident if it still is at ``version`` and in one of the
    ``allowed`` states, bump its version and audit ``action``, in one transaction; the
    incident as it is afterwards."""
    access.require(viewer.role, "triage")  # leadership, associates
    now = utc_now()
    with engine.begin() as conn:
        before = _stored(conn, incident_id)
        if before is None:
            raise IncidentNotFound(f"there is no incident {incident_id}")
        # The write carries every check, so two people acting at once cannot both pass
        # them: the second one's write finds the version moved and changes nothing.
        done = conn.execute(
            update(StoredIncident)
            .where(
                StoredIncident.id == incident_id,
                StoredIncident.version == version,
                StoredIncident.state.in_(allowed),
            )
            .values(
                **values,
                updated_at=now,
                changed_by=viewer.name[:200],
                version=StoredIncident.version + 1,
            )
        )
        current = _stored(conn, incident_id) or before
        if not done.rowcount:
            raise _refusal(current, version, action)
        was = {"state": before["state"], "version": version}
        now_is = {"state": current["state"], "version": current["version"], **(details or {})}
        write_audit(
            conn,
            viewer.name,
            viewer.role,
            action,
            _target(current),
            {"before": was, "after": now_is},
            now,
        )
    return current


def _target(row: Mapping[str, Any]) -> str:
    return f"incident {row['id']}: {row['key']}"


def _refusal(current: Mapping[str, Any], version: int, action: str) -> Exception:
    if current["version"] != version:
        who = current["acknowledged_by"] if current["state"] == "acknowledged" else None
        by = f" (now {current['state']}{f' by {who}' if who else ''})"
        return IncidentConflict(
            f"Incident {current['id']} was changed since you read it{by}; nothing was "
            "saved. Reload it and try again."
        )
    verb = _VERBS.get(action, action.removeprefix("incident_"))
    return InvalidAction(f"Incident {current['id']} is {current['state']}: you cannot {verb} it.")


def acknowledge(
    engine: Engine, incident_id: int, *, viewer: Viewer, version: int
) -> dict[str, Any]:
    """``viewer`` is on it: an open or snoozed incident becomes acknowledged (by them).
    Audited as ``incident_ack``."""
    return _act(
        engine,
        incident_id,
        viewer=viewer,
        version=version,
        action="incident_ack",
        allowed=(IncidentState.open, IncidentState.snoozed),
        values={
            "state": IncidentState.acknowledged,
            "acknowledged_by": viewer.name[:200],
            "snoozed_until": None,
        },
    )


def _person(name: str) -> str:
    cleaned = name.strip()
    if not cleaned or len(cleaned) > 200 or _odd(cleaned) or "\n" in cleaned:
        raise InvalidAction("Name the person to assign it to (one line, up to 200 characters).")
    return cleaned


def assign(
    engine: Engine, incident_id: int, to: str, *, viewer: Viewer, version: int
) -> dict[str, Any]:
    """Give an incident that is not closed to ``to`` (a person's name). Audited as
    ``incident_assign``."""
    person = _person(to)
    return _act(
        engine,
        incident_id,
        viewer=viewer,
        version=version,
        action="incident_assign",
        allowed=ACTIVE,
        values={"assignee": person},
        details={"assignee": person},
    )


def snooze(
    engine: Engine, incident_id: int, until: datetime, *, viewer: Viewer, version: int
) -> dict[str, Any]:
    """Quiet an open or acknowledged incident until ``until`` (in the future); the next
    watch run after it opens it again. Audited as ``incident_snooze``."""
    until = _naive_utc(until)
    if until <= utc_now():
        raise InvalidAction("Snooze it until a moment in the future.")
    return _act(
        engine,
        incident_id,
        viewer=viewer,
        version=version,
        action="incident_snooze",
        allowed=(IncidentState.open, IncidentState.acknowledged, IncidentState.snoozed),
        values={"state": IncidentState.snoozed, "snoozed_until": until},
        details={"until": until.isoformat(sep=" ")},
    )


def resolve(engine: Engine, incident_id: int, *, viewer: Viewer, version: int) -> dict[str, Any]:
    """Close an incident as dealt with; it opens again if its episode goes on. Audited
    as ``incident_resolve``."""
    return _act(
        engine,
        incident_id,
        viewer=viewer,
        version=version,
        action="incident_resolve",
        allowed=ACTIVE,
        values={"state": IncidentState.resolved, "snoozed_until": None},
    )


def dismiss(engine: Engine, incident_id: int, *, viewer: Viewer, version: int) -> dict[str, Any]:
    """Close an incident as not worth acting on; it opens again if its episode goes on.
    Audited as ``incident_dismiss``."""
    return _act(
        engine,
        incident_id,
        viewer=viewer,
        version=version,
        action="incident_dismiss",
        allowed=ACTIVE,
        values={"state": IncidentState.dismissed, "snoozed_until": None},
    )


def reopen(engine: Engine, incident_id: int, *, viewer: Viewer, version: int) -> dict[str, Any]:
    """Open again an incident that is acknowledged, snoozed, resolved or dismissed.
    Audited as ``incident_reopen``."""
    allowed = tuple(s for s in IncidentState if s != IncidentState.open)
    return _act(
        engine,
        incident_id,
        viewer=viewer,
        version=version,
        action="incident_reopen",
        allowed=allowed,
        values={"state": IncidentState.open, "snoozed_until": None},
    )


def _odd(text: str) -> bool:
    """Control characters (but line breaks and tabs) or invisible format characters."""
    return any(
        unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co") and c not in "\n\t" for c in text
    )


def add_note(engine: Engine, incident_id: int, text: str, *, viewer: Viewer) -> int:
    """Write ``viewer``'s note on an incident; its id. Audited as ``incident_note`` (the
    audit names the note, not its text)."""
    access.require(viewer.role, "triage")  # leadership, associates
    body = text.strip()
    if not body:
        raise InvalidAction("Write something in the note.")
    if len(body) > NOTE_MAX:
        raise InvalidAction(f"Shorten the note to {NOTE_MAX:,} characters (it has {len(body):,}).")
    if _odd(body):
        raise InvalidAction("Remove the control or invisible characters from the note.")
    now = utc_now()
    with engine.begin() as conn:
        current = _stored(conn, incident_id)
        if current is None:
            raise IncidentNotFound(f"there is no incident {incident_id}")
        note_id = int(
            conn.execute(
                insert(IncidentNote)
                .values(
                    incident_id=incident_id, created_at=now, user_name=viewer.name[:200], text=body
                )
                .returning(IncidentNote.id)
            ).scalar_one()
        )
        write_audit(
            conn,
            viewer.name,
            viewer.role,
            "incident_note",
            _target(current),
            {"note": note_id},
            now,
        )
    return note_id


# --------------------------------------------------------------------------- reading


def list_incidents(
    engine: Engine,
    *,
    states: Iterable[IncidentState | str] | None = ACTIVE,
    role: Any,
) -> pl.DataFrame:
    """The stored incidents in ``states`` (default :data:`ACTIVE`; None: all), highest
    score first: ``id``, ``key``, ``source``, ``freq``, ``metric``, ``direction``,
    ``slice``, the episode (``start``, ``end``, ``peak_ts``, ``peak_value``,
    ``expected``, ``score``, ``severity``), its life (``state``, ``assignee``,
    ``acknowledged_by``, ``snoozed_until``, ``first_seen``, ``last_seen``,
    ``updated_at``) and ``version``. For roles that see case lists (who works on what
    is case work); the product role gets :class:`analytics.access.AccessDenied`."""
    access.require(role, "cases")
    stmt = select(*[getattr(StoredIncident, c) for c in _COLUMNS]).order_by(
        StoredIncident.score.desc(), StoredIncident.id
    )
    if states is not None:
        stmt = stmt.where(StoredIncident.state.in_([IncidentState(s) for s in states]))
    with engine.connect() as conn:
        rows = [_as_row(r) for r in conn.execute(stmt).all()]
    return pl.DataFrame(rows, schema=_SCHEMA)


def notes(engine: Engine, incident_id: int) -> pl.DataFrame:
    """The notes on an incident, oldest first: ``created_at``, ``user_name``, ``text``."""
    stmt = (
        select(IncidentNote.created_at, IncidentNote.user_name, IncidentNote.text)
        .where(IncidentNote.incident_id == incident_id)
        .order_by(IncidentNote.created_at, IncidentNote.id)
    )
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(stmt).all()]
    schema: dict[str, Any] = {
        "created_at": pl.Datetime("us"),
        "user_name": pl.String,
        "text": pl.String,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")

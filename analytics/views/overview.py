"""The Overview page: what data Lookout is looking at, how much of it, and how fresh it is.

:func:`dataset_overview` reads the facts (row counts, date range, the newest record,
the demo's settings) as one :class:`Overview`; every page also reads it to know whether
there is any data and which weeks it spans (:mod:`analytics.views.selection`). The row
counts are unsuppressed aggregates: :func:`shown_counts` gives them to the roles that
may see them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from analytics import access
from analytics.core import database, models
from analytics.core.models import Case, Event, Role

__all__ = [
    "DemoFacts",
    "Overview",
    "dataset_overview",
    "empty_overview",
    "freshness",
    "shown_counts",
]


@dataclass(frozen=True)
class DemoFacts:
    """The settings the demo data was generated with."""

    scale: str
    seed: int
    days: int
    end: str

    @classmethod
    def of(cls, meta: Mapping[str, Any]) -> DemoFacts:
        """From the ``demo`` entry of ``dataset_meta``.

        >>> DemoFacts.of({"scale": "small", "seed": 7, "days": 240, "end": "2026-05-01"})
        DemoFacts(scale='small', seed=7, days=240, end='2026-05-01')
        """
        return cls(
            scale=str(meta.get("scale", "")),
            seed=int(meta.get("seed", 0)),
            days=int(meta.get("days", 0)),
            end=str(meta.get("end", "")),
        )


@dataclass(frozen=True)
class SourceFacts:
    """Where the data is copied from, through a source map, and the last copy."""

    map_file: str
    source: str
    copied_at: str
    quarantined: int

    @classmethod
    def of(cls, meta: Mapping[str, Any]) -> SourceFacts | None:
        """From the ``source_sync`` entry of ``dataset_meta`` (None before a first copy).

        >>> SourceFacts.of({"map_file": "helpdesk.toml", "source": "sqlite:///h.db",
        ...     "at": "2026-12-06T09:10:00", "quarantined": {"cases": 22, "events": 0}})
        SourceFacts(map_file='helpdesk.toml', source='sqlite:///h.db', \
copied_at='2026-12-06T09:10:00', quarantined=22)
        """
        if not meta.get("at"):
            return None
        held = meta.get("quarantined") or {}
        return cls(
            map_file=str(meta.get("map_file", "")),
            source=str(meta.get("source", "")),
            copied_at=str(meta["at"]),
            quarantined=sum(int(n) for n in held.values()) if isinstance(held, Mapping) else 0,
        )


@dataclass(frozen=True)
class Overview:
    """Row counts per table, the data's date range and freshness, the demo's settings."""

    counts: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys(models.TABLES, 0))
    first_event: datetime | None = None
    last_event: datetime | None = None
    first_case: datetime | None = None
    last_case: datetime | None = None
    demo: DemoFacts | None = None
    source: SourceFacts | None = None

    @property
    def newest(self) -> datetime | None:
        """The newest record: the last event or the last case opened, whichever is later."""
        return max((t for t in (self.last_event, self.last_case) if t), default=None)

    @property
    def has_data(self) -> bool:
        """Whether there is any event or case to analyse.

        >>> Overview().has_data
        False
        """
        return bool(self.counts.get("events") or self.counts.get("cases"))


def empty_overview() -> Overview:
    """The overview of a database that does not exist yet: every table empty."""
    return Overview()


def dataset_overview(engine: Engine) -> Overview:
    """Row counts, the data's date range and freshness, and the demo facts if any.

    Read before anyone signs in (it says whether there is data at all); the counts are
    shown through :func:`shown_counts`.
    """
    counts = database.table_counts(engine)
    first_event = last_event = first_case = last_case = None
    if counts["events"] or counts["cases"]:
        with engine.connect() as conn:
            first_event, last_event = conn.execute(
                select(func.min(Event.ts), func.max(Event.ts))
            ).one()
            first_case, last_case = conn.execute(
                select(func.min(Case.opened_at), func.max(Case.opened_at))
            ).one()
    meta = database.get_meta(engine, "demo")
    copied = database.get_meta(engine, "source_sync")
    return Overview(
        counts=counts,
        first_event=first_event,
        last_event=last_event,
        first_case=first_case,
        last_case=last_case,
        demo=DemoFacts.of(meta) if isinstance(meta, Mapping) else None,
        source=SourceFacts.of(copied) if isinstance(copied, Mapping) else None,
    )


def shown_counts(info: Overview, *, role: Role | str) -> dict[str, int]:
    """The row counts ``role`` may see: all of them with unsuppressed aggregates, none
    otherwise (the number of all cases, less the product brief's weekly totals, would
    give back a week whose total is hidden).

    >>> shown_counts(Overview(), role="product")
    {}
    """
    access.require(role, "suppressed")
    return dict(info.counts) if access.allowed(role, "aggregates") else {}


def freshness(newest: datetime, now: datetime) -> str:
    """How old the newest record is, in hours under three days, else in days; a record
    dated after ``now`` (a wrong time zone in a source map, or a source's clock) is said
    to be so, as a sentence ending the caption.

    >>> freshness(datetime(2026, 5, 1), datetime(2026, 5, 1, 5))
    '5 hours old'
    >>> freshness(datetime(2026, 5, 1), datetime(2026, 5, 9))
    '8 days old'
    >>> freshness(datetime(2026, 5, 1, 13), datetime(2026, 5, 1, 9))
    'dated 4 hours ahead of now: check the time zones of the source or its clocks'
    """
    hours = (now - newest).total_seconds() / 3600
    if hours < -1:  # a clock a little ahead is not worth a word
        ahead = f"{-hours:,.0f} hours"
        return f"dated {ahead} ahead of now: check the time zones of the source or its clocks"
    hours = max(hours, 0.0)
    return f"{hours:,.0f} hours old" if hours < 72 else f"{hours / 24:,.0f} days old"

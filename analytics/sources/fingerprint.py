"""The database's fingerprint: cheap facts that change whenever its data does.

A snapshot is fresh while its recorded fingerprint equals the database's; the pages key
their caches on :func:`data_fingerprint`; a cube's ``as_of`` is the newest record time in it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, inspect, select

from analytics.core import database
from analytics.core.models import Account, Annotation, Case, Event

__all__ = ["data_fingerprint", "fingerprint", "fingerprint_as_of"]


def fingerprint(engine: Engine) -> dict[str, Any]:
    """Cheap facts that change whenever the data does.

    One aggregate per query, each answered from an index (SQLite only optimises a lone
    ``max`` this way): highest ids, newest timestamps and resolution, and the
    ``data_version`` our own writers (seed, import) bump. Deleting rows behind Lookout's
    back is not seen: run ``python -m analytics refresh --full`` after such a change.
    """
    tables = set(inspect(engine).get_table_names())
    probes: dict[str, Any] = {
        "events": (func.max(Event.id), func.max(Event.ts)),
        "accounts": (func.max(Account.id),),
        "annotations": (func.max(Annotation.id), func.count(Annotation.id)),
        "cases": (func.max(Case.id), func.max(Case.opened_at), func.max(Case.resolved_at)),
    }
    fp: dict[str, Any] = {}
    with engine.connect() as conn:
        for name, aggregates in probes.items():
            if name in tables:
                fp[name] = [conn.execute(select(agg)).scalar() for agg in aggregates]
    fp["data_version"] = database.get_meta(engine, "data_version")
    return _json_round(fp)


def data_fingerprint(engine: Engine) -> str:
    """A short text that changes whenever the database's data does (a cache key)."""
    text = json.dumps(fingerprint(engine), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprint_as_of(fp: Mapping[str, Any]) -> datetime | None:
    """The newest record time in a fingerprint: the last event or the last case opened.

    >>> fingerprint_as_of({"events": [9, "2026-11-24 10:00:00"], "cases": [3, "2026-11-25", None]})
    datetime.datetime(2026, 11, 25, 0, 0)
    """
    stamps = [(fp.get("events") or [None, None])[1], (fp.get("cases") or [None] * 3)[1]]
    parsed = [datetime.fromisoformat(str(s)) for s in stamps if s]
    return max(parsed) if parsed else None


def _json_round(value: dict[str, Any]) -> dict[str, Any]:
    rounded: dict[str, Any] = json.loads(json.dumps(value, default=str))
    return rounded

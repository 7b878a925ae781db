"""The audit trail: who saw, revealed, exported or signed in, appended and never changed.

:func:`audit` appends to ``audit_log`` (who, role, what, target, filters, when); the
database refuses updates and deletes of those rows (triggers made by ``init-db``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import polars as pl
from sqlalchemy import Engine, insert, select

from analytics.access.roles import Viewer, require
from analytics.core.models import AuditLog, Role

__all__ = ["AUDIT_ACTIONS", "audit", "audit_frame", "utc_now", "write_audit"]

#: What the audit log records.
AUDIT_ACTIONS: tuple[str, ...] = (
    "login", "login_failed", "login_refused", "case_view", "reveal", "export", "report_download",
    "annotation_add", "annotation_edit", "annotation_end", "incident_ack", "incident_assign",
    "incident_snooze", "incident_resolve", "incident_dismiss", "incident_note", "incident_reopen",
    "escalate", "subscription_add", "subscription_remove", "delivery_retry",
)  # fmt: skip


def utc_now() -> datetime:
    """Now, as the database stores times: naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def write_audit(
    conn: Any,
    user: str,
    role: Role | str,
    action: str,
    target: str | None,
    filters: Mapping[str, Any] | None,
    when: datetime,
) -> None:
    conn.execute(
        insert(AuditLog).values(
            ts=when,
            user_name=user[:64],
            role=str(getattr(role, "value", role))[:32],
            action=action[:64],
            target=None if target is None else target[:400],
            filters=None if not filters else json.dumps(dict(filters), default=str, sort_keys=True),
        )
    )


def audit(
    engine: Engine,
    viewer: Viewer,
    action: str,
    *,
    target: str | None = None,
    filters: Mapping[str, Any] | None = None,
) -> None:
    """Append one row to the audit log: ``viewer`` did ``action`` (``case_view``,
    ``reveal``, ``export``, ``report_download``, ...) on ``target`` under ``filters``."""
    with engine.begin() as conn:
        write_audit(conn, viewer.name, viewer.role, action, target, filters, utc_now())


_AUDIT_SCHEMA: dict[str, Any] = {
    "ts": pl.Datetime("us"),
    "user_name": pl.String,
    "role": pl.String,
    "action": pl.String,
    "target": pl.String,
    "filters": pl.String,
}


def audit_frame(
    engine: Engine,
    role: Role | str,
    *,
    user: str = "",
    action: str = "",
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 5000,
) -> pl.DataFrame:
    """The audit log, newest first, for a role that may read it: optionally one user's
    (name contains ``user``), one action, and ``[start, end)``."""
    require(role, "audit")
    stmt = select(AuditLog.ts, AuditLog.user_name, AuditLog.role, AuditLog.action,
                  AuditLog.target, AuditLog.filters)  # fmt: skip
    if user:
        stmt = stmt.where(AuditLog.user_name.contains(user, autoescape=True))
    if action:
        stmt = stmt.where(AuditLog.action == action)
    if start is not None:
        stmt = stmt.where(AuditLog.ts >= start)
    if end is not None:
        stmt = stmt.where(AuditLog.ts < end)
    stmt = stmt.order_by(AuditLog.ts.desc(), AuditLog.id.desc()).limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=_AUDIT_SCHEMA, orient="row")

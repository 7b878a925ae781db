"""The Admin page: who may sign in, and the audit trail of who saw, revealed or exported what.

Both reads are :mod:`analytics.access`' (role-checked there: ``users`` and ``audit``);
this module gives them as the page asks for them.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import polars as pl
from sqlalchemy import Engine

from analytics import access
from analytics.core.models import Role
from analytics.present.formatting import humanised

__all__ = ["ACTION_CHOICES", "audit_log", "readable", "users"]

#: The actions the audit log can be narrowed to ("" for every action).
ACTION_CHOICES: tuple[str, ...] = ("", *access.AUDIT_ACTIONS)


def users(engine: Engine, *, role: Role | str) -> pl.DataFrame:
    """Every user without their password hash (:func:`analytics.access.list_users`)."""
    return access.list_users(engine, role)


def audit_log(
    engine: Engine,
    *,
    role: Role | str,
    user: str = "",
    action: str = "",
    days: tuple[date, date] | None = None,
) -> pl.DataFrame:
    """The audit log, newest first: entries of users whose name contains ``user``, of one
    ``action`` ("" for all), on the ``days`` from the first to the last (both included)."""
    start = end = None
    if days is not None:
        start = datetime.combine(days[0], time.min)
        end = datetime.combine(days[1], time.min) + timedelta(days=1)
    return access.audit_frame(engine, role, user=user.strip(), action=action, start=start, end=end)


def readable(frame: pl.DataFrame) -> pl.DataFrame:
    """The audit log or the users as the page shows them: each action and role in words
    (``login_failed`` -> ``Login failed``, ``admin`` -> ``Admin``); the CSV export keeps
    the codes.

    >>> readable(pl.DataFrame({"action": ["login_failed", "export"]}))["action"].to_list()
    ['Login failed', 'Export']
    >>> readable(pl.DataFrame({"role": ["admin", "associate"]}))["role"].to_list()
    ['Admin', 'Associate']
    """
    worded = [c for c in ("action", "role") if c in frame.columns]
    return frame.with_columns(humanised(pl.col(c).cast(pl.String)) for c in worded)

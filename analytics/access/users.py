"""Local accounts: adding, removing and listing users, and signing in with lockout.

Local accounts (:func:`add_user`, :func:`sign_in`) keep an argon2id hash
(``argon2-cffi``); after :data:`MAX_FAILURES` wrong passwords in a row an account is
locked for :data:`LOCKOUT`. People signing in through the identity provider are matched
by name (their email) in the same table for their role, unless a claim carries it.
Every sign-in, failed or not, is written to the audit trail.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import Engine, case, delete, insert, or_, select, update

from analytics.access.audit import utc_now, write_audit
from analytics.access.roles import Viewer, require, role_of
from analytics.core.models import Role, User

if TYPE_CHECKING:
    from argon2 import PasswordHasher

__all__ = [
    "LOCKOUT",
    "MAX_FAILURES",
    "REFUSAL",
    "SignInFailed",
    "add_user",
    "known_role",
    "list_users",
    "remove_user",
    "set_role",
    "sign_in",
]

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
_MIN_PASSWORD = 10


@cache
def _hasher() -> PasswordHasher:
    """The argon2id hasher, imported on first use: only signing in and adding users hash."""
    from argon2 import PasswordHasher

    return PasswordHasher()


class SignInFailed(ValueError):
    """Wrong name or password, or a locked account (the message does not say which
    of name or password was wrong)."""


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200 or any(c.isspace() and c != " " for c in name):
        raise ValueError("a user name is 1 to 200 characters on one line")
    return name


def add_user(engine: Engine, name: str, role: Role | str, password: str | None) -> None:
    """Create a user. ``password`` None makes an identity-provider-only account.
    ``ValueError`` for a taken name, an unknown role or a password under 10 characters."""
    name, role = _check_name(name), role_of(role)
    if password is not None and len(password) < _MIN_PASSWORD:
        raise ValueError(f"a password has at least {_MIN_PASSWORD} characters")
    hashed = None if password is None else _hasher().hash(password)
    with engine.begin() as conn:
        if conn.execute(select(User.id).where(User.name == name)).first():
            raise ValueError(f"user {name!r} exists already")
        conn.execute(
            insert(User).values(
                name=name, role=role, password_hash=hashed, failed_logins=0, created_at=utc_now()
            )
        )


def remove_user(engine: Engine, name: str) -> None:
    """Delete a user (``ValueError`` when there is none of that name)."""
    with engine.begin() as conn:
        if conn.execute(delete(User).where(User.name == name)).rowcount == 0:
            raise ValueError(f"no user {name!r}")


def set_role(engine: Engine, name: str, role: Role | str) -> None:
    """Change a user's role (``ValueError`` for an unknown user or role)."""
    role = role_of(role)
    with engine.begin() as conn:
        if conn.execute(update(User).where(User.name == name).values(role=role)).rowcount == 0:
            raise ValueError(f"no user {name!r}")


def list_users(engine: Engine, role: Role | str) -> pl.DataFrame:
    """Users without their hashes: name, role, how they sign in, lock state (for a role
    that may manage users)."""
    require(role, "users")
    stmt = select(User.name, User.role, User.password_hash, User.failed_logins,
                  User.locked_until, User.created_at).order_by(User.name)  # fmt: skip
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return pl.DataFrame(
        {
            "name": [r.name for r in rows],
            "role": [Role(r.role).value for r in rows],
            "sign_in": ["password" if r.password_hash else "identity provider" for r in rows],
            "failed_logins": [r.failed_logins for r in rows],
            "locked_until": [r.locked_until for r in rows],
            "created_at": [r.created_at for r in rows],
        },
        schema={
            "name": pl.String, "role": pl.String, "sign_in": pl.String,
            "failed_logins": pl.Int64, "locked_until": pl.Datetime("us"),
            "created_at": pl.Datetime("us"),
        },
    )  # fmt: skip


#: The one answer to every refused sign-in: it never tells a stranger whether a name
#: exists, whether the password was wrong or whether the account is locked.
REFUSAL = (
    "wrong name or password, or too many attempts "
    f"(after {MAX_FAILURES} in a row an account waits {LOCKOUT.seconds // 60} minutes)"
)


def sign_in(engine: Engine, name: str, password: str, *, now: datetime | None = None) -> Viewer:
    """Check a local password; returns the :class:`Viewer` or raises
    :class:`SignInFailed` with :data:`REFUSAL`, whatever the reason. Every attempt is
    audited (never the password).

    An attempt is counted in the database *before* the password is checked, in one
    atomic ``UPDATE ... SET failed_logins = failed_logins + 1 ... RETURNING`` that only
    succeeds while the account is not locked; the attempt that reaches
    :data:`MAX_FAILURES` sets the lock in the same statement. So however many attempts
    race, at most :data:`MAX_FAILURES` passwords are ever checked per :data:`LOCKOUT`
    window; a right password resets the count.
    """
    now = now or utc_now()
    name = name.strip()[:200]
    with engine.begin() as conn:
        user = conn.execute(
            select(User.id, User.role, User.password_hash).where(User.name == name)
        ).first()
        attempt = None if user is None else _count_attempt(conn, user.id, now)
        if user is None:
            write_audit(conn, name, "", "login_failed", "unknown user", None, now)
        elif attempt is None:
            write_audit(conn, name, user.role, "login_refused", "locked", None, now)
    if user is None or attempt is None:
        _hasher().hash(password or "x")  # same work as a real check: names cannot be probed
        raise SignInFailed(REFUSAL)
    good = _verify(user.password_hash, password)  # outside any transaction: no lock held
    with engine.begin() as conn:
        if good:
            conn.execute(
                update(User).where(User.id == user.id).values(failed_logins=0, locked_until=None)
            )
            write_audit(conn, name, user.role, "login", "password", None, now)
        else:
            locked = "locked" if attempt >= MAX_FAILURES else None
            write_audit(conn, name, user.role, "login_failed", locked, None, now)
    if not good:
        raise SignInFailed(REFUSAL)
    return Viewer(name=name, role=Role(user.role), via="local")


def _count_attempt(conn: Any, user_id: int, now: datetime) -> int | None:
    """Count one attempt atomically; its number since the last success or lock, or None
    when the account is locked (nothing counted). An expired lock starts a new count."""
    expired = User.locked_until.is_not(None)  # only rows that pass the WHERE below get here
    count = case((expired, 1), else_=User.failed_logins + 1)
    stmt = (
        update(User)
        .where(User.id == user_id)
        .where(or_(User.locked_until.is_(None), User.locked_until <= now))
        .where(or_(User.locked_until.is_not(None), User.failed_logins < MAX_FAILURES))
        .values(
            failed_logins=count,
            locked_until=case((count >= MAX_FAILURES, now + LOCKOUT), else_=None),
        )
        .returning(User.failed_logins)
    )
    failures: int | None = conn.execute(stmt).scalar()
    return failures


def _verify(stored: str | None, password: str) -> bool:
    if not stored:
        return False  # an identity-provider account has no password
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return bool(_hasher().verify(stored, password))
    except (VerificationError, InvalidHashError):
        return False


def known_role(engine: Engine, name: str) -> Role | None:
    """The role stored for ``name`` (an identity provider's email), if any."""
    with engine.connect() as conn:
        role = conn.execute(select(User.role).where(User.name == name.strip())).scalar()
    return None if role is None else Role(role)

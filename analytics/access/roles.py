"""Roles and what each may see: the capabilities, the grants, and the check every view makes.

Roles (:class:`analytics.core.models.Role`) and what each may do (:data:`GRANTS`):

- **admin**: aggregates, users and the audit log; no case lists or text;
- **leadership**: aggregates and case lists, text masked;
- **associate**: everything, personal data masked by default, with a per-case reveal
  that is written to the audit log;
- **product**: aggregates with small counts suppressed (the product brief) only: no
  case list, no text, no identities.

The view functions that return rows or text take the role and call :func:`require`,
so a page cannot show what its role may not see even if a widget forgets to hide it.
"""

from __future__ import annotations

from dataclasses import dataclass

from analytics.core.models import Role

__all__ = ["CAPABILITIES", "GRANTS", "AccessDenied", "Viewer", "allowed", "require", "role_of"]

#: What can be granted: ``aggregates`` (trend numbers, anomalies, topics as counts),
#: ``suppressed`` (aggregates with small counts hidden: the product brief),
#: ``cases`` (case lists, accounts, rings: identifiers and masked text),
#: ``reveal`` (a case's unmasked text), ``users`` and ``audit`` (administration),
#: ``annotate`` (add, edit and end known events: launches, outages, policy changes),
#: ``triage`` (acknowledge, assign, snooze, resolve, dismiss and note stored incidents),
#: ``escalate`` (send an incident, a topic or a ring to leadership with a message),
#: ``subscribe`` (manage who is told what, and see the deliveries that failed).
CAPABILITIES: tuple[str, ...] = (
    "aggregates", "suppressed", "cases", "reveal", "users", "audit", "annotate", "triage",
    "escalate", "subscribe",
)  # fmt: skip
GRANTS: dict[Role, frozenset[str]] = {
    Role.admin: frozenset({"aggregates", "suppressed", "users", "audit", "subscribe"}),
    Role.leadership: frozenset({"aggregates", "suppressed", "cases", "annotate", "triage"}),
    Role.associate: frozenset(
        {"aggregates", "suppressed", "cases", "reveal", "annotate", "triage", "escalate"}
    ),
    Role.product: frozenset({"suppressed"}),
}
#: What the audit log records.


class AccessDenied(PermissionError):
    """The role may not see this; the message says what and why."""


@dataclass(frozen=True)
class Viewer:
    """The person signed in: a name, a role, and how they signed in."""

    name: str
    role: Role
    via: str = "local"  # local | oidc | demo


def role_of(role: Role | str) -> Role:
    """The role named ``role``; ``ValueError`` for anything else.

    >>> role_of("product")
    <Role.product: 'product'>
    """
    try:
        return Role(role)
    except ValueError:
        raise ValueError(
            f"unknown role {str(role)[:40]!r}: choose {', '.join(r.value for r in Role)}"
        ) from None


def allowed(role: Role | str, capability: str) -> bool:
    """Whether ``role`` holds ``capability`` (see :data:`CAPABILITIES`).

    >>> allowed("leadership", "cases"), allowed("product", "cases")
    (True, False)
    """
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}")
    return capability in GRANTS[role_of(role)]


def require(role: Role | str, capability: str) -> None:
    """Raise :class:`AccessDenied` unless ``role`` holds ``capability``.

    >>> require("associate", "reveal")
    >>> require("leadership", "escalate")
    Traceback (most recent call last):
    ...
    analytics.access.roles.AccessDenied: the leadership role may not escalate to leadership
    >>> require("product", "cases")
    Traceback (most recent call last):
    ...
    analytics.access.roles.AccessDenied: the product role may not see case lists, accounts or rings
    """
    if not allowed(role, capability):
        does = {
            "annotate": "add or change known events",
            "triage": "acknowledge, assign, snooze, resolve or dismiss incidents",
            "escalate": "escalate to leadership",
            "subscribe": "manage subscriptions",
        }
        if capability in does:
            raise AccessDenied(f"the {role_of(role).value} role may not {does[capability]}")
        what = {
            "aggregates": "unsuppressed aggregates",
            "suppressed": "aggregates",
            "cases": "case lists, accounts or rings",
            "reveal": "unmasked personal data",
            "users": "the user list",
            "audit": "the audit log",
        }[capability]
        raise AccessDenied(f"the {role_of(role).value} role may not see {what}")

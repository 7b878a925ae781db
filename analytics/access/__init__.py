"""Who may see what (:mod:`~analytics.access.roles`), local accounts and signing in
(:mod:`~analytics.access.users`), the audit trail (:mod:`~analytics.access.audit`),
masking personal data in text (:mod:`~analytics.access.privacy`) and small-cell
suppression (:mod:`~analytics.access.suppression`).

``from analytics import access`` gives the roles, accounts and audit functions by name
(``access.require``, ``access.sign_in``, ``access.audit``).
"""

from analytics.access.audit import AUDIT_ACTIONS, audit, audit_frame
from analytics.access.roles import (
    CAPABILITIES,
    GRANTS,
    AccessDenied,
    Viewer,
    allowed,
    require,
    role_of,
)
from analytics.access.users import (
    LOCKOUT,
    MAX_FAILURES,
    REFUSAL,
    SignInFailed,
    add_user,
    known_role,
    list_users,
    remove_user,
    set_role,
    sign_in,
)

__all__ = [
    "AUDIT_ACTIONS",
    "CAPABILITIES",
    "GRANTS",
    "LOCKOUT",
    "MAX_FAILURES",
    "REFUSAL",
    "AccessDenied",
    "SignInFailed",
    "Viewer",
    "add_user",
    "allowed",
    "audit",
    "audit_frame",
    "known_role",
    "list_users",
    "remove_user",
    "require",
    "role_of",
    "set_role",
    "sign_in",
]

"""Escalations (issue 19, item 5): an associate sends an incident, an emerging topic or
a ring to leadership, with a sentence or two, an urgency and the evidence.

:func:`escalate` stores it, writes the audit entry and queues a message to every active
subscription that asks for ``escalations`` (never a product team's: an escalation is an
associate's words about cases), all in one transaction; the watch run (or the page,
right after) delivers it. Leadership reads them with :func:`list_escalations`.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import Engine, insert, select

from analytics.access.audit import utc_now, write_audit
from analytics.access.roles import Viewer, require
from analytics.alerts import outbox
from analytics.alerts.message import Message
from analytics.core.models import Escalation, Role, Subscription, Urgency

__all__ = [
    "MESSAGE_MAX",
    "SUBJECTS",
    "InvalidEscalation",
    "escalate",
    "escalation_message",
    "list_escalations",
]

#: What can be escalated.
SUBJECTS = {"incident": "Incident", "topic": "Emerging topic", "ring": "Ring"}
#: The longest message (a sentence or two).
MESSAGE_MAX = 600
_URGENCY_WORDS = {
    Urgency.now: "Act now",
    Urgency.today: "Today",
    Urgency.fyi: "For your information",
}


class InvalidEscalation(ValueError):
    """The escalation cannot be sent as written; the message says why."""


def _checked(subject_kind: str, subject_ref: str, message: str, urgency: str) -> Urgency:
    if subject_kind not in SUBJECTS:
        raise InvalidEscalation(f"an escalation is about one of {', '.join(SUBJECTS)}")
    if not subject_ref.strip():
        raise InvalidEscalation("say which incident, topic or ring is escalated")
    if not message.strip():
        raise InvalidEscalation("write a sentence or two: what is happening and why it matters")
    if len(message) > MESSAGE_MAX:
        raise InvalidEscalation(f"keep it to a sentence or two (at most {MESSAGE_MAX} characters)")
    try:
        return Urgency(urgency)
    except ValueError:
        raise InvalidEscalation(
            f"urgency is one of {', '.join(u.value for u in Urgency)}"
        ) from None


def escalation_message(
    *,
    by: str,
    urgency: Urgency,
    subject_kind: str,
    title: str,
    message: str,
    evidence: Mapping[str, Any],
    link: str | None,
) -> Message:
    """The message leadership receives: urgency and subject first, the associate's
    words, the numbers, the link.

    >>> m = escalation_message(by="ann", urgency=Urgency.now, subject_kind="topic",
    ...     title="fake 5-star reviews", message="Growing fast in FL.",
    ...     evidence={"Cases this week": "212"}, link="http://lookout/emerging")
    >>> m.subject
    'Act now: Emerging topic "fake 5-star reviews" escalated by ann'
    >>> print(m.text)
    Act now: Emerging topic "fake 5-star reviews" escalated by ann
    Growing fast in FL.
    Cases this week: 212
    http://lookout/emerging
    """
    head = f'{_URGENCY_WORDS[urgency]}: {SUBJECTS[subject_kind]} "{title}" escalated by {by}'
    head = " ".join(head.split())  # one line, whatever the title held
    numbers = [f"{k}: {v}" for k, v in evidence.items()]
    text = "\n".join([head, message.strip(), *numbers, *([link] if link else [])])
    items = "".join(f"<li>{html.escape(n)}</li>" for n in numbers)
    body = (
        f"<p><strong>{html.escape(head)}</strong></p><p>{html.escape(message.strip())}</p>"
        + (f"<ul>{items}</ul>" if items else "")
        + (f'<p><a href="{html.escape(link, quote=True)}">Open in Lookout</a></p>' if link else "")
    )
    return Message(
        "escalation", head, text, body, link=link,
        fields={"urgency": urgency.value, "subject": subject_kind, "title": title, "by": by,
                **{str(k): v for k, v in evidence.items()}},
    )  # fmt: skip


def escalate(
    engine: Engine,
    *,
    viewer: Viewer,
    subject_kind: str,
    subject_ref: str,
    title: str,
    message: str,
    urgency: str,
    evidence: Mapping[str, Any] | None = None,
    link: str | None = None,
    now: datetime | None = None,
) -> int:
    """Store an escalation, audit it and queue it to every subscription asking for
    escalations (leadership's channel), in one transaction; its id.

    Raises :class:`InvalidEscalation` for an empty or overlong message, an unknown
    subject or urgency; ``AccessDenied`` for a role that may not escalate.
    """
    require(viewer.role, "escalate")
    level = _checked(subject_kind, subject_ref, message, urgency)
    when = now or utc_now()
    numbers = dict(evidence or {})
    sent = escalation_message(
        by=viewer.name, urgency=level, subject_kind=subject_kind, title=title,
        message=message, evidence=numbers, link=link,
    )  # fmt: skip
    with engine.begin() as conn:
        new_id = conn.execute(
            insert(Escalation)
            .values(
                created_at=when, user_name=viewer.name[:200], urgency=level,
                subject_kind=subject_kind, subject_ref=subject_ref[:400],
                title=" ".join(title.split())[:400], message=message.strip(), link=link,
                evidence=json.dumps(numbers, default=str),
            )
            .returning(Escalation.id)
        ).scalar_one()  # fmt: skip
        write_audit(
            conn, viewer.name, viewer.role, "escalate", f"{subject_kind} {subject_ref}",
            {"urgency": level.value}, when,
        )  # fmt: skip
        subscribers = conn.execute(
            select(Subscription.id, Subscription.what, Subscription.role).where(
                Subscription.active.is_(True)
            )
        ).all()
        for sub_id, what, role in subscribers:
            wanted = {w.strip() for w in str(what).split(",")}
            if "escalations" in wanted and role != Role.product:
                outbox.enqueue(
                    conn, subscription_id=int(sub_id), key=f"escalation:{new_id}:{sub_id}",
                    message=sent, now=when,
                )  # fmt: skip
    return int(new_id)


def list_escalations(engine: Engine, *, role: Role | str, limit: int = 50) -> pl.DataFrame:
    """The newest escalations first (who, when, urgency, what and its title, the
    message, the numbers, the link)."""
    require(role, "aggregates")
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                Escalation.id, Escalation.created_at, Escalation.user_name, Escalation.urgency,
                Escalation.subject_kind, Escalation.subject_ref, Escalation.title,
                Escalation.message, Escalation.link, Escalation.evidence,
            )
            .order_by(Escalation.created_at.desc(), Escalation.id.desc())
            .limit(limit)
        ).all()  # fmt: skip
    schema: dict[str, Any] = {
        "id": pl.Int64, "created_at": pl.Datetime("us"), "user_name": pl.String,
        "urgency": pl.String, "subject_kind": pl.String, "subject_ref": pl.String,
        "title": pl.String, "message": pl.String, "link": pl.String, "evidence": pl.String,
    }  # fmt: skip
    return pl.DataFrame(
        [(*r[:3], str(getattr(r[3], "value", r[3])), *r[4:]) for r in rows],
        schema=schema,
        orient="row",
    )

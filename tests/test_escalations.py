"""Escalations (issue 19, item 5): stored, audited, queued to leadership's channel in
the same transaction, never to a product team's; bad input refused with a reason."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, insert, select

from analytics.access import AccessDenied
from analytics.access.roles import Viewer
from analytics.alerts import escalations
from analytics.alerts.message import Message
from analytics.core.models import (
    AuditLog,
    ChannelKind,
    Delivery,
    Escalation,
    Role,
    Subscription,
)

NOW = datetime(2026, 11, 30, 9, 0)
ANN = Viewer("ann", Role.associate)


def _subscription(engine, name: str, what: str, role: Role) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                insert(Subscription)
                .values(
                    name=name, channel=ChannelKind.webhook, secret_ref=f"env:HOOK_{name.upper()}",
                    what=what, role=role, created_by="ada", created_at=NOW, active=True,
                    min_severity="low", direction="both", timezone="UTC",
                )
                .returning(Subscription.id)
            ).scalar_one()
        )  # fmt: skip


def _escalate(engine, **changes):
    given = dict(
        viewer=ANN, subject_kind="topic", subject_ref="topic 30", title="fake 5-star reviews",
        message="Growing fast in FL; the same phone numbers.", urgency="now",
        evidence={"Cases this week": "212", "Weeks growing": "3"},
        link="http://lookout.test/emerging?emerging.topic=30", now=NOW,
    )  # fmt: skip
    return escalations.escalate(engine, **(given | changes))


def test_an_escalation_is_stored_audited_and_queued_for_leadership_only(engine) -> None:
    leaders = _subscription(engine, "leaders", "escalations,anomalies", Role.leadership)
    _subscription(engine, "product", "escalations,digest", Role.product)
    _subscription(engine, "oncall", "anomalies", Role.associate)
    new = _escalate(engine)
    with engine.connect() as conn:
        stored = conn.execute(
            select(Escalation.user_name, Escalation.urgency, Escalation.subject_ref).where(
                Escalation.id == new
            )
        ).one()
        queued = conn.execute(
            select(
                Delivery.subscription_id, Delivery.kind, Delivery.idempotency_key, Delivery.payload
            )
        ).all()
        audited = conn.execute(select(AuditLog.user_name, AuditLog.action, AuditLog.target)).all()
    assert (stored.user_name, str(stored.urgency), stored.subject_ref) == (
        "ann",
        "now",
        "topic 30",
    )
    assert [tuple(d[:3]) for d in queued] == [
        (leaders, "escalation", f"escalation:{new}:{leaders}")
    ]
    message = Message.from_json(queued[0][3])
    assert message.subject == 'Act now: Emerging topic "fake 5-star reviews" escalated by ann'
    assert message.text.splitlines()[1:] == [
        "Growing fast in FL; the same phone numbers.",
        "Cases this week: 212",
        "Weeks growing: 3",
        "http://lookout.test/emerging?emerging.topic=30",
    ]
    assert audited == [("ann", "escalate", "topic topic 30")]
    listed = escalations.list_escalations(engine, role=Role.leadership)
    assert listed.select("user_name", "urgency", "title", "message").rows() == [
        ("ann", "now", "fake 5-star reviews", "Growing fast in FL; the same phone numbers.")
    ]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"message": "  "}, "write a sentence or two"),
        ({"message": "x" * 601}, "at most 600 characters"),
        ({"urgency": "yesterday"}, "urgency is one of"),
        ({"subject_kind": "account"}, "an escalation is about one of"),
    ],
)
def test_a_bad_escalation_is_refused_and_nothing_is_written(engine, changes, reason) -> None:
    _subscription(engine, "leaders", "escalations", Role.leadership)
    with pytest.raises(escalations.InvalidEscalation, match=reason):
        _escalate(engine, **changes)
    with engine.connect() as conn:
        for table in (Escalation, Delivery, AuditLog):
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0


@pytest.mark.parametrize("role", [Role.product, Role.admin, Role.leadership])
def test_only_associates_escalate(engine, role) -> None:
    with pytest.raises(AccessDenied):
        _escalate(engine, viewer=Viewer("someone", role))


def test_the_subject_line_stays_one_line_whatever_the_title_holds(engine) -> None:
    _subscription(engine, "leaders", "escalations", Role.leadership)
    _escalate(engine, title="two\nlines\r\nhere")
    with engine.connect() as conn:
        payload = conn.execute(select(Delivery.payload)).scalar_one()
    assert Message.from_json(payload).subject.startswith('Act now: Emerging topic "two lines here"')

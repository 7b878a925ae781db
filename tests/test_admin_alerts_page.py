"""The Admin page's alert sections (issue 19): subscriptions added, tested and removed
through the page, never showing a URL or a key but once; failed deliveries retried.

AppTest on a private copy of the small demo, an admin signed in, the secrets file in a
temporary folder; "Send a test" goes to a real HTTP receiver on loopback.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from streamlit.proto.TextInput_pb2 import TextInput as TextInputProto

from analytics.alerts import messages, outbox, secrets, subscriptions
from analytics.core import database
from analytics.core.models import AuditLog, Delivery
from tests.alert_receivers import http_receiver
from tests.helpers import open_page

PAGE = "pages/admin.py"
HOOK = "https://hooks.example.org/services/T0/B0/zzSECRETzz"


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch, own_small_db: str, tmp_path: Path) -> str:
    """The demo copy's URL, with the secrets file in ``tmp_path``."""
    monkeypatch.setenv("LOOKOUT_SECRETS", str(tmp_path / "secrets.toml"))
    monkeypatch.delenv("MISSING_VAR", raising=False)
    return own_small_db


def _walk(node: Any) -> Iterator[Any]:
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _walk(child)


def _page_text(at: Any) -> str:
    """Everything the page sent to the browser (every element's protobuf, dataframes
    as CSV), to look for what must never be shown."""
    parts = []
    for node in _walk(at._tree):
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
    parts += [frame.value.to_csv() for frame in at.dataframe]
    return "\n".join(parts)


def _button(at: Any, label: str) -> Any:
    return next(b for b in at.button if b.label == label)


def _add(at: Any, *, channel: str, name: str, target: str) -> Any:
    at.selectbox(key="sub_channel").set_value(channel).run()
    if channel != "email":  # a URL is typed into a password field, never shown back
        assert at.text_input(key="sub_target").proto.type == TextInputProto.PASSWORD
    at.text_input(key="sub_name").input(name)
    at.text_input(key="sub_target").input(target)
    return _button(at, "Add subscription").click().run()


def _frame(at: Any, column: str) -> Any:
    """The table with ``column`` (subscriptions: ``how``; failures: ``last_error``)."""
    return next((d.value for d in at.dataframe if column in d.value.columns), None)


def _table_names(at: Any) -> list[str]:
    frame = _frame(at, "how")
    return [] if frame is None else list(frame["name"])


def test_a_slack_subscription_added_on_the_page_is_listed_without_its_url(
    monkeypatch: pytest.MonkeyPatch, db: str
) -> None:
    at = open_page(monkeypatch, db, PAGE, role="admin")
    assert not at.exception
    assert any(i.value.startswith("No subscription yet") for i in at.info)
    assert any(i.value == "No delivery has failed." for i in at.info)
    at = _add(at, channel="slack", name="oncall", target=HOOK)
    assert not at.exception and not at.error
    assert [s.value for s in at.success] == ["Added the subscription “oncall”."]
    assert not at.code  # a Slack hook has no signing key
    table = _frame(at, "how")
    assert table.iloc[0].to_dict() | {"created_at": None} == {
        "name": "oncall", "channel": "Slack (incoming webhook)", "what": "Anomalies",
        "min_severity": "Low", "direction": "Both", "role": "Leadership",
        "slices": "Every slice", "how": "At once", "timezone": "UTC",
        "created_by": "tester", "created_at": None,
    }  # fmt: skip
    assert "oncall" in _page_text(at) and "zzSECRETzz" not in _page_text(at)
    assert at.text_input(key="sub_target").value == ""  # the form forgot it
    assert secrets.resolve("secrets:oncall") == HOOK
    at = at.run()  # a rerun: the message went with the run that showed it
    assert not at.success and "zzSECRETzz" not in _page_text(at)


def test_a_bad_url_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch, db: str) -> None:
    at = open_page(monkeypatch, db, PAGE, role="admin")
    at = _add(at, channel="slack", name="oncall", target="ftp://files.example/zzSECRETzz")
    assert [e.value for e in at.error] == [
        "a slack target is an http(s) URL or env:NAME, not 'ftp'..."
    ]
    assert _table_names(at) == [] and "zzSECRETzz" not in _page_text(at)


def test_a_webhook_signing_key_is_shown_once(monkeypatch: pytest.MonkeyPatch, db: str) -> None:
    at = open_page(monkeypatch, db, PAGE, role="admin")
    at = _add(at, channel="webhook", name="partner", target=HOOK)
    assert not at.exception and not at.error
    key = secrets.resolve("secrets:partner_signing")
    assert len(key) == 64
    assert [c.value for c in at.code] == [key]
    assert "it is not shown again" in at.success[0].value
    assert "zzSECRETzz" not in _page_text(at)
    at = at.run()
    assert not at.code and key not in _page_text(at)


def test_send_a_test_and_remove_with_confirmation(monkeypatch: pytest.MonkeyPatch, db: str) -> None:
    with http_receiver() as hook:
        engine = database.make_engine(db)
        subscriptions.add(engine, name="leads", channel="slack", target=hook.url,
                          role="leadership")  # fmt: skip
        engine.dispose()
        at = open_page(monkeypatch, db, PAGE, role="admin")
        assert _table_names(at) == ["leads"]
        at = _button(at, "Send a test").click().run()
        assert [s.value for s in at.success] == ["Sent a test message to “leads”."]
        assert len(hook.requests) == 1
        assert "the subscription “leads” is set up" in hook.requests[0].json["text"]
    at = _button(at, "Remove").click().run()  # not confirmed: kept
    assert [w.value for w in at.warning] == ["Tick “Yes, remove it” to remove “leads”."]
    assert _table_names(at) == ["leads"]
    at.checkbox(key="sub_sure").check().run()
    at = _button(at, "Remove").click().run()
    assert [s.value for s in at.success] == ["Removed the subscription “leads”."]
    assert _table_names(at) == []
    with pytest.raises(secrets.SecretMissing):
        secrets.resolve("secrets:leads")


def test_a_failed_delivery_is_listed_and_retried(monkeypatch: pytest.MonkeyPatch, db: str) -> None:
    engine = database.make_engine(db)
    added = subscriptions.add(engine, name="broken", channel="slack", target="env:MISSING_VAR",
                              role="associate")  # fmt: skip
    with engine.begin() as conn:
        outbox.enqueue(conn, subscription_id=added.row["id"], key="k1",
                       message=messages.test_message("broken"),
                       now=added.row["created_at"])  # fmt: skip
    report = outbox.deliver_pending(engine, now=added.row["created_at"])
    assert report.failed == 1
    at = open_page(monkeypatch, db, PAGE, role="admin")
    assert not at.exception
    table = _frame(at, "last_error")
    assert list(table["subscription"]) == ["broken"]
    assert list(table["state"]) == ["Failed"]
    assert list(table["attempts"]) == [1]
    assert "MISSING_VAR" in table["last_error"].iloc[0]
    at = _button(at, "Retry").click().run()
    assert not at.exception
    assert at.success[0].value.endswith("is queued again: the next watch run sends it.")
    with engine.connect() as conn:
        state, attempts = conn.execute(select(Delivery.state, Delivery.attempts)).one()
        retried = conn.execute(
            select(AuditLog.user_name, AuditLog.target).where(AuditLog.action == "delivery_retry")
        ).all()
    assert (str(state), attempts) == ("pending", 0)
    assert [tuple(r) for r in retried] == [("tester", f"outbox message #{table['id'].iloc[0]}")]
    # listed as waiting (with the last error) until the next run sends it; nothing to retry
    assert list(_frame(at, "last_error")["state"]) == ["Will retry"]
    assert not [b for b in at.button if b.label == "Retry"]
    engine.dispose()


def test_other_roles_never_see_the_sections(monkeypatch: pytest.MonkeyPatch, db: str) -> None:
    at = open_page(monkeypatch, db, PAGE, role="leadership")
    assert [e.value for e in at.error] == ["Your role (leadership) cannot open this page."]
    assert not [h for h in at.subheader if h.value in ("Subscriptions", "Deliveries that failed")]

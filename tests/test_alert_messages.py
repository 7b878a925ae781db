"""The messages subscribers read (analytics.alerts.messages): exact text on hand-built
stored incidents, each role's restrictions, HTML escaping, digests and the test message."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from analytics.access.roles import AccessDenied
from analytics.alerts import messages
from analytics.alerts.message import Message

BASE = "http://lookout.example:8501"
ANOMALIES = (
    f"{BASE}/anomalies?week=2026-W47&anomalies.incident=category%3Dspam%7Cregion%3DFL"
    "&anomalies.source=cases"
)
CASES = (
    f"{BASE}/cases?cases.slice=category%3Dspam%7Cregion%3DFL&cases.opened_from=2026-11-16"
    "&cases.opened_to=2026-11-18"
)


def _row(**changes: object) -> dict[str, object]:
    """A stored incident as the incidents table holds it: spam in Florida, 16 to 18 Nov."""
    row: dict[str, object] = {
        "id": 7,
        "key": "cases|daily|cases_daily|up|category=spam|region=FL",
        "slice_key": "category=spam|region=FL",
        "source": "cases",
        "freq": "daily",
        "metric": "cases_daily",
        "direction": "up",
        "start": datetime(2026, 11, 16),
        "end": datetime(2026, 11, 18),
        "peak_ts": datetime(2026, 11, 17),
        "peak_value": 120.0,
        "expected": 40.2,
        "score": 8.3,
        "severity": "high",
        "state": "open",
        "assignee": "ann@example.org",
        "acknowledged_by": None,
    }
    row.update(changes)
    return row


def test_associate_message_exact_text() -> None:
    m = messages.incident_message(_row(), role="associate", base_url=BASE + "/")
    assert m.kind == "incident"
    assert m.subject == (
        "High: Spam · FL cases rose to 120 on 17 Nov against 40.2 expected, 3.0 times as many"
    )
    assert m.text == (
        "New incident, high severity: Spam · FL cases rose to 120 on 17 Nov against 40.2 "
        "expected, 3.0 times as many.\n"
        "It began on 16 Nov, 3 days so far (16–18 Nov); p < 0.001.\n"
        f"Its cases in Case Explorer: {CASES}"
    )
    assert m.link == ANOMALIES
    assert m.fields == {
        "incident_id": 7,
        "change": "opened",
        "slice": "Spam · FL",
        "source": "cases",
        "frequency": "daily",
        "direction": "up",
        "severity": "high",
        "first_day": "2026-11-16",
        "last_day": "2026-11-18",
        "peak_day": "2026-11-17",
        "p_value": pytest.approx(10**-8.3),
        "peak": 120.0,
        "expected": 40.2,
    }
    assert Message.from_json(m.to_json()).text == m.text


def test_leadership_gets_the_same_numbers_and_links() -> None:
    lead = messages.incident_message(_row(), role="leadership", base_url=BASE)
    assoc = messages.incident_message(_row(), role="associate", base_url=BASE)
    assert (lead.subject, lead.text, lead.link) == (assoc.subject, assoc.text, assoc.link)


def test_admin_is_sent_to_the_brief() -> None:
    m = messages.incident_message(_row(), role="admin", base_url=BASE)
    assert m.link == f"{BASE}/reports?week=2026-W47"
    assert "cases?" not in m.text and "120" in m.text


def test_product_message_carries_no_count_and_links_to_the_brief() -> None:
    m = messages.incident_message(_row(), role="product", base_url=BASE)
    assert m.subject == "High: Spam · FL cases rose well above the expected level on 17 Nov"
    assert m.text == (
        "New incident, high severity: Spam · FL cases rose well above the expected level on "
        "17 Nov.\n"
        "It began on 16 Nov, 3 days so far (16–18 Nov); p < 0.001.\n"
        "Counts are left out, as in the product brief."
    )
    assert m.link == f"{BASE}/reports?week=2026-W47"
    assert "peak" not in m.fields and "expected" not in m.fields
    whole = m.to_json()
    for number in ("120", "40.2", "40"):
        assert not re.search(rf"(?<![\d.]){re.escape(number)}(?![\d])", m.text + m.html)
    assert "cases?" not in whole and "anomalies?" not in whole


def test_product_is_never_told_of_a_small_slice() -> None:
    small = _row(peak_value=6.0, expected=1.0)
    assert not messages.product_may_see(small)
    with pytest.raises(AccessDenied, match="below 10"):
        messages.incident_message(small, role="product", base_url=BASE)
    # other roles are told, with the count
    assert "rose to 6 " in messages.incident_message(small, role="associate", base_url=BASE).text


@pytest.mark.parametrize("role", ["admin", "leadership", "associate", "product"])
def test_no_personal_data_no_codes_no_none_in_any_role(role: str) -> None:
    """The stored row's assignee (an email), its key and codes never reach a message;
    outside its links the message is words (no snake_case, no slice key, no None)."""
    m = messages.incident_message(_row(), role=role, base_url=BASE)
    for text in (m.subject, m.text, m.html, m.to_json()):
        assert "ann@example.org" not in text and "@" not in text
        assert "None" not in text and "null" not in text
    for text in (m.subject, m.text, m.html):
        words = re.sub(r'(https?://|href=")\S+', "", text)
        assert "_" not in words and "=" not in words and "|" not in words, words
    assert set(m.fields.values()) & {"category=spam|region=FL"} == set()


def test_weekly_fall_of_detections_reopened() -> None:
    row = _row(
        slice_key="category=spam|source=ml_model",
        source="detections",
        freq="weekly",
        direction="down",
        start=datetime(2026, 11, 9),
        end=datetime(2026, 11, 16),
        peak_ts=datetime(2026, 11, 16),
        peak_value=3.0,
        expected=40.0,
        score=2.5,
        severity="medium",
    )
    m = messages.incident_message(row, role="leadership", base_url=BASE, change="reopened")
    assert m.text.splitlines()[:2] == [
        "Incident back, medium severity: Spam · ML model automated detections fell to 3 in the "
        "week of 16–22 Nov against 40.0 expected, 92% fewer.",
        "It began in the week of 9 Nov, 2 weeks so far (9–22 Nov); p = 0.003.",
    ]
    assert m.link == (
        f"{BASE}/anomalies?week=2026-W47&anomalies.incident=category%3Dspam%7Csource%3Dml_model"
        "&anomalies.source=detections"
    )


def test_events_one_day_no_expected_no_cases_link() -> None:
    row = _row(
        slice_key="kind=login_failed",
        source="events",
        start=datetime(2026, 11, 17),
        end=datetime(2026, 11, 17),
        expected=None,
        severity="low",
        score=1.6,
    )
    m = messages.incident_message(row, role="associate", base_url=BASE, change="unsnoozed")
    assert m.text == (
        "Snooze over, still open, low severity: Login failed events rose to 120 on 17 Nov.\n"
        "It began on 17 Nov; p = 0.025."
    )
    assert "expected" not in m.fields


def test_html_is_escaped() -> None:
    m = messages.incident_message(
        _row(slice_key="category=<script>alert(1)</script>"), role="associate", base_url=BASE
    )
    assert "<script>" not in m.html
    assert "&lt;script&gt;" in m.html
    assert 'href="http://lookout.example:8501/anomalies?week=2026-W47&amp;' in m.html


def test_bad_change_and_role_are_refused() -> None:
    with pytest.raises(ValueError, match="a change is one of"):
        messages.incident_message(_row(), role="associate", base_url=BASE, change="boom")
    with pytest.raises(ValueError, match="unknown role"):
        messages.incident_message(_row(), role="root", base_url=BASE)


def test_digest_orders_by_severity_and_product_drops_small_ones() -> None:
    low = _row(id=8, slice_key="region=CA", severity="low", score=1.5, peak_value=30.0)
    small = _row(id=9, slice_key="region=TX", severity="medium", score=3.0, peak_value=5.0)
    since, now = datetime(2026, 11, 18, 8), datetime(2026, 11, 18, 14)
    rows = [low, small, _row()]
    m = messages.digest_message(rows, role="associate", base_url=BASE, since=since, now=now)
    assert m.subject == "Lookout digest: 3 incidents, 1 high, since 18 Nov 2026 08:00 UTC"
    lines = m.text.splitlines()
    assert lines[0] == (
        "3 incidents opened or back since 18 Nov 2026 08:00 UTC (to 18 Nov 2026 14:00 UTC), "
        "1 of them high severity:"
    )
    assert [line.split(":")[0] for line in lines[1:]] == ["- High", "- Medium", "- Low"]
    assert lines[1] == (
        "- High: Spam · FL cases rose to 120 on 17 Nov against 40.2 expected, 3.0 times as "
        f"many; began on 16 Nov, 3 days so far (16–18 Nov). {ANOMALIES}"
    )
    product = messages.digest_message(rows, role="product", base_url=BASE, since=since, now=now)
    assert product.subject == "Lookout digest: 2 incidents, 1 high, since 18 Nov 2026 08:00 UTC"
    assert "TX" not in product.text and "120" not in product.text
    assert product.link == f"{BASE}/reports"


def test_empty_digest() -> None:
    since, now = datetime(2026, 11, 18, 8), datetime(2026, 11, 18, 14)
    m = messages.digest_message([], role="leadership", base_url=BASE, since=since, now=now)
    assert m.text == "No new incident since 18 Nov 2026 08:00 UTC (to 18 Nov 2026 14:00 UTC)."


def test_test_message() -> None:
    m = messages.test_message("leads", link=BASE)
    assert m.kind == "test"
    assert m.text == (
        "This is a test from Lookout: the subscription “leads” is set up and its channel "
        "works. No incident is behind this message; nothing needs doing."
    )
    assert m.link == BASE


def test_digest_times_in_the_subscribers_time_zone() -> None:
    since, now = datetime(2026, 11, 18, 8), datetime(2026, 11, 18, 14)
    m = messages.digest_message(
        [_row()], role="leadership", base_url=BASE, since=since, now=now,
        timezone="America/New_York",
    )  # fmt: skip
    assert (
        m.subject == "Lookout digest: 1 incident, 1 high, since 18 Nov 2026 03:00 America/New_York"
    )
    assert m.text.splitlines()[0] == (
        "1 incident opened or back since 18 Nov 2026 03:00 America/New_York (to 18 Nov 2026 "
        "09:00 America/New_York), 1 of them high severity:"
    )

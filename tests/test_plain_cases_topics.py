"""The words the Case Explorer and Emerging threats pages show (issue 18 items 5, 6),
exactly, on small hand-built data: a case's one status and its facts, the list in words,
the actions, a topic's name and sentence, and where the rings are."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from analytics.present.detector_charts import cluster_map
from analytics.views.cases import action_rows, case_facts, case_status, list_rows
from analytics.views.emerging import plain_summary, rings_elsewhere, topic_name

CASE = {
    "status": "resolved", "resolution": "account_suspended",
    "opened_at": datetime(2026, 3, 3, 14, 5), "hours_to_response": 2.56,
    "hours_to_resolve": 74.4, "category": "fake_review", "severity": "critical",
    "source": "automated_rule", "region": "FL", "platform": "android",
    "assignee": "associate-3", "appealed_at": datetime(2026, 3, 6), "appeal_outcome": None,
}  # fmt: skip


def test_a_resolved_appealed_case_in_words() -> None:
    assert case_facts(CASE) == {
        "Status": "Resolved",
        "Outcome": "Account suspended",
        "Opened": "3 Mar 2026 14:05 UTC",
        "First response": "after 2.6 h",
        "Resolved": "after 3.1 d",
        "Category": "Fake review",
        "Severity": "Critical",
        "Source": "Automated rule",
        "Region": "FL",
        "Platform": "Android",
        "Assignee": "associate-3",
        "Appeal": "Appealed: pending",
    }


@pytest.mark.parametrize(
    ("status", "resolution", "expected", "outcome"),
    [
        ("open", None, "Open", "Not decided yet"),
        ("in_review", None, "In review", "Not decided yet"),
        # A resolution recorded on a case still in review is no status of its own.
        ("in_review", "warning", "In review", "Not decided yet"),
        ("resolved", None, "Resolved", "–"),
        (None, None, "–", "Not decided yet"),
    ],
)
def test_one_status(status, resolution, expected, outcome) -> None:
    found = {**CASE, "status": status, "resolution": resolution}
    facts = case_facts(found)
    assert case_status(found) == facts["Status"] == expected
    assert facts["Outcome"] == outcome
    assert "None" not in " ".join(facts.values())


def test_a_case_with_nothing_but_its_opening() -> None:
    bare = dict.fromkeys(CASE) | {"opened_at": datetime(2026, 3, 3, 9, 0), "status": "open"}
    facts = case_facts(bare)
    assert facts["First response"] == facts["Resolved"] == "Not yet"
    assert facts["Assignee"] == "Unassigned" and facts["Appeal"] == "Not appealed"
    assert facts["Category"] == facts["Platform"] == "–"


def test_the_list_and_the_actions_in_words() -> None:
    rows = pl.DataFrame({
        "case_id": [1, 2], "category": ["no_show_abuse", "other"], "severity": ["low", None],
        "status": ["in_review", "open"], "source": ["ml_model", "user_report"],
        "platform": ["ios", "web"], "description": ["call [PHONE]", None],
    })  # fmt: skip
    assert_frame_equal(
        list_rows(rows),
        rows.with_columns(
            category=pl.Series(["No-show abuse", "Other"]),
            severity=pl.Series(["Low", None]),
            status=pl.Series(["In review", "Open"]),
            source=pl.Series(["ML model", "User report"]),
            platform=pl.Series(["iOS", "Web"]),
        ),
    )
    actions = pl.DataFrame({
        "ts": [datetime(2026, 3, 3, 15), datetime(2026, 3, 4, 9)],
        "actor": ["associate-1", None], "action": ["resolved", "note"],
        "detail": ["content_removed", "Called [NAME] back"], "after_hours": [1.0, None],
    })  # fmt: skip
    shown = action_rows(actions)
    assert shown.columns == ["ts", "after", "actor", "action", "detail"]
    assert shown.drop("ts").rows() == [
        ("1.0 h", "associate-1", "Resolved", "Content removed"),
        ("–", "–", "Note", "Called [NAME] back"),  # free text stays as written
    ]


def test_a_topic_is_named_by_its_phrase_and_its_sentence_by_category_words() -> None:
    assert topic_name("  caller id showed ") == "Caller id showed"
    assert topic_name(None) == topic_name("") == "–"
    frame = pl.DataFrame({
        "summary": ["9 cases; 90% in category off_platform_solicitation",
                    "3 cases; first seen today", "4 cases; 50% in category other"],
        "top_category": ["off_platform_solicitation", None, "other"],
    })  # fmt: skip
    assert frame.select(plain_summary())["summary"].to_list() == [
        "9 cases; 90% in category Off platform solicitation",
        "3 cases; first seen today",
        "4 cases; 50% in category Other",
    ]


WEEKS = pl.DataFrame({
    "week": [date(2026, 9, 7), date(2026, 9, 14), date(2026, 9, 21), date(2026, 9, 28),
             date(2026, 10, 5), date(2026, 10, 12), date(2026, 10, 19), date(2026, 10, 26)],
    "rings": [1, 0, 2, 0, 3, 0, 1, 1],
})  # fmt: skip


@pytest.mark.parametrize(
    ("week", "most", "sentence", "mondays"),
    [
        # The focus week itself is never named, even with rings.
        (date(2026, 10, 5), 6,
         "Rings found in the weeks of 7 Sep (1), 21 Sep (2), 19 Oct (1) and 26 Oct (1).",
         [date(2026, 9, 7), date(2026, 9, 21), date(2026, 10, 19), date(2026, 10, 26)]),
        # The nearest two, in date order; ties go to the earlier week.
        (date(2026, 10, 12), 2, "Rings found in the weeks of 5 Oct (3) and 19 Oct (1).",
         [date(2026, 10, 5), date(2026, 10, 19)]),
        (date(2026, 9, 14), 1, "Rings found in the week of 7 Sep (1).", [date(2026, 9, 7)]),
    ],
)  # fmt: skip
def test_where_the_rings_are(week, most, sentence, mondays) -> None:
    assert rings_elsewhere(WEEKS, week=week, most=most) == (sentence, mondays)


def test_no_rings_around() -> None:
    none = WEEKS.with_columns(rings=pl.lit(0))
    assert rings_elsewhere(none, week=date(2026, 10, 5)) == (
        "No ring in the 7 weeks around this one either.",
        [],
    )


def test_the_map_names_every_emerging_topic_and_the_largest_on_boxes_that_do_not_meet() -> None:
    frame = pl.DataFrame({
        "cluster_id": list(range(6)),
        "x": [0.0, 1.0, 0.0, 1.0, 0.5, 0.02], "y": [0.0, 0.0, 1.0, 1.0, 0.5, 0.02],
        "size": [50, 40, 30, 20, 10, 45], "recent_count": [1] * 6, "baseline_count": [1] * 6,
        "is_emerging": [False, False, False, False, True, False],
        "terms": [f"t{i}" for i in range(6)],
        "label": ["alpha", "beta", "gamma", "delta", "insurance verification", "zeta"],
    })  # fmt: skip
    fig = cluster_map(frame, title="Map", labelled=4)
    names = [a.text for a in fig.layout.annotations]
    # The emerging one first, then the largest: alpha (50), zeta (45), beta (40); zeta
    # sits on alpha, so its name takes the first free place beside it, not alpha's.
    assert names == ["Insurance<br>verification", "Alpha", "Zeta", "Beta"]
    shifts = {a.text: (a.xshift, round(a.yshift)) for a in fig.layout.annotations}
    assert shifts["Alpha"] == (0, 37) and shifts["Zeta"] == (0, -36)  # above; below
    hovers = [h for trace in fig.data for h in trace.hovertext]
    assert len(hovers) == 6 and any("<b>Gamma</b>" in h for h in hovers)

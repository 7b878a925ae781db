"""The Anomalies page through Streamlit's AppTest, on the small demo in SQLite."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from analytics.access import Viewer, privacy
from analytics.core import database
from analytics.core.models import Case, Feedback, Role
from analytics.present.formatting import format_days, format_slice
from analytics.views import anomalies, feedback, selection
from analytics.views.overview import dataset_overview
from tests.helpers import SMALL_DEMO_END, app_as, open_page
from ui import widgets

ROOT = Path(__file__).resolve().parent.parent


def _page(monkeypatch, url: str) -> AppTest:
    return open_page(monkeypatch, url, "pages/anomalies.py")


def _feedback_rows(url: str) -> list[tuple[str, str, str]]:
    engine = database.make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(Feedback.slice_key, Feedback.verdict, Feedback.user_name))
        out = [tuple(r) for r in rows]
    engine.dispose()
    return out  # type: ignore[return-value]


def _week_and_scan(url: str) -> tuple[date, pl.DataFrame]:
    """The page's default focus week and the incidents current in it (the scan itself)."""
    engine = database.make_engine(url)
    try:
        span = selection.data_span(dataset_overview(engine))
        assert span is not None
        week = span.default_week
        scan = anomalies.current_incidents(
            engine, week=week, newest=SMALL_DEMO_END, role=Role.associate
        )
    finally:
        engine.dispose()
    return week, scan


def _shown(frame, columns) -> list[object]:  # noqa: ANN001
    return [v for c in columns for v in frame[c].tolist()]


def test_the_page_lists_the_current_incidents_in_words(monkeypatch, small_db):
    at = _page(monkeypatch, small_db)
    assert not at.exception
    incidents = at.dataframe[0].value
    week, scan = _week_and_scan(small_db)
    alerted = scan.filter("alerted")
    # Exactly the alerted incidents current in the focus week, in the scan's order (two
    # of the small demo's tie on their score: the tie is broken by metric and slice).
    assert alerted.height and list(incidents["slice"]) == alerted["slice"].to_list()
    # Current: still open, or ended within the focus week (never weeks old).
    assert all(d >= week for d in alerted["last_day"])
    assert all(d.date() >= week for d in incidents["last_day"])
    # In words: slices as "Other · Dentistry", days as "20–26 Apr", no key, no None.
    assert list(incidents["Slice"]) == [format_slice(k) for k in alerted["slice"]]
    assert list(incidents["Days"]) == [
        format_days(s.date(), d) for s, d in zip(alerted["start"], alerted["last_day"], strict=True)
    ]
    assert set(incidents["Status"]) <= {"Ongoing", "Ended"}  # words, not codes
    words = [str(v) for v in _shown(incidents, ["Slice", "Source", "Scale", "Days", "Status"])]
    assert not any("=" in w or "_" in w or w == "None" for w in words), words
    assert list(incidents["Score"]) == sorted(incidents["Score"], reverse=True)  # best first
    first = alerted.row(0, named=True)
    heading = (
        f"{format_slice(first['slice'])} · {format_days(first['start'].date(), first['last_day'])}"
    )
    assert heading in [h.value for h in at.subheader]
    charts = {c.key for c in at.get("plotly_chart")}
    assert "anomalies_chart" in charts
    verdicts = [b.label for b in at.button if b.key.startswith("anomalies_verdict")]
    assert verdicts == ["Confirmed", "Expected", "Not useful"]


def test_the_current_rule_follows_the_focus_week(monkeypatch, small_db):
    """An earlier focus week shows the incidents as they stood at its end: none ends
    before its Monday, none after its Sunday."""
    week = date(2026, 3, 23)
    at = _page_with(monkeypatch, small_db, {"week": "2026-W13"})
    assert not at.exception
    shown = at.dataframe[0].value
    for last in shown["last_day"]:
        day = last.date() if hasattr(last, "date") else last
        assert week <= day <= week + timedelta(days=6)
    assert any("23–29 Mar" in c.value for c in at.caption)


def test_cases_underneath_show_their_masked_descriptions(monkeypatch, small_db):
    at = _page(monkeypatch, small_db)
    table = at.table[0].value
    assert "Description (masked)" in table.columns and len(table) > 0
    ids = [int(c) for c in table["Case"]]
    engine = database.make_engine(small_db)
    with engine.connect() as conn:
        texts = dict(conn.execute(select(Case.id, Case.description).where(Case.id.in_(ids))).all())
    engine.dispose()
    masked = privacy.scrub(pl.Series([texts[i] for i in ids])).to_list()
    shown = [" ".join(m.split()) for m in masked]
    # The whole description, masked as the Case Explorer masks it (Markdown escaped).
    assert list(table["Description (masked)"]) == [widgets.plain(m) for m in shown]
    assert not any(v == "None" for v in table["Account"])


def test_accounts_to_review_are_labelled_and_linked(monkeypatch, small_db):
    # The small demo's first incident has no account active in its window: it says so and
    # lists its own accounts unscored, never the platform's most unusual in their place.
    _, scan = _week_and_scan(small_db)
    first, second = scan.filter("alerted")["slice"].to_list()[:2]
    at = _page_with(monkeypatch, small_db, {"anomalies.incident": first})
    assert any(i.value.startswith("None of this incident's accounts") for i in at.info)
    own = next(t.value for t in at.table if "Why" in t.value.columns)
    assert set(own["Score"]) == set(own["Why"]) == {"not active in the window"}
    at = _page_with(monkeypatch, small_db, {"anomalies.incident": second})
    assert "Accounts to review" in [h.value for h in at.subheader]
    accounts = next(t.value for t in at.table if "Why" in t.value.columns)
    assert len(accounts) > 0
    scores = [float(x) for x in accounts["Score"]]
    assert scores == sorted(scores, reverse=True)
    for cell in accounts["Account"]:  # a link to the Case Explorer opened on the account
        found = re.fullmatch(r"\[(\d+)\]\(cases\?(.*)\)", cell)
        assert found and f"cases.account={found.group(1)}" in found.group(2), cell
    assert all(w and w != "None" for w in accounts["Why"])
    # The picker names each account by kind, region and score, never by a bare id.
    picker = at.selectbox(key="anomalies_account")
    labels = list(picker.options)  # as shown: the formatted labels
    assert labels and all(
        re.fullmatch(r"Account \d+ · \w+ · \w+ · score [\d.]+", x) for x in labels
    )
    # The picked account opens below, with its reasons and a link to the Case Explorer.
    assert any(c.value.startswith("Why: ") for c in at.caption)
    links = [p for p in at.get("page_link") if "account" in p.proto.label]
    assert links, [p.proto.label for p in at.get("page_link")]


@pytest.mark.parametrize(("role", "opens"), [("leadership", True), ("product", False)])
def test_roles(monkeypatch, small_db, role, opens):
    """Leadership opens the page (accounts and cases masked); product may not."""
    at = (
        _page(monkeypatch, small_db)
        if role == "associate"
        else open_page(monkeypatch, small_db, "pages/anomalies.py", role=role)
    )
    assert not at.exception
    refused = any("cannot open this page" in e.value for e in at.error)
    assert refused == (not opens)
    if opens:
        assert "Accounts to review" in [h.value for h in at.subheader]
    else:
        assert not at.dataframe


def test_feedback_is_stored_and_quiets_the_incident(monkeypatch, own_small_db):
    at = _page(monkeypatch, own_small_db)
    first = at.dataframe[0].value.iloc[0]["slice"]
    at.button(key="anomalies_verdict_not_useful").click().run()
    assert not at.exception
    assert (first, "not_useful", "tester") in _feedback_rows(own_small_db)  # who said it
    # The dismissed pattern is no longer among the alerted incidents of that slice.
    still = at.dataframe[0].value
    assert first not in set(still["slice"]) or still.shape[0] == 0
    engine = database.make_engine(own_small_db)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Feedback)).scalar_one() == 1
    engine.dispose()


@pytest.mark.parametrize("page", ["pages/anomalies.py", "pages/trends.py"])
def test_pages_explain_an_empty_or_unreachable_database(monkeypatch, tmp_path, page):
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    at = app_as()
    at.switch_page(page)
    at.run()
    assert not at.exception
    assert "python -m analytics seed" in at.info[0].value
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", "postgresql+psycopg://nobody:secret@127.0.0.1:1/x")
    at = app_as()
    at.switch_page(page)
    at.run()
    assert not at.exception
    banner = at.error[0].value
    assert "Cannot read the database" in banner and "secret" not in banner


def test_a_link_reproduces_the_filter_and_the_selected_incident(monkeypatch, small_db):
    at = _page(monkeypatch, small_db)
    slices = list(at.dataframe[0].value["slice"])
    target = slices[-1]
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", small_db)
    linked = app_as()
    linked.query_params["anomalies.incident"] = target
    linked.query_params["anomalies.find"] = target.split("|")[0]
    linked.switch_page("pages/anomalies.py")
    linked.run()
    assert not linked.exception
    assert any(h.value.startswith(format_slice(target) + " · ") for h in linked.subheader)
    shown = set(linked.dataframe[0].value["slice"])
    assert target in shown and all(target.split("|")[0] in s for s in shown)
    assert linked.query_params["anomalies.incident"] == target


def test_verdicts_give_a_measured_precision_per_metric(monkeypatch, own_small_db):
    """The top incident confirmed, two more alerts of its metric judged (one dismissed,
    then confirmed: its newest verdict counts), one dismissed: 3 of 4 confirmed."""
    url = own_small_db
    at = _page(monkeypatch, url)
    assert any("No verdict on these alerts yet" in c.value for c in at.caption)
    at.button(key="anomalies_verdict_confirmed").click().run()
    engine = database.make_engine(url)
    with engine.connect() as conn:
        metric, start = conn.execute(select(Feedback.metric, Feedback.alert_start)).one()
    for key, verdict in [("a", "not_useful"), ("a", "confirmed"), ("b", "confirmed"),
                         ("c", "not_useful")]:  # fmt: skip
        feedback.record_feedback(engine, viewer=Viewer("ann", Role.associate), metric=metric,
                                 slice_key=f"test={key}", alert_start=start, verdict=verdict,
                                 value=1.0)  # fmt: skip
    engine.dispose()
    at = _page(monkeypatch, url)
    assert not at.exception
    shown = [c.value for c in at.caption if "Measured precision" in c.value]
    assert shown and "75% confirmed of 4 judged" in shown[0], shown
    table = next(d.value for d in at.dataframe if "judged" in d.value.columns)
    row = table[table["metric"] == metric].iloc[0]
    assert (row["judged"], row["confirmed"], row["not_useful"]) == (4, 3, 1)


def test_the_selected_incident_says_why_in_numbers(monkeypatch, small_db):
    """The detector, the expected value and band and the p-value, in one paragraph; the
    heading gives the days the incident covers (a weekly point covers its 7 days)."""
    at = _page(monkeypatch, small_db)
    assert not at.exception
    why = [m.value for m in at.markdown if "Detector:" in m.value]
    assert len(why) == 1
    assert re.search(r": [\d,]+ (cases|events) against [\d,.]+ expected \([\d.]+% band ", why[0])
    # Significance in words; the p-value behind it on hover.
    assert re.search(r", a (rise|fall) of [\d,.]+, significant\.", why[0])
    note = next(m.help for m in at.markdown if "Detector:" in m.value)
    assert re.match(r"p (= [\d.]+|< 0\.001) \(score ([\d.]+|above 300) = −log10 p\)", note), note
    heading = next(h.value for h in at.subheader if " · " in h.value)
    days = heading.split(" · ")[-1]
    first, _, last = days.partition("–")
    assert first != last  # never "16 Nov–16 Nov"


def _band(at: AppTest) -> float:
    why = next(m.value for m in at.markdown if "Detector:" in m.value)
    found = re.search(r"\(([\d.]+)% band ", why)
    assert found, why
    return float(found.group(1))


def test_the_sensitivity_is_a_budget_in_false_alerts_per_month_kept_in_the_url(
    monkeypatch, small_db
):
    """The default is one false alert per slice per month; a stricter choice widens the
    band of the selected incident's series, and the choice lives in the URL."""
    default = _page(monkeypatch, small_db)
    assert not default.exception
    control = next(c for c in default.segmented_control if "per month" in c.label)
    assert control.value == "1" and "anomalies.sensitivity" not in default.query_params
    strict = _page_with(monkeypatch, small_db, {"anomalies.sensitivity": "0.25"})
    assert not strict.exception
    assert next(c for c in strict.segmented_control if "per month" in c.label).value == "0.25"
    assert strict.query_params["anomalies.sensitivity"] == "0.25"
    assert _band(strict) > _band(default)
    loose = _page_with(monkeypatch, small_db, {"anomalies.sensitivity": "4"})
    assert _band(loose) <= _band(default)  # the level is capped at 0.2 a point
    bad = _page_with(monkeypatch, small_db, {"anomalies.sensitivity": "1e9"})
    assert not bad.exception
    assert any("Ignored sensitivity" in w.value for w in bad.warning)
    assert _band(bad) == _band(default)


def _page_with(monkeypatch, url: str, params: dict[str, str]) -> AppTest:
    return open_page(monkeypatch, url, "pages/anomalies.py", params=params)


def test_no_current_incident_shows_the_banner_without_an_empty_table(monkeypatch, small_db):
    at = _page_with(monkeypatch, small_db, {"anomalies.find": "no such slice anywhere"})
    assert not at.exception
    assert any(s.value.startswith("No current anomaly") for s in at.success)
    # Neither incident table is drawn empty under the banner (the tables left are the
    # week's account drill-down, which has no incident columns).
    assert not any("Status" in d.value.columns and "slice" in d.value.columns for d in at.dataframe)
    assert any(c.value.startswith("Nothing held back") for c in at.caption)

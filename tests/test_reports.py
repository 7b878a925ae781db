"""Weekly briefs on the small demo: content, privacy of the product version, the HTML file,
suppression that cannot be undone, the empty week and the command line."""

from __future__ import annotations

import base64
import gzip
import html
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from sqlalchemy import select
from sqlalchemy.engine import Engine

from analytics import reports
from analytics.access.suppression import SUPPRESSED_TEXT, TOTAL_LABEL, suppress
from analytics.core import database, models
from analytics.core.calendar import parse_week
from analytics.core.filters import Filters
from analytics.metrics.kpis import kpis
from analytics.metrics.movers import top_movers
from analytics.metrics.stats import ALPHA
from analytics.reports import Brief, Table, build_brief, render_html, render_markdown
from analytics.sources import load
from analytics.sources.frames import Cube
from analytics.views import emerging
from tests.helpers import HANG_S

# On one worker: under `pytest -n 2` each worker would build the module's briefs.
pytestmark = pytest.mark.xdist_group("reports")

ROOT = Path(__file__).resolve().parent.parent
#: Weeks of the small demo's scenarios: the review ring, the takeover wave, the new scam.
RING, TAKEOVER, SCAM = "2026-W08", "2026-W13", "2026-W17"
WEEKS = (RING, TAKEOVER, SCAM)
#: Before the small demo's data starts.
EMPTY = "2025-W10"
_RESOURCE = re.compile(r"""(?:src|href)\s*=\s*\\?["']?\s*https?:""", re.IGNORECASE)


@pytest.fixture(scope="module")
def engine(small_db: str):
    eng = database.make_engine(small_db)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def briefs(engine: Engine) -> dict[tuple[str, str], Brief]:
    return {
        (label, audience): build_brief(
            engine,
            week=parse_week(label),
            audience=audience,
            note="<b>Monday</b> review",
            role="leadership",
        )
        for label in WEEKS
        for audience in ("leadership", "product")
    }


@pytest.fixture(scope="module")
def rendered(briefs: dict[tuple[str, str], Brief]) -> dict[tuple[str, str], tuple[str, str]]:
    return {key: (render_html(b), render_markdown(b)) for key, b in briefs.items()}


@pytest.fixture(scope="module")
def truth(engine: Engine) -> dict[str, dict]:
    return {s["kind"]: s for s in database.get_meta(engine, "ground_truth")["scenarios"]}


def _cube(engine: Engine, monday: date) -> Cube:
    return load.load_cube(
        engine, Filters(start=monday - timedelta(weeks=12), end=monday + timedelta(days=6))
    )


def _text_of(brief: Brief) -> str:
    """What a reader sees: sentences and table cells (no chart data, no plotly.js)."""
    parts = [s for section in brief.sections for s in section.sentences]
    for section in brief.sections:
        for table in section.tables:
            parts += table.frame.columns
            parts += [cell for row in table.text().iter_rows() for cell in row]
    return "\n".join(parts)


def _without_plotly(page: str) -> str:
    """The page without the embedded plotly.js library (its gzip in base64)."""
    start = page.find('<script type="application/gzip" id="plotly-js"')
    if start < 0:
        return page
    end = page.index("</script>", start)
    assert end - start > 300_000, "the gzipped script is plotly.js"
    return page[:start] + page[end:]


def _plotly_of(page: str) -> str:
    """The plotly.js a page embeds, inflated."""
    start = page.index(">", page.index('<script type="application/gzip" id="plotly-js"')) + 1
    return gzip.decompress(base64.b64decode(page[start : page.index("</script>", start)])).decode()


# --------------------------------------------------------------------------- content


@pytest.mark.parametrize("label", [TAKEOVER, SCAM])
def test_leadership_brief_lists_the_weeks_significant_movers(engine, briefs, rendered, label):
    monday = parse_week(label)
    cube = _cube(engine, monday)
    movers = {b: top_movers(cube, week=monday, baseline=b) for b in ("previous", "4w")}
    significant = {s for m in movers.values() for s in m.filter(pl.col("q_value") < ALPHA)["slice"]}
    expected = {
        TAKEOVER: {"category=account_takeover"},
        SCAM: {
            "category=other",
            "category=other · severity=high",
            "category=other · source=user_report",
        },
    }[label]
    assert significant == expected
    table = briefs[label, "leadership"].section("movers").tables[0]
    assert table.title == "Significant movers"
    # Slices in words: "category=other · severity=high" reads "Other · High".
    assert set(table.frame["Slice"]) == {_words(s) for s in significant}
    page, markdown = rendered[label, "leadership"]
    previous = movers["previous"].select("slice", q_prev="q_value")
    for row in movers["4w"].join(previous, on="slice").filter(pl.col("significant")).to_dicts():
        # The sentence gives the verdict in words, never the q-value ...
        sentence = (
            f"{_words(row['slice'])}: {row['current']:.0f} cases against a 4-week mean of "
            f"{_tenths(row['expected'])} ({row['rel_change'] * 100:+.1f}%, significant)"
        )
        assert sentence in markdown and html.escape(sentence, quote=False) in page
        assert "q = " not in sentence and row["slice"] not in _section(markdown, "Top movers")
        # ... which is behind the verdict: on hover in HTML, a footnote in Markdown.
        tests = (
            f"{_q(row['q_prev'])} against the previous week; "
            f"{_q(row['q_value'])} against the 4-week mean"
        )
        cell = table.frame.filter(pl.col("Slice") == _words(row["slice"])).row(0, named=True)
        assert cell["Tests"] == tests
        assert f'title="{html.escape(tests)}">{cell["Significance"]}</td>' in page
        assert cell["Significance"].startswith("significant")


def _tenths(value: float) -> str:
    """A mean to one decimal, halves away from zero as written (16.25 -> 16.3), as the
    brief and the browser's tables round; written here apart from the brief's formatter."""
    return f"{Decimal(repr(value)).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP):,}"


def _words(key: str) -> str:
    """A movers slice key in words, written here apart from the brief's formatter."""
    values = [part.split("=")[1] for part in key.split(" · ")]
    return " · ".join(v.replace("_", " ").capitalize() for v in values)


def _q(q: float) -> str:
    return "q < 0.001" if q < 0.001 else f"q = {q:.3f}"


def _section(markdown: str, title: str) -> str:
    return markdown.split(f"\n## {title}\n")[1].split("\n## ")[0]


def test_takeover_week_names_its_anomaly_and_root_cause(briefs, truth):
    assert {"event_kind": "login_failed"} in truth["account_takeover_wave"]["slices"]
    for audience in ("leadership", "product"):
        section = briefs[TAKEOVER, audience].section("anomalies")
        # Slices in words: kind=login_failed|platform=web reads "Login failed · Web".
        lead = next(s for s in section.sentences if s.startswith("Login failed"))
        assert "(events, daily, 22 Mar to 23 Mar; continuing since 22 Mar 2026)" in lead
        assert "Root cause:" in lead
    leadership = briefs[TAKEOVER, "leadership"].section("anomalies").sentences
    assert any("peak 441 on 22 Mar 2026 against 0.5 expected" in s for s in leadership)
    assert any(
        s.startswith("Login · WI") and "Web (platform) stands out: 92% of the change" in s
        for s in leadership
    )


def test_scam_week_shows_the_new_topic_with_its_terms(briefs, truth):
    words = {w for term in truth["new_scam"]["terms"] for w in term.split()}
    for audience in ("leadership", "product"):
        section = briefs[SCAM, audience].section("emerging")
        topics = section.tables[0].frame["Distinctive terms"].to_list()
        assert any(len(words & set(t.split(", "))) >= 3 for t in topics), topics
        # named by its phrase (the product brief's sentence gives no word list)
        table = section.tables[0].frame
        phrases = table.filter(pl.col("Distinctive terms").str.contains("insurance"))["Phrase"]
        assert any(
            any(f"“{p}”" in s for p in phrases) and "in category other" in s
            for s in section.sentences
        )
    section = briefs[SCAM, "leadership"].section("emerging")
    table = section.tables[0].frame
    scam = table.filter(pl.col("Distinctive terms").str.contains("insurance")).row(0, named=True)
    # The sentence names the topic by its phrase and says what the table shows for it.
    assert any(
        f"“{scam['Phrase']}”" in s
        and f"{scam['Last 7 days']} cases in the last 7 days against" in s
        and f"({scam['Before']} in the 83 days before;" in s
        for s in section.sentences
    )


def test_ring_week_shows_the_review_ring(engine, briefs, truth):
    monday = parse_week(RING)
    found = emerging.ring_view(engine, as_of=monday + timedelta(days=7), role="leadership")
    rings, members = found.rings, found.members
    ring = rings.row(0, named=True)
    mine = set(members.filter(pl.col("ring_id") == ring["ring_id"])["account_id"])
    assert mine <= set(truth["fake_review_ring"]["account_ids"])
    sentences = briefs[RING, "leadership"].section("emerging").sentences
    assert any(
        s.startswith(f"Ring {ring['ring_id']} (growing): {len(mine)} accounts") for s in sentences
    )
    anomalies = briefs[RING, "leadership"].section("anomalies").sentences
    assert any(s.startswith("Review posted · FL") for s in anomalies)
    product = briefs[RING, "product"].section("emerging").sentences
    assert f"Ring sizes (members): {len(mine)}." in product


def test_every_sentence_states_a_number(briefs):
    for brief in briefs.values():
        for section in brief.sections:
            if section.key in ("about", "events"):
                continue
            for sentence in section.sentences:
                assert re.search(r"\d|hidden", sentence), (section.key, sentence)


def test_the_headline_states_the_kpis_with_their_tests(engine, briefs):
    monday = parse_week(TAKEOVER)
    cards = kpis(_cube(engine, monday), week=monday)
    new = cards.filter(pl.col("key") == "new_cases").row(0, named=True)
    headline = briefs[TAKEOVER, "leadership"].section("headline")
    first = next(s for s in headline.sentences if s.startswith("New cases: "))
    assert first == (
        f"New cases: {new['value']:.0f}, down 5.0% on the previous week's "
        f"{new['previous']:.0f} (not significant); 4-week mean "
        f"{new['baseline']:.0f} (not significant)."
    )
    # The p-values are behind the verdict, in the KPI table's hover text.
    row = headline.tables[0].frame.row(0, named=True)
    assert (row["Metric"], row["Significance"]) == ("New cases", "not significant")
    assert row["Tests"] == (
        f"p = {new['p_previous']:.3f} against the previous week; "
        f"p = {new['p_baseline']:.3f} against the 4-week mean"
    )
    significant = cards.filter(pl.col("significant") | pl.col("significant_baseline"))
    assert significant["label"].to_list() == ["First response (median)"]
    headline = briefs[TAKEOVER, "leadership"].section("headline").sentences
    assert any(s.startswith("First response (median): 8.5 h, down 54.8%") for s in headline)


# --------------------------------------------------------------------------- the HTML file


class _Page(HTMLParser):
    """Tags, attributes, scripts and nesting errors of a page."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: Counter[str] = Counter()
        self.links: list[tuple[str, str, str | None]] = []
        self.scripts: list[int] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags[tag] += 1
        self.links += [(tag, k, v) for k, v in attrs if k in ("src", "href", "action", "srcset")]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()

    def handle_data(self, data) -> None:
        if self.stack and self.stack[-1] == "script":
            self.scripts.append(len(data))


@pytest.mark.parametrize("key", [(w, a) for w in WEEKS for a in ("leadership", "product")])
def test_html_is_one_self_contained_file(briefs, rendered, key):
    page = rendered[key][0]
    parsed = _Page()
    parsed.feed(page)
    parsed.close()
    assert parsed.errors == [] and parsed.stack == []
    assert not _RESOURCE.search(page), "an http(s) src/href in the file"
    assert not re.search(r"url\(\s*['\"]?\s*(?:https?:)?//|@import", page, re.IGNORECASE)
    assert all(tag == "a" and k == "href" and v.startswith("#") for tag, k, v in parsed.links)
    for tag in ("link", "img", "iframe", "object", "embed", "base"):
        assert parsed.tags[tag] == 0, tag
    figures = sum(len(s.figures) for s in briefs[key].sections)
    assert figures >= 4
    assert page.count("* plotly.js v") == 1  # the library once, inline
    assert [n > 300_000 for n in parsed.scripts].count(True) == 1  # gzipped, in base64
    assert len(page.encode()) < 1_500_000  # the cartesian bundle: 0.5 MB gzipped
    library = _plotly_of(page)  # whole, and without a URL even inside
    assert library.startswith("/**\n* plotly.js") and "window.Plotly = Plotly;" in library
    assert not re.search(r"https?://", library, re.IGNORECASE)
    assert page.count("Plotly.newPlot(") == figures
    assert f"<title>Lookout weekly brief — {key[0]} ({key[1]})</title>" in page
    assert "&lt;b&gt;Monday&lt;/b&gt; review" in page and "<b>Monday</b>" not in page


def test_html_escapes_what_it_is_given(engine):
    brief = build_brief(
        engine,
        week=parse_week(SCAM),
        audience="product",
        note='</p><script src="https://evil.example/x.js"></script>',
        role="product",
    )
    page = render_html(brief)
    assert "evil.example" in page and "<script src=" not in page
    assert not _RESOURCE.search(page)


# --------------------------------------------------------------------------- the product version


@pytest.fixture(scope="module")
def descriptions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        texts = conn.execute(select(models.Case.description)).scalars().all()
    return [t for t in texts if t]


def _windows(text: str, size: int = 40) -> set[str]:
    return {text[i : i + size] for i in range(len(text) - size + 1)}


@pytest.mark.parametrize("audience", ["product", "leadership"])
def test_no_case_text_in_any_brief(rendered, descriptions, audience):
    assert len(descriptions) > 2000
    for label in WEEKS:
        page, markdown = rendered[label, audience]
        # What a reader can see, unescaped: the page (but plotly.js) and the Markdown.
        seen = html.unescape(_without_plotly(page)) + re.sub(r"\\(.)", r"\1", markdown)
        shown = _windows(seen)
        for text in descriptions:
            if len(text) < 40:
                assert text not in seen, text
            else:
                chunks = {text[i : i + 40] for i in range(0, len(text) - 39, 10)}
                assert not chunks & shown, text


@pytest.mark.parametrize("label", [RING, TAKEOVER])
def test_product_brief_has_no_account_ids(engine, briefs, rendered, label):
    brief = briefs[label, "product"]
    for section in brief.sections:
        for table in section.tables:
            for column in table.frame.columns:
                assert not re.search(r"account|case|ring|\bid\b|_id", column, re.I), column
    monday = parse_week(label)
    found = emerging.ring_view(engine, as_of=monday + timedelta(days=7), role="leadership")
    rings, members = found.rings, found.members
    ids = set(members["account_id"]) | set(rings["ring_id"])
    assert len(ids) >= 12
    seen = _text_of(brief) + rendered[label, "product"][1]
    # Identifier context: "ring 127", "account 3880", "#3880" and the like.
    assert not re.search(r"(?:ring|account|member|subject|reporter|id)\W{0,2}#?\d", seen, re.I)
    # Ids of 100 and up (smaller ones collide with counts; years are not ids here).
    tokens = set(re.findall(r"(?<![\d.,])\d+(?![\d.,])", seen))
    leaked = {i for i in ids if i >= 100 and i not in (2025, 2026) and str(i) in tokens}
    assert not leaked
    assert rings["ring_id"][0] in {
        int(t) for t in re.findall(r"\d+", _text_of(briefs[label, "leadership"]))
    }


@pytest.mark.parametrize("label", WEEKS)
def test_product_counts_are_suppressed(briefs, label):
    brief = briefs[label, "product"]
    checked = 0
    for section in brief.sections:
        for table in section.tables:
            counts = {c for c in table.frame.columns if table.format_of(c) == "count"}
            assert counts <= set(table.suppressed), (table.title, counts)
            text = table.text()
            for column in table.suppressed:
                values = table.frame[column].drop_nulls()
                assert (values >= 10).all(), (table.title, column)
                for cell in text[column]:
                    assert cell == SUPPRESSED_TEXT or float(cell.replace(",", "")) >= 10, (
                        table.title,
                        column,
                        cell,
                    )
                    checked += 1
    assert checked > 30


@pytest.mark.parametrize("label", WEEKS)
def test_product_totals_are_exact_and_protect_their_hidden_cells(engine, briefs, label):
    brief = briefs[label, "product"]
    table = brief.section("movers").tables[0]
    body = table.frame.filter(pl.col("Category") != TOTAL_LABEL)
    total = table.frame.filter(pl.col("Category") == TOTAL_LABEL).row(0, named=True)
    monday = parse_week(label)
    truth = _cube(engine, monday).cases.with_columns(week=pl.col("opened_at").dt.truncate("1w"))
    weekly = dict(truth.group_by(pl.col("week").dt.date()).len().iter_rows())
    assert total["This week"] == weekly[monday]
    assert total["Previous week"] == weekly[monday - timedelta(weeks=1)]
    assert total["4-week mean"] == sum(weekly[monday - timedelta(weeks=k)] for k in range(1, 5)) / 4
    for column in ("This week", "Previous week"):
        shown = body[column].drop_nulls()
        hidden = body.height - shown.len()
        assert hidden >= 2 and total[column] - shown.sum() >= 10, (column, hidden)
    sentences = brief.section("headline").sentences  # the week's story first
    headline = next(s for s in sentences if s.startswith("New cases: "))
    assert headline.startswith(f"New cases: {total['This week']},")
    # The charts carry the same numbers: hidden cells are empty, not their true counts.
    heatmap = brief.section("movers").figures[0].data[0]
    values = [v for row in heatmap.z for v in row]
    assert all(v is None or v >= 10 for v in values)
    assert any(t == SUPPRESSED_TEXT for row in heatmap.text for t in row)
    bars = {
        str(x)[:10]: y
        for trace in brief.section("headline").figures[0].data
        if trace.name == "weekly value"  # the weekly line (an unfinished week: projected)
        for x, y in zip(trace.x, trace.y, strict=True)
    }
    assert bars[str(monday)] == total["This week"]


def test_suppress_a_hand_built_table() -> None:
    cells = pl.DataFrame(
        {"category": ["spam", "other", "fraud", "abuse"], "this": [120, 4, 35, 30],
         "last": [0, 60, 9, 14]}
    )  # fmt: skip
    out = suppress(cells, ["this", "last"], label="category")
    # this: 4 alone is hidden and adds up to less than 10, so the smallest other (30)
    # goes with it; last: 0 and 9 are two but add up to 9, so 14 goes with them.
    assert out.rows() == [
        ("spam", 120, None),
        ("other", None, 60),
        ("fraud", 35, None),
        ("abuse", None, None),
        (TOTAL_LABEL, 189, 83),
    ]
    # The total less the shown cells is two or more hidden cells adding up to 10 or more.
    assert 189 - 120 - 35 == 34 and 83 - 60 == 23
    # The row order changes nothing; the same counts are suppressed the same way.
    again = suppress(cells.reverse(), ["this", "last"], label="category")
    assert_frame_equal(again.head(4).reverse(), out.head(4))
    text = Table("t", out, suppressed=("this", "last")).text()
    assert text.rows()[1] == ("other", "hidden", "60")
    # Without a label no total is published: only the small cells are hidden.
    assert suppress(cells, ["this"])["this"].to_list() == [120, None, 35, 30]
    # A total below the threshold is hidden with everything under it.
    tiny = suppress(cells.head(2).with_columns(last=pl.Series([2, 3])), ["last"], label="category")
    assert tiny["last"].to_list() == [None, None, None]
    assert Table("t", tiny, suppressed=("last",)).text()["last"].to_list() == ["hidden"] * 3
    # Zeros only and one small cell: all hidden, the total shown (each cell 0 to 12).
    zeros = pl.DataFrame({"k": ["a", "b", "c"], "n": [12, 0, 0]})
    assert suppress(zeros, ["n"], label="k")["n"].to_list() == [None, None, None, 12]
    with pytest.raises(ValueError, match="lacks column"):
        suppress(cells, ["nope"])
    with pytest.raises(ValueError, match="not nulls"):
        suppress(pl.DataFrame({"k": ["a"], "n": [None]}, schema={"k": pl.String, "n": pl.Int64}),
                 ["n"], label="k")  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_suppression_cannot_be_undone(data) -> None:
    rows = data.draw(st.integers(1, 8), label="rows")
    threshold = data.draw(st.integers(1, 20), label="threshold")
    names = [f"c{j}" for j in range(data.draw(st.integers(1, 3), label="columns"))]
    counts = st.lists(st.integers(0, 60), min_size=rows, max_size=rows)
    values = {name: data.draw(counts, label=name) for name in names}
    frame = pl.DataFrame({"label": [f"r{i}" for i in range(rows)], **values})
    out = suppress(frame, names, threshold=threshold, label="label")
    body, total = out.head(rows), out.row(rows, named=True)
    assert total["label"] == TOTAL_LABEL
    for name in names:
        true_total = sum(values[name])
        shown = body[name].drop_nulls()
        assert (shown >= threshold).all()
        # Every small cell is hidden; shown cells are their true values.
        for cell, value in zip(body[name], values[name], strict=True):
            assert (cell is None) if value < threshold else cell in (None, value)
        if true_total < threshold:
            assert total[name] is None and shown.len() == 0
            continue
        assert total[name] == true_total
        hidden = [v for v, c in zip(values[name], body[name], strict=True) if c is None]
        if hidden:  # the total less the shown cells: two or more cells, 10 or more
            assert len(hidden) >= 2 and sum(hidden) >= threshold
            # so each hidden cell could be anything from 0 to that sum (at least threshold)
            assert true_total - shown.sum() == sum(hidden)


# --------------------------------------------------------------------------- empty week


@pytest.mark.parametrize("audience", ["leadership", "product"])
@pytest.mark.parametrize("label", [EMPTY, "2026-W30"])
def test_a_week_without_data_says_so_and_renders(engine, audience, label):
    if audience == "product" and label == "2026-W30":  # after the data: not complete yet
        with pytest.raises(reports.IncompleteWeek, match="complete weeks only"):
            build_brief(engine, week=parse_week(label), audience=audience, role="product")
        return
    brief = build_brief(engine, week=parse_week(label), audience=audience, role="leadership")
    assert not brief.has_data
    assert [s.key for s in brief.sections] == ["no_data"]
    count = "2,131 " if audience == "leadership" else ""  # the product brief names no count
    assert brief.sections[0].sentences == (
        f"No cases were opened in {label} ({brief.period}).",
        f"The data holds {count}cases opened from 3 Sep 2025 to 30 Apr 2026; pick a week in "
        "that range.",
    )
    page = render_html(brief)
    parsed = _Page()
    parsed.feed(page)
    assert parsed.errors == [] and parsed.stack == [] and parsed.tags["script"] == 0
    assert f"No cases were opened in {label}" in page
    assert f"No cases were opened in {label}" in render_markdown(brief)


def test_filters_narrow_the_numbers_and_are_named(engine):
    brief = build_brief(
        engine,
        week=parse_week(SCAM),
        audience="leadership",
        filters=Filters(category=("other",)),
        role="leadership",
    )
    assert "filters: category other" in brief.meta()
    sentences = brief.section("headline").sentences  # the week's story first
    assert next(s for s in sentences if s.startswith("New cases: ")).startswith("New cases: 40,")


def test_the_product_brief_ignores_filters_and_says_so(engine, briefs):
    asked = Filters(category=("other",), platform=("ios", "web"))
    brief = build_brief(
        engine, week=parse_week(SCAM), audience="product", filters=asked, role="product"
    )
    assert brief.filters == Filters() and brief.ignored_filters == asked
    assert brief.meta()[-2:] == [
        "filters: all data",
        "not applied to the product brief: category other; platform ios, web",
    ]
    whole = briefs[SCAM, "product"]
    sentences = brief.section("headline").sentences  # the week's story first
    assert next(s for s in sentences if s.startswith("New cases: ")).startswith("New cases: 111,")
    for a, b in zip(brief.sections, whole.sections, strict=True):
        assert a.sentences == b.sentences, a.key
        for x, y in zip(a.tables, b.tables, strict=True):
            assert_frame_equal(x.text(), y.text())


# --------------------------------------------------------------------------- PostgreSQL


def test_the_brief_is_the_same_on_postgresql(small_pg: str, engine: Engine, briefs) -> None:
    pg = database.make_engine(small_pg)
    try:
        there = build_brief(pg, week=parse_week(TAKEOVER), audience="leadership", role="leadership")
    finally:
        pg.dispose()
    here = briefs[TAKEOVER, "leadership"]
    for key in ("headline", "movers", "anomalies", "service", "events"):
        a, b = here.section(key), there.section(key)
        assert a.sentences == b.sentences, key
        for x, y in zip(a.tables, b.tables, strict=True):
            assert_frame_equal(x.text(), y.text())


# --------------------------------------------------------------------------- command line


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "analytics", "report", *args],
        cwd=ROOT,
        env=dict(os.environ, LOOKOUT_DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=HANG_S,
        check=False,
    )


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize(("fmt", "start"), [("html", "<!DOCTYPE html>"), ("md", "# Lookout")])
def test_cli_writes_the_brief(small_db: str, tmp_path: Path, fmt: str, start: str) -> None:
    out = tmp_path / f"brief.{fmt}"
    args = ["--week", SCAM, "--audience", "product", "--out", str(out), "--format", fmt]
    done = _cli(small_db, *args, "--note", "For the Monday review")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"wrote the product brief for {SCAM} to {out} ({fmt}, ")
    text = out.read_text(encoding="utf-8")
    assert text.startswith(start)
    assert f"Lookout weekly brief — {SCAM} (product)" in text and "For the Monday review" in text


@pytest.mark.slow
def test_cli_says_when_the_week_has_no_data(small_db: str, tmp_path: Path) -> None:
    out = tmp_path / "empty.md"
    done = _cli(
        small_db, "--week", EMPTY, "--audience", "leadership", "--out", str(out), "--format", "md"
    )
    assert done.returncode == 0, done.stderr
    assert "(no data for that week)" in done.stdout
    assert f"No cases were opened in {EMPTY}" in out.read_text()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--week", "2026-W99"], "--week: '2026-W99' is not an ISO week such as 2026-W47"),
        (["--week", "last week"], "--week: 'last week' is not an ISO week"),
        (["--audience", "board"], "--audience 'board' is unknown: choose leadership or product"),
        (["--format", "pdf"], "--format 'pdf' is unknown: choose html or md"),
        (["--out", "/nonexistent-folder/brief.html"], "folder /nonexistent-folder does not exist"),
        (["--out", "{file}/brief.html"], "file, not a folder"),
        (["--out", "{tmp}"], "it is a folder"),
    ],
)
def test_cli_bad_input_is_one_line(small_db: str, tmp_path: Path, args, message) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    given = {"--week": SCAM, "--audience": "leadership", "--out": str(tmp_path / "b.html")}
    given.update(dict(zip(args[::2], args[1::2], strict=True)))
    flat = [x for k, v in given.items() for x in (k, v.format(file=blocker, tmp=tmp_path))]
    line = _one_line_error(_cli(small_db, *flat))
    assert message in line
    assert not (tmp_path / "b.html").exists()


@pytest.mark.slow
def test_cli_missing_options_are_one_line(small_db: str) -> None:
    assert "--week is required" in _one_line_error(_cli(small_db))
    line = _one_line_error(_cli(small_db, "--week", SCAM, "--out", "x.html"))
    assert "--audience is required" in line


@pytest.mark.slow
def test_cli_never_shows_the_password() -> None:
    url = "postgresql+psycopg://u:topsecret@127.0.0.1:1/x"
    line = _one_line_error(
        _cli(url, "--week", SCAM, "--audience", "product", "--out", "/tmp/x.html")
    )
    assert "topsecret" not in line and "***" in line

"""The brief's New anomalies, Emerging clusters and rings, and Known events sections."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

import plotly.graph_objects as go
import polars as pl
from sqlalchemy import Engine

from analytics.access.suppression import SUPPRESSED_TEXT, SUPPRESSION_THRESHOLD, suppress
from analytics.core.calendar import WEEK, iso_week, midnight
from analytics.core.filters import Filters
from analytics.present import detector_charts
from analytics.present.formatting import (
    describe_test,
    format_count,
    format_day,
    format_mean,
    format_share,
    format_slice,
    format_span,
    humanise,
    significance,
    significance_note,
)
from analytics.reports.disclosure import count_or_hidden, protect_topics
from analytics.reports.model import READER, TABLE_ROWS, Section, Table
from analytics.views.anomalies import (
    Incident,
    cause_words,
    incident_root_cause,
    incident_series,
)
from analytics.views.emerging import NARRATIVE_DAYS, RING_DAYS, emerging_view, ring_view

__all__ = ["anomalies_section", "emerging_section", "known_events_section", "product_topics"]

_BY_SCORE = ("score", "slice", "freq")  # ties broken by name: the same order on every database
_TOP_INCIDENTS = 5


def anomalies_section(
    engine: Engine, incidents: pl.DataFrame, monday: date, as_of: datetime, *, product: bool
) -> Section:
    """New anomalies: the week's alerted incidents over every slice, the lead of each
    family with its root cause (for product by score and shares of the change, no
    counts), and, for leadership, the top incident's band."""
    label = iso_week(monday)
    mine = _week_incidents(incidents, monday)
    alerted = mine.filter(pl.col("alerted"))
    explained = mine.filter(pl.col("explained_by").is_not_null())
    dismissed = mine.filter(pl.col("suppressed") & ~pl.col("alerted"))
    new = alerted.filter(pl.col("new"))
    sentences = [
        f"Alerted incidents in {label}, over every slice of cases and events, daily and "
        f"weekly: {alerted.height} ({new.height} new this week, "
        f"{alerted.height - new.height} continuing)."
    ]
    if explained.height or dismissed.height:
        sentences.append(
            f"Not alerted: {explained.height} explained by known events, {dismissed.height} "
            "dismissed earlier in feedback."
        )
    leads = _lead_incidents(alerted)
    end = as_of.date()
    figures: list[go.Figure] = []
    for row in leads.to_dicts():
        causes = incident_root_cause(engine, Incident.of(row), end=end, role=READER)
        sentences.append(_incident_sentence(row, causes, product=product))
    if not product and leads.height:
        top = leads.row(0, named=True)
        series = incident_series(engine, Incident.of(top), end=end, role=READER)
        figures.append(
            detector_charts.anomaly_band(
                series, title=f"{format_slice(top['slice'])}: value and expected band"
            )
        )
    tables: tuple[Table, ...] = ()
    if alerted.height:
        columns = [
            pl.col("slice").map_elements(format_slice, return_dtype=pl.String).alias("Slice"),
            pl.col("source").alias("Source"),
            pl.col("freq").alias("Scale"),
            pl.col("start").dt.date().alias("From"),
            pl.col("end").dt.date().alias("To"),
            *(
                []
                if product
                else [pl.col("peak_value").alias("Peak"), pl.col("peak_expected").alias("Expected")]
            ),
            pl.col("score").alias("Score (−log10 p)"),
            pl.col("new").alias("New this week"),
        ]
        frame = alerted.sort(*_BY_SCORE, descending=[True, False, False])
        frame = frame.head(TABLE_ROWS).select(columns)
        formats = {"Peak": "count", "Expected": "mean", "Score (−log10 p)": "score"}
        more = alerted.height - frame.height
        tables = (
            Table(
                "Alerted incidents",
                frame,
                formats,
                note=f"{more} more with lower scores." if more > 0 else "",
            ),
        )
    return Section("anomalies", "New anomalies", tuple(sentences), tables, tuple(figures))


def _week_incidents(incidents: pl.DataFrame, monday: date) -> pl.DataFrame:
    """Incidents whose alerted days touch the week, flagged ``new`` when they began in it."""
    lo, hi = midnight(monday), midnight(monday + WEEK)
    return incidents.filter(pl.col("start") < hi, pl.col("end") >= lo).with_columns(
        new=pl.col("start") >= lo
    )


def _lead_incidents(alerted: pl.DataFrame, *, top: int = _TOP_INCIDENTS) -> pl.DataFrame:
    """The best incident of each family (same source and first dimension, e.g. every
    ``kind=login_failed`` slice), with how many related incidents it stands for.

    >>> frame = pl.DataFrame({"slice": ["kind=x|region=CA", "kind=x", "category=spam"],
    ...     "source": ["events", "events", "cases"], "freq": "daily", "score": [9.0, 5.0, 7.0]})
    >>> _lead_incidents(frame).select("slice", "related").rows()
    [('kind=x|region=CA', 1), ('category=spam', 0)]
    """
    family = pl.col("source") + ":" + pl.col("slice").str.split("|").list.first()
    return (
        alerted.with_columns(family=family)
        .sort(*_BY_SCORE, descending=[True, False, False])
        .with_columns(related=pl.len().over("family") - 1)
        .unique("family", keep="first", maintain_order=True)
        .head(top)
        .drop("family")
    )


def _incident_sentence(row: Mapping[str, Any], causes: pl.DataFrame, *, product: bool) -> str:
    span = format_span(row["start"], row["end"], str(row["freq"]))
    when = "new this week" if row["new"] else f"continuing since {format_day(row['start'].date())}"
    text = f"{format_slice(row['slice'])} ({row['source']}, {row['freq']}, {span}; {when}): "
    if product:
        text += f"score {row['score']:.1f} (−log10 p)"
    else:
        on = "in the week of" if row["freq"] == "weekly" else "on"
        text += (
            f"peak {format_count(row['peak_value'])} {on} "
            f"{format_day(row['peak_ts'].date())} against "
            f"{format_mean(row['peak_expected'])} expected (score {row['score']:.1f}, −log10 p)"
        )
    if row["related"]:
        text += f"; related slices alerted too: {row['related']}"
    if causes.is_empty():
        return text + "; the slice cannot be broken down further."
    if product:
        return text + f". Root cause: {_cause_shares(causes)}."
    unit = "events" if row["source"] == "events" else "cases"
    return text + f". Root cause: {cause_words(causes, unit=unit)}"


def _cause_shares(causes: pl.DataFrame) -> str:
    """The best dimension's values and their share of the change, no counts.

    >>> causes = pl.DataFrame({"dimension": ["platform", "region"], "value": ["web", "CA"],
    ...     "share": [0.97, 0.4], "selected": [True, True], "dimension_rank": [1, 2]})
    >>> _cause_shares(causes)
    'Web (platform) accounts for 97% of the change'
    """
    best = causes.filter(pl.col("selected"), pl.col("dimension_rank") == 1)
    if best.is_empty():
        return "no single dimension explains the change"
    values = best["value"].to_list()
    share = float(best["share"].sum())
    verb = "accounts" if len(values) == 1 else "account"
    named = " + ".join(humanise(v) for v in values)
    return f"{named} ({best['dimension'][0]}) {verb} for {share:.0%} of the change"


def emerging_section(
    engine: Engine,
    filters: Filters,
    as_of: datetime,
    *,
    product: bool,
    week_total: int,
    clusters: pl.DataFrame | None = None,
) -> Section:
    """Emerging clusters and rings: topics of the case narratives growing in the last 7
    days and rings of accounts linked by shared devices and IPs (for product, counts as
    :func:`analytics.reports.disclosure.protect_topics` allows and ring sizes
    suppressed). ``clusters``: the topics of
    :func:`analytics.views.emerging.emerging_view`, when already found."""
    topics = (
        emerging_view(engine, filters, as_of=as_of, role=READER).clusters
        if clusters is None
        else clusters
    )
    rings = ring_view(engine, as_of=as_of, role=READER).rings
    emerging = topics.filter(pl.col("is_emerging"))
    if product:
        emerging = product_topics(topics, week_total=week_total)
    since = as_of - timedelta(days=NARRATIVE_DAYS)
    sentences = [
        f"Emerging topics in the case narratives of {format_day(since.date())} to "
        f"{format_day((as_of - timedelta(days=1)).date())}: {emerging.height} of {topics.height} "
        "(significant growth in the last 7 days, and new vocabulary or no real category)."
    ]
    sentences += [_topic_sentence(r, product=product) for r in emerging.head(5).to_dicts()]
    sentences += _ring_sentences(rings, as_of, product=product)
    tables = []
    if emerging.height:
        tables.append(_topic_table(emerging, product=product))
    if rings.height:
        tables.append(_ring_table(rings, product=product))
    return Section("emerging", "Emerging clusters and rings", tuple(sentences), tuple(tables))


def product_topics(clusters: pl.DataFrame, *, week_total: int) -> pl.DataFrame:
    """The emerging topics the product brief shows (at most :data:`TABLE_ROWS`), their
    counts as :func:`analytics.reports.disclosure.protect_topics` allows."""
    emerging = clusters.filter(pl.col("is_emerging")).head(TABLE_ROWS)
    return protect_topics(emerging, clusters, week_total=week_total)


def _topic_sentence(row: Mapping[str, Any], *, product: bool) -> str:
    recent, before = row["recent_count"], row["baseline_count"]
    terms = ", ".join(row["top_terms"])
    if not product:
        return (
            f"Topic {row['cluster_id']}, “{row['label']}” ({terms}): {row['summary']} "
            f"({format_count(before)} in the {NARRATIVE_DAYS - 7} days before; growth "
            f"×{row['growth']:.1f}, {describe_test(row['q_value'], 'q')})."
        )
    shown = [count_or_hidden(v) for v in (recent, before)]
    tail = (
        f"growth ×{row['growth']:.1f}, {significance(row['q_value'])}"
        if row["growth"] is not None
        else "significant growth"
    )
    category = row["top_category"]
    filed = f"filed mostly in category {humanise(category).lower()}" if category else "no category"
    return (
        f"“{row['label']}”: {shown[0]} cases in the last 7 days against {shown[1]} in the "
        f"{NARRATIVE_DAYS - 7} days before ({tail}); {filed}."
    )


def _topic_table(emerging: pl.DataFrame, *, product: bool) -> Table:
    frame = emerging.select(
        *([] if product else [pl.col("cluster_id").alias("Topic")]),
        pl.col("label").alias("Phrase"),
        pl.col("terms").alias("Distinctive terms"),
        pl.col("recent_count").alias("Last 7 days"),
        pl.col("baseline_count").alias("Before"),
        pl.col("growth").alias("Growth ×"),
        pl.col("q_value").alias("q"),
        pl.col("top_category").alias("Main category"),
    )
    formats = {"Topic": "text", "q": "p", "Growth ×": "mean"}
    if not product:
        return Table(
            "Emerging topics", frame.with_columns(pl.col("Topic").cast(pl.String)), formats
        )
    q = frame["q"].to_list()  # in words, the number on hover
    frame = frame.with_columns(
        pl.Series("q", [significance(v) for v in q], dtype=pl.String),
        pl.Series("Tests", [significance_note(v, "q") if v is not None else "" for v in q]),
    ).rename({"q": "Significance"})
    return Table(
        "Emerging topics",
        frame,
        {"Growth ×": "mean"},
        suppressed=("Last 7 days", "Before"),
        note=f"A count reads {SUPPRESSED_TEXT} below {SUPPRESSION_THRESHOLD}, or when the "
        f"cases outside the shown topics would fall below {SUPPRESSION_THRESHOLD}; growth "
        "and its test only where both counts are shown (q-values across topics, on hover).",
        hover={"Significance": "Tests"},
    )


def _ring_sentences(rings: pl.DataFrame, as_of: datetime, *, product: bool) -> list[str]:
    growing = rings.filter(pl.col("is_growing"))
    window = f"the {RING_DAYS} days before {format_day(as_of.date())}"
    if rings.is_empty():
        return [f"No ring of 3 or more accounts linked by shared devices or IPs in {window}."]
    out = [
        f"Rings of 3 or more accounts linked by shared devices or IPs in {window}: "
        f"{rings.height}, {growing.height} of them growing."
    ]
    if product:
        sizes = ", ".join(count_or_hidden(s) for s in rings["size"].to_list())
        out.append(f"Ring sizes (members): {sizes}.")
        return out
    for row in (
        pl.concat([growing, rings]).unique("ring_id", maintain_order=True).head(3).to_dicts()
    ):
        out.append(
            f"Ring {row['ring_id']}{' (growing)' if row['is_growing'] else ''}: "
            f"{row['size']} accounts, {row['growth']} new against the {RING_DAYS} days "
            f"before, linked by {row['devices']} devices and {row['ips']} IPs; median account "
            f"age {format_mean(row['median_age_days'], 0)} days; "
            f"{format_share(row['reported_share'])} reported, "
            f"{format_share(row['actioned_share'])} actioned."
        )
    return out


def _ring_table(rings: pl.DataFrame, *, product: bool) -> Table:
    if product:
        frame = suppress(
            rings.select(pl.col("size").alias("Members"), pl.col("is_growing").alias("Growing")),
            ["Members"],
        )
        return Table("Rings", frame, suppressed=("Members",))
    frame = rings.head(TABLE_ROWS).select(
        pl.col("ring_id").cast(pl.String).alias("Ring"),
        pl.col("size").alias("Accounts"),
        pl.col("growth").alias("New"),
        pl.col("devices").alias("Devices"),
        pl.col("ips").alias("IPs"),
        pl.col("median_age_days").alias("Median age (days)"),
        pl.col("reported_share").alias("Reported"),
        pl.col("is_growing").alias("Growing"),
    )
    formats = {"Median age (days)": "mean", "Reported": "percent"}
    return Table("Rings (id = smallest member account id)", frame, formats)


def known_events_section(
    annotations: pl.DataFrame, monday: date, incidents: pl.DataFrame
) -> Section:
    """Known events: the annotations (policy changes, launches, outages, holidays) of the
    week and the incidents they explain."""
    lo, hi = midnight(monday), midnight(monday + WEEK)
    starts_in = (pl.col("start_at") >= lo) & (pl.col("start_at") < hi)
    spans = pl.col("end_at").is_not_null() & (pl.col("start_at") < hi) & (pl.col("end_at") >= lo)
    has_events = "start_at" in annotations.columns and not annotations.is_empty()
    events = annotations.filter(starts_in | spans).sort("start_at") if has_events else None
    sentences = [] if events is None else [_event_sentence(r) for r in events.to_dicts()]
    if not sentences:
        sentences = [
            "No known event (policy change, launch, outage, holiday) is recorded for this week."
        ]
    explained = _week_incidents(incidents, monday).filter(pl.col("explained_by").is_not_null())
    if explained.height:
        by = explained.group_by("explained_by").len().sort("len", descending=True)
        sentences.append(
            "Incidents of the week explained by known events: "
            + "; ".join(f"{r[0]} ({r[1]})" for r in by.rows())
            + "."
        )
    return Section("events", "Known events", tuple(sentences))


def _event_sentence(row: Mapping[str, Any]) -> str:
    start, end = row["start_at"], row["end_at"]
    when = format_day(start.date())
    if end is not None and end.date() > start.date():
        when += f" to {format_day(end.date())}"
    scope = [f"{k} {humanise(row[k]) if k == 'category' else row[k]}"
             for k in ("category", "region") if row.get(k)]  # fmt: skip
    kind = humanise(row["kind"]).lower()
    return f"{row['title']} ({kind}, {when}" + "".join(f"; {s}" for s in scope) + ")."

"""The week's story: the few things that need attention this week, most important first.

:func:`week_story` reads one ISO week for the signed-in role and returns a
:class:`WeekStory`: a :class:`StoryItem` per thing that needs attention, each a sentence
with its numbers, the p- or q-values behind its words (for a tooltip) and a link to the
evidence. The Overview page shows it and the brief's Headline opens with the same
sentences (:func:`analytics.reports.headline.headline_section` for leadership,
:func:`~analytics.reports.headline.product_headline_section` for product teams), so the
two never disagree. :func:`story_items` (roles that see every number) and
:func:`product_items` (the product role) are the pure part: frames in, items out.

What is read: top movers (every slice one or two dimensions deep against the previous
week and against the 4-week mean, :func:`analytics.metrics.movers.top_movers`), the
incidents of the anomaly scan that touch the week
(:func:`analytics.views.anomalies.recent_incidents`), emerging narrative topics and
growing rings (:mod:`analytics.views.emerging`) and the SLA breach rate of the KPIs
(:func:`analytics.metrics.kpis.kpis`).

**Ranking.** Each item has a severity, then the order of its kind, then its strength:

1. *act now*: the SLA breach rate significantly up against both the previous week and
   the 4-week mean (every user waiting is affected, and it is our own commitment);
   an emerging topic (a new kind of report, significant growth with new vocabulary);
   a new incident (an alerted anomaly that began this week); a growing ring (coordinated
   accounts gaining members); a slice significantly up against both baselines.
2. *watch*: the SLA breach rate or a slice significantly up against one baseline only;
   an incident that began before the week and is still going.
3. *note*: a slice significantly down (less abuse reported, or less detected); not told
   while the week is in progress (its missing days would read as a fall).

Kinds in that order within a severity (SLA, emerging topic, incident, ring, mover), then
the strongest evidence first (smallest p- or q-value; a ring's score). At most
:data:`MOST` items: a narrower slice is folded into its one-dimension parent when both
moved, an incident family (same source and first dimension) gives its best member.

**Roles.** Roles with unsuppressed aggregates (leadership, associate, admin) see every
number, read as the leadership brief reads them (:data:`analytics.reports.model.READER`:
admin, who may build the leadership brief, sees in the story what that brief says).
The product role is told the product brief's story (:func:`product_items` of
:func:`analytics.reports.surfaces.surface_story`): complete weeks only, what changed on
the product surfaces in cases per 1,000 exposures, most significant first, each with
what to consider fixing, then the emerging topics no change named, every number under
the product brief's suppression (:mod:`analytics.reports.disclosure`); no incident, no
ring, no case text. Links go to the page that holds the evidence when the role may open
it, else to Reports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal

import polars as pl
from sqlalchemy import Engine

from analytics import access
from analytics.core.calendar import WEEK, is_complete, iso_week, midnight
from analytics.core.calendar import week_end as calendar_week_end
from analytics.core.filters import DIMENSIONS, Filters
from analytics.core.models import Role
from analytics.metrics.movers import top_movers
from analytics.metrics.stats import ALPHA
from analytics.metrics.weekly import WeeklyView, weekly_view
from analytics.present.formatting import (
    describe_change,
    format_count,
    format_days,
    format_mean,
    format_moment,
    format_period,
    format_slice,
    format_value,
    significance,
    significance_note,
)
from analytics.reports.disclosure import category_grid, protect_weeks
from analytics.reports.model import READER, product_week
from analytics.reports.signals import product_topics
from analytics.reports.surfaces import SurfaceWeek, surface_story, surface_week
from analytics.sources import load
from analytics.sources.frames import Cube
from analytics.views.anomalies import recent_incidents
from analytics.views.emerging import NARRATIVE_DAYS, RING_DAYS, emerging_view, ring_view

__all__ = [
    "KINDS",
    "MOST",
    "StoryItem",
    "WeekStory",
    "join_movers",
    "product_items",
    "story_items",
    "week_story",
]

#: The kinds of item, in the order they rank within a severity, and how each reads.
Kind = Literal["sla", "topic", "incident", "ring", "mover", "surface"]
KINDS: Mapping[str, str] = {
    "sla": "SLA",
    "topic": "Emerging topic",
    "incident": "Incident",
    "ring": "Ring",
    "mover": "Mover",
    "surface": "Product surface",
}
#: The most items a story tells.
MOST = 7
#: The most items of each kind.
_PER_KIND = {"sla": 1, "topic": 2, "incident": 3, "ring": 2, "mover": 3, "surface": 5}
#: Weeks of history read before the week (as the brief reads them).
_HISTORY_WEEKS = 12
#: Pages a role must be able to open to follow a link there.
_PAGE_NEEDS = {
    "pages/trends.py": "aggregates",
    "pages/anomalies.py": "cases",
    "pages/emerging.py": "cases",
    "pages/cases.py": "cases",
}
_REPORTS = "pages/reports.py"
#: How a link to each page reads.
_LINKS = {
    "pages/trends.py": "Weekly trends",
    "pages/anomalies.py": "The incident in Anomalies",
    "pages/emerging.py": "Emerging threats",
    "pages/cases.py": "Its cases in Case Explorer",
    _REPORTS: "The weekly brief",
}


@dataclass(frozen=True)
class StoryItem:
    """One thing that needs attention: a sentence with its numbers, the p- or q-values
    behind its words (``note``, for a tooltip; ``""`` when there are none), its kind, its
    severity (1 act now, 2 watch, 3 note) and rank (1 first), and a link to the evidence
    (``page`` and its query ``params``, named ``link``)."""

    kind: Kind
    severity: int
    strength: float
    text: str
    note: str
    page: str
    params: tuple[tuple[str, str], ...]
    link: str
    rank: int = 0

    @property
    def kind_label(self) -> str:
        """The kind in words (``Emerging topic``)."""
        return KINDS[self.kind]

    @property
    def query(self) -> dict[str, str]:
        """The link's query parameters."""
        return dict(self.params)


@dataclass(frozen=True)
class WeekStory:
    """The week's story for one role: the week (its Monday), whether it is still in
    progress and the data's newest record, the sentences that come before the items
    (``preface``: the week in progress, the week product numbers cover), the items, most
    important first, and what did not need attention (``quiet``, told after the items:
    for product, that no surface changed; ``""`` when there is nothing to say)."""

    week: date
    role: str
    in_progress: bool
    as_of: datetime | None
    preface: tuple[str, ...]
    items: tuple[StoryItem, ...]
    quiet: str = ""

    @property
    def period(self) -> str:
        """The week's days in words (``23–29 Nov 2026``)."""
        return format_period(self.week)

    @property
    def calm(self) -> str | None:
        """The sentence after the items: :attr:`quiet`, or :data:`ALL_CLEAR` when there is
        no item either; ``None`` when neither."""
        return self.quiet or (None if self.items else ALL_CLEAR)

    @property
    def sentences(self) -> tuple[str, ...]:
        """The story as the brief's Headline opens: the preface, each item's sentence,
        then :attr:`calm` when there is one."""
        tail = () if self.calm is None else (self.calm,)
        return (*self.preface, *(i.text for i in self.items), *tail)


#: The sentence of a week without anything that needs attention.
ALL_CLEAR = (
    "Nothing needs attention this week: no slice moved significantly against the previous "
    "week or the 4-week mean, no new incident, no emerging topic, no growing ring, and the "
    "SLA breach rate did not rise significantly."
)


# --------------------------------------------------------------------------- the pure part


def join_movers(previous: pl.DataFrame, four: pl.DataFrame) -> pl.DataFrame:
    """Top movers against the previous week and against the 4-week mean
    (:func:`analytics.metrics.movers.top_movers` with each baseline) as one frame:
    ``slice`` (the key, ``category=other|specialty=obgyn``), ``depth``, ``current``,
    ``previous``, ``mean_4w``, ``q_prev``, ``q_4w``.

    >>> cols = {"slice": pl.String, "category": pl.String, "region": pl.String,
    ...         "depth": pl.Int64, "current": pl.Float64, "expected": pl.Float64,
    ...         "q_value": pl.Float64}
    >>> prev = pl.DataFrame([("x", "other", "CA", 2, 30.0, 10.0, 0.01)], schema=cols,
    ...                     orient="row")
    >>> four = pl.DataFrame([("x", "other", "CA", 2, 30.0, 12.0, 0.02)], schema=cols,
    ...                     orient="row")
    >>> join_movers(prev, four).row(0)
    ('category=other|region=CA', 2, 30.0, 10.0, 12.0, 0.01, 0.02)
    """
    dims = [d for d in DIMENSIONS if d in four.columns]
    key = pl.concat_str(
        [pl.when(pl.col(d).is_not_null()).then(pl.lit(f"{d}=") + pl.col(d)) for d in dims],
        separator="|",
        ignore_nulls=True,
    )
    before = previous.select(key.alias("slice"), previous="expected", q_prev="q_value")
    return (
        four.select(key.alias("slice"), "depth", "current", mean_4w="expected", q_4w="q_value")
        .join(before, on="slice", how="left")
        .select("slice", "depth", "current", "previous", "mean_4w", "q_prev", "q_4w")
    )


def story_items(
    *,
    week: date,
    role: Role | str,
    movers: pl.DataFrame,
    kpis: pl.DataFrame,
    incidents: pl.DataFrame,
    topics: pl.DataFrame,
    rings: pl.DataFrame,
    in_progress: bool = False,
) -> tuple[StoryItem, ...]:
    """The things that need attention in the week starting ``week``, most important
    first (the module's docstring gives the ranking), at most :data:`MOST`. In a week
    still ``in_progress`` a slice below its baselines is not told: its missing days would
    read as a fall.

    ``movers`` is :func:`join_movers`' frame; ``kpis`` holds the KPI rows
    (:func:`analytics.metrics.kpis.kpis`; only its SLA breach rate is read); ``incidents``
    is the anomaly scan's (:func:`analytics.views.anomalies.recent_incidents`); ``topics``
    the narrative topics (:attr:`analytics.views.emerging.TopicsView.clusters`); ``rings``
    the rings (:attr:`analytics.views.emerging.RingView.rings`). Every number is told:
    ``role`` must see unsuppressed aggregates (the product role's story is
    :func:`product_items`).

    >>> movers = pl.DataFrame({"slice": ["category=other", "category=spam"], "depth": [1, 1],
    ...     "current": [226.0, 50.0], "previous": [215.0, 48.0], "mean_4w": [166.0, 45.0],
    ...     "q_prev": [0.4, 0.9], "q_4w": [0.003, 0.8]})
    >>> empty = pl.DataFrame()
    >>> items = story_items(week=date(2026, 11, 23), role="leadership", movers=movers,
    ...     kpis=empty, incidents=empty, topics=empty, rings=empty)
    >>> [(i.kind, i.severity) for i in items]
    [('mover', 2)]
    >>> items[0].text
    "Other: 226 new cases, up 36.1% on the 4-week mean of 166.0 (significant) and up 5.1% on the previous week's 215 (not significant)."
    >>> items[0].note
    'q = 0.003 against the 4-week mean; q = 0.400 against the previous week'
    >>> items[0].page, items[0].query["cases.slice"], items[0].query["cases.opened_to"]
    ('pages/cases.py', 'category=other', '2026-11-29')
    """  # noqa: E501 - the doctest's output is one line
    access.require(role, "aggregates")
    found = [
        *_sla_items(kpis, week, role),
        *_topic_items(topics, week, role),
        *_incident_items(incidents, week, role),
        *_ring_items(rings, week, role),
        *_mover_items(movers, week, role),
    ]
    if in_progress:
        found = [i for i in found if not (i.kind == "mover" and i.severity == 3)]
    order = list(KINDS)
    found.sort(key=lambda i: (i.severity, order.index(i.kind), -i.strength))
    kept: list[StoryItem] = []
    for item in found:
        if sum(k.kind == item.kind for k in kept) < _PER_KIND[item.kind] and len(kept) < MOST:
            kept.append(replace(item, rank=len(kept) + 1))
    return tuple(kept)


def _link(
    role: Role | str, week: date, *pages: tuple[str, Mapping[str, str]]
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The first of ``pages`` (each a page and its own query) that ``role`` may open, with
    the week; else Reports (the weekly brief holds every item)."""
    query = {"week": iso_week(week)}
    for page, params in pages:
        if access.allowed(role, _PAGE_NEEDS[page]):
            return page, tuple({**query, **params}.items())
    return _REPORTS, tuple(query.items())


def _strength(p: float | None) -> float:
    """How strong a test's evidence is: ``-log10 p`` (0 when not tested)."""
    if p is None or p != p:
        return 0.0
    return -math.log10(max(p, 1e-300))


def _significant(p: float | None) -> bool:
    return p is not None and p == p and p < ALPHA


# --------------------------------------------------------------------------- SLA


def _sla_items(kpis: pl.DataFrame, week: date, role: Role | str) -> list[StoryItem]:
    if kpis.is_empty() or "key" not in kpis.columns:
        return []
    rows = kpis.filter(pl.col("key") == "sla_breach_rate").to_dicts()
    if not rows:
        return []
    row = rows[0]
    value, prev, base = row["value"], row["previous"], row["baseline"]
    worse_prev = _significant(row["p_previous"]) and prev is not None and value > prev
    worse_base = _significant(row["p_baseline"]) and base is not None and value > base
    if value is None or not (worse_prev or worse_base):
        return []
    text = (
        f"SLA breach rate: {format_value(value, 'percent')} of the cases due this week missed "
        f"their deadline, {describe_change(value, base, 'percent')} on the 4-week mean of "
        f"{format_value(base, 'percent')} ({significance(row['p_baseline'])}) and "
        f"{describe_change(value, prev, 'percent')} on the previous week's "
        f"{format_value(prev, 'percent')} ({significance(row['p_previous'])})."
    )
    note = (
        f"{significance_note(row['p_baseline'])} against the 4-week mean; "
        f"{significance_note(row['p_previous'])} against the previous week"
    )
    page, params = _link(role, week, ("pages/trends.py", {}))
    return [
        StoryItem(
            "sla",
            1 if worse_prev and worse_base else 2,
            max(_strength(row["p_previous"]), _strength(row["p_baseline"])),
            text,
            note,
            page,
            params,
            _LINKS[page],
        )
    ]


# --------------------------------------------------------------------------- topics


def _topic_items(topics: pl.DataFrame, week: date, role: Role | str) -> list[StoryItem]:
    if topics.is_empty() or "is_emerging" not in topics.columns:
        return []
    out = []
    for row in topics.filter(pl.col("is_emerging")).to_dicts():
        recent, before, growth = row["recent_count"], row["baseline_count"], row["growth"]
        status = "a new topic" if row["status"] == "new" else "growing again"
        counts = (
            f"{format_count(recent)} cases in the last 7 days against {format_count(before)} in "
            f"the {NARRATIVE_DAYS - 7} days before"
            if recent is not None and before is not None
            else f"{format_count(recent)} cases in the last 7 days"
            if recent is not None
            else "significant growth in the last 7 days"
        )
        times = f", {growth:.1f} times its usual rate" if growth is not None and recent else ""
        q = row["q_value"]
        tested = f" ({significance(q)})" if q is not None else ""
        text = f"Emerging topic “{row['label']}” ({status}): {counts}{times}{tested}."
        cluster = {"emerging.cluster": str(row["cluster_id"])}
        page, params = _link(role, week, ("pages/emerging.py", cluster))
        out.append(
            StoryItem(
                "topic",
                1,
                _strength(q),
                text,
                significance_note(q, "q") if q is not None else "",
                page,
                params,
                _LINKS[page],
            )
        )
    return out


# --------------------------------------------------------------------------- incidents


_UNITS = {"cases": "cases", "events": "events", "detections": "automated detections"}


def _incident_items(incidents: pl.DataFrame, week: date, role: Role | str) -> list[StoryItem]:
    if incidents.is_empty() or "alerted" not in incidents.columns:
        return []
    lo, hi = midnight(week), midnight(week + WEEK)
    covered = pl.when(pl.col("freq") == "weekly").then(6).otherwise(0)
    family = pl.col("source") + ":" + pl.col("slice").str.split("|").list.first()
    mine = (
        incidents.filter(pl.col("alerted"))
        .with_columns(last_day=pl.col("end").dt.date() + pl.duration(days=covered))
        .filter(pl.col("start") < hi, pl.col("last_day") >= lo.date())
        .with_columns(new=pl.col("start") >= lo, family=family)
        .sort("new", "score", "slice", "freq", descending=[True, True, False, False])
        .unique("family", keep="first", maintain_order=True)
    )
    return [_incident_item(row, week, role) for row in mine.to_dicts()]


def _incident_item(row: Mapping[str, Any], week: date, role: Role | str) -> StoryItem:
    first, last = row["start"].date(), row["last_day"]
    p = 10.0 ** -float(row["score"])
    way = "rose" if row["direction"] == "up" else "fell"
    unit = _UNITS.get(str(row["source"]), "cases")
    opened = "New incident" if row["new"] else "Continuing incident"
    what = f"{format_slice(str(row['slice']))} {unit}"
    peak = row["peak_ts"].date()
    when = (
        f"in the week of {format_days(peak, peak + timedelta(days=6))}"
        if row["freq"] == "weekly"
        else f"on {format_days(peak, peak)}"
    )
    span = format_days(first, last)
    over = "" if span in when else f", over {span}"
    text = (
        f"{opened}: {what} {way} to {format_count(row['peak_value'])} {when} against "
        f"{format_mean(row['peak_expected'])} expected ({significance(p)}){over}."
    )
    incident = {"anomalies.incident": str(row["slice"])}
    page, params = _link(role, week, ("pages/anomalies.py", incident))
    return StoryItem(
        "incident",
        1 if row["new"] else 2,
        float(row["score"]),
        text,
        significance_note(p),
        page,
        params,
        _LINKS[page],
    )


# --------------------------------------------------------------------------- rings


def _ring_items(rings: pl.DataFrame, week: date, role: Role | str) -> list[StoryItem]:
    if rings.is_empty() or "is_growing" not in rings.columns:
        return []
    out = []
    for row in rings.filter(pl.col("is_growing")).to_dicts():
        text = (
            f"Growing ring of {format_count(row['size'])} linked accounts: "
            f"{format_count(row['growth'])} joined in the last {RING_DAYS} days, sharing "
            f"{format_count(row['devices'])} devices and {format_count(row['ips'])} IP "
            f"addresses."
        )
        ring = {"emerging.ring": str(row["ring_id"])}
        page, params = _link(role, week, ("pages/emerging.py", ring))
        out.append(
            StoryItem(
                "ring",
                1,
                float(row["score"] or 0.0),
                text,
                "",
                page,
                params,
                _LINKS[page],
            )
        )
    return out


# --------------------------------------------------------------------------- movers


def _mover_items(movers: pl.DataFrame, week: date, role: Role | str) -> list[StoryItem]:
    if movers.is_empty():
        return []
    sig = movers.with_columns(
        sig_prev=pl.col("q_prev").fill_nan(None) < ALPHA,
        sig_4w=pl.col("q_4w").fill_nan(None) < ALPHA,
    ).filter(pl.col("sig_prev").fill_null(False) | pl.col("sig_4w").fill_null(False))
    if sig.is_empty():
        return []
    rows = sig.to_dicts()
    parents = {r["slice"] for r in rows if r["depth"] == 1}
    out = []
    for row in rows:
        parts = str(row["slice"]).split("|")
        if row["depth"] > 1 and any(p in parents for p in parts):
            continue  # told within its parent's sentence
        within = [r for r in rows if r["depth"] > 1 and row["slice"] in r["slice"].split("|")]
        out.append(_mover_item(row, within, week, role))
    return out


def _mover_item(
    row: Mapping[str, Any], within: list[dict[str, Any]], week: date, role: Role | str
) -> StoryItem:
    cur, prev, mean = row["current"], row["previous"], row["mean_4w"]
    q_prev, q_4w = row["q_prev"], row["q_4w"]
    both = _significant(q_prev) and _significant(q_4w)
    base = mean if _significant(q_4w) else prev
    up = base is not None and cur > base
    parts = []
    if mean is not None and q_4w is not None:
        parts.append(
            f"{describe_change(cur, mean, 'count')} on the 4-week mean of {format_mean(mean)} "
            f"({significance(q_4w)})"
        )
    if prev is not None and q_prev is not None:
        parts.append(
            f"{describe_change(cur, prev, 'count')} on the previous week's {format_count(prev)} "
            f"({significance(q_prev)})"
        )
    text = f"{format_slice(str(row['slice']))}: {format_count(cur)} new cases, " + " and ".join(
        parts
    )
    if within:
        best = min(within, key=lambda r: min(_q(r["q_4w"]), _q(r["q_prev"])))
        text += (
            f"; within it {len(within)} narrower slice{'s' if len(within) > 1 else ''} moved "
            f"too, most clearly {format_slice(best['slice'])} ({format_count(best['current'])} "
            f"against a 4-week mean of {format_mean(best['mean_4w'])})"
        )
    notes = []
    if q_4w is not None:
        notes.append(f"{significance_note(q_4w, 'q')} against the 4-week mean")
    if q_prev is not None:
        notes.append(f"{significance_note(q_prev, 'q')} against the previous week")
    cases = {
        "cases.slice": str(row["slice"]),
        "cases.opened_from": week.isoformat(),
        "cases.opened_to": (week + timedelta(days=6)).isoformat(),
    }
    page, params = _link(role, week, ("pages/cases.py", cases), ("pages/trends.py", {}))
    return StoryItem(
        "mover",
        3 if not up else 1 if both else 2,
        max(_strength(q_prev), _strength(q_4w)),
        text + ".",
        "; ".join(notes),
        page,
        params,
        _LINKS[page],
    )


def _q(q: float | None) -> float:
    return 1.0 if q is None or q != q else float(q)


# --------------------------------------------------------------------------- product


#: Where each sentence of the product's story has its evidence, for a role that may go.
_PRODUCT_PAGES = {"surface": "pages/trends.py", "topic": "pages/emerging.py"}


def product_items(
    story: pl.DataFrame, *, week: date, role: Role | str
) -> tuple[tuple[StoryItem, ...], str]:
    """The product brief's story (:func:`analytics.reports.surfaces.surface_story`: its
    rows are already protected and in the order told) as items, each with its link, and
    the sentence of what did not change (``""`` when something did).

    >>> story = pl.DataFrame({"text": ["Payments: Payment fraud rose …", "No surface …"],
    ...     "kind": ["surface", "quiet"], "severity": [1, 3], "q": [0.002, 1.0],
    ...     "note": ["q = 0.002 against the 4-week mean", ""]})
    >>> items, quiet = product_items(story, week=date(2026, 11, 23), role="product")
    >>> [(i.kind, i.severity, i.rank, i.page, i.query) for i in items]
    [('surface', 1, 1, 'pages/reports.py', {'week': '2026-W48'})]
    >>> quiet
    'No surface …'
    """
    items: list[StoryItem] = []
    quiet = ""
    for row in story.to_dicts():
        if row["kind"] == "quiet":
            quiet = str(row["text"])
            continue
        page, params = _link(role, week, (_PRODUCT_PAGES[row["kind"]], {}))
        items.append(
            StoryItem(
                row["kind"],
                int(row["severity"]),
                _strength(row["q"]),
                str(row["text"]),
                str(row["note"]),
                page,
                params,
                "The product brief" if page == _REPORTS else _LINKS[page],
                rank=len(items) + 1,
            )
        )
    return tuple(items), quiet


# --------------------------------------------------------------------------- reading a week


def week_story(
    engine: Engine,
    *,
    week: date,
    role: Role | str,
    filters: Filters | None = None,
    cube: Cube | None = None,
    view: WeeklyView | None = None,
    incidents: pl.DataFrame | None = None,
    surfaces: SurfaceWeek | None = None,
) -> WeekStory:
    """The story of the ISO week holding ``week`` for ``role``.

    ``filters`` narrow the movers, KPIs and topics to their dimensions (their dates are
    replaced by the weeks read), as in the leadership brief; incidents and rings cover all
    data; the product role's story always covers the whole platform. A week still in
    progress says so and is told from what is known; for the product role it is the newest
    complete week instead (the product brief covers complete weeks only).
    ``cube`` (the 12 weeks before the week under ``filters``), ``view``, ``incidents``
    (read for roles that see every number) and ``surfaces`` (the product's) may be passed
    when already computed (the briefs do).
    """
    access.require(role, "suppressed")
    product = not access.allowed(role, "aggregates")
    monday = week - timedelta(days=week.weekday())
    chosen = Filters() if product else replace(filters or Filters(), start=None, end=None)
    if cube is None:
        cube = load.load_cube(engine, _window(chosen, monday))
    preface: list[str] = []
    asked = monday
    if product and cube.as_of is not None and not is_complete(monday, cube.as_of):
        monday = product_week(monday, cube.as_of)
        preface.append(
            f"{format_period(asked)} is still being counted; product numbers cover complete "
            f"weeks only, so this is {format_period(monday)}."
        )
        cube = load.load_cube(engine, _window(chosen, monday))
        view, surfaces = None, None
    in_progress = cube.as_of is not None and not is_complete(monday, cube.as_of)
    if in_progress and cube.as_of is not None:
        preface.append(
            f"{format_period(monday)} is still in progress (data up to "
            f"{format_moment(cube.as_of)}): its numbers are provisional."
        )
    as_of = calendar_week_end(monday, cube.as_of)
    if view is None or view.week != monday:
        view = weekly_view(cube, week=monday)
    quiet = ""
    if product:
        if surfaces is None:
            surfaces = _surfaces(engine, cube, view, as_of=as_of)
        told = surface_story(surfaces.table, surfaces.where, surfaces.topics)
        items, quiet = product_items(told, week=monday, role=role)
    else:
        if incidents is None:
            incidents = recent_incidents(engine, end=as_of.date(), role=READER)
        items = story_items(
            week=monday,
            role=role,
            movers=join_movers(view.movers, top_movers(cube, week=monday, baseline="4w")),
            kpis=view.kpis,
            incidents=incidents,
            topics=emerging_view(engine, chosen, as_of=as_of, role=READER).clusters,
            rings=ring_view(engine, as_of=as_of, role=READER).rings,
            in_progress=in_progress,
        )
    return WeekStory(
        week=monday,
        role=access.role_of(role).value,
        in_progress=in_progress,
        as_of=cube.as_of,
        preface=tuple(preface),
        items=items,
        quiet=quiet,
    )


def _surfaces(engine: Engine, cube: Cube, view: WeeklyView, *, as_of: datetime) -> SurfaceWeek:
    """The product brief's reading of the week by surface, as the brief computes it."""
    monday = view.week
    opened = cube.cases.filter(
        pl.col("opened_at").is_between(midnight(monday), midnight(monday + WEEK), "left")
    ).height
    clusters = emerging_view(engine, Filters(), as_of=as_of, role=READER).clusters
    cells, _ = protect_weeks(category_grid(view))
    return surface_week(cube, cells, monday, topics=product_topics(clusters, week_total=opened))


def _window(filters: Filters, monday: date) -> Filters:
    """The weeks a story reads: :data:`_HISTORY_WEEKS` before the week, to its end."""
    return replace(filters, start=monday - _HISTORY_WEEKS * WEEK, end=monday + timedelta(days=6))

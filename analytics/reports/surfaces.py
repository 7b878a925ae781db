"""The product brief by product surface: where each kind of abuse lives, how often per
exposure, what changed and what to consider fixing.

A surface (:func:`surfaces`) is a part of the product (bookings, reviews, messaging,
payments, accounts and sign-in) with the events that make it up
(:class:`analytics.core.models.EventKind`) and the abuse categories that happen there:
the taxonomy in force says which (:attr:`analytics.core.taxonomy.CategoryDef.surface`;
:data:`SURFACES` are the demo's). Each category is measured per 1,000 of its own
exposure, as on the Weekly trends page (the taxonomy's exposures): reviews posted,
bookings made (payments are taken at booking), messages sent, active accounts. A category
tied to no surface (the demo's ``other``) goes to a group of its own, "Not tied to one
surface"; a surface without categories is left out.

Every number here goes through :mod:`analytics.reports.disclosure`: a category's count is
its cell of the protected category table (:func:`~analytics.reports.disclosure.protect_weeks`,
the same in every brief), a surface's count is the sum of its categories' shown cells and is
hidden when any of them is (:func:`~analytics.reports.disclosure.protect_sums`), a rate is
shown only with its count (exposures are public, so a rate is a count), means and tests use
shown numbers only, a platform or region is named only as
:func:`~analytics.reports.disclosure.top_slice` allows, and an emerging topic by the phrase
the brief's topic table already shows. Significance is in words; the q-values are the
tables' hover text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import plotly.graph_objects as go
import polars as pl

from analytics.access.suppression import SUPPRESSED_TEXT, SUPPRESSION_THRESHOLD
from analytics.core import taxonomy
from analytics.core.calendar import WEEK
from analytics.core.models import EventKind
from analytics.metrics import trends
from analytics.metrics.stats import ALPHA, fdr, poisson_test
from analytics.present import trend_charts
from analytics.present.formatting import (
    format_count,
    format_days,
    format_mean,
    format_relative,
    humanise,
    significance,
    significance_note,
)
from analytics.reports.disclosure import protect_sums, top_slice
from analytics.reports.model import Section, Table
from analytics.sources.frames import Cube

__all__ = [
    "LEVERS",
    "SURFACES",
    "Surface",
    "SurfaceWeek",
    "significance_cell",
    "surface_changes",
    "surface_chart",
    "surface_exposure",
    "surface_sections",
    "surface_story",
    "surface_table",
    "surface_week",
    "surface_weeks",
    "surface_where",
    "surfaces",
    "surfaces_of",
]


@dataclass(frozen=True)
class Surface:
    """A part of the product: its key, its title, the events it is made of and the abuse
    categories that happen on it."""

    key: str
    title: str
    events: tuple[str, ...]
    categories: tuple[str, ...]


_E = EventKind
#: The product surfaces in the brief's order (:data:`analytics.core.taxonomy.SURFACE_KEYS`),
#: their titles and events; the group of categories tied to none comes last.
_PLACES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("bookings", "Bookings", (_E.booking_created, _E.booking_cancelled, _E.no_show)),
    ("reviews", "Reviews", (_E.review_posted,)),
    ("messaging", "Messaging", (_E.message_sent,)),
    ("payments", "Payments", (_E.payment_failed,)),
    ("accounts", "Accounts and sign-in", (_E.signup, _E.login, _E.login_failed)),
)
_ELSEWHERE = ("elsewhere", "Not tied to one surface")
assert tuple(p[0] for p in _PLACES) == taxonomy.SURFACE_KEYS


def surfaces_of(tax: taxonomy.Taxonomy) -> tuple[Surface, ...]:
    """The surfaces of a taxonomy: each with its categories in the taxonomy's order, the
    categories tied to none last ("Not tied to one surface"); surfaces without categories
    are left out.

    >>> tax = taxonomy.Taxonomy((taxonomy.CategoryDef("fraud", surface="payments"),
    ...     taxonomy.CategoryDef("misc")), ("form",), (taxonomy.SeverityDef("p1", 4),))
    >>> [(s.key, s.categories) for s in surfaces_of(tax)]
    [('payments', ('fraud',)), ('elsewhere', ('misc',))]
    """
    where = tax.surface_of
    places = [*_PLACES, (*_ELSEWHERE, ())]
    found = (
        Surface(key, title, events, tuple(c for c in tax.category_names if where[c] == key))
        for key, title, events in places
    )
    loose = tuple(c for c in tax.category_names if where[c] is None)
    return tuple(
        Surface(s.key, s.title, s.events, loose) if s.key == _ELSEWHERE[0] else s
        for s in found
        if s.categories or (s.key == _ELSEWHERE[0] and loose)
    )


#: The demo's product surfaces (the default taxonomy), in the brief's order, each with its
#: categories in the order the brief has always named them.
SURFACES: tuple[Surface, ...] = tuple(
    Surface(s.key, s.title, s.events, order)
    for s, order in zip(
        surfaces_of(taxonomy.DEFAULT_TAXONOMY),
        (
            ("fraudulent_booking", "no_show_abuse"),
            ("fake_review", "review_extortion"),
            (
                "harassment",
                "hate_speech",
                "spam",
                "off_platform_solicitation",
                "health_info_exposure",
            ),
            ("payment_fraud",),
            ("account_takeover", "impersonation", "credential_misrepresentation"),
            ("other",),
        ),
        strict=True,
    )
)
assert [set(s.categories) for s in SURFACES] == [
    set(s.categories) for s in surfaces_of(taxonomy.DEFAULT_TAXONOMY)
]


def surfaces() -> tuple[Surface, ...]:
    """The product surfaces of the taxonomy in force (:func:`analytics.core.taxonomy.active`):
    :data:`SURFACES` for the default one.

    >>> [s.key for s in surfaces()][-1]
    'elsewhere'
    """
    tax = taxonomy.active()
    return SURFACES if tax == taxonomy.DEFAULT_TAXONOMY else surfaces_of(tax)


def _surface_of() -> dict[str, str]:
    return {str(c): s.key for s in surfaces() for c in s.categories}


def _by_key() -> dict[str, Surface]:
    return {s.key: s for s in surfaces()}


#: What a product team could change on its surface when a category rises.
LEVERS: Mapping[str, str] = {
    "fraudulent_booking": "verifying new accounts before their first booking",
    "no_show_abuse": "a deposit or a booking limit for accounts that miss appointments",
    "fake_review": "letting only patients with a completed visit post a review",
    "review_extortion": "a way for providers to flag a review used as a threat, held before "
    "it publishes",
    "harassment": "blocking and reporting from inside the conversation",
    "hate_speech": "screening abusive language before a message is delivered",
    "spam": "limits on first messages from new accounts",
    "off_platform_solicitation": "spotting phone numbers, e-mail addresses and links in messages",
    "health_info_exposure": "a warning before health details are shared in a message",
    "payment_fraud": "stronger checks at checkout (card verification, limits on retries)",
    "account_takeover": "step-up verification when an account signs in from a new device",
    "impersonation": "checks on profile names and photos, and verified badges",
    "credential_misrepresentation": "licence verification for providers",
    "other": "report reasons that fit what is being filed as other",
}


def surface_weeks(cells: pl.DataFrame, exposure: pl.DataFrame) -> pl.DataFrame:
    """Weekly counts and exposures of every surface and of each of its categories.

    ``cells`` are the protected category cells (``week``, ``category``, ``cases``, null
    when hidden; :func:`analytics.reports.disclosure.protect_weeks`); ``exposure`` has
    ``week``, ``category``, ``exposure`` and ``exposure_kind`` (the category's own, from
    :func:`analytics.metrics.trends.weekly_metrics` by category). Returns ``week``,
    ``surface``, ``category`` (null for the whole of a surface of two or more categories),
    ``cases`` (null when hidden: a surface whenever one of its categories is),
    ``exposure``, ``exposure_kind``.

    >>> w = date(2026, 3, 30)
    >>> cells = pl.DataFrame({"week": [w] * 3, "category": ["spam", "harassment", "other"],
    ...                       "cases": [40, 25, None]})
    >>> exposure = cells.select("week", "category", exposure=pl.lit(1000),
    ...                         exposure_kind=pl.lit("messages"))
    >>> out = surface_weeks(cells, exposure).filter(pl.col("category").is_null())
    >>> out.select("surface", "cases", "exposure").rows()  # one row per surface of 2+
    [('messaging', 65, 1000)]
    """
    by_category = cells.join(
        exposure.select("week", "category", "exposure", "exposure_kind"),
        on=["week", "category"],
        how="left",
    ).with_columns(surface=pl.col("category").replace_strict(_surface_of()))
    groups = {s.key: [str(c) for c in s.categories] for s in surfaces() if len(s.categories) > 1}
    sums = protect_sums(cells, groups).rename({"group": "surface"})
    exposed = by_category.group_by("week", "surface").agg(
        pl.col("exposure").first(), pl.col("exposure_kind").first()
    )
    whole = sums.join(exposed, on=["week", "surface"], how="left").with_columns(
        category=pl.lit(None, dtype=pl.String)
    )
    columns = ["week", "surface", "category", "cases", "exposure", "exposure_kind"]
    return (
        pl.concat([whole.select(columns), by_category.select(columns)])
        .with_columns(pl.col("exposure").fill_null(0).cast(pl.Int64))
        .sort("week", "surface", "category", nulls_last=False)
    )


def surface_table(weeks: pl.DataFrame, week: date) -> pl.DataFrame:
    """One row per surface and per category of it for ``week``, every number from shown
    counts only.

    Columns: ``surface``, ``category`` (null: the whole surface), ``exposure_kind``,
    ``this``, ``previous``, ``mean_4w`` (counts; the mean only when all four weeks are
    shown), the rates per 1,000 exposures ``rate``, ``rate_prev``, ``rate_4w`` (each only
    with its counts), ``rel_prev``/``rel_4w`` (relative change of the rate),
    ``p_prev``/``q_prev``/``p_4w``/``q_4w`` (exact Poisson tests of the rates,
    Benjamini-Hochberg across surfaces and, apart, across categories), and the highest
    rate of the four weeks before (``peak_rate``, ``peak_week``).

    >>> w = date(2026, 3, 30)
    >>> weeks = pl.DataFrame({"week": [w - WEEK * k for k in range(5)],
    ...     "surface": "payments", "category": "payment_fraud",
    ...     "cases": [60, 20, 22, 18, 20], "exposure": 1000, "exposure_kind": "bookings"})
    >>> row = surface_table(weeks, w).row(0, named=True)
    >>> row["rate"], row["rate_prev"], row["rate_4w"], row["q_4w"] < 0.05
    (60.0, 20.0, 20.0, True)
    """
    first = week - 4 * WEEK
    keys = ["surface", "category"]
    at = pl.col("week")
    base = at.is_between(first, week - WEEK)
    wide = (
        weeks.filter(at.is_between(first, week))
        .with_columns(weekly_rate=pl.col("cases") / pl.col("exposure") * 1000)
        .group_by(keys)
        .agg(
            pl.col("exposure_kind").drop_nulls().first(),
            this=pl.col("cases").filter(at == week).first(),
            exp=pl.col("exposure").filter(at == week).first(),
            previous=pl.col("cases").filter(at == week - WEEK).first(),
            exp_prev=pl.col("exposure").filter(at == week - WEEK).first(),
            shown=pl.col("cases").filter(base).count(),
            base=pl.col("cases").filter(base).sum(),
            exp_4w=pl.col("exposure").filter(base).sum(),
            peak_rate=pl.col("weekly_rate").filter(base).max(),
            peak_week=pl.col("week")
            .filter(base)
            .sort_by(pl.col("weekly_rate").filter(base), descending=True, nulls_last=True)
            .first(),
        )
        .with_columns(mean_4w=pl.when(pl.col("shown") == 4).then(pl.col("base") / 4))
    )

    def rate(cases: str, exposure: str) -> pl.Expr:
        enough = pl.col(exposure) - pl.col(cases) >= SUPPRESSION_THRESHOLD
        return pl.when(pl.col(cases).is_not_null() & enough).then(
            pl.col(cases) / pl.col(exposure) * 1000
        )

    wide = wide.with_columns(
        rate=rate("this", "exp"),
        rate_prev=rate("previous", "exp_prev"),
        rate_4w=pl.when(pl.col("mean_4w").is_not_null()).then(rate("base", "exp_4w")),
    ).with_columns(
        rel_prev=pl.col("rate") / pl.col("rate_prev") - 1,
        rel_4w=pl.col("rate") / pl.col("rate_4w") - 1,
        peak_week=pl.when(pl.col("rate_4w").is_not_null()).then(pl.col("peak_week")),
        peak_rate=pl.when(pl.col("rate_4w").is_not_null()).then(pl.col("peak_rate")),
    )
    order = {s.key: i for i, s in enumerate(surfaces())}
    wide = wide.sort(
        pl.col("surface").replace_strict(order, return_dtype=pl.Int64),
        pl.col("category").is_not_null(),
        pl.col("this").fill_null(-1),
        "category",
        descending=[False, False, True, False],
    )
    tests = _tests(wide)
    return wide.with_columns(**tests).select(
        *keys, "exposure_kind", "this", "previous", "mean_4w", "rate", "rate_prev", "rate_4w",
        "rel_prev", "rel_4w", *tests, "peak_rate", "peak_week",
    )  # fmt: skip


def _tests(wide: pl.DataFrame) -> dict[str, pl.Series]:
    """Exact Poisson tests of each row's rate against the previous week and the 4-week
    mean, on shown counts only; q-values across surfaces and, apart, across categories."""
    level = wide["category"].is_null().to_numpy()
    out = {}
    for name, ok, x0, t0 in (
        ("prev", wide["rate_prev"], wide["previous"], wide["exp_prev"]),
        ("4w", wide["rate_4w"], wide["base"], wide["exp_4w"]),
    ):
        tested = (wide["rate"].is_not_null() & ok.is_not_null()).to_numpy()
        p = poisson_test(
            wide["this"].fill_null(0), wide["exp"].fill_null(0), x0.fill_null(0), t0.fill_null(0)
        )
        q = np.full(wide.height, np.nan)
        for part in (level, ~level):
            chosen = tested & part
            if chosen.any():
                q[chosen] = fdr(p[chosen])
        out[f"p_{name}"] = pl.Series(np.where(tested, p, np.nan), nan_to_null=True)
        out[f"q_{name}"] = pl.Series(q, nan_to_null=True)
    return out


def surface_changes(table: pl.DataFrame) -> pl.DataFrame:
    """The rows of :func:`surface_table` that changed significantly (q below the
    significance level against the previous week or the 4-week mean), with ``rising``
    (the rate went up against the comparison that was significant) and ``rank`` (the
    smaller q first). Whole surfaces and categories alike.

    >>> table = pl.DataFrame({"surface": ["a", "a"], "category": [None, "x"],
    ...     "rel_prev": [0.1, -0.3], "rel_4w": [0.5, -0.4], "q_prev": [0.4, 0.01],
    ...     "q_4w": [0.01, 0.2]})
    >>> surface_changes(table).select("category", "rising").rows()
    [(None, True), ('x', False)]
    """
    q = pl.min_horizontal(pl.col("q_prev").fill_null(1.0), pl.col("q_4w").fill_null(1.0))
    by_mean = pl.col("q_4w").fill_null(1.0) <= pl.col("q_prev").fill_null(1.0)
    return (
        table.with_columns(best_q=q)
        .filter(pl.col("best_q") < ALPHA)
        .with_columns(
            rising=pl.when(by_mean).then(pl.col("rel_4w") > 0).otherwise(pl.col("rel_prev") > 0)
        )
        .sort("best_q", "surface", "category", nulls_last=False)
    )


# --------------------------------------------------------------------------- words


def _name(row: Mapping[str, Any]) -> str:
    """A row's name: the category, or the whole surface."""
    if row["category"] is None:
        return _by_key()[row["surface"]].title
    return humanise(row["category"])


def _per(row: Mapping[str, Any], value: float | None) -> str:
    return f"{format_mean(value, 1)} per 1,000 {row['exposure_kind']}"


def _changes(row: Mapping[str, Any]) -> str:
    """``up 12.0% on the previous week (not significant) and down 3.1% on the 4-week
    mean (significant)``: the rate's changes, significance in words only."""
    parts = []
    for rel, q, what in (
        ("rel_prev", "q_prev", "the previous week"),
        ("rel_4w", "q_4w", "the 4-week mean"),
    ):
        if row[rel] is None:
            continue
        way = "up" if row[rel] > 0 else "down"
        size = format_relative(abs(row[rel]))[1:]
        parts.append(f"{way} {size} on {what} ({significance(row[q])})")
    return " and ".join(parts) if parts else "not comparable with earlier weeks (hidden then)"


def _overview(row: Mapping[str, Any] | None) -> str:
    """The surface's week in one sentence."""
    if row is None or row["this"] is None:
        return (
            f"This week's count is {SUPPRESSED_TEXT} (one of its categories "
            f"has fewer than {SUPPRESSION_THRESHOLD} cases, or is hidden to protect one); the "
            "table shows what its categories can."
        )
    count = format_count(row["this"])
    return f"This week: {count} cases, {_per(row, row['rate'])}; {_changes(row)}."


def _by_mean(row: Mapping[str, Any]) -> bool:
    """Whether the row's change is told against the 4-week mean (its smaller q-value)
    rather than the previous week."""
    q_4w, q_prev = row["q_4w"], row["q_prev"]
    return (q_4w if q_4w is not None else 1.0) <= (q_prev if q_prev is not None else 1.0)


def _changed(row: Mapping[str, Any]) -> str:
    """What changed: the row's rate against the comparison that was significant."""
    by_mean = _by_mean(row)
    rel = row["rel_4w"] if by_mean else row["rel_prev"]
    base = (
        f"a 4-week mean of {format_mean(row['rate_4w'], 1)}"
        if by_mean
        else f"{format_mean(row['rate_prev'], 1)} the previous week"
    )
    way = "rose" if rel > 0 else "fell"
    return (
        f"{_name(row)} {way} to {_per(row, row['rate'])} from {base} "
        f"({format_relative(rel)}, significant)"
    )


def _consider(row: Mapping[str, Any], where: Mapping[str, str], topics: Sequence[str]) -> str:
    """What changed and what to consider fixing: the rate that moved, where its cases
    are concentrated and the emerging topic behind it, then the lever of the category
    that moved; for a fall, that the earlier level has passed."""
    changed = _changed(row)
    if not row["rising"]:
        peak = row["peak_rate"]
        if _by_mean(row) and peak is not None and row["rate"] is not None and peak > row["rate"]:
            when = format_days(row["peak_week"], row["peak_week"] + WEEK - _DAY)
            return (
                f"{changed}; the mean still holds {format_mean(peak, 1)} of {when}, a level "
                "that has passed: nothing new to fix."
            )
        return f"{changed}: nothing new to fix."
    lead = row["lead"]
    text = changed
    if lead is not None and row["category"] is None:
        text += f", {humanise(lead).lower()} rising the most"
    places = [f"on {humanise(where['platform'])}"] if where.get("platform") else []
    places += [f"in {where['region']}"] if where.get("region") else []
    if places:
        text += f", mostly {' and mostly '.join(places)}"
    quoted = " and ".join(f"“{t}”" for t in topics)
    if topics:
        noun = "topic" if len(topics) == 1 else "topics"
        text += f"; the emerging {noun} {quoted} in the case narratives may be behind it"
    if lead in taxonomy.active().catch_all and topics:
        filed = humanise(str(lead)).lower()
        return text + f". Consider a report reason of its own for {quoted}, today filed as {filed}."
    lever = LEVERS.get(str(lead), "looking at what the cases here have in common")
    return text + f". Consider {lever}."


_DAY = WEEK / 7
#: The most changes the headline tells.
_STORY = 5


def surface_sections(
    table: pl.DataFrame,
    weeks: pl.DataFrame,
    *,
    where: Mapping[str, Mapping[str, str]],
    topics: pl.DataFrame,
) -> tuple[Section, ...]:
    """One section per surface: its week, what changed, what to consider fixing, the
    emerging topics filed under its categories, its table and its categories' rates by
    week (``weeks``: :func:`surface_weeks`).

    ``where`` maps a category to the platform and region :func:`top_slice` lets the brief
    name; ``topics`` are the emerging topics the brief shows (``label``,
    ``top_category``)."""
    changes = surface_changes(table)
    sections = []
    for surface in surfaces():
        rows = table.filter(pl.col("surface") == surface.key)
        whole = rows.filter(pl.col("category").is_null()) if len(surface.categories) > 1 else rows
        head = whole.row(0, named=True) if whole.height else None
        mine = changes.filter(pl.col("surface") == surface.key)
        named = [str(c) for c in surface.categories]
        found = _topics_of(topics, named)
        sentences = [_overview(head), _lives_here(surface, rows)]
        said: set[str] = set()
        for row in _drivers(mine, rows):
            own = found.get(str(row["lead"]), [])
            said.update(own)
            sentences.append(_consider(row, where.get(str(row["lead"]), {}), own))
        if mine.is_empty():
            tested = rows.filter(pl.col("q_prev").is_not_null() | pl.col("q_4w").is_not_null())
            sentences.append(
                f"No significant change here ({tested.height} of "
                f"{rows.height} rates tested against the previous week and the 4-week mean): "
                "nothing new to fix."
            )
        rest = [t for ts in found.values() for t in ts if t not in said]
        if rest:
            sentences.append(
                "Emerging in the case narratives of the last 7 days here: "
                + ", ".join(f"“{t}”" for t in rest)
                + "."
            )
        sections.append(
            Section(
                f"surface_{surface.key}",
                surface.title,
                tuple(sentences),
                (_surface_table(surface, rows),),
                (_category_chart(surface, weeks),),
            )
        )
    return tuple(sections)


def _lives_here(surface: Surface, rows: pl.DataFrame) -> str:
    """The abuse categories of the surface and what they are measured against."""
    names = [humanise(str(c)).lower() for c in surface.categories]
    kinds = rows["exposure_kind"].drop_nulls()
    against = f", each per 1,000 {kinds[0]}" if kinds.len() else ""
    events = ", ".join(humanise(str(e)).lower() for e in surface.events)
    made = f" (events: {events})" if events else ""
    count = len(names)
    listed = names[0] if count == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    noun = "category" if count == 1 else "categories"
    return f"{count} abuse {noun} here{made}: {listed}{against}."


def _drivers(mine: pl.DataFrame, rows: pl.DataFrame) -> list[dict[str, Any]]:
    """The changes to explain: each significant category; when only the whole surface
    moved, the surface, with ``lead`` the category whose rate moved most the same way."""
    categories = mine.filter(pl.col("category").is_not_null())
    if categories.height or mine.is_empty():
        return [{**r, "lead": r["category"]} for r in categories.to_dicts()]
    whole = mine.row(0, named=True)
    column = "rel_4w" if whole["q_4w"] is not None and whole["q_4w"] < ALPHA else "rel_prev"
    sign = 1 if whole["rising"] else -1
    candidates = rows.filter(pl.col("category").is_not_null(), pl.col(column).is_not_null())
    best = candidates.sort(pl.col(column) * sign, "category", descending=[True, False])
    lead = best["category"][0] if best.height and best[column][0] * sign > 0 else None
    return [{**whole, "lead": lead}]


def _topics_of(topics: pl.DataFrame, categories: Sequence[str]) -> dict[str, list[str]]:
    """The emerging topics' phrases by main category, for the categories given."""
    if topics.is_empty() or "top_category" not in topics.columns:
        return {}
    out: dict[str, list[str]] = {}
    for label, category in topics.select("label", "top_category").iter_rows():
        if category in categories:
            out.setdefault(str(category), []).append(str(label))
    return out


def significance_cell(row: Mapping[str, Any]) -> tuple[str, str]:
    """A table row's significance in words (against which comparison) and the q-values
    behind it, for hover text.

    >>> significance_cell({"q_prev": 0.4, "q_4w": 0.002})[0]
    'significant (vs 4-week mean)'
    >>> significance_cell({"q_prev": 0.4, "q_4w": 0.002})[1]
    'q = 0.400 against the previous week; q = 0.002 against the 4-week mean'
    >>> significance_cell({"q_prev": None, "q_4w": None})
    ('not tested', '')
    """
    q_prev, q_4w = row["q_prev"], row["q_4w"]
    flags = [q is not None and q < ALPHA for q in (q_prev, q_4w)]
    word = {
        (True, True): "significant (both)",
        (True, False): "significant (vs previous)",
        (False, True): "significant (vs 4-week mean)",
    }.get((flags[0], flags[1]), significance(None if q_prev is None and q_4w is None else 1.0))
    hover = "; ".join(
        f"{significance_note(q, 'q')} against {what}"
        for q, what in ((q_prev, "the previous week"), (q_4w, "the 4-week mean"))
        if q is not None
    )
    return word, hover


def _surface_table(surface: Surface, rows: pl.DataFrame) -> Table:
    verdicts = [significance_cell(r) for r in rows.to_dicts()]
    kinds = rows["exposure_kind"].drop_nulls()
    per = f"per 1,000 {kinds[0]}" if kinds.len() else "per 1,000 exposures"
    frame = rows.select(
        pl.when(pl.col("category").is_null())
        .then(pl.lit(f"All {surface.title.lower()}"))
        .otherwise(pl.col("category").map_elements(humanise, return_dtype=pl.String))
        .alias("Category"),
        pl.col("this").alias("This week"),
        pl.col("rate").alias("Per 1,000"),
        pl.col("rate_prev").alias("Previous week"),
        pl.col("rate_4w").alias("4-week mean"),
        pl.col("rel_prev").alias("Change vs previous"),
        pl.col("rel_4w").alias("Change vs 4-week mean"),
        pl.Series("Significance", [v[0] for v in verdicts], dtype=pl.String),
        pl.Series("Tests", [v[1] for v in verdicts], dtype=pl.String),
    )
    return Table(
        f"{surface.title}: cases this week and the rate {per}",
        frame,
        {
            "Per 1,000": "mean",
            "Previous week": "mean",
            "4-week mean": "mean",
            "Change vs previous": "rel",
            "Change vs 4-week mean": "rel",
        },
        suppressed=("This week",),
        note=f"Rates {per}, each only where its count is shown; hidden below "
        f"{SUPPRESSION_THRESHOLD} cases or to protect such a count, and a surface whenever "
        "one of its categories is. Exact Poisson tests of the rates, q-values across "
        "surfaces and across categories (on hover).",
        hover={"Significance": "Tests"},
    )


# --------------------------------------------------------------------------- headline


def surface_story(
    table: pl.DataFrame, where: Mapping[str, Mapping[str, str]], topics: pl.DataFrame
) -> pl.DataFrame:
    """The product's story of the week, one row per sentence in the order told: the
    significant changes across surfaces (at most :data:`_STORY`), each with what to
    consider, rises against both baselines first (severity 1), then rises against one (2),
    the emerging topics not already named (2), then falls (3), the smaller q-value first
    within each; then, when no surface changed, a sentence saying so.

    Columns: ``text``, ``kind`` (``surface``, ``topic``, or ``quiet`` for the sentence
    that nothing changed), ``severity``, ``q`` (the smallest q-value behind the sentence)
    and ``note`` (the q-values, for hover text). The Overview shows these rows and the
    product brief's headline opens with them (:mod:`analytics.reports.story`).

    >>> table = pl.DataFrame({"surface": ["payments"], "category": ["payment_fraud"],
    ...     "exposure_kind": ["bookings"], "rate": [60.0], "rate_prev": [20.0],
    ...     "rate_4w": [20.0], "rel_prev": [2.0], "rel_4w": [2.0], "q_prev": [0.001],
    ...     "q_4w": [0.002], "peak_rate": [21.0], "peak_week": [date(2026, 3, 23)]})
    >>> row = surface_story(table, {}, pl.DataFrame()).row(0, named=True)
    >>> row["text"][:78], row["severity"]
    ('Payments: Payment fraud rose to 60.0 per 1,000 bookings from 20.0 the previous', 1)
    >>> row["note"]
    'q = 0.001 against the previous week; q = 0.002 against the 4-week mean'
    """
    changes = surface_changes(table)
    categories = [str(c) for s in surfaces() for c in s.categories]
    found = _topics_of(topics, categories)
    told: list[dict[str, Any]] = []
    for key in changes["surface"].unique(maintain_order=True):
        mine = changes.filter(pl.col("surface") == key)
        for row in _drivers(mine, table.filter(pl.col("surface") == key)):
            own = found.get(str(row["lead"]), [])
            text = _consider(row, where.get(str(row["lead"]), {}), own)
            told.append(
                {"text": f"{_by_key()[key].title}: {text}", "kind": "surface",
                 "severity": _severity(row), "q": _best_q(row),
                 "note": significance_cell(row)[1], "topics": own}
            )  # fmt: skip
    told = sorted(told, key=lambda r: (r["severity"], r["q"]))[:_STORY]
    used = {t for r in told for t in r.pop("topics")}
    rest = [r for r in topics.to_dicts() if r["label"] not in used][:3]
    if rest:
        told.append(_topics_row(rest))
    told.sort(key=lambda r: (r["severity"], r["kind"] != "surface", r["q"]))
    if not any(r["kind"] == "surface" for r in told):
        tested = table.filter(pl.col("q_prev").is_not_null() | pl.col("q_4w").is_not_null())
        text = (
            f"No product surface changed significantly: {tested.height} rates of "
            f"{len(surfaces())} surfaces and their categories tested against the previous week "
            "and the 4-week mean."
        )
        told.append({"text": text, "kind": "quiet", "severity": 3, "q": 1.0, "note": ""})
    schema = {"text": pl.String, "kind": pl.String, "severity": pl.Int64, "q": pl.Float64,
              "note": pl.String}  # fmt: skip
    return pl.DataFrame(told, schema=schema)


def _severity(row: Mapping[str, Any]) -> int:
    """1 for a rate up significantly against both baselines, 2 against one, 3 a fall."""
    if not row["rising"]:
        return 3
    both = all(
        row[q] is not None and row[q] < ALPHA and row[rel] is not None and row[rel] > 0
        for q, rel in (("q_prev", "rel_prev"), ("q_4w", "rel_4w"))
    )
    return 1 if both else 2


def _best_q(row: Mapping[str, Any]) -> float:
    qs = [q for q in (row["q_prev"], row["q_4w"]) if q is not None]
    return float(min(qs)) if qs else 1.0


def _topics_row(rest: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The sentence of the emerging topics no change named, by phrase and main category."""

    def filed(category: str | None) -> str:
        return humanise(category).lower() if category else "none"

    text = (
        "Emerging in the case narratives of the last 7 days: "
        + "; ".join(f"“{r['label']}” (filed mostly as {filed(r['top_category'])})" for r in rest)
        + "."
    )
    tested = [(r["q_value"], r["label"]) for r in rest if r.get("q_value") is not None]
    note = "; ".join(f"{significance_note(q, 'q')} for “{label}”" for q, label in tested)
    q = min((float(q) for q, _ in tested), default=1.0)
    return {"text": text, "kind": "topic", "severity": 2, "q": q, "note": note}


@dataclass(frozen=True)
class SurfaceWeek:
    """What the product brief reads of a week by surface: the surfaces' weekly counts
    (:func:`surface_weeks`), the week's table (:func:`surface_table`), the platform and
    region each category may name (:func:`surface_where`) and the emerging topics the
    brief shows (``label``, ``top_category``, ``q_value``, protected)."""

    weeks: pl.DataFrame
    table: pl.DataFrame
    where: Mapping[str, Mapping[str, str]]
    topics: pl.DataFrame


def surface_week(
    cube: Cube, cells: pl.DataFrame, week: date, *, topics: pl.DataFrame
) -> SurfaceWeek:
    """The :class:`SurfaceWeek` of ``week``: ``cells`` are the protected category cells
    (:func:`analytics.reports.disclosure.protect_weeks`), ``topics`` the protected emerging
    topics (:func:`analytics.reports.signals.product_topics`). Computed once and shared by
    the product brief and its story."""
    weeks = surface_weeks(cells, surface_exposure(cube))
    where = surface_where(cube, week, taxonomy.active().category_names)
    return SurfaceWeek(weeks, surface_table(weeks, week), where, topics)


def surface_where(cube: Cube, week: date, categories: Sequence[str]) -> dict[str, dict[str, str]]:
    """For each category, the platform and region :func:`top_slice` lets the brief name
    (its cases of ``week``)."""
    opened = cube.cases.filter(pl.col("opened_at").dt.truncate("1w").dt.date() == week)
    out: dict[str, dict[str, str]] = {}
    for category in categories:
        mine = opened.filter(pl.col("category").cast(pl.String) == category)
        named = {}
        for column in ("platform", "region"):
            counts = mine.group_by(pl.col(column).cast(pl.String)).agg(cases=pl.len())
            value = top_slice(counts.drop_nulls(column), column)
            if value is not None:
                named[column] = value
        out[category] = named
    return out


def surface_exposure(cube: Cube) -> pl.DataFrame:
    """Each category's weekly exposure (``week``, ``category``, ``exposure``,
    ``exposure_kind``), as the Weekly trends page measures prevalence."""
    return trends.weekly_metrics(cube, by="category").select(
        "week", "category", "exposure", "exposure_kind"
    )


def _category_chart(surface: Surface, weeks: pl.DataFrame) -> go.Figure:
    """The surface's categories per 1,000 exposures by week (shown weeks only)."""
    mine = weeks.filter(pl.col("surface") == surface.key, pl.col("category").is_not_null())
    kinds = mine["exposure_kind"].drop_nulls()
    per = f"per 1,000 {kinds[0]}" if kinds.len() else "per 1,000"
    frame = mine.select(
        "week",
        pl.col("category").map_elements(humanise, return_dtype=pl.String),
        value=pl.when(pl.col("cases").is_not_null() & (pl.col("exposure") > 0)).then(
            pl.col("cases") / pl.col("exposure") * 1000
        ),
    ).sort("week", "category")
    return trend_charts.rate_lines(
        frame,
        title=f"{surface.title}: cases {per} by week (hidden weeks left out)",
        y_title=per,
        unit="per_1000",
        group="category",
    )


def surface_chart(weeks: pl.DataFrame) -> go.Figure:
    """Each surface's cases per 1,000 exposures by week (shown weeks only)."""
    single = [s.key for s in surfaces() if len(s.categories) == 1]
    whole = pl.col("category").is_null() | pl.col("surface").is_in(single)
    frame = (
        weeks.filter(whole)
        .with_columns(
            value=pl.when(pl.col("cases").is_not_null() & (pl.col("exposure") > 0)).then(
                pl.col("cases") / pl.col("exposure") * 1000
            ),
            surface=pl.col("surface").replace_strict({s.key: s.title for s in surfaces()}),
        )
        .select("week", "surface", "value")
        .sort("week")
    )
    return trend_charts.rate_lines(
        frame,
        title="Cases per 1,000 exposures by surface (hidden weeks left out)",
        y_title="per 1,000",
        unit="per_1000",
        group="surface",
    )

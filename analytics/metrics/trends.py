"""Trend metrics: every weekly metric by any dimension, daily volume, backlog by age.

Everything here takes a :class:`analytics.sources.frames.Cube` (or its frames) and returns
Polars frames. Weeks are ISO weeks (Monday to Sunday, UTC, :mod:`analytics.core.calendar`);
a week that ends after the newest record (``cube.as_of``) is *provisional*.

Definitions (per week of opening):

- **new cases**: cases opened, or distinct subjects / reporters (``count=``);
- **prevalence**: cases per 1,000 exposures. Overall and by severity or source: per
  1,000 active accounts; by category: per 1,000 of the category's own exposure
  (declared by the taxonomy, :attr:`analytics.core.taxonomy.Taxonomy.exposure_of`); by
  region, platform or specialty: per 1,000 bookings, reviews and messages in that slice;
- **proactive rate**: violations found by automation (the taxonomy's automated sources,
  the demo's rule and model) / violations;
- **action rate**: violations / resolved cases (``resolved_share`` says how complete);
- **precision** of automated detection: automated cases resolved as a violation /
  automated cases resolved;
- **time to first response** and **to resolution**, median and p90 in hours over the
  cases that have one;
- **SLA breach rate**: first response later than the severity's target (the taxonomy's
  :attr:`~analytics.core.taxonomy.Taxonomy.sla_hours`) /
  cases whose SLA outcome is known (responded, or waiting past the deadline);
- **backlog**: cases open at the end of each week, by age;
- **appeal rate**: appeals / violations; **overturn rate**: overturned / decided appeals;
- **repeat-offender rate**: cases whose subject had a violation resolved before.

The KPI cards with their tests are :mod:`analytics.metrics.kpis`, the top movers
:mod:`analytics.metrics.movers`, and everything the Weekly Trends page shows at once
:mod:`analytics.metrics.weekly`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Literal

import polars as pl

from analytics.core import taxonomy
from analytics.core.calendar import WEEK, weeks_between
from analytics.core.filters import DIMENSIONS
from analytics.metrics.stats import ALPHA, poisson_test
from analytics.sources.frames import VIOLATIONS, Cube

__all__ = [
    "AGE_BUCKETS",
    "COUNT_MODES",
    "EXPOSURE_OF",
    "SLA_HOURS",
    "Count",
    "as_it_stood",
    "backlog",
    "case_flags",
    "category_weekly",
    "counted",
    "daily_volume",
    "duration_weekly",
    "example_cube",
    "prevalence_by_category",
    "sla_weekly",
    "weekly_metrics",
]

Count = Literal["cases", "subjects", "reporters"]
#: How a volume is counted: every case, or distinct accounts.
COUNT_MODES: dict[str, str | None] = {
    "cases": None,
    "subjects": "subject_account_id",
    "reporters": "reporter_account_id",
}
#: First-response SLA per severity, in hours, of the default taxonomy (the metrics use the
#: taxonomy in force, :func:`analytics.core.taxonomy.active`).
SLA_HOURS: dict[str, float] = taxonomy.DEFAULT_TAXONOMY.sla_hours
#: The exposure each category's prevalence is measured against, in the default taxonomy
#: (the metrics use the taxonomy in force).
EXPOSURE_OF: dict[str, str] = taxonomy.DEFAULT_TAXONOMY.exposure_of
_EXPOSURE_LABEL = {
    "review_posted": "reviews",
    "booking_created": "bookings",
    "message_sent": "messages",
    "active_accounts": "active accounts",
    "events": "bookings, reviews and messages",
}
#: Age buckets of open cases (:func:`backlog`), youngest first; the backlog chart draws them so.
AGE_BUCKETS: tuple[str, ...] = ("< 1 day", "1–3 days", "3–7 days", "7–30 days", "> 30 days")
_EVENT_DIMS = ("region", "platform", "specialty")


# --------------------------------------------------------------------------- weeks


def _window_weeks(cube: Cube) -> pl.DataFrame:
    """The weeks of the cube's window that have begun by ``as_of``."""
    lo, hi = cube.filters.window()
    last = hi.date() - timedelta(days=1)
    if cube.as_of is not None:
        last = min(last, cube.as_of.date())
    weeks = weeks_between(lo.date(), last) if last >= lo.date() else []
    return pl.DataFrame({"week": weeks}, schema={"week": pl.Date})


def _provisional(cube: Cube, column: str = "week") -> pl.Expr:
    if cube.as_of is None:
        return pl.lit(False)
    return (pl.col(column).cast(pl.Datetime("us")) + WEEK) > cube.as_of


# --------------------------------------------------------------------------- case flags


def _hours(start: str, end: str | pl.Expr) -> pl.Expr:
    finish = pl.col(end) if isinstance(end, str) else end
    return (finish - pl.col(start)).dt.total_microseconds() / 3.6e9


def _flags(cases: pl.LazyFrame, as_of: datetime | pl.Expr | None) -> pl.LazyFrame:
    """Per-case facts the metrics are sums, counts and percentiles of; ``as_of`` may be
    an expression (each case seen at its own moment, :func:`as_it_stood`)."""
    tax = taxonomy.active()
    sla = (
        pl.col("severity")
        .cast(pl.String)
        .replace_strict(tax.sla_hours, default=None, return_dtype=pl.Float64)
    )
    now = (
        as_of
        if isinstance(as_of, pl.Expr)
        else pl.lit(as_of or datetime.max, dtype=pl.Datetime("us"))
    )
    ttfr = _hours("opened_at", "first_response_at")
    waited = _hours("opened_at", now)
    responded = pl.col("first_response_at").is_not_null()
    return cases.with_columns(
        week=pl.col("opened_at").dt.truncate("1w").dt.date(),
        day=pl.col("opened_at").dt.date(),
        automated=pl.col("source").cast(pl.String).is_in(list(tax.automated)),
        resolved=pl.col("resolved_at").is_not_null(),
        violation=pl.col("resolution").is_in(list(VIOLATIONS)).fill_null(False),
        responded=responded,
        ttfr_h=ttfr,
        ttr_h=_hours("opened_at", "resolved_at"),
        due=responded | (waited > sla),
        breached=pl.when(responded).then(ttfr > sla).otherwise(waited > sla),
        appealed=pl.col("appealed_at").is_not_null(),
        appeal_decided=pl.col("appeal_outcome").is_in(["upheld", "overturned"]).fill_null(False),
        overturned=(pl.col("appeal_outcome") == "overturned").fill_null(False),
    )


def _memo(cube: Cube, key: tuple[object, ...], compute: Callable[[], pl.DataFrame]) -> pl.DataFrame:
    """A frame derived from ``cube``, computed once per cube (frames are immutable)."""
    if key not in cube.memo:
        cube.memo[key] = compute()
    return cube.memo[key]


def case_flags(cube: Cube) -> pl.LazyFrame:
    """The cube's cases with the per-case facts the metrics add up (``week``, ``day``,
    ``automated``, ``violation``, ``breached``, ``ttfr_h``...), computed once."""
    return _memo(cube, ("flags",), lambda: _flags(cube.cases.lazy(), cube.as_of).collect()).lazy()


def counted(count: Count) -> pl.Expr:
    """What a group's volume is: its cases, or its distinct subjects or reporters."""
    if count not in COUNT_MODES:
        raise ValueError(f"count must be one of {', '.join(COUNT_MODES)}, not {count!r}")
    column = COUNT_MODES[count]
    return pl.len() if column is None else pl.col(column).drop_nulls().n_unique()


def _sums(count: Count) -> list[pl.Expr]:
    violation, automated = pl.col("violation"), pl.col("automated")
    return [
        counted(count).cast(pl.Int64).alias("new_cases"),
        pl.len().cast(pl.Int64).alias("cases"),
        pl.col("resolved").sum().alias("resolved"),
        violation.sum().alias("violations"),
        (violation & automated).sum().alias("proactive"),
        (pl.col("resolved") & automated).sum().alias("automated_resolved"),
        (violation & automated).sum().alias("automated_violations"),
        pl.col("responded").sum().alias("responded"),
        pl.col("due").sum().alias("due"),
        pl.col("breached").sum().alias("breached"),
        pl.col("appealed").sum().alias("appealed"),
        pl.col("appeal_decided").sum().alias("appeal_decided"),
        pl.col("overturned").sum().alias("overturned"),
        pl.col("repeat_offender").sum().alias("repeat"),
        pl.col("ttfr_h").median().alias("ttfr_median_h"),
        pl.col("ttfr_h").quantile(0.9, interpolation="linear").alias("ttfr_p90_h"),
        pl.col("ttr_h").median().alias("ttr_median_h"),
        pl.col("ttr_h").quantile(0.9, interpolation="linear").alias("ttr_p90_h"),
    ]


_COUNT_COLUMNS = (
    "new_cases",
    "cases",
    "resolved",
    "violations",
    "proactive",
    "automated_resolved",
    "automated_violations",
    "responded",
    "due",
    "breached",
    "appealed",
    "appeal_decided",
    "overturned",
    "repeat",
)


def _ratio(num: str, den: str) -> pl.Expr:
    return pl.when(pl.col(den) > 0).then(pl.col(num) / pl.col(den)).otherwise(None)


# --------------------------------------------------------------------------- exposure


def _exposure(cube: Cube, by: str | None) -> pl.DataFrame:
    """Weekly exposure (and its label) for the overall series or one dimension."""
    active = cube.active.select("week", pl.col("accounts").alias("exposure"))
    weekly_events = cube.exposure.group_by(
        pl.col("day").dt.truncate("1w").alias("week"), *([by] if by in _EVENT_DIMS else []), "kind"
    ).agg(pl.col("events").sum())
    if by in _EVENT_DIMS:
        return (
            weekly_events.group_by("week", pl.col(by).cast(pl.String))
            .agg(exposure=pl.col("events").sum())
            .with_columns(exposure_kind=pl.lit(_EXPOSURE_LABEL["events"]))
        )
    if by == "category":
        kinds = (
            weekly_events.group_by("week", pl.col("kind").cast(pl.String))
            .agg(exposure=pl.col("events").sum())
            .vstack(
                active.with_columns(kind=pl.lit("active_accounts")).select(
                    "week", "kind", "exposure"
                )
            )
        )
        exposure_of = taxonomy.active().exposure_of
        mapping = pl.DataFrame({"category": list(exposure_of), "kind": list(exposure_of.values())})
        return mapping.join(kinds, on="kind").select(
            "week",
            "category",
            "exposure",
            exposure_kind=pl.col("kind").replace_strict(_EXPOSURE_LABEL),
        )
    return active.with_columns(exposure_kind=pl.lit(_EXPOSURE_LABEL["active_accounts"]))


def _exposure_label(by: str | None) -> pl.Expr:
    """What a slice's prevalence is measured against, also when it had no exposure."""
    if by == "category":
        return (
            pl.col("category")
            .replace_strict(taxonomy.active().exposure_of, default="active_accounts")
            .replace_strict(_EXPOSURE_LABEL)
        )
    return pl.lit(_EXPOSURE_LABEL["events" if by in _EVENT_DIMS else "active_accounts"])


# --------------------------------------------------------------------------- weekly


def weekly_metrics(
    cube: Cube, *, by: str | None = None, count: Count = "cases", age: timedelta | None = None
) -> pl.DataFrame:
    """Every metric per week (and per value of ``by``), weeks without cases included.

    Computed once per cube and remembered. With ``age``, each week as it stood ``age``
    after its Monday (:func:`as_it_stood`: the cases opened, responded to, resolved and
    appealed by then), every week at the same age at once; exposure is the week's own.

    Columns: ``week`` (Monday), ``by`` when given, the counts (``new_cases``, ``cases``,
    ``resolved``, ``violations``, ``proactive``, ``automated_resolved``,
    ``automated_violations``, ``responded``, ``due``, ``breached``, ``appealed``,
    ``appeal_decided``, ``overturned``, ``repeat``), ``exposure``, ``exposure_kind``,
    the rates (``prevalence`` per 1,000, ``proactive_rate``, ``action_rate``,
    ``precision``, ``sla_breach_rate``, ``appeal_rate``, ``overturn_rate``,
    ``repeat_rate``), completeness (``resolved_share``, ``responded_share``), the
    durations in hours (``ttfr_median_h``, ``ttfr_p90_h``, ``ttr_median_h``,
    ``ttr_p90_h``) and ``provisional``.

    >>> cube = example_cube()
    >>> weekly_metrics(cube).select("week", "new_cases", "action_rate", "provisional").rows()
    [(datetime.date(2026, 11, 9), 2, 0.5, False), (datetime.date(2026, 11, 16), 1, None, True)]
    """
    return _memo(
        cube,
        ("weekly", by, count, *([age] if age is not None else [])),
        lambda: _weekly_metrics(cube, by=by, count=count, age=age),
    )


def as_it_stood(cases: pl.LazyFrame, at: pl.Expr) -> pl.LazyFrame:
    """The cases opened by ``at`` as they stood then (``at`` may differ per case):
    responses, resolutions and appeals after it are hidden.

    >>> cases = example_cube().cases.lazy()
    >>> seen = as_it_stood(cases, pl.lit(datetime(2026, 11, 10, 12)))
    >>> seen.select("id", "resolved_at").collect().rows()
    [(1, None)]
    """
    known = pl.col("resolved_at") <= at
    appealed = pl.col("appealed_at") <= at
    return cases.filter(pl.col("opened_at") <= at).with_columns(
        resolved_at=pl.when(known).then(pl.col("resolved_at")),
        resolution=pl.when(known).then(pl.col("resolution")),
        first_response_at=pl.when(pl.col("first_response_at") <= at).then(
            pl.col("first_response_at")
        ),
        appealed_at=pl.when(appealed).then(pl.col("appealed_at")),
        appeal_outcome=pl.when(appealed).then(pl.col("appeal_outcome")),
    )


def _weekly_metrics(
    cube: Cube, *, by: str | None, count: Count, age: timedelta | None = None
) -> pl.DataFrame:
    """The uncached body of :func:`weekly_metrics`."""
    if by is not None and by not in DIMENSIONS:
        raise ValueError(f"by must be one of {', '.join(DIMENSIONS)}, not {by!r}")
    weeks = _window_weeks(cube)
    keys = ["week", *([by] if by else [])]
    flags = case_flags(cube)
    if age is not None:
        at = pl.col("opened_at").dt.truncate("1w") + age
        flags = _flags(as_it_stood(cube.cases.lazy(), at), at)
    flagged = flags.filter(pl.col("week").is_in(weeks["week"].implode()))
    if by:
        flagged = flagged.filter(pl.col(by).is_not_null()).with_columns(pl.col(by).cast(pl.String))
    sums = flagged.group_by(keys).agg(_sums(count)).collect()
    grid = weeks
    if by:
        values = sums.select(pl.col(by).unique().sort())
        grid = weeks.join(values, how="cross")
    exposure = _exposure(cube, by)
    out = (
        grid.join(sums, on=keys, how="left")
        .with_columns(pl.col(c).fill_null(0).cast(pl.Int64) for c in _COUNT_COLUMNS)
        .join(exposure, on=[k for k in keys if k in exposure.columns], how="left")
        .with_columns(
            pl.col("exposure").fill_null(0).cast(pl.Int64),
            pl.col("exposure_kind").fill_null(_exposure_label(by)),
        )
    )
    return out.with_columns(
        prevalence=_ratio("cases", "exposure") * 1000,
        proactive_rate=_ratio("proactive", "violations"),
        action_rate=_ratio("violations", "resolved"),
        precision=_ratio("automated_violations", "automated_resolved"),
        sla_breach_rate=_ratio("breached", "due"),
        appeal_rate=_ratio("appealed", "violations"),
        overturn_rate=_ratio("overturned", "appeal_decided"),
        repeat_rate=_ratio("repeat", "cases"),
        resolved_share=_ratio("resolved", "cases"),
        responded_share=_ratio("responded", "cases"),
        provisional=_provisional(cube),
    ).sort(keys)


def daily_volume(cube: Cube, *, count: Count = "cases") -> pl.DataFrame:
    """New cases per day with a trailing 7-day average; days up to ``as_of``.

    >>> daily_volume(example_cube()).select("day", "value").rows()[:2]
    [(datetime.date(2026, 11, 9), 1.0), (datetime.date(2026, 11, 10), 0.0)]
    """
    weeks = _window_weeks(cube)
    if weeks.is_empty():
        return pl.DataFrame(
            schema={
                "day": pl.Date,
                "value": pl.Float64,
                "avg7": pl.Float64,
                "provisional": pl.Boolean,
            }
        )
    first: date = weeks["week"].min()  # type: ignore[assignment]
    last: date = weeks["week"].max() + timedelta(days=6)  # type: ignore[operator,assignment]
    if cube.as_of is not None:
        last = min(last, cube.as_of.date())
    days = pl.DataFrame({"day": pl.date_range(first, last, "1d", eager=True)})
    counts = (
        case_flags(cube)
        .group_by("day")
        .agg(counted(count).cast(pl.Float64).alias("value"))
        .collect()
    )
    return (
        days.join(counts, on="day", how="left")
        .with_columns(day_week=pl.col("day").dt.truncate("1w"))
        .with_columns(
            pl.col("value").fill_null(0.0),
            avg7=pl.col("value").fill_null(0.0).rolling_mean(7),
            provisional=_provisional(cube, "day_week"),
        )
        .drop("day_week")
    )


def category_weekly(cube: Cube, *, count: Count = "cases") -> pl.DataFrame:
    """New cases per category and week: ``week``, ``category``, ``value``."""
    return weekly_metrics(cube, by="category", count=count).select(
        "week", "category", pl.col("new_cases").cast(pl.Float64).alias("value")
    )


def sla_weekly(cube: Cube) -> pl.DataFrame:
    """SLA breach rate per severity and week: ``week``, ``severity``, ``value``, ``provisional``."""
    return weekly_metrics(cube, by="severity").select(
        "week", "severity", pl.col("sla_breach_rate").alias("value"), "provisional"
    )


def duration_weekly(cube: Cube) -> pl.DataFrame:
    """Median and p90 hours to first response and to resolution, per week (long format)."""
    weekly = weekly_metrics(cube)
    return pl.concat(
        [
            weekly.select(
                "week",
                measure=pl.lit(label),
                median_h=pl.col(f"{key}_median_h"),
                p90_h=pl.col(f"{key}_p90_h"),
            )
            for key, label in (("ttfr", "First response"), ("ttr", "Resolution"))
        ]
    )


def prevalence_by_category(cube: Cube, *, week: date) -> pl.DataFrame:
    """Each category's prevalence in ``week`` and the week before, with a rate test.

    Columns: ``category``, ``exposure`` (label), ``cases``, ``per_1000``,
    ``prev_per_1000``, ``p_value``, ``significant``; sorted by ``per_1000``.
    """
    weekly = weekly_metrics(cube, by="category")
    now = weekly.filter(pl.col("week") == week)
    before = weekly.filter(pl.col("week") == week - WEEK).select(
        "category", prev_cases="cases", prev_exposure="exposure", prev_per_1000="prevalence"
    )
    both = now.join(before, on="category", how="left").with_columns(
        pl.col("prev_cases", "prev_exposure").fill_null(0)
    )
    p = poisson_test(both["cases"], both["exposure"], both["prev_cases"], both["prev_exposure"])
    return both.select(
        "category",
        exposure=pl.col("exposure_kind"),
        cases=pl.col("cases"),
        per_1000=pl.col("prevalence"),
        prev_per_1000=pl.col("prev_per_1000"),
        p_value=pl.Series(p),
        significant=pl.Series(p) < ALPHA,
    ).sort("per_1000", "category", descending=[True, False], nulls_last=True)


# --------------------------------------------------------------------------- backlog


def backlog(cube: Cube) -> pl.DataFrame:
    """Open cases at the end of each week (or at ``as_of`` for the current week), by age.

    Columns: ``week_end`` (the Sunday), ``age_bucket`` (:data:`AGE_BUCKETS`), ``open``.
    """
    return _memo(cube, ("backlog",), lambda: _backlog(cube))


def _backlog(cube: Cube) -> pl.DataFrame:
    weeks = _window_weeks(cube)
    schema = {"week_end": pl.Date, "age_bucket": pl.String, "open": pl.Int64}
    if weeks.is_empty():
        return pl.DataFrame(schema=schema)
    ends = weeks["week"] + WEEK  # Mondays at 00:00: the instant each week ends
    last_end = ends.max()
    as_of = pl.lit(cube.as_of or datetime.max, dtype=pl.Datetime("us"))
    opened = pl.col("opened_at")
    first = opened.dt.truncate("1w").dt.date() + WEEK
    last = (
        pl.when(pl.col("resolved_at").is_null())
        .then(pl.lit(last_end))
        .otherwise(pl.col("resolved_at").dt.truncate("1w").dt.date())
    )
    at = pl.min_horizontal(pl.col("week_end").cast(pl.Datetime("us")), as_of)
    age_days = (at - opened).dt.total_microseconds() / 86_400e6
    bucket = (
        pl.when(age_days < 1)
        .then(pl.lit(AGE_BUCKETS[0]))
        .when(age_days < 3)
        .then(pl.lit(AGE_BUCKETS[1]))
        .when(age_days < 7)
        .then(pl.lit(AGE_BUCKETS[2]))
        .when(age_days < 30)
        .then(pl.lit(AGE_BUCKETS[3]))
        .otherwise(pl.lit(AGE_BUCKETS[4]))
    )
    exploded = (
        cube.cases.lazy()
        .select("opened_at", "resolved_at", first=first, last=last)
        .filter(pl.col("first") <= pl.col("last"))
        .select("opened_at", week_end=pl.date_ranges("first", "last", "1w"))
        .explode("week_end")
        .filter(pl.col("week_end").is_in(ends.implode()))
        .filter(pl.col("week_end").cast(pl.Datetime("us")) <= as_of + WEEK)
        .group_by("week_end", bucket.alias("age_bucket"))
        .agg(open=pl.len().cast(pl.Int64))
        .collect()
    )
    grid = pl.DataFrame({"week_end": ends}).join(
        pl.DataFrame({"age_bucket": list(AGE_BUCKETS)}), how="cross"
    )
    order = {b: i for i, b in enumerate(AGE_BUCKETS)}
    return (
        grid.join(exploded, on=["week_end", "age_bucket"], how="left")
        .with_columns(pl.col("open").fill_null(0), pl.col("week_end") - timedelta(days=1))
        .sort(pl.col("week_end"), pl.col("age_bucket").replace_strict(order))
    )


# --------------------------------------------------------------------------- examples


def example_cube() -> Cube:
    """A three-case cube for the docstring examples of the metrics."""
    from analytics.core.filters import Filters
    from analytics.sources.frames import CASE_COLUMNS, EXPOSURE_COLUMNS, conform, empty_frame

    t = datetime(2026, 11, 10, 9)
    cases = pl.DataFrame(
        {
            "id": [1, 2, 3],
            "opened_at": [t - timedelta(days=1), t + timedelta(days=1), t + WEEK],
            "source": ["user_report", "ml_model", "user_report"],
            "category": ["spam", "spam", "harassment"],
            "severity": ["low", "high", "medium"],
            "region": ["CA", "CA", "NY"],
            "platform": ["web", "web", "ios"],
            "subject_account_id": [10, 11, 10],
            "reporter_account_id": [20, None, 21],
            "first_response_at": [t, t + timedelta(days=1, hours=2), None],
            "resolved_at": [t + timedelta(days=1), t + timedelta(days=2), None],
            "resolution": ["warning", "no_violation", None],
            "repeat_offender": [False, False, True],
        }
    )
    return Cube(
        filters=Filters(start=date(2026, 11, 9), end=date(2026, 11, 22)),
        cases=conform(cases, CASE_COLUMNS),
        exposure=empty_frame(EXPOSURE_COLUMNS),
        active=pl.DataFrame(
            {"week": [date(2026, 11, 9), date(2026, 11, 16)], "accounts": [100, 0]}
        ),
        annotations=pl.DataFrame(),
        as_of=t + WEEK + timedelta(hours=1),
    )

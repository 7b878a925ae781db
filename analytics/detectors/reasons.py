"""The sentence of numbers that explains an alerting point, whichever detector judged it."""

from __future__ import annotations

import polars as pl

__all__ = ["alert_reason"]


def alert_reason() -> pl.Expr:
    """A sentence of numbers for an alerting point, from the columns of
    :meth:`analytics.detectors.estimator.BaseDetector.detect` (``detector``, ``value``,
    ``expected``, ``lower``, ``upper``, ``p_value``, ``stat``, ``limit``)."""
    band = pl.format(
        "{} against {} expected (band {} to {})",
        pl.col("value").round_sig_figs(4),
        pl.col("expected").round_sig_figs(4),
        pl.col("lower").round_sig_figs(4).fill_null("-inf"),
        pl.col("upper").round_sig_figs(4).fill_null("inf"),
    )
    p = pl.format(", p = {}", pl.col("p_value").round_sig_figs(2))
    spike = pl.format(
        "spike {}: ",
        pl.when(pl.col("value") >= pl.col("expected")).then(pl.lit("up")).otherwise(pl.lit("down")),
    )
    shift = pl.format(
        "level shift {}: cumulative deviation {} over its limit {}; ",
        pl.when(pl.col("value") >= pl.col("expected")).then(pl.lit("up")).otherwise(pl.lit("down")),
        pl.col("stat").round_sig_figs(3),
        pl.col("limit").round_sig_figs(3),
    )
    volatility = pl.format(
        "volatility rise: cumulative absolute deviation {} over its limit {}; ",
        pl.col("stat").round_sig_figs(3),
        pl.col("limit").round_sig_figs(3),
    )
    stuck = pl.format(
        "{}: {} points in a row, the longest before {}; ",
        pl.when(pl.col("detector") == "stuck")
        .then(pl.lit("stuck at one value"))
        .otherwise(pl.lit("fall to zero")),
        pl.col("stat").round_sig_figs(3),
        pl.col("limit").round_sig_figs(3),
    )
    way = pl.when(pl.col("stat") >= 0).then(pl.lit("up")).otherwise(pl.lit("down"))
    block = pl.format(
        "hourly mean {}: the hour's mean {} noise scales from its expected {} (limit {}); "
        "last point ",
        way,
        pl.col("stat").abs().round_sig_figs(3),
        pl.col("expected").round_sig_figs(4),
        pl.col("limit").round_sig_figs(3),
    )
    # "level" judges the last hour, "level 4h" the last four hours (levels.level_name).
    span = (
        pl.when(pl.col("detector") == "level")
        .then(pl.lit("hour's"))
        .otherwise(pl.col("detector").str.strip_prefix("level ").str.strip_suffix("h") + " hours'")
    )
    level = pl.format(
        "level shift {}: the last {} median {} noise scales from the median of the "
        "two days before (limit {}); ",
        pl.when(pl.col("value") >= pl.col("expected")).then(pl.lit("up")).otherwise(pl.lit("down")),
        span,
        pl.col("stat").abs().round_sig_figs(3),
        pl.col("limit").round_sig_figs(3),
    )
    high = pl.when(pl.col("value") >= pl.col("expected")).then(pl.lit("high"))
    side = high.otherwise(pl.lit("low"))
    record = pl.format(
        "new {}: beyond the {}est of the recent past by {} of its range (limit {}); ",
        side,
        side,
        pl.col("stat").round_sig_figs(3),
        pl.col("limit").round_sig_figs(3),
    )
    counts = pl.format(
        "count {} beyond its negative-binomial band: ",
        pl.when(pl.col("value") >= pl.col("expected")).then(pl.lit("up")).otherwise(pl.lit("down")),
    )
    head = (
        pl.when(pl.col("detector").is_in(["stuck", "zero"]))
        .then(stuck)
        .when(pl.col("detector") == "shift")
        .then(shift)
        .when(pl.col("detector") == "volatility")
        .then(volatility)
        .when(pl.col("detector") == "block")
        .then(block)
        .when(pl.col("detector").str.starts_with("level"))
        .then(level)
        .when(pl.col("detector") == "counts")
        .then(counts)
        .when(pl.col("detector") == "range")
        .then(record)
        .otherwise(spike)
    )
    return pl.concat_str([head, band, p])

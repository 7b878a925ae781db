"""Emerging-topic replay benchmark: real labelled text streams replayed day by day.

``python -m bench emerging [--csv FILE --labels a,b] [--every N]`` replays a stream the
way Lookout would have seen it: at the end of every day a detector reads the items of
the 90 days before (only ``id``, ``opened_at`` and ``text``; never the labels) and
returns the topics it flags, each with its recent members. The labels, hidden from the
detector, give the ground truth with the rule of
``../shared/benchmarks/text-dev/README.md``:

- for every label value and day, ``recent`` = its items in the last 7 days and
  ``expected`` = its items in the 28 days before those x 7/28;
- the value is *surging* when ``recent >= 8`` and ``(recent + 1) / (expected + 1) >= 3``;
  consecutive surging days form one event whose first day is its onset; the first 35
  days of the stream are warm-up.

What is reported, per stream and detector:

- **recall within 7 days**: the share of surge events with a *matching* flag within 7
  days of their onset (day 0 to day 6), a flag matching when most (more than half) of
  its recent members carry the surging value;
- **median delay**: days from the onset to the first matching flag, over the events
  caught;
- **flags per day**: flagged topics per replayed day;
- **really grew**: the share of flags whose dominant value (for one of the labels, among
  its recent members) grew: its recent count at least 1.5x its expected count that day;
  **chance** is what a flag of random recent items would score (the day's share of
  recent items whose value grew, averaged over days);
- **seconds per call**, median.

Detectors:

- ``lookout``: :func:`analytics.detectors.clusters.find_emerging` with its defaults, run as a
  daily monitor (:class:`Lookout`): it passes back the topics it flagged in the last 14
  days, so a topic still emerging the next day is not flagged again; its flags are the
  topics with ``flagged``.
- ``reference``: plain TF-IDF (English stop words, terms in at least two items) and
  k-means (30 clusters, scikit-learn, seeded) over the window; a cluster is flagged with
  the ground truth's own growth rule applied to its counts (recent >= 8 and
  ``(recent + 1) / (expected + 1) >= 3``, expected from the rest of the window).

Any CSV with ``id``, ``opened_at`` (ISO 8601) and ``text`` columns and one or more label
columns works: ``--csv FILE --labels a,b``. A malformed file is refused in one line
(exit 2); rows without a time or text are left out and counted in a note.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from bench.harness import Table, median

__all__ = [
    "DEFAULT_FOLDER",
    "DETECTORS",
    "STREAMS",
    "StreamError",
    "Lookout",
    "label_days",
    "load",
    "replay",
    "run",
    "score",
    "surges",
]

#: The labelled text streams of text-dev, read in place (never copied).
DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "text-dev"
#: Each default stream and the labels its surges are derived from.
STREAMS: dict[str, tuple[str, ...]] = {
    "crisislex_t26.csv": ("event", "information_type"),
    "comcast_fcc_2015.csv": ("state",),
}
RECENT_DAYS, BEFORE_DAYS, WARM_UP_DAYS = 7, 28, 35
MIN_RECENT, MIN_RATIO, GREW_RATIO, WITHIN_DAYS = 8, 3.0, 1.5, 7
#: Days of history each detector call reads.
HISTORY = timedelta(days=90)
#: Days a stateful detector remembers its flags.
KEPT_DAYS = 14
#: The implicit label every item carries (value ``all``): surges of the whole stream.
STREAM_LABEL = "stream"


class StreamError(ValueError):
    """A stream that cannot be replayed (missing file or columns, no usable rows)."""


@dataclass(frozen=True)
class Stream:
    """A loaded stream: ``items`` (``id`` Int64 row number, ``source_id``, ``opened_at``,
    ``day``, ``text`` and the label columns), its labels, and rows left out."""

    name: str
    items: pl.DataFrame
    labels: tuple[str, ...]
    dropped: int

    @property
    def span(self) -> tuple[date, date]:
        """The first and last day of the stream."""
        days = self.items["day"]
        first, last = days.min(), days.max()
        assert isinstance(first, date) and isinstance(last, date)
        return first, last


def load(path: Path | str, labels: Sequence[str]) -> Stream:
    """Read a CSV stream; raise :class:`StreamError` with one line on bad input.

    >>> import tempfile, os
    >>> f = tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False)
    >>> _ = f.write("id,opened_at,text,kind\\nA,2026-01-01T10:00:00,hello,x\\n"
    ...             "B,,no time,x\\n")
    >>> f.close()
    >>> s = load(f.name, ["kind"])
    >>> s.items.height, s.dropped, s.items["source_id"].to_list()
    (1, 1, ['A'])
    >>> os.unlink(f.name)
    """
    path = Path(path)
    if not path.is_file():
        raise StreamError(f"{path}: no such file")
    if not labels:
        raise StreamError(f"{path}: name at least one label column (--labels a,b)")
    try:
        raw = pl.read_csv(path, infer_schema=False)
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        raise StreamError(f"{path}: not a readable CSV ({str(exc).splitlines()[0][:120]})") from exc
    missing = [c for c in ("id", "opened_at", "text", *labels) if c not in raw.columns]
    if missing:
        raise StreamError(f"{path}: missing column(s) {', '.join(missing)}")
    items = (
        raw.select(
            pl.col("id").alias("source_id"),
            _parse_time(pl.col("opened_at")),
            pl.col("text"),
            *[pl.col(label).fill_null("").alias(label) for label in labels],
        )
        .filter(pl.col("opened_at").is_not_null(), pl.col("text").str.strip_chars() != "")
        .sort("opened_at", maintain_order=True)
        .with_row_index("id")
        .with_columns(
            pl.col("id").cast(pl.Int64),
            day=pl.col("opened_at").dt.date(),
            **{STREAM_LABEL: pl.lit("all")},
        )
    )
    if items.is_empty():
        raise StreamError(f"{path}: no row has both a time and a text")
    return Stream(path.name, items, tuple(labels), raw.height - items.height)


def _parse_time(text: pl.Expr) -> pl.Expr:
    """ISO 8601 times, naive or with ``Z`` or an offset (made naive UTC); null when not.

    >>> pl.select(_parse_time(pl.lit("2013-01-02T03:04:05Z"))).item()
    datetime.datetime(2013, 1, 2, 3, 4, 5)
    """
    text = text.str.strip_chars().str.replace(r"Z$", "+00:00")
    aware = text.str.to_datetime("%Y-%m-%dT%H:%M:%S%z", strict=False, time_zone="UTC")
    return pl.coalesce(
        aware.dt.replace_time_zone(None),
        text.str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False),
        text.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False),
        text.str.to_datetime("%Y-%m-%d", strict=False),
    )


def label_days(stream: Stream, label: str) -> pl.DataFrame:
    """For every value of ``label`` and every day of the stream: ``recent`` (its items in
    the 7 days ending that day), ``expected`` (the 28 days before those x 7/28),
    ``surging`` and ``grew`` (recent at least 1.5x expected).

    >>> items = pl.DataFrame({"day": [date(2026, 1, d) for d in (1, 1, 2)],
    ...                       "kind": ["a", "a", "b"]})
    >>> s = Stream("t", items, ("kind",), 0)
    >>> label_days(s, "kind").filter(pl.col("value") == "a")["recent"].to_list()
    [2, 2]
    """
    first, last = stream.span
    days = pl.date_range(first, last, "1d", eager=True).alias("day")
    counts = stream.items.group_by(pl.col(label).alias("value"), "day").agg(n=pl.len())
    grid = (
        counts.select("value")
        .unique()
        .join(pl.DataFrame(days), how="cross")
        .join(counts, on=["value", "day"], how="left")
        .with_columns(pl.col("n").fill_null(0))
        .sort("value", "day")
    )
    window = pl.col("n").rolling_sum(RECENT_DAYS, min_samples=1).over("value")
    before = pl.col("n").shift(RECENT_DAYS).rolling_sum(BEFORE_DAYS, min_samples=1).over("value")
    return grid.with_columns(
        recent=window.cast(pl.Int64),
        expected=before.fill_null(0) * RECENT_DAYS / BEFORE_DAYS,
    ).with_columns(
        surging=(pl.col("recent") >= MIN_RECENT)
        & ((pl.col("recent") + 1) / (pl.col("expected") + 1) >= MIN_RATIO)
        & (pl.col("day") >= first + timedelta(days=WARM_UP_DAYS)),
        grew=pl.col("recent") >= GREW_RATIO * pl.col("expected"),
    )


def surges(stream: Stream) -> pl.DataFrame:
    """Surge events of every label, and of the whole stream (label ``stream``, value
    ``all``): ``label``, ``value``, ``onset``, ``end``."""
    parts = []
    for label in (*stream.labels, STREAM_LABEL):
        daily = label_days(stream, label).filter(pl.col("value") != "")
        runs = daily.with_columns(
            _run=(pl.col("surging") & ~pl.col("surging").shift(1, fill_value=False))
            .cum_sum()
            .over("value")
        ).filter("surging")
        parts.append(
            runs.group_by("value", "_run")
            .agg(onset=pl.col("day").min(), end=pl.col("day").max())
            .select(pl.lit(label).alias("label"), "value", "onset", "end")
        )
    return pl.concat(parts).sort("onset", "label", "value")


#: A detector: (items of the window: ``id``, ``opened_at``, ``text``; as_of) -> the
#: recent member ids of each flagged topic.
Detector = Callable[[pl.DataFrame, datetime], list[list[int]]]


class Lookout:
    """:func:`analytics.detectors.clusters.find_emerging` and
    :func:`~analytics.detectors.strands.find_strands`
    with their defaults, run as a daily monitor would: it keeps what it flagged in the
    last :data:`KEPT_DAYS` days and passes it back (``flagged_before``), so a topic is
    flagged once, on the first day it emerges, and a strand of it when it is new. A flag
    is a topic or a strand with ``flagged``."""

    def __init__(self) -> None:
        self.earlier = pl.DataFrame(
            schema={"flag": pl.Int64, "case_id": pl.Int64, "flagged_on": pl.Date}
        )
        self.next_flag = 0

    def __call__(self, window: pl.DataFrame, as_of: datetime) -> list[list[int]]:
        from analytics.detectors.clusters import find_emerging
        from analytics.detectors.strands import find_strands

        cases = window.select(
            pl.col("id").alias("case_id"), "opened_at", pl.col("text").alias("description")
        )
        today = (as_of - timedelta(days=1)).date()
        self.earlier = self.earlier.filter(pl.col("flagged_on") > today - timedelta(days=KEPT_DAYS))
        clusters, members = find_emerging(
            cases, as_of=as_of, history=HISTORY, flagged_before=self.earlier
        )
        strands = find_strands(cases, clusters, members, flagged_before=self.earlier)
        recent = members.filter("recent")
        found = [
            recent.filter(pl.col("cluster_id") == c)["case_id"].to_list()
            for c in clusters.filter("flagged")["cluster_id"].to_list()
        ] + strands.filter("flagged")["case_ids"].to_list()
        for ids in found:
            self.earlier = pl.concat(
                [
                    self.earlier,
                    pl.DataFrame(
                        {"flag": self.next_flag, "case_id": ids, "flagged_on": today},
                        schema=self.earlier.schema,
                    ),
                ]
            )
            self.next_flag += 1
        return found


def reference(window: pl.DataFrame, as_of: datetime) -> list[list[int]]:
    """Plain TF-IDF + k-means, flagged by the ground truth's growth rule."""
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = window["text"].to_list()
    if len(texts) < 30:
        return []
    try:
        tfidf = TfidfVectorizer(stop_words="english", min_df=2).fit_transform(texts)
    except ValueError:  # no term in two items
        return []
    k = min(30, len(texts) // 2)
    label = MiniBatchKMeans(n_clusters=k, random_state=0, n_init=3).fit_predict(tfidf)
    recent = (window["opened_at"] >= as_of - timedelta(days=RECENT_DAYS)).to_numpy()
    earlier_days = (HISTORY - timedelta(days=RECENT_DAYS)).days
    out = []
    ids = window["id"].to_numpy()
    for c in range(k):
        mine = label == c
        r, e = int((mine & recent).sum()), int((mine & ~recent).sum())
        expected = e * RECENT_DAYS / earlier_days
        if r >= MIN_RECENT and (r + 1) / (expected + 1) >= MIN_RATIO:
            out.append(ids[mine & recent].tolist())
    return out


#: Each detector's factory: a fresh (possibly stateful) detector for every replay.
DETECTORS: dict[str, Callable[[], Detector]] = {
    "lookout": Lookout,
    "reference": lambda: reference,
}


def replay(
    stream: Stream, detector: Detector, *, every: int = 1
) -> tuple[pl.DataFrame, list[date], list[float]]:
    """Call ``detector`` at the end of every ``every``-th day after warm-up; its flags
    (``day``, ``flag``, ``id`` of each recent member), the days replayed and the seconds
    of each call."""
    items = stream.items
    first, last = stream.span
    rows: list[tuple[date, int, int]] = []
    timings: list[float] = []
    replayed: list[date] = []
    flag = 0
    day = first + timedelta(days=WARM_UP_DAYS)
    while day <= last:
        as_of = datetime.combine(day + timedelta(days=1), datetime.min.time())
        window = items.filter(
            pl.col("opened_at") >= as_of - HISTORY, pl.col("opened_at") < as_of
        ).select("id", "opened_at", "text")
        start = time.perf_counter()
        found = detector(window, as_of) if window.height else []
        timings.append(time.perf_counter() - start)
        replayed.append(day)
        for members in found:
            rows += [(day, flag, int(i)) for i in members]
            flag += 1
        day += timedelta(days=every)
    flags = pl.DataFrame(
        rows, schema={"day": pl.Date, "flag": pl.Int64, "id": pl.Int64}, orient="row"
    )
    return flags, replayed, timings


def score(stream: Stream, flags: pl.DataFrame, *, days: Sequence[date]) -> dict[str, float]:
    """The benchmark's measures for one replay (see the module docstring).

    ``days`` are the replayed days. Keys: ``surges``, ``caught``, ``recall``,
    ``median_delay`` (events of the stream's labels), ``waves``, ``waves_caught``,
    ``wave_delay`` (surges of the whole stream), ``flags``, ``flags_per_day``,
    ``quiet_flags_per_day`` (on days when no value of the first label and not the
    whole stream is surging), ``grew`` and ``chance`` (judged on the first label).
    """
    events = surges(stream)
    flag_days = flags.unique("flag").select("flag", "day")
    n_flags = flag_days.height
    found: dict[str, tuple[int, list[int]]] = {}
    for label in (*stream.labels, STREAM_LABEL):
        dominant = _dominant(stream, flags, label)
        majority = dominant.filter(pl.col("share") > 0.5)
        caught, delays = 0, []
        for event in events.filter(pl.col("label") == label).iter_rows(named=True):
            hits = majority.filter(
                pl.col("value") == event["value"],
                pl.col("day") >= event["onset"],
                pl.col("day") < event["onset"] + timedelta(days=WITHIN_DAYS),
            )
            if hits.height:
                caught += 1
                delays.append((min(hits["day"].to_list()) - event["onset"]).days)
        found[label] = (caught, delays)
    primary = stream.labels[0]
    daily = label_days(stream, primary)
    grew = (
        _dominant(stream, flags, primary)
        .join(daily, on=["value", "day"], how="left")
        .filter(pl.col("grew").fill_null(False))
        .height
    )
    busy = set()
    for event in events.filter(pl.col("label").is_in([primary, STREAM_LABEL])).iter_rows(
        named=True
    ):
        span = (event["end"] - event["onset"]).days
        busy |= {event["onset"] + timedelta(days=d) for d in range(span + 1)}
    quiet = [d for d in days if d not in busy]
    quiet_flags = flag_days.filter(pl.col("day").is_in(quiet)).height
    label_events = events.filter(pl.col("label") != STREAM_LABEL).height
    caught = sum(found[label][0] for label in stream.labels)
    delays = [d for label in stream.labels for d in found[label][1]]
    waves = events.filter(pl.col("label") == STREAM_LABEL).height
    return {
        "surges": float(label_events),
        "caught": float(caught),
        "recall": caught / label_events if label_events else float("nan"),
        "median_delay": float(np.median(delays)) if delays else float("nan"),
        "waves": float(waves),
        "waves_caught": float(found[STREAM_LABEL][0]),
        "wave_delay": float(np.median(found[STREAM_LABEL][1]))
        if found[STREAM_LABEL][1]
        else float("nan"),
        "flags": float(n_flags),
        "flags_per_day": n_flags / len(days) if days else float("nan"),
        "quiet_flags_per_day": quiet_flags / len(quiet) if quiet else float("nan"),
        "grew": grew / n_flags if n_flags else float("nan"),
        "chance": _chance(stream, days=flag_days["day"].unique().to_list()),
    }


def _dominant(stream: Stream, flags: pl.DataFrame, label: str) -> pl.DataFrame:
    """Each flag's day, its dominant ``value`` of ``label`` among its recent members and
    that value's ``share`` of them."""
    values = stream.items.select("id", pl.col(label).alias("value"))
    return (
        flags.join(values, on="id")
        .group_by("flag", "day", "value")
        .agg(n=pl.len())
        .with_columns(share=pl.col("n") / pl.col("n").sum().over("flag"))
        .sort("flag", "n", "value", descending=[False, True, False])
        .group_by("flag", maintain_order=True)
        .first()
    )


def _chance(stream: Stream, *, days: Sequence[date]) -> float:
    """The share of a day's recent items whose value of the first label grew, averaged
    over the days with flags: what a flag of random recent items would score."""
    if not days:
        return float("nan")
    primary = stream.labels[0]
    daily = label_days(stream, primary).select("day", pl.col("value").alias(primary), "grew")
    items = stream.items.select("day", primary).join(daily, on=[primary, "day"], how="left")
    shares = []
    for day in days:
        recent = items.filter(
            pl.col("day") > day - timedelta(days=RECENT_DAYS), pl.col("day") <= day
        )
        if recent.height:
            shares.append(float(recent.select(pl.col("grew").fill_null(False).mean()).item()))
    return float(np.mean(shares)) if shares else float("nan")


def _cell(value: float, fmt: str) -> str:
    return "-" if value != value else format(value, fmt)  # NaN: nothing to measure


def run(
    csv: Sequence[tuple[Path, Sequence[str]]] | None = None,
    *,
    detectors: Sequence[str] = tuple(DETECTORS),
    every: int = 1,
) -> Table:
    """Replay every stream with every detector; one row per (stream, detector)."""
    streams = csv or [(DEFAULT_FOLDER / name, labels) for name, labels in STREAMS.items()]
    table = Table(
        "Emerging topics replayed day by day",
        (
            "stream (labels)",
            "detector",
            "surge events",
            "recall within 7 days",
            "median delay (days)",
            "stream waves caught (delay)",
            "flags per day",
            "on quiet days",
            "really grew",
            "chance",
            "seconds per call",
        ),
    )
    for path, labels in streams:
        stream = load(path, labels)
        if stream.dropped:
            table.notes.append(
                f"{stream.name}: {stream.dropped} rows without a time or text left out."
            )
        for name in detectors:
            flags, days, timings = replay(stream, DETECTORS[name](), every=every)
            r = score(stream, flags, days=days)
            table.add(
                f"{stream.name} ({', '.join(labels)})",
                name,
                int(r["surges"]),
                f"{_cell(r['recall'], '.2f')} ({int(r['caught'])})",
                _cell(r["median_delay"], ".1f"),
                f"{int(r['waves_caught'])} of {int(r['waves'])} "
                f"({_cell(r['wave_delay'], '.0f')} d)",
                _cell(r["flags_per_day"], ".2f"),
                _cell(r["quiet_flags_per_day"], ".2f"),
                _cell(r["grew"], ".0%"),
                _cell(r["chance"], ".0%"),
                f"{median(timings):.2f}",
            )
    table.notes.append(
        "Seconds per call: median over the replayed days (each reads the 90 days before)."
    )
    return table

"""Narrative clustering benchmark: 100,000 case descriptions clustered and scored.

The medium demo holds about 101,000 cases over two years; :func:`find_emerging` runs
over all of them at the end of the demo (history long enough to take every case), in
a fresh process so that its peak memory is its own. Then a day's call as the replay
makes it (topics and their strands): the 15,000 newest cases, over a 90-day history
(longer if they span more).
Targets (issue 16): within 10 s and 2 GB over 100k cases; 0.5 s for the day's call.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timedelta

from bench.harness import Table, peak_rss_mib, run_child


def _child(url: str) -> None:
    from analytics.core import database
    from analytics.core.filters import Filters
    from analytics.detectors import clusters, strands
    from analytics.sources.pushdown import case_texts

    engine = database.make_engine(url)
    cases = case_texts(engine, Filters(), start=datetime(1970, 1, 1), end=datetime(2100, 1, 1))
    first, last = cases["opened_at"].min(), cases["opened_at"].max()
    assert isinstance(first, datetime) and isinstance(last, datetime), "no cases to cluster"
    as_of = last + timedelta(seconds=1)
    history = as_of - first + timedelta(days=1)
    start = time.perf_counter()
    found, members = clusters.find_emerging(cases, as_of=as_of, history=history)
    seconds = time.perf_counter() - start
    newest = cases.sort("opened_at").tail(15_000)
    oldest = newest["opened_at"].min()
    assert isinstance(oldest, datetime)
    day_history = max(timedelta(days=90), as_of - oldest + timedelta(days=1))
    calls = []
    for _ in range(3):
        tick = time.perf_counter()
        day_found, day_members = clusters.find_emerging(newest, as_of=as_of, history=day_history)
        strands.find_strands(newest, day_found, day_members)
        calls.append(time.perf_counter() - tick)
    report = {
        "day_cases": newest.height,
        "day_days": day_history.days,
        "day_seconds": sorted(calls)[1],
        "cases": members.height,
        "clusters": found.height,
        "emerging": int(found["is_emerging"].sum()),
        "seconds": seconds,
        "peak_mib": peak_rss_mib(),
    }
    print(json.dumps(report))


def run(url: str) -> Table:
    """Time :func:`analytics.detectors.clusters.find_emerging` over every case of ``url``."""
    report, wall = run_child("bench.clusters", ["--child", url])
    table = Table(
        f"Narrative clusters: {report['cases']:,} descriptions",
        ("step", "seconds", "peak memory", "note"),
    )
    table.add(
        "find_emerging (scrub, TF-IDF, k-means, new topics, tests, labels)",
        f"{report['seconds']:.1f}",
        f"{report['peak_mib'] / 1024:.2f} GiB",
        f"{report['clusters']} clusters, {report['emerging']} emerging; target 10 s, 2 GB",
    )
    table.add(
        f"a day's call: the {report['day_cases']:,} newest over {report['day_days']} days",
        f"{report['day_seconds']:.2f}",
        "",
        "median of 3 calls; target 0.5 s",
    )
    table.add("whole process (imports, reading the texts)", f"{wall:.1f}", "", "")
    return table


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    _child(sys.argv[2])

"""The ClickHouse warehouse's tables: the DDL that SQLAlchemy's ``create_all`` cannot give.

The warehouse (:mod:`analytics.sources.warehouse`) holds the analytic tables only:
``accounts``, ``events`` and ``cases``, under the names and column names of Lookout's
models (:mod:`analytics.core.models`), so the pushdown queries of
:mod:`analytics.sources.pushdown` run on it unchanged. ClickHouse needs what the
dialect's DDL compiler does not express (``create_all`` fails there), so the DDL is
written here:

- MergeTree tables; ``events`` and ``cases`` ordered by time and partitioned by month
  (``PARTITION BY toYYYYMM(...)``): a date range reads only its months' parts and, inside
  them, only the granules of its times; ``accounts`` (joined by id) is ordered by id;
- what the Parquet snapshot derives is kept at load: each event carries its **target
  account's specialty**, each case its subject's specialty and whether the subject was
  already actioned (``repeat_offender``): the weekly cube reads them without joining
  every event and case to the accounts (the joins took most of its time at 100M events);
- two **projections** of the events, kept by ClickHouse on every insert and merge: the
  exposures per day and dimension (``count()``), and each week's distinct accounts per
  dimension (``uniqExact`` states, which merge exactly across dimensions and days). The
  cube's two event queries bound time by ``toDate(ts)`` and ``toMonday(ts)`` (the same
  rows: its window is whole ISO weeks), so ClickHouse answers them from the projections
  instead of scanning the events;
- ``DateTime64(6, 'UTC')`` for times: Lookout's naive UTC timestamps, to the microsecond
  (a plain ``DateTime`` comes back from Arrow as integers, and has whole seconds only);
- ``LowCardinality(String)`` (or ``LowCardinality(Nullable(String))``, in that order) for
  enumerated columns: dictionary-encoded, so a GROUP BY on them reads small integers;
- a ``text`` skip index (tokens split at every non-letter) on ``lowerUTF8(description)`` for
  full-text search (:func:`analytics.sources.warehouse.search_condition`);
- ``lookout_loads``: one row per load, append-only, so the next load knows the highest
  event id copied and the events rewrite count it copied at.

Personal data that the analytics never read (an account's display name and e-mail) is
not copied: it stays in Lookout's database. Every statement is idempotent
(``IF NOT EXISTS``).

>>> [name for name, _ in TABLES]
['accounts', 'events', 'cases', 'lookout_loads']
>>> "PARTITION BY toYYYYMM(ts)" in dict(TABLES)["events"]
True
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ANALYTIC_TABLES",
    "CLUSTER_SETTINGS",
    "PROJECTIONS",
    "SHARDING",
    "TABLES",
    "TEXT_INDEX",
    "UPGRADES",
    "cluster_statements",
    "create_statements",
]

_ACCOUNTS: Final = """
CREATE TABLE IF NOT EXISTS accounts (
    id Int64,
    kind LowCardinality(String),
    created_at DateTime64(6, 'UTC'),
    region LowCardinality(String),
    specialty LowCardinality(Nullable(String)),
    verified Bool,
    status LowCardinality(String)
) ENGINE = MergeTree
ORDER BY id
"""

#: The events' projections, by name (see the module docstring).
PROJECTIONS: Final = {
    "exposure_by_day": "SELECT toDate(ts), kind, region, platform, specialty, count() "
    "GROUP BY toDate(ts), kind, region, platform, specialty",
    "active_by_week": "SELECT toMonday(ts), region, platform, specialty, uniqExact(account_id) "
    "GROUP BY toMonday(ts), region, platform, specialty",
}

#: The case descriptions' token index: on ``lowerUTF8(description)``, the expression the
#: search's ``hasToken``/``hasAllTokens`` conditions use (ClickHouse uses a skip index only
#: for the very expression it was built on, and only for the bare function, not ``= 1``).
TEXT_INDEX: Final = "lowerUTF8(description) TYPE text(tokenizer = splitByNonAlpha) GRANULARITY 1"

_EVENTS: Final = """
CREATE TABLE IF NOT EXISTS events (
    id Int64,
    ts DateTime64(6, 'UTC'),
    account_id Int64,
    kind LowCardinality(String),
    platform LowCardinality(String),
    region LowCardinality(String),
    device_hash String,
    ip_hash String,
    target_account_id Nullable(Int64),
    rating Nullable(Int16),
    specialty LowCardinality(Nullable(String)),
    PROJECTION exposure_by_day ({exposure_by_day}),
    PROJECTION active_by_week ({active_by_week})
) ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, id)
""".format(**PROJECTIONS)

_CASES: Final = f"""
CREATE TABLE IF NOT EXISTS cases (
    id Int64,
    opened_at DateTime64(6, 'UTC'),
    source LowCardinality(String),
    category LowCardinality(String),
    severity LowCardinality(String),
    status LowCardinality(String),
    region LowCardinality(String),
    platform LowCardinality(String),
    subject_account_id Int64,
    reporter_account_id Nullable(Int64),
    assignee Nullable(String),
    description String,
    first_response_at Nullable(DateTime64(6, 'UTC')),
    resolved_at Nullable(DateTime64(6, 'UTC')),
    resolution LowCardinality(Nullable(String)),
    appealed_at Nullable(DateTime64(6, 'UTC')),
    appeal_outcome LowCardinality(Nullable(String)),
    specialty LowCardinality(Nullable(String)),
    repeat_offender Bool,
    INDEX ix_cases_description {TEXT_INDEX}
) ENGINE = MergeTree
PARTITION BY toYYYYMM(opened_at)
ORDER BY (opened_at, id)
"""

_LOADS: Final = """
CREATE TABLE IF NOT EXISTS lookout_loads (
    loaded_at DateTime64(6, 'UTC'),
    mode LowCardinality(String),
    max_event_id Nullable(Int64),
    events_rewrites Int64,
    events Int64,
    cases Int64,
    accounts Int64
) ENGINE = MergeTree
ORDER BY loaded_at
"""

#: Every table of the warehouse and its CREATE statement, in creation order.
TABLES: Final[tuple[tuple[str, str], ...]] = (
    ("accounts", _ACCOUNTS),
    ("events", _EVENTS),
    ("cases", _CASES),
    ("lookout_loads", _LOADS),
)
#: The tables copied from Lookout's database.
ANALYTIC_TABLES: Final = ("accounts", "events", "cases")


#: Columns added since the first release of these tables, by table: ``ADD COLUMN``
#: statements for a warehouse made before them, and whether the table's rows must then be
#: copied again (an added column is empty in the rows already there).
UPGRADES: Final[tuple[tuple[str, str, str], ...]] = (
    ("events", "specialty", "LowCardinality(Nullable(String))"),
    ("cases", "specialty", "LowCardinality(Nullable(String))"),
    ("cases", "repeat_offender", "Bool"),
)


def create_statements() -> list[str]:
    """The warehouse's DDL, one statement each, stripped.

    >>> create_statements()[0].splitlines()[0]
    'CREATE TABLE IF NOT EXISTS accounts ('
    """
    return [ddl.strip() for _, ddl in TABLES]


#: How each analytic table is spread over the shards: by account, so that an account's
#: events, the cases about it and the account itself live on one shard.
SHARDING: Final = {
    "accounts": "cityHash64(id)",
    "events": "cityHash64(account_id)",
    "cases": "cityHash64(subject_account_id)",
}
#: The settings a sharded warehouse's URL carries (after ``join_use_nulls=1``): a join to
#: a ``Distributed`` table (the Case Explorer's specialty filter joins cases to accounts;
#: the cube joins nothing) sends the joined side to every shard (``GLOBAL JOIN``), correct
#: whatever the sharding.
CLUSTER_SETTINGS: Final = "distributed_product_mode=global"


def cluster_statements(cluster: str, database: str = "lookout") -> list[str]:
    """The DDL of a sharded warehouse, run once on any node: for each analytic table, a
    shard-local ``ReplicatedMergeTree`` table ``<name>_local`` on every node of
    ``cluster`` (the single-node table's columns, order and partitions), and a
    ``Distributed`` table under the table's own name that reads every shard and sends
    each inserted row to the shard :data:`SHARDING` picks. The pushdown queries use the
    table names, so they run unchanged (with :data:`CLUSTER_SETTINGS` in the URL).

    >>> first, second = cluster_statements("lookout3")[3:5]
    >>> print(first.splitlines()[0])
    CREATE TABLE IF NOT EXISTS lookout.events_local ON CLUSTER lookout3 (
    >>> print(first.splitlines()[-3])
    ) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/lookout/events_local', '{replica}')
    >>> print(second)
    CREATE TABLE IF NOT EXISTS lookout.events ON CLUSTER lookout3 AS lookout.events_local \
ENGINE = Distributed(lookout3, lookout, events_local, cityHash64(account_id))
    """
    out = [f"CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {cluster}"]
    for name, ddl in TABLES:
        if name not in ANALYTIC_TABLES:
            continue
        local = f"{name}_local"
        body = ddl.strip().replace(
            f"CREATE TABLE IF NOT EXISTS {name} (",
            f"CREATE TABLE IF NOT EXISTS {database}.{local} ON CLUSTER {cluster} (",
            1,
        )
        body = body.replace(
            ") ENGINE = MergeTree",
            f") ENGINE = ReplicatedMergeTree('/clickhouse/tables/{{shard}}/{database}/{local}', "
            "'{replica}')",
            1,
        )
        out.append(body)
        out.append(
            f"CREATE TABLE IF NOT EXISTS {database}.{name} ON CLUSTER {cluster} AS "
            f"{database}.{local} ENGINE = Distributed({cluster}, {database}, {local}, "
            f"{SHARDING[name]})"
        )
    return out

"""The sharded warehouse's DDL (issue 21, item 3): every analytic table becomes shard-local
ReplicatedMergeTree tables under a Distributed table of the table's own name, sharded by
account, with the single-node table's columns, order and partitions. No current
ClickHouse server runs on this machine (README, "On ClickHouse"): the statements are
checked here against the single-node DDL, and their shard-local part runs on chdb."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from analytics.sources import clickhouse_ddl
from analytics.sources.clickhouse_ddl import ANALYTIC_TABLES, SHARDING, cluster_statements

pytest.importorskip("chdb")


def _columns(ddl: str) -> list[str]:
    body = ddl[ddl.index("(") + 1 : ddl.rindex(") ENGINE")]
    return [line.strip().rstrip(",") for line in body.strip().splitlines()]


def test_each_table_is_sharded_with_its_own_columns() -> None:
    statements = cluster_statements("lookout3", "lookout")
    assert statements[0] == "CREATE DATABASE IF NOT EXISTS lookout ON CLUSTER lookout3"
    single = dict(clickhouse_ddl.TABLES)
    for n, name in enumerate(ANALYTIC_TABLES):
        local, distributed = statements[1 + 2 * n], statements[2 + 2 * n]
        assert local.startswith(
            f"CREATE TABLE IF NOT EXISTS lookout.{name}_local ON CLUSTER lookout3 ("
        )
        assert _columns(local) == _columns(single[name])
        tail = single[name].strip().split("ENGINE = MergeTree", 1)[1]
        assert local.endswith(tail)  # the same partitions and order
        path = f"'/clickhouse/tables/{{shard}}/lookout/{name}_local'"
        assert f"ReplicatedMergeTree({path}, '{{replica}}')" in local
        assert distributed == (
            f"CREATE TABLE IF NOT EXISTS lookout.{name} ON CLUSTER lookout3 AS "
            f"lookout.{name}_local ENGINE = Distributed(lookout3, lookout, {name}_local, "
            f"{SHARDING[name]})"
        )
        key = re.fullmatch(r"cityHash64\((\w+)\)", SHARDING[name])
        assert key and any(c.startswith(f"{key.group(1)} ") for c in _columns(local))


def test_the_shard_local_tables_run_on_clickhouse(chdb_path: Path) -> None:
    from analytics.sources import warehouse

    engine_free = [
        s.replace(" ON CLUSTER lookout3", "").replace(
            re.search(r"ReplicatedMergeTree\([^)]*\)", s).group(0), "MergeTree"
        )
        for s in cluster_statements("lookout3", "lk")[1::2]
    ]
    engine = warehouse.warehouse_engine(f"clickhousedb://?interface=chdb&path={chdb_path}")
    with engine.connect() as conn:
        conn.exec_driver_sql("DROP DATABASE IF EXISTS lk")
        conn.exec_driver_sql("CREATE DATABASE lk")
        for statement in engine_free:
            conn.exec_driver_sql(statement)
        made = conn.exec_driver_sql(
            "SELECT name FROM system.tables WHERE database = 'lk' ORDER BY name"
        ).all()
    assert [r[0] for r in made] == ["accounts_local", "cases_local", "events_local"]

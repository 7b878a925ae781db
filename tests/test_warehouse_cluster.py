"""The sharded warehouse's DDL (issue 21, item 3): every analytic table becomes shard-local
ReplicatedMergeTree tables under a Distributed table of the table's own name, sharded by
account, with the single-node table's columns, order and partitions. No current
ClickHouse server runs on this machine (README, "On ClickHouse"): the statements are
checked here against the single-node DDL, their shard-local part runs on chdb, and the
sharded plan is emulated in one chdb (three shard databases under ``Merge`` tables),
where the cube gives the single node's numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from analytics.sources import clickhouse_ddl
from analytics.sources.clickhouse_ddl import ANALYTIC_TABLES, SHARDING, cluster_statements
from tests.test_warehouse import loaded  # noqa: F401 - the fixture

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


def test_three_shards_give_one_node_s_numbers(loaded) -> None:  # noqa: ANN001, F811
    """The sharded plan, emulated in one chdb: the loaded warehouse's rows split over three
    shard databases by :data:`SHARDING` (the shard-local tables of
    :func:`cluster_statements`, projections included), read through ``Merge`` tables of
    the analytic tables' names. A ``Merge`` table runs the query on every shard's table
    to the mergeable state and merges the states, as a ``Distributed`` table does across
    servers; the cube equals the single node's under every filter set."""
    import uuid

    from analytics.sources import warehouse
    from analytics.sources.load import load_cube
    from tests.test_load import _assert_same
    from tests.test_warehouse import FILTER_SETS

    lookout, one_node = loaded
    tag = uuid.uuid4().hex[:8]
    shards = [f"s{tag}_{i}" for i in range(3)]
    every = f"all_{tag}"
    local = [
        s.replace(" ON CLUSTER lookout3", "").replace(
            re.search(r"ReplicatedMergeTree\([^)]*\)", s).group(0), "MergeTree"
        )
        for s in cluster_statements("lookout3", "SHARD")[1::2]
    ]
    source = one_node.url.query["database"]
    with one_node.connect() as conn:
        client = warehouse._client(conn)
        for i, shard in enumerate(shards):
            client.command(f"CREATE DATABASE {shard}")
            for statement in local:
                client.command(statement.replace("SHARD.", f"{shard}."))
            for name in ANALYTIC_TABLES:
                client.command(
                    f"INSERT INTO {shard}.{name}_local SELECT * FROM {source}.{name} "
                    f"WHERE {SHARDING[name]} % 3 = {i}"
                )
        client.command(f"CREATE DATABASE {every}")
        for name in ANALYTIC_TABLES:
            client.command(
                f"CREATE TABLE {every}.{name} AS {shards[0]}.{name}_local "
                f"ENGINE = Merge(REGEXP('^s{tag}_[0-9]$'), '^{name}_local$')"
            )
        split = {
            name: [client.command(f"SELECT count() FROM {shard}.{name}_local") for shard in shards]
            for name in ANALYTIC_TABLES
        }
    assert all(min(counts) > 0 for counts in split.values())  # every shard holds rows
    sharded = warehouse.warehouse_engine(
        one_node.url.update_query_dict({"database": every}).render_as_string(hide_password=False)
    )
    with pytest.MonkeyPatch.context() as patch:
        for filters in FILTER_SETS:
            patch.setenv(
                "LOOKOUT_WAREHOUSE_URL", one_node.url.render_as_string(hide_password=False)
            )
            single = load_cube(lookout, filters)
            patch.setenv("LOOKOUT_WAREHOUSE_URL", sharded.url.render_as_string(hide_password=False))
            _assert_same(single, load_cube(lookout, filters))

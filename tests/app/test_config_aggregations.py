"""Time-window aggregations declared in the project file: parsed into Aggregation objects,
bad ones named by file and line, and the event group built, written and looked up."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from seeknal_spark import Aggregation, FeatureLookup, HistoricalFeatures
from seeknal_spark.app.config import parse_config
from seeknal_spark.app.project import Project
from seeknal_spark.errors import ConfigurationError

PROJECT = """\
project:
  name: demo
store:
  path: {store}
inputs:
  transactions: {{path: {data}}}
entities:
  customer: {{join_keys: [customer_id]}}
feature_groups:
  customer_txn_windows:
    entity: customer
    event_time_col: ts
    inputs: [transactions]
    aggregations:
      - {{column: amount, function: sum, windows: [1d, 7d, 30d]}}
      - {{column: "*", function: count_events, windows: 7d, name: txn_count_7d}}
"""


def _error(text: str) -> str:
    with pytest.raises(ConfigurationError) as info:
        parse_config(text, "demo.yaml")
    return str(info.value)


def test_aggregations_are_parsed() -> None:
    cfg = parse_config(PROJECT.format(store="/s", data="/d.parquet"), "demo.yaml")
    group = cfg.feature_groups["customer_txn_windows"]
    assert group.transform is None and group.sql is None
    assert group.aggregations == (
        Aggregation("amount", "sum", ["1d", "7d", "30d"]),
        Aggregation("*", "count_events", "7d", name="txn_count_7d"),
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "function: sum,",
            "function: median,",
            "demo.yaml:15: feature_groups.customer_txn_windows.aggregations[0]: "
            "aggregation median(amount): unknown function",
        ),
        ("[1d, 7d, 30d]", "[1d, 7 days]", "aggregations[0]: aggregation sum(amount): window"),
        ("windows: 7d,", "window: 7d,", "demo.yaml:16: feature_groups.customer_txn_windows"),
        (
            "    entity: customer\n",
            "    entity: customer\n    sql: SELECT 1\n    transform: a.b:c\n",
            "give one of transform or sql, not both",
        ),
    ],
)
def test_bad_aggregations_name_file_and_line(old: str, new: str, expected: str) -> None:
    text = PROJECT.format(store="/s", data="/d.parquet").replace(old, new)
    assert expected in _error(text)


def test_empty_aggregations_and_no_transform() -> None:
    base = PROJECT.format(store="/s", data="/d.parquet")
    head = base.split("    aggregations:")[0]
    assert "aggregations: expected a non-empty list" in _error(head + "    aggregations: []\n")
    assert "give exactly one of transform" in _error(head)


def test_project_builds_writes_and_looks_up_an_event_group(
    spark: SparkSession, tmp_path: Path
) -> None:
    data = str(tmp_path / "txns.parquet")
    spark.createDataFrame(
        [
            ("a", datetime(2024, 1, 1), 5.0),
            ("a", datetime(2024, 1, 5), 7.0),
            ("b", datetime(2024, 1, 6), 1.0),
        ],
        "customer_id string, ts timestamp, amount double",
    ).write.parquet(data)
    cfg = parse_config(PROJECT.format(store=tmp_path / "store", data=data), "demo.yaml")
    project = Project.from_config(cfg, spark=spark)
    group = project.feature_group("customer_txn_windows")
    assert group.is_event_group
    assert group.write(datetime(2024, 1, 1), datetime(2024, 2, 1)).rows_written == 3
    hist = HistoricalFeatures([FeatureLookup(group, features=["amount_sum_7d", "txn_count_7d"])])
    spine = spark.createDataFrame(
        [("a", datetime(2024, 1, 8)), ("b", datetime(2024, 1, 13))],
        "customer_id string, prediction_time timestamp",
    )
    rows = {
        r.customer_id: (r.amount_sum_7d, r.txn_count_7d) for r in hist.to_dataframe(spine).collect()
    }
    assert rows == {"a": (7.0, 1), "b": (None, 0)}


def test_a_backfill_does_not_skip_windows_written_under_other_aggregations(
    spark: SparkSession, tmp_path: Path
) -> None:
    """An event group's hash covers its aggregations: changing one under the same version
    is refused at the next backfill instead of the window being skipped as written."""
    from seeknal_spark import Entity, FeatureGroup, FeatureStore
    from seeknal_spark.app.backfill import materialize_group
    from seeknal_spark.errors import VersionConflictError

    store = FeatureStore(str(tmp_path / "store"), spark=spark)
    events = spark.createDataFrame(
        [("a", datetime(2024, 1, 1, 5), 2.0)], "customer_id string, ts timestamp, amount double"
    )

    def group(window: str) -> FeatureGroup:
        return FeatureGroup(
            "txn_windows",
            Entity("customer", ["customer_id"]),
            "ts",
            inputs={"txns": events},
            aggregations=[Aggregation("amount", "sum", window, name="spend")],
            store=store,
        )

    start, end = datetime(2024, 1, 1), datetime(2024, 1, 2)
    assert [r.status for r in materialize_group(group("7d"), start, end)] == ["written"]
    assert [r.status for r in materialize_group(group("7d"), start, end)] == ["skipped"]
    assert group("7d").transform_hash() != group("30d").transform_hash()
    with pytest.raises(VersionConflictError, match="txn_windows"):
        materialize_group(group("30d"), start, end)

"""Feature groups written to versioned Delta tables: modes, versions, validation."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from seeknal_spark import Entity, FeatureGroup, FeatureStore
from seeknal_spark.errors import (
    ColumnTypeError,
    ConfigurationError,
    InvalidNameError,
    MissingColumnError,
    NotFoundError,
    NullValueError,
    SchemaError,
    SeeknalError,
    VersionConflictError,
)
from seeknal_spark.store.feature_store import WRITE_TIME_COL

CUSTOMER = Entity("customer", ["customer_id"])
JAN = [datetime(2024, 1, d) for d in range(1, 8)]


def txns(spark: SparkSession, rows: list[tuple[str, datetime, float]] | None = None) -> DataFrame:
    rows = rows or [
        ("c1", datetime(2024, 1, 1, 9), 10.0),
        ("c1", datetime(2024, 1, 2, 9), 20.0),
        ("c2", datetime(2024, 1, 2, 10), 5.0),
        ("c2", datetime(2024, 1, 4, 10), 7.0),
        ("c3", datetime(2024, 1, 5, 11), 1.5),
    ]
    return spark.createDataFrame(rows, "customer_id string, ts timestamp, amount double")


def daily_spend(txns: DataFrame) -> DataFrame:
    return txns.groupBy("customer_id", F.to_date("ts").alias("day")).agg(
        F.sum("amount").alias("spend"), F.count("*").alias("txn_count")
    )


def make_fg(spark: SparkSession, store: FeatureStore, **kwargs: object) -> FeatureGroup:
    options: dict[str, object] = {
        "inputs": {"txns": txns(spark)},
        "store": store,
        "transform": daily_spend,
    }
    options.update(kwargs)
    return FeatureGroup("daily_spend", CUSTOMER, "day", **options)  # type: ignore[arg-type]


def test_overwrite_of_a_window_is_idempotent(spark: SparkSession, store_path: str) -> None:
    fg = make_fg(spark, FeatureStore(store_path, spark=spark))
    first = fg.write(JAN[0], JAN[6])
    expected = fg.read().collect()
    for _ in range(2):
        again = fg.write(JAN[0], JAN[6])
    assert again.delta_version == first.delta_version + 2
    assertDataFrameEqual(fg.read(), expected)
    assert fg.read().count() == 5
    assert fg.read().schema.fieldNames() == ["customer_id", "day", "spend", "txn_count"]
    assert dict(fg.read().dtypes)["day"] == "timestamp"


def test_overwrite_replaces_exactly_the_window(spark: SparkSession, store_path: str) -> None:
    store = FeatureStore(store_path, spark=spark)
    make_fg(spark, store).write(JAN[0], JAN[6])
    changed = txns(spark, [("c2", datetime(2024, 1, 2, 10), 99.0)])
    fg = make_fg(spark, store, inputs={"txns": changed})
    fg.write(JAN[1], JAN[2])  # only 2024-01-02
    rows = {(r.customer_id, r.day.day): r.spend for r in fg.read().collect()}
    # c1 on the 2nd disappears (not in the new data for that window), c2 replaced, rest kept
    assert rows == {("c1", 1): 10.0, ("c2", 2): 99.0, ("c2", 4): 7.0, ("c3", 5): 1.5}


def test_window_bounds_are_start_inclusive_end_exclusive(
    spark: SparkSession, store_path: str
) -> None:
    fg = make_fg(spark, FeatureStore(store_path, spark=spark))
    fg.write(JAN[1], JAN[3])
    assert sorted(r.day.day for r in fg.read().collect()) == [2, 2]


def test_append_adds_rows(spark: SparkSession, store_path: str) -> None:
    fg = make_fg(spark, FeatureStore(store_path, spark=spark))
    fg.write(JAN[0], JAN[6], mode="append")
    fg.write(JAN[0], JAN[6], mode="append")
    assert fg.read().count() == 10


def test_merge_upserts_on_keys_and_event_time(spark: SparkSession, store_path: str) -> None:
    store = FeatureStore(store_path, spark=spark)
    make_fg(spark, store).write(JAN[0], JAN[6])
    update = txns(
        spark, [("c2", datetime(2024, 1, 2, 10), 50.0), ("c9", datetime(2024, 1, 3), 3.0)]
    )
    fg = make_fg(spark, store, inputs={"txns": update})
    fg.write(JAN[0], JAN[6], mode="merge")
    rows = {(r.customer_id, r.day.day): r.spend for r in fg.read().collect()}
    assert rows == {
        ("c1", 1): 10.0,
        ("c1", 2): 20.0,
        ("c2", 2): 50.0,
        ("c2", 4): 7.0,
        ("c3", 5): 1.5,
        ("c9", 3): 3.0,
    }


def test_time_travel_by_version_and_timestamp(spark: SparkSession, store_path: str) -> None:
    store = FeatureStore(store_path, spark=spark)
    fg = make_fg(spark, store)
    v0 = fg.write(JAN[0], JAN[2])
    snapshot = fg.read().collect()
    history = store.history("daily_spend", "v1")
    committed_at = history[0]["timestamp"]
    fg.write(JAN[2], JAN[6], mode="append")
    assert fg.read().count() == 5
    assertDataFrameEqual(fg.read(as_of_version=v0.delta_version), snapshot)
    assertDataFrameEqual(fg.read(as_of_timestamp=committed_at), snapshot)
    with pytest.raises(NotFoundError, match="daily_spend"):
        fg.read(as_of_version=42)


def test_write_records_commit_metadata(spark: SparkSession, store_path: str) -> None:
    store = FeatureStore(store_path, spark=spark)
    fg = make_fg(spark, store, description="daily spend", owner="ml-team", tags={"team": "growth"})
    fg.write(JAN[0], JAN[6])
    latest = store.history("daily_spend", "v1")[0]
    assert latest["window_start"] == "2024-01-01T00:00:00+00:00"
    assert latest["window_end"] == "2024-01-07T00:00:00+00:00"
    assert latest["version"] == "v1"
    assert latest["mode"] == "overwrite"
    assert latest["transform_hash"] == fg.transform_hash()
    assert latest["schema"] == [
        {"name": "spend", "type": "double"},
        {"name": "txn_count", "type": "long"},
    ]
    description = store.describe("daily_spend")
    assert description["owner"] == "ml-team" and description["tags"] == {"team": "growth"}
    json.dumps(description)


def test_version_conflict_and_override(spark: SparkSession, store_path: str) -> None:
    store = FeatureStore(store_path, spark=spark)
    make_fg(spark, store).write(JAN[0], JAN[6])

    def doubled(txns: DataFrame) -> DataFrame:
        return daily_spend(txns).withColumn("spend", F.col("spend") * 2)

    changed = make_fg(spark, store, transform=doubled)
    with pytest.raises(VersionConflictError, match="version='v2'"):
        changed.write(JAN[0], JAN[6])
    assert make_fg(spark, store).read().count() == 5  # nothing written
    changed.write(JAN[0], JAN[6], version="v2")
    assert store.versions("daily_spend") == ["v1", "v2"]
    changed.write(JAN[0], JAN[6], version="v1", allow_definition_change=True)
    assert store.get_definition("daily_spend", "v1").transform_hash == changed.transform_hash()

    renamed = make_fg(
        spark, store, transform=lambda txns: daily_spend(txns).withColumnRenamed("spend", "total")
    )
    with pytest.raises(VersionConflictError, match="features"):
        renamed.write(JAN[0], JAN[6], version="v2")


def test_declared_features_and_sql_transform(spark: SparkSession, store_path: str) -> None:
    sql = """
        SELECT customer_id, to_date(ts) AS day, CAST(sum(amount) AS double) AS spend
        FROM {txns} WHERE ts >= :window_start AND ts < :window_end GROUP BY 1, 2
    """
    fg = make_fg(
        spark,
        FeatureStore(store_path, spark=spark),
        transform=sql,
        features={"spend": "double"},
        ttl=timedelta(days=7),
    )
    fg.write(date(2024, 1, 2), date(2024, 1, 5))
    assert sorted((r.customer_id, r.spend) for r in fg.read().collect()) == [
        ("c1", 20.0),
        ("c2", 5.0),
        ("c2", 7.0),
    ]
    definition = fg.store.get_definition("daily_spend", "v1")  # type: ignore[union-attr]
    assert definition.ttl == timedelta(days=7)
    assert [str(f) for f in definition.features] == ["spend: double"]


def test_hidden_write_time_breaks_ties_between_writes(spark: SparkSession, store_path: str) -> None:
    fg = make_fg(spark, FeatureStore(store_path, spark=spark))
    fg.write(JAN[0], JAN[6], mode="append")
    fg.write(JAN[0], JAN[6], mode="append")
    stamps = fg.read(include_metadata=True).select(WRITE_TIME_COL).distinct().count()
    assert stamps == 2


@pytest.mark.parametrize(
    ("transform", "features", "error", "column"),
    [
        (
            lambda txns: daily_spend(txns).drop("customer_id"),
            None,
            MissingColumnError,
            "customer_id",
        ),
        (lambda txns: daily_spend(txns).drop("day"), None, MissingColumnError, "day"),
        (
            lambda txns: daily_spend(txns).withColumn("day", F.lit("x")),
            None,
            ColumnTypeError,
            "day",
        ),
        (daily_spend, {"spend": "int"}, ColumnTypeError, "spend"),
        (daily_spend, {"spend_7d": "double"}, MissingColumnError, "spend_7d"),
        (
            lambda txns: daily_spend(txns).select(
                "customer_id", "day", "spend", F.col("txn_count").alias("SPEND")
            ),
            None,
            SchemaError,
            "spend",
        ),
        (lambda txns: daily_spend(txns).select("customer_id", "day"), None, SchemaError, "feature"),
    ],
)
def test_bad_output_is_rejected_before_writing(
    spark: SparkSession,
    store_path: str,
    transform: object,
    features: dict[str, str] | None,
    error: type[Exception],
    column: str,
) -> None:
    store = FeatureStore(store_path, spark=spark)
    fg = make_fg(spark, store, transform=transform, features=features)
    with pytest.raises(error, match=column):
        fg.write(JAN[0], JAN[6])
    assert not store.table_exists("daily_spend", "v1")
    assert store.list_feature_groups() == []


@pytest.mark.parametrize("column", ["customer_id", "day"])
def test_null_keys_or_event_times_write_nothing(
    spark: SparkSession, store_path: str, column: str
) -> None:
    store = FeatureStore(store_path, spark=spark)
    make_fg(spark, store).write(JAN[0], JAN[6])
    before = store.current_table_version("daily_spend", "v1")

    def with_nulls(txns: DataFrame) -> DataFrame:
        out = daily_spend(txns)
        return out.withColumn(column, F.when(F.col("spend") > 6, F.col(column)))

    with pytest.raises(NullValueError, match=column):
        make_fg(spark, store, transform=with_nulls).write(
            JAN[0], JAN[6], allow_definition_change=True
        )
    assert store.current_table_version("daily_spend", "v1") == before
    assert make_fg(spark, store).read().count() == 5


@pytest.mark.parametrize(
    "build",
    [
        lambda: FeatureGroup("bad-name", CUSTOMER, "day", daily_spend),
        lambda: FeatureGroup("ok", CUSTOMER, "day; DROP", daily_spend),
        lambda: FeatureGroup("ok", CUSTOMER, "day", daily_spend, features={"a b": "double"}),
        lambda: Entity("customer", ["id/../x"]),
        lambda: FeatureStore(catalog="main.x-y"),
    ],
)
def test_bad_names_are_rejected(build: object) -> None:
    with pytest.raises(InvalidNameError, match="letters, digits and underscores"):
        build()  # type: ignore[operator]


def test_bad_version_name_and_arguments(spark: SparkSession, store_path: str) -> None:
    fg = make_fg(spark, FeatureStore(store_path, spark=spark))
    with pytest.raises(InvalidNameError, match="version"):
        fg.write(JAN[0], version="../v1")
    with pytest.raises(ValueError, match="feature_end_time"):
        fg.write(JAN[3], JAN[1])
    with pytest.raises(ValueError, match="mode"):
        fg.write(JAN[0], mode="upsert")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl"):
        FeatureGroup("x", CUSTOMER, "day", daily_spend, ttl=timedelta(days=-1))
    with pytest.raises(ConfigurationError, match="store"):
        FeatureGroup("x", CUSTOMER, "day", daily_spend).write(JAN[0])
    with pytest.raises(ConfigurationError, match="clashes"):
        FeatureGroup("x", CUSTOMER, "day", daily_spend, features={"customer_id": "string"})
    assert issubclass(InvalidNameError, SeeknalError)


def test_transform_hash_tracks_logic() -> None:
    a = FeatureGroup("a", CUSTOMER, "day", "SELECT 1 AS x FROM {t}")
    b = FeatureGroup("b", CUSTOMER, "day", "SELECT  1 AS x\nFROM {t}")
    c = FeatureGroup("c", CUSTOMER, "day", "SELECT 2 AS x FROM {t}")
    assert a.transform_hash() == b.transform_hash() != c.transform_hash()


def test_transform_receives_window_and_spark(spark: SparkSession, store_path: str) -> None:
    seen: dict[str, object] = {}

    def windowed(txns: DataFrame, spark: SparkSession, window_start: datetime) -> DataFrame:
        seen["spark"] = spark
        seen["start"] = window_start
        return daily_spend(txns)

    make_fg(spark, FeatureStore(store_path, spark=spark), transform=windowed).write(JAN[2])
    assert seen["spark"] is spark
    assert seen["start"] == datetime.fromisoformat("2024-01-03T00:00:00+00:00")


def test_input_function_reads_only_the_windows_partitions(
    spark: SparkSession, store_path: str, tmp_path: Path
) -> None:
    raw = str(tmp_path / "raw")
    txns(spark).withColumn("day", F.to_date("ts").cast("string")).write.partitionBy("day").parquet(
        raw
    )
    calls: list[tuple[datetime, datetime | None]] = []

    def by_day(
        spark: SparkSession, window_start: datetime, window_end: datetime | None
    ) -> DataFrame:
        calls.append((window_start, window_end))
        assert window_end is not None
        days = [
            window_start.date() + timedelta(days=i)
            for i in range(window_end.day - window_start.day)
        ]
        folders = [f"{raw}/day={d}" for d in days if (Path(raw) / f"day={d}").exists()]
        return spark.read.option("basePath", raw).parquet(*folders).drop("day")

    fg = make_fg(spark, FeatureStore(store_path, spark=spark), inputs={"txns": by_day})
    fg.write(JAN[1], JAN[3])
    fg.write(JAN[3], JAN[5])
    utc = [datetime.fromisoformat(f"2024-01-0{d}T00:00:00+00:00") for d in (2, 4, 6)]
    assert calls == [(utc[0], utc[1]), (utc[1], utc[2])]
    stored = fg.read().select("customer_id", "day", "spend")
    expected = spark.createDataFrame(
        [
            ("c1", datetime(2024, 1, 2), 20.0),
            ("c2", datetime(2024, 1, 2), 5.0),
            ("c2", datetime(2024, 1, 4), 7.0),
            ("c3", datetime(2024, 1, 5), 1.5),
        ],
        "customer_id string, day timestamp, spend double",
    )
    assertDataFrameEqual(stored, expected)


def test_concurrent_writes_of_different_windows_both_land(
    spark: SparkSession, store_path: str
) -> None:
    """Two backfills of one group at once: Delta's optimistic concurrency plus retries."""
    from concurrent.futures import ThreadPoolExecutor

    store = FeatureStore(store_path, spark=spark)
    fg = make_fg(spark, store)
    make_fg(spark, store).write(JAN[0], JAN[1])  # the table exists; windows below are disjoint
    windows = [(JAN[1], JAN[3]), (JAN[3], JAN[6])]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda w: fg.write(w[0], w[1]), windows))
    assert sorted(r.delta_version for r in results) == [1, 2]
    assert fg.read().count() == 5
    windows_written = {h.get("window_start") for h in store.history("daily_spend", "v1")}
    assert {"2024-01-02T00:00:00+00:00", "2024-01-04T00:00:00+00:00"} <= windows_written

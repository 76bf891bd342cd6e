"""Issue 15 items 2, 4, 5, 6, 7 and the exact commit version: typed errors, nothing written;
writes of no rows are counted and logged."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seeknal_spark import Entity, FeatureGroup, FeatureStore
from seeknal_spark.errors import (
    ConfigurationError,
    EmptyWindowError,
    NotFoundError,
    SchemaError,
    SeeknalError,
    TransformError,
)

CUSTOMER = Entity("customer", ["customer_id"])
T0, T1 = datetime(2024, 1, 1), datetime(2024, 1, 3)


def spend(txns: DataFrame) -> DataFrame:
    return txns.select("customer_id", F.col("ts").alias("day"), "amount")


def txns(spark: SparkSession, empty: bool = False) -> DataFrame:
    rows = [] if empty else [("c1", datetime(2024, 1, 1, 9), 10.0)]
    return spark.createDataFrame(rows, "customer_id string, ts timestamp, amount double")


def group(store: FeatureStore, frame: DataFrame, **kwargs: object) -> FeatureGroup:
    return FeatureGroup(
        "spend", CUSTOMER, "day", spend, inputs={"txns": frame}, store=store, **kwargs
    )  # type: ignore[arg-type]


def test_an_empty_rerun_of_a_written_window_is_refused(
    spark: SparkSession, store_path: str
) -> None:
    store = FeatureStore(store_path, spark=spark)
    group(store, txns(spark)).write(T0, T1)
    before = store.current_table_version("spend", "v1")
    empty = group(store, txns(spark, empty=True))
    with pytest.raises(EmptyWindowError, match="allow_empty=True") as info:
        empty.write(T0, T1)
    assert isinstance(info.value, SchemaError) and "spend" in str(info.value)
    assert store.current_table_version("spend", "v1") == before
    empty.write(T0, T1, allow_empty=True)
    assert empty.read().count() == 0


@pytest.mark.parametrize("mode", ["append", "merge", "overwrite"])
def test_writes_count_their_rows_and_log_an_empty_one(
    spark: SparkSession, store_path: str, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = FeatureStore(store_path, spark=spark)
    two = spark.createDataFrame(
        [("c1", datetime(2024, 1, 1, 9), 10.0), ("c2", datetime(2024, 1, 2, 9), 5.0)],
        "customer_id string, ts timestamp, amount double",
    )
    assert group(store, two).write(T0, T1).rows_written == 2
    caplog.set_level(logging.INFO, logger="seeknal_spark.store.feature_group")
    again = group(store, txns(spark)).write(T0, T1, mode=mode)  # type: ignore[arg-type]
    assert again.rows_written == 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    empty = group(store, txns(spark, empty=True))
    result = empty.write(T0, T1, mode=mode, allow_empty=True)  # type: ignore[arg-type]
    assert result.rows_written == 0
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "wrote 0 rows to spend/v1" in warned[0], warned
    assert f"mode={mode}" in warned[0] and "no rows" in warned[0]
    expected = {"append": 3, "merge": 2, "overwrite": 0}[mode]
    assert store.read_table("spend", "v1").count() == expected


def test_a_forever_ttl_is_no_limit(spark: SparkSession, store_path: str) -> None:
    store = FeatureStore(store_path, spark=spark)
    for ttl in (timedelta.max, timedelta(days=999_999_999)):
        fg = group(store, txns(spark), ttl=ttl)
        assert fg.ttl is None
    fg.write(T0, T1)
    assert store.describe("spend")["ttl_seconds"] is None


def test_a_store_path_that_is_a_file_is_refused_before_writing(
    spark: SparkSession, tmp_path: Path
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    store = FeatureStore(str(blocker / "store"), spark=spark)
    with pytest.raises(ConfigurationError, match="a_file"):
        group(store, txns(spark)).write(T0, T1)


def test_a_missing_input_path_names_the_input_and_the_group(
    spark: SparkSession, store_path: str, tmp_path: Path
) -> None:
    store = FeatureStore(store_path, spark=spark)
    missing = str(tmp_path / "no_such_input.parquet")
    fg = group(store, txns(spark))
    fg.inputs["txns"] = missing
    with pytest.raises(NotFoundError, match="no_such_input") as info:
        fg.write(T0, T1)
    assert "'spend'" in str(info.value) and "'txns'" in str(info.value)
    assert not store.table_exists("spend", "v1")


def test_a_udf_failure_names_the_feature_group(spark: SparkSession, store_path: str) -> None:
    @F.udf("double")
    def explode(amount: float) -> float:
        raise ZeroDivisionError("bad amount")

    def failing(txns: DataFrame) -> DataFrame:
        return spend(txns).withColumn("amount", explode("amount"))

    store = FeatureStore(store_path, spark=spark)
    fg = FeatureGroup("spend", CUSTOMER, "day", failing, inputs={"txns": txns(spark)}, store=store)
    with pytest.raises(TransformError, match="'spend'") as info:
        fg.write(T0, T1)
    assert isinstance(info.value, SeeknalError)
    assert "ZeroDivisionError" in str(info.value) and info.value.__cause__ is not None
    assert not store.table_exists("spend", "v1")


def test_the_commit_version_is_exact_or_an_error(spark: SparkSession, store_path: str) -> None:
    store = FeatureStore(store_path, spark=spark)
    first = group(store, txns(spark)).write(T0, T1)
    second = group(store, txns(spark)).write(T0, T1, mode="append")
    assert (first.delta_version, second.delta_version) == (0, 1)
    entry = store.history("spend", "v1")[-1]
    assert store.commit_version("spend", "v1", entry["write_id"]) == 0
    with pytest.raises(NotFoundError, match="unknown-write"):
        store.commit_version("spend", "v1", "unknown-write")


def test_latest_version_is_the_one_default(spark: SparkSession, store_path: str) -> None:
    store = FeatureStore(store_path, spark=spark)
    with pytest.raises(NotFoundError, match="'spend'"):
        store.latest_version("spend")
    group(store, txns(spark)).write(T0, T1, version="v1")
    group(store, txns(spark)).write(T0, T1, version="v2")
    assert store.latest_version("spend") == "v2"

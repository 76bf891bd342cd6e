"""The store: registry round trip, listing, history, table (metastore) mode, sessions."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seeknal_spark import Entity, FeatureGroup, FeatureStore
from seeknal_spark.errors import ConfigurationError, NotFoundError
from seeknal_spark.session import get_spark


def profile(customers: DataFrame) -> DataFrame:
    return customers.select(
        "customer_id", F.col("updated").alias("as_of"), "segment", F.col("age").cast("int")
    )


def customers(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(
        [("c1", datetime(2024, 1, 1), "gold", 31), ("c2", datetime(2024, 1, 2), "basic", 45)],
        "customer_id string, updated timestamp, segment string, age long",
    )


def test_registry_round_trip(spark: SparkSession, store_path: str) -> None:
    store = FeatureStore(store_path, spark=spark)
    fg = store.register(
        FeatureGroup(
            "profile",
            Entity("customer", ["customer_id"]),
            "as_of",
            profile,
            ttl=timedelta(days=30),
            inputs={"txns_unused": customers(spark), "customers": customers(spark)},
            description="customer profile",
            owner="crm",
            tags={"pii": "no"},
        )
    )
    assert fg.store is store
    fg.write(datetime(2024, 1, 1))
    reopened = FeatureStore(store_path, spark=spark)
    [definition] = reopened.list_feature_groups()
    assert definition == reopened.get_definition("profile", "v1")
    assert definition.join_keys == ("customer_id",)
    assert definition.event_time_col == "as_of"
    assert definition.feature_names == ["segment", "age"]
    assert definition.ttl == timedelta(days=30)
    assert (definition.description, definition.owner, dict(definition.tags)) == (
        "customer profile",
        "crm",
        {"pii": "no"},
    )
    assert definition.transform_hash == fg.transform_hash()
    with pytest.raises(NotFoundError, match="v9"):
        reopened.get_definition("profile", "v9")
    with pytest.raises(NotFoundError, match="nothing_here"):
        reopened.get_definition("nothing_here", "v1")
    history = reopened.history("profile", "v1")
    assert [h["delta_version"] for h in history] == [0]


def test_catalog_table_mode(spark: SparkSession) -> None:
    spark.sql("CREATE DATABASE IF NOT EXISTS seeknal_test")
    store = FeatureStore(catalog="seeknal_test", spark=spark)
    fg = FeatureGroup(
        "profile",
        Entity("customer", ["customer_id"]),
        "as_of",
        profile,
        inputs={"customers": customers(spark)},
        store=store,
    )
    fg.write(datetime(2024, 1, 1), datetime(2024, 1, 2))
    fg.write(datetime(2024, 1, 2), datetime(2024, 1, 3))
    fg.write(datetime(2024, 1, 1), datetime(2024, 1, 2))
    assert store.table_location("profile", "v1") == "seeknal_test.fg_7_profile_v1"
    assert spark.catalog.tableExists("seeknal_test.fg_7_profile_v1")
    assert fg.read().count() == 2
    assert fg.read(as_of_version=0).count() == 1
    assert [d.name for d in store.list_feature_groups()] == ["profile"]
    assert store.history("profile", "v1")[0]["window_start"].startswith("2024-01-01")
    spark.sql("DROP DATABASE seeknal_test CASCADE")


def test_store_arguments() -> None:
    with pytest.raises(ConfigurationError, match="exactly one"):
        FeatureStore()
    with pytest.raises(ConfigurationError, match="exactly one"):
        FeatureStore("/tmp/x", catalog="main.features")
    assert FeatureStore("s3a://bucket/features/").table_location("g", "v1") == (
        "s3a://bucket/features/feature_groups/g/v1"
    )


def test_get_spark_reuses_the_active_session_untouched(spark: SparkSession) -> None:
    partitions = spark.conf.get("spark.sql.shuffle.partitions")
    assert get_spark(conf={"spark.sql.shuffle.partitions": "123"}) is spark
    assert spark.conf.get("spark.sql.shuffle.partitions") == partitions

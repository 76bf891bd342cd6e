"""HistoricalFeatures: lookups, validation, tie-breaks by write, manifests and snapshots."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import DoubleType, LongType

from seeknal_spark import Entity, FeatureGroup, FeatureStore
from seeknal_spark.errors import (
    ColumnTypeError,
    ConfigurationError,
    MissingColumnError,
    NotFoundError,
)
from seeknal_spark.training.historical import (
    FeatureLookup,
    HistoricalFeatures,
    TrainingManifest,
    historical_from_store,
)

CUSTOMER = Entity("customer", ["customer_id"])
STORE_ENTITY = Entity("shop", ["shop_id"])
JAN = datetime(2024, 1, 1)
FEB = datetime(2024, 2, 1)


def d(day: int, hour: int = 0) -> datetime:
    return datetime(2024, 1, day, hour)


def identity(src: DataFrame) -> DataFrame:
    return src


def spend_rows(spark: SparkSession, rows: list[tuple[Any, ...]]) -> DataFrame:
    return spark.createDataFrame(
        rows, "customer_id string, event_time timestamp, spend double, n bigint"
    )


def make_spend(
    spark: SparkSession, store: FeatureStore, rows: list[tuple[Any, ...]]
) -> FeatureGroup:
    return FeatureGroup(
        "spend",
        CUSTOMER,
        "event_time",
        identity,
        ttl=timedelta(days=2),
        inputs={"src": spend_rows(spark, rows)},
        store=store,
    )


SPEND = [
    ("c1", d(1), 10.0, 1),
    ("c1", d(3), 30.0, 3),
    ("c2", d(2), 20.0, 2),
]


@pytest.fixture(scope="module")
def world(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """One store with two groups, written once for the read-only tests."""
    store = FeatureStore(str(tmp_path_factory.mktemp("hist") / "store"), spark=spark)
    spend = make_spend(spark, store, SPEND)
    spend.write(JAN, FEB)
    shops = FeatureGroup(
        "shops",
        STORE_ENTITY,
        "event_time",
        identity,
        inputs={
            "src": spark.createDataFrame(
                [(7, d(1), 1.5, d(1, 1)), (7, d(1), 2.5, d(1, 2))],  # tie: latest created wins
                "shop_id bigint, event_time timestamp, rating double, created timestamp",
            )
        },
        store=store,
        created_time_col="created",
    )
    shops.write(JAN, FEB)
    yield {"store": store, "spend": spend, "shops": shops}


def spine(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(
        [("c1", 7, d(2)), ("c1", 7, d(4)), ("c1", 7, d(9)), ("c2", 8, d(2)), ("c3", 7, d(2))],
        "customer_id string, shop_id bigint, prediction_time timestamp",
    )


def by_key(df: DataFrame, *cols: str) -> list[tuple[Any, ...]]:
    return sorted((tuple(r[c] for c in cols) for r in df.collect()), key=repr)


@pytest.mark.usefixtures("session_zone")  # UTC, America/Los_Angeles, Asia/Kolkata
def test_lookups_prefix_default_ttl_and_created_tie_break(
    spark: SparkSession, world: dict[str, Any]
) -> None:
    hist = HistoricalFeatures(
        [
            FeatureLookup(world["spend"], features=["spend"], prefix="c_", default={"spend": -1.0}),
            FeatureLookup(world["spend"], features="n", ttl=timedelta(days=30), prefix="long_"),
            FeatureLookup(world["shops"]),
        ]
    )
    out = hist.to_dataframe(spine(spark))
    assert out.columns == [
        "customer_id",
        "shop_id",
        "prediction_time",
        "c_spend",
        "long_n",
        "rating",
    ]
    assert by_key(out, "customer_id", "prediction_time", "c_spend", "long_n", "rating") == sorted(
        [
            ("c1", d(2), 10.0, 1, 2.5),
            ("c1", d(4), 30.0, 3, 2.5),
            ("c1", d(9), -1.0, 3, 2.5),  # spend expired after 2 days: default
            ("c2", d(2), 20.0, 2, None),
            ("c3", d(2), -1.0, None, 2.5),
        ],
        key=repr,
    )
    assert hist.timestamp_col == "prediction_time"
    assert [(n, t) for n, t, _ in hist.output_features()] == [
        ("c_spend", DoubleType()),
        ("long_n", LongType()),
        ("rating", DoubleType()),
    ]
    assert [lk.version for lk in hist.lookups] == ["v1", "v1", "v1"]
    manifest = hist.manifest
    assert manifest is not None
    assert TrainingManifest.from_json(manifest.to_json()) == manifest
    assert [e.output_names for e in manifest.lookups] == [("c_spend",), ("long_n",), ("rating",)]


def test_pandas_spine_naive_times_are_utc(spark: SparkSession, world: dict[str, Any]) -> None:
    frame = pd.DataFrame({"customer_id": ["c1"], "prediction_time": [pd.Timestamp("2024-01-03")]})
    out = HistoricalFeatures([FeatureLookup(world["spend"], features=["spend"])]).to_dataframe(
        frame
    )
    assert by_key(out, "customer_id", "spend") == [("c1", 30.0)]


def test_bad_input_raises_typed_errors(spark: SparkSession, world: dict[str, Any]) -> None:
    spend, shops = world["spend"], world["shops"]
    good = spine(spark)
    with pytest.raises(MissingColumnError, match="customer_id"):
        HistoricalFeatures([FeatureLookup(spend)]).to_dataframe(good.drop("customer_id"))
    with pytest.raises(MissingColumnError, match="prediction_time"):
        HistoricalFeatures([FeatureLookup(spend)]).to_dataframe(good.drop("prediction_time"))
    with pytest.raises(ColumnTypeError, match="prediction_time"):
        HistoricalFeatures([FeatureLookup(spend)]).to_dataframe(
            good.withColumn("prediction_time", good["shop_id"])
        )
    with pytest.raises(NotFoundError, match="nope"):
        HistoricalFeatures([FeatureLookup(spend, features=["nope"])]).to_dataframe(good)
    with pytest.raises(NotFoundError, match="v9"):
        HistoricalFeatures([FeatureLookup(spend, version="v9")]).to_dataframe(good)
    with pytest.raises(ColumnTypeError, match="shop_id"):
        HistoricalFeatures([FeatureLookup(shops)]).to_dataframe(
            good.withColumn("shop_id", good["prediction_time"])
        )
    with pytest.raises(ConfigurationError, match="prefix"):
        HistoricalFeatures([FeatureLookup(spend), FeatureLookup(spend)]).to_dataframe(good)
    with pytest.raises(ConfigurationError, match="prefix"):
        HistoricalFeatures([FeatureLookup(spend)]).to_dataframe(
            good.withColumn("n", good["shop_id"])
        )
    with pytest.raises(ValueError, match="ttl"):
        FeatureLookup(spend, ttl=timedelta(days=-1))
    # numeric keys of another width are cast to the group's type
    cast = good.withColumn("shop_id", good["shop_id"].cast("int"))
    out = HistoricalFeatures([FeatureLookup(shops)]).to_dataframe(cast)
    assert out.where("rating = 2.5").count() == 4


def test_manifest_rebuilds_the_same_training_set(spark: SparkSession, tmp_path: Path) -> None:
    store = FeatureStore(str(tmp_path / "store"), spark=spark)
    make_spend(spark, store, SPEND).write(JAN, FEB)
    hist = HistoricalFeatures([FeatureLookup(make_spend(spark, store, SPEND), features=["spend"])])
    first = by_key(hist.to_dataframe(spine(spark)), "customer_id", "prediction_time", "spend")
    manifest = TrainingManifest.from_json(hist.manifest.to_json())  # type: ignore[union-attr]

    # later: a second write at the same (key, event time) with another value wins ...
    later = make_spend(spark, store, [("c1", d(3), 99.0, 9)])
    later.write(d(3), d(4), mode="append")
    now = by_key(hist.to_dataframe(spine(spark)), "customer_id", "prediction_time", "spend")
    assert ("c1", d(4), 99.0) in now and now != first
    # ... but the manifest (or its dict, or {group: delta version}) gives the old set back
    again = HistoricalFeatures([FeatureLookup(later, features=["spend"])])
    for as_of in (manifest, manifest.to_dict(), {"spend": manifest.lookups[0].delta_version}):
        rebuilt = again.to_dataframe(spine(spark), as_of=as_of)
        assert by_key(rebuilt, "customer_id", "prediction_time", "spend") == first
    # version None is the latest registered version; the manifest keeps the old one
    make_spend(spark, store, SPEND[:1]).write(JAN, FEB, version="v2")
    assert HistoricalFeatures([FeatureLookup(later)]).lookups[0].version == "v2"
    pinned = HistoricalFeatures([FeatureLookup(later, features=["spend"])])
    pinned.to_dataframe(spine(spark), as_of=manifest)
    assert pinned.manifest is not None and pinned.manifest.lookups[0].version == "v1"


@pytest.mark.usefixtures("session_zone")  # UTC, America/Los_Angeles, Asia/Kolkata
def test_snapshot_is_the_join_at_one_time(spark: SparkSession, world: dict[str, Any]) -> None:
    hist = HistoricalFeatures(
        [FeatureLookup(world["spend"], prefix="s_"), FeatureLookup(world["shops"])]
    )
    snaps = hist.snapshot(as_of=d(4))
    assert [lk.name for lk, _ in snaps] == ["spend", "shops"]
    spend_snap = snaps[0][1]
    assert spend_snap.columns == ["customer_id", "s_spend", "s_n"]
    # c2's value (day 2) expired at day 4 (TTL 2 days): the key stays, with nulls
    assert by_key(spend_snap, "customer_id", "s_spend", "s_n") == [
        ("c1", 30.0, 3),
        ("c2", None, None),
    ]
    assert by_key(snaps[1][1], "shop_id", "rating") == [(7, 2.5)]
    assert hist.manifest is not None and len(hist.manifest.lookups) == 2


def test_snapshot_follows_inclusive_like_training(
    spark: SparkSession, world: dict[str, Any]
) -> None:
    """A row stamped exactly at the snapshot time is served only when training may use it."""
    lookup = FeatureLookup(world["spend"], features=["spend"], ttl=timedelta(days=5))
    at = spark.createDataFrame([("c1", d(3))], "customer_id string, prediction_time timestamp")
    for inclusive, expected in ((True, 30.0), (False, 10.0)):
        hist = HistoricalFeatures([lookup], inclusive=inclusive)
        [(_, snap)] = hist.snapshot(as_of=d(3))
        trained = hist.to_dataframe(at).first()
        assert trained is not None and trained["spend"] == expected
        assert dict(by_key(snap, "customer_id", "spend"))["c1"] == expected, inclusive


def test_historical_from_store(spark: SparkSession, world: dict[str, Any]) -> None:
    store: FeatureStore = world["store"]
    hist = historical_from_store(store.path or "", [("spend", "v1"), "shops"], spark=spark)
    assert [(lk.name, lk.version) for lk in hist.lookups] == [("spend", "v1"), ("shops", "v1")]
    out = hist.to_dataframe(spine(spark))
    assert out.columns == ["customer_id", "shop_id", "prediction_time", "spend", "n", "rating"]
    with pytest.raises(NotFoundError, match="missing_group"):
        historical_from_store(store, ["missing_group"])

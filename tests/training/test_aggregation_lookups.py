"""Event groups end to end: events written in windows (one re-written with a late event),
looked up with time-window aggregations beside an as-of lookup, against a pandas brute
force; time travel by the manifest; served to both sinks with 0 parity mismatches; a
changed aggregation refused; bad declarations typed before any job."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from seeknal_spark import Aggregation, Entity, FeatureGroup, FeatureStore
from seeknal_spark.errors import (
    ColumnTypeError,
    ConfigurationError,
    MissingColumnError,
    NotFoundError,
    VersionConflictError,
)
from seeknal_spark.monitoring.parity import check_values
from seeknal_spark.online import EmbeddedSink, OnlineSink, RedisSink
from seeknal_spark.training.historical import (
    FeatureLookup,
    HistoricalFeatures,
    TrainingManifest,
    historical_from_store,
)
from tests.redis_server import redis_url

__all__ = ["redis_url"]

CUSTOMER = Entity("customer", ["customer_id"])
START, MIDDLE, END = datetime(2024, 1, 1), datetime(2024, 1, 8), datetime(2024, 1, 15)
DAY, WEEK = timedelta(days=1), timedelta(days=7)
DEFAULT = -1.0
AGGREGATIONS = [
    Aggregation("amount", "sum", ["1d", "7d"]),
    Aggregation("amount", "count", "7d"),
    Aggregation("amount", "avg", "7d"),
    Aggregation("amount", "max", "1d"),
    Aggregation("merchant", "approx_count_distinct", "7d"),
    Aggregation("*", "count_events", "1d"),
]
#: feature -> (column, function, window), for the oracle
SPEC = {
    n: (a.column, a.function, w)
    for a in AGGREGATIONS
    for n, w in zip(a.names, a.windows, strict=True)
}
COUNTS = ("count", "count_events", "approx_count_distinct")


def t(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2024, 1, day, hour, minute)


# events: ties (two at one time), a null amount, one key with a gap, amounts exact in binary
EVENTS: list[tuple[str, datetime, float | None, str]] = [
    ("a", t(1, 9), 10.0, "m1"),
    ("a", t(1, 9), 2.5, "m2"),
    ("a", t(2, 9), None, "m1"),
    ("a", t(3, 12), 4.25, "m3"),
    ("a", t(7, 23, 59), 1.0, "m1"),
    ("a", t(8, 0), 8.0, "m2"),
    ("a", t(9, 12), 0.5, "m4"),
    ("a", t(14, 6), 3.0, "m1"),
    ("b", t(2, 1), 7.0, "m5"),
    ("b", t(10, 1), 6.0, "m5"),
    ("b", t(12, 18), 2.0, "m6"),
]
LATE = ("b", t(3, 5), 100.0, "m9")  # arrives after both windows were written
PROFILES = [
    ("a", t(1), "gold"),
    ("a", t(9, 12), "silver"),
    ("b", t(5), "bronze"),
    ("c", t(2), "new"),
]


def spine_rows() -> list[tuple[int, str, datetime]]:
    """Exactly at every event time, exactly 1d and 7d after, and a few others."""
    times = {
        (k, ts + shift) for k, ts, _, _ in [*EVENTS, LATE] for shift in (timedelta(0), DAY, WEEK)
    }
    times |= {("c", t(10)), ("a", t(25)), ("d", t(5)), ("b", t(3, 5))}
    return [(i, k, ts) for i, (k, ts) in enumerate(sorted(times))]


def oracle_window(
    events: list[tuple[str, datetime, float | None, str]], key: str, at: datetime, inclusive: bool
) -> dict[str, Any]:
    """Brute force, one spine row: filter by key and window, aggregate."""
    out: dict[str, Any] = {}
    for name, (column, function, window) in SPEC.items():
        rows = [
            e
            for e in events
            if e[0] == key and at - window < e[1] and (e[1] <= at if inclusive else e[1] < at)
        ]
        values = [e[2] if column == "amount" else e[3] for e in rows]
        present = [v for v in values if v is not None]
        if function == "count_events":
            value: Any = len(rows)
        elif function == "count":
            value = len(present)
        elif function == "approx_count_distinct":
            value = len(set(present))
        elif not present:
            value = None
        elif function == "sum":
            value = math.fsum(present)  # type: ignore[arg-type]
        elif function == "avg":
            value = math.fsum(present) / len(present)  # type: ignore[arg-type]
        else:
            value = max(present)
        if value is None and function not in COUNTS:
            value = DEFAULT
        out[f"w_{name}"] = value
    return out


def oracle_segment(key: str, at: datetime, inclusive: bool) -> str | None:
    rows = [p for p in PROFILES if p[0] == key and (p[1] <= at if inclusive else p[1] < at)]
    return max(rows, key=lambda p: p[1])[2] if rows else None


def oracle(
    events: list[tuple[str, datetime, float | None, str]], inclusive: bool
) -> dict[int, dict[str, Any]]:
    return {
        i: {"segment": oracle_segment(k, at, inclusive), **oracle_window(events, k, at, inclusive)}
        for i, k, at in spine_rows()
    }


def event_frame(
    spark: SparkSession, rows: list[tuple[str, datetime, float | None, str]]
) -> DataFrame:
    return spark.createDataFrame(
        rows, "customer_id string, ts timestamp, amount double, merchant string"
    )


def event_group(
    store: FeatureStore, events: DataFrame, aggregations: list[Aggregation] = AGGREGATIONS
) -> FeatureGroup:
    return FeatureGroup(
        "txn_windows",
        CUSTOMER,
        "ts",
        inputs={"txns": events},
        aggregations=aggregations,
        store=store,
    )


@dataclass
class World:
    store: FeatureStore
    windows: FeatureGroup
    profile: FeatureGroup
    spine: DataFrame
    first: dict[int, dict[str, Any]]
    manifest: TrainingManifest
    hist: HistoricalFeatures


def lookups(
    world_store: FeatureStore, windows: FeatureGroup, profile: FeatureGroup
) -> list[FeatureLookup]:
    return [
        FeatureLookup(profile, features=["segment"]),
        FeatureLookup(windows, features=list(SPEC), prefix="w_", default=DEFAULT),
    ]


def collect(df: DataFrame) -> dict[int, dict[str, Any]]:
    names = ["segment", *(f"w_{n}" for n in SPEC)]
    return {r["row_id"]: {n: r[n] for n in names} for r in df.collect()}


@pytest.fixture(scope="module")
def world(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    store = FeatureStore(str(tmp_path_factory.mktemp("agg_lookups")), spark=spark)
    windows = event_group(store, event_frame(spark, EVENTS))
    assert windows.write(START, MIDDLE).rows_written == 6
    assert windows.write(MIDDLE, END).rows_written == 5
    profiles = spark.createDataFrame(PROFILES, "customer_id string, day timestamp, segment string")
    profile = FeatureGroup(
        "profile", CUSTOMER, "day", lambda src: src, inputs={"src": profiles}, store=store
    )
    profile.write(START, END)
    spine = spark.createDataFrame(
        spine_rows(), "row_id int, customer_id string, prediction_time timestamp"
    )
    hist = HistoricalFeatures(lookups(store, windows, profile))
    first = collect(hist.to_dataframe(spine))
    assert hist.manifest is not None
    manifest = TrainingManifest.from_json(hist.manifest.to_json())
    # the late event: re-write the window it falls in (idempotent overwrite of [START, MIDDLE))
    late = event_group(store, event_frame(spark, [*EVENTS, LATE]))
    assert late.write(START, MIDDLE).rows_written == 7
    yield World(store, windows, profile, spine, first, manifest, hist)


def test_event_group_stores_events_and_features_are_the_aggregations(world: World) -> None:
    stored = world.windows.read()
    assert stored.columns == ["customer_id", "ts", "amount", "merchant"]
    assert stored.count() == len(EVENTS) + 1
    definition = world.store.get_definition("txn_windows", "v1")
    assert definition.feature_names == list(SPEC)
    types = {f.name: f.dtype.simpleString() for f in definition.features}
    assert types["amount_sum_7d"] == "double" and types["amount_count_7d"] == "bigint"
    assert definition.features[0].aggregation == ("amount", "sum", "1d")


@pytest.mark.usefixtures("session_zone")
def test_training_set_equals_the_brute_force_and_travels_in_time(world: World) -> None:
    assert world.first == oracle(EVENTS, inclusive=True)  # before the late event
    entry = world.manifest.lookups[1]
    assert entry.feature_group == "txn_windows" and entry.output_names[0] == "w_amount_sum_1d"
    hist = HistoricalFeatures(lookups(world.store, world.windows, world.profile))
    now = hist.to_dataframe(world.spine)
    assert now.columns == [
        "row_id",
        "customer_id",
        "prediction_time",
        "segment",
        *(f"w_{n}" for n in SPEC),
    ]
    assert now.count() == len(spine_rows())
    assert collect(now) == oracle([*EVENTS, LATE], inclusive=True)
    assert hist.manifest is not None
    assert hist.manifest.lookups[1].delta_version == world.manifest.lookups[1].delta_version + 1
    again = collect(hist.to_dataframe(world.spine, as_of=world.manifest))
    assert again == world.first


@pytest.mark.usefixtures("session_zone")
def test_exclusive_build_leaves_out_events_at_the_spine_time(world: World) -> None:
    hist = HistoricalFeatures(lookups(world.store, world.windows, world.profile), inclusive=False)
    assert collect(hist.to_dataframe(world.spine)) == oracle([*EVENTS, LATE], inclusive=False)


def test_feature_start_time_drops_older_events(world: World) -> None:
    hist = HistoricalFeatures(
        [FeatureLookup(world.windows, features=["amount_count_7d"])], feature_start_time=t(3)
    )
    row = hist.to_dataframe(world.spine).where("row_id = 0").first()  # key a at Jan 1 9:00
    assert row is not None and row["amount_count_7d"] == 0


@pytest.mark.usefixtures("session_zone")
def test_served_windows_equal_offline_on_both_sinks(
    world: World, redis_url: str, tmp_path: Path
) -> None:
    at = t(14, 6)  # exactly at a's last event; b's events of Jan 10 and 12 are within 7d
    hist = HistoricalFeatures(lookups(world.store, world.windows, world.profile))
    sinks: list[OnlineSink] = [
        EmbeddedSink(str(tmp_path / "online")),
        RedisSink(redis_url, key_prefix=f"agg_{tmp_path.name}"),
    ]
    expected = {k: oracle_window([*EVENTS, LATE], k, at, True) for k in "abc"}
    names = ["w_amount_sum_1d", "w_amount_count_7d", "w_count_events_1d", "w_amount_avg_7d"]
    for sink in sinks:
        table = hist.serve("txn_online", sink=sink, as_of=at)
        report = check_values(table, hist)
        assert report.ok and report.total_mismatches == 0
        assert report.keys_checked == 3 + 2  # profile keys a, b, c; event keys a, b
        served = table.get_features(
            keys=[{"customer_id": k} for k in "abc"], feature_names=[*names, "segment"]
        )
        for key, row in zip("abc", served, strict=True):
            assert {n: row[n] for n in names} == {n: expected[key][n] for n in names}
        # c has no event in any window: absent from the export, it reads 0 counts, defaults
        assert served[2]["w_amount_count_7d"] == 0 and served[2]["w_amount_sum_1d"] == DEFAULT
        assert served[1]["w_count_events_1d"] == 0 and served[2]["segment"] == "new"


def test_registered_event_group_is_read_without_its_code(world: World) -> None:
    hist = historical_from_store(world.store, ["txn_windows:v1"])
    row = hist.to_dataframe(world.spine).where("row_id = 0").first()
    assert row is not None and row["amount_sum_1d"] == 12.5 and row["amount_count_7d"] == 2


def test_a_changed_aggregation_is_a_version_conflict(world: World, spark: SparkSession) -> None:
    changed = [*AGGREGATIONS[:-1], Aggregation("*", "count_events", "2d")]
    group = event_group(world.store, event_frame(spark, EVENTS), changed)
    with pytest.raises(VersionConflictError, match="count_events"):
        group.write(START, MIDDLE)
    assert group.write(START, MIDDLE, version="v2").rows_written == 6


def test_bad_declarations_are_typed_before_any_job(world: World, spark: SparkSession) -> None:
    events = event_frame(spark, EVENTS)
    store = world.store

    def group(*aggs: Aggregation, **options: Any) -> FeatureGroup:
        options.setdefault("inputs", {"txns": events})
        return FeatureGroup(
            "bad_windows", CUSTOMER, "ts", aggregations=list(aggs), store=store, **options
        )

    with pytest.raises(ConfigurationError, match="unknown function"):
        Aggregation("amount", "median", "7d")
    with pytest.raises(ConfigurationError, match="window"):
        Aggregation("amount", "sum", "-7d")
    with pytest.raises(ConfigurationError, match="aggregations is empty"):
        group()
    with pytest.raises(ConfigurationError, match="omit features="):
        group(AGGREGATIONS[0], features={"x": "double"})
    with pytest.raises(ConfigurationError, match="no ttl"):
        group(AGGREGATIONS[0], ttl=WEEK)
    with pytest.raises(ConfigurationError, match="exactly one input"):
        group(AGGREGATIONS[0], inputs={"a": events, "b": events})
    with pytest.raises(ConfigurationError, match="customer_id"):
        group(Aggregation("amount", "sum", "1d", name="customer_id"))
    with pytest.raises(ConfigurationError, match="amount_sum_1d"):
        group(AGGREGATIONS[0], Aggregation("amount", "max", "1d", name="amount_sum_1d"))
    with pytest.raises(MissingColumnError, match="sum\\(price\\)"):
        group(Aggregation("price", "sum", "1d")).write(START, MIDDLE)
    with pytest.raises(ColumnTypeError, match="sum\\(merchant\\)"):
        group(Aggregation("merchant", "sum", "1d")).write(START, MIDDLE)
    assert not store.table_exists("bad_windows", "v1")
    with pytest.raises(NotFoundError, match="amount_sum_2d"):
        FeatureLookup(world.windows, features=["amount_sum_2d"])
    with pytest.raises(ConfigurationError, match="no ttl"):
        FeatureLookup(world.windows, ttl=WEEK)
    clash = HistoricalFeatures([FeatureLookup(world.windows, features=["amount_sum_1d"])])
    renamed = world.spine.withColumnRenamed("row_id", "amount_sum_1d")
    with pytest.raises(ConfigurationError, match="amount_sum_1d"):
        clash.to_dataframe(renamed)

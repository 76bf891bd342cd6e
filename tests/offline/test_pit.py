"""Unit tests of the point-in-time join, one group per numbered semantic step."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seeknal_spark.errors import ColumnTypeError, ConfigurationError, MissingColumnError
from seeknal_spark.offline.pit.join import AsOfSource, PitTuning, feature_hash, point_in_time_join

D = datetime(2024, 1, 1)
NO_TRICKS = PitTuning(max_hot_keys=0, prune_keys_max=0, plan="merge")
#: every key in one hash bucket: one merge call sees many keys
ONE_BUCKET = PitTuning(max_hot_keys=0, buckets=1, plan="merge")
#: the key-join plan (chosen by "auto" when rows cannot be pruned by key and no key has
#: many spine rows)
JOIN = PitTuning(plan="join")
#: only the busiest key hot: split and unsplit keys side by side
ONE_HOT = PitTuning(sample_rows=None, hot_key_share=0.0, max_hot_keys=1, hot_key_windows=3)
#: every key hot, many windows, key pruning on: exercises time windows and per-key pruning
ALL_TRICKS = PitTuning(sample_rows=None, hot_key_share=0.0, hot_key_windows=5, plan="merge")
#: run a test under every plan: the answer never depends on the plan
EVERY_PLAN = pytest.mark.parametrize(
    "tuning",
    [NO_TRICKS, ALL_TRICKS, ONE_HOT, ONE_BUCKET, JOIN],
    ids=["plain", "windows", "one_hot", "one_bucket", "join"],
)


def h(n: float) -> datetime:
    return D + timedelta(hours=n)


def rows(df: DataFrame, *cols: str) -> list[tuple[Any, ...]]:
    return sorted(
        (tuple(r[c] for c in cols) for r in df.collect()), key=lambda t: tuple(map(repr, t))
    )


@pytest.fixture()
def feats(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(
        [
            (1, h(0), 10.0),
            (1, h(5), 15.0),
            (1, h(10), 20.0),
            (2, h(3), 30.0),
        ],
        "k int, et timestamp, v double",
    )


@EVERY_PLAN
@pytest.mark.usefixtures("session_zone")  # UTC, America/Los_Angeles, Asia/Kolkata
def test_step2_latest_not_after_spine_time(spark: SparkSession, feats: DataFrame, tuning) -> None:
    spine = spark.createDataFrame(
        [(1, h(-1), "a"), (1, h(0), "b"), (1, h(7), "c"), (1, h(10), "d"), (2, h(30), "e")],
        "k int, prediction_time timestamp, id string",
    )
    src = AsOfSource(feats, ("k",), "et", ("v",))
    out = point_in_time_join(spine, [src], tuning=tuning)
    assert out.columns == ["k", "prediction_time", "id", "v"]
    assert rows(out, "id", "v") == [
        ("a", None),
        ("b", 10.0),
        ("c", 15.0),
        ("d", 20.0),
        ("e", 30.0),
    ]
    strict = point_in_time_join(spine, [src], inclusive=False, tuning=tuning)
    assert rows(strict, "id", "v") == [
        ("a", None),
        ("b", None),
        ("c", 15.0),
        ("d", 15.0),
        ("e", 30.0),
    ]


def test_step1_composite_keys_and_per_source_keys(spark: SparkSession) -> None:
    f1 = spark.createDataFrame(
        [("x", 1, h(0), 1.0), ("x", 2, h(0), 2.0), ("y", 1, h(0), 3.0)],
        "a string, b int, et timestamp, v double",
    )
    f2 = spark.createDataFrame(
        [("x", h(1), "X"), ("y", h(1), "Y")], "a string, et timestamp, w string"
    )
    spine = spark.createDataFrame(
        [("x", 1, h(2)), ("x", 2, h(2)), ("y", 2, h(2)), ("z", 1, h(2))],
        "a string, b int, prediction_time timestamp",
    )
    out = point_in_time_join(
        spine,
        [AsOfSource(f1, ("a", "b"), "et", ("v",)), AsOfSource(f2, ("a",), "et", ("w",))],
    )
    assert rows(out, "a", "b", "v", "w") == [
        ("x", 1, 1.0, "X"),
        ("x", 2, 2.0, "X"),
        ("y", 2, None, "Y"),
        ("z", 1, None, None),
    ]


def test_step1_numeric_key_is_cast_other_mismatch_raises(
    spark: SparkSession, feats: DataFrame
) -> None:
    spine = spark.createDataFrame([(1, h(1))], "k bigint, prediction_time timestamp")
    out = point_in_time_join(spine, [AsOfSource(feats, ("k",), "et", ("v",))])
    assert rows(out, "k", "v") == [(1, 10.0)]
    bad = spark.createDataFrame([("1", h(1))], "k string, prediction_time timestamp")
    with pytest.raises(ColumnTypeError, match="'k'"):
        point_in_time_join(bad, [AsOfSource(feats, ("k",), "et", ("v",))])


@EVERY_PLAN
@pytest.mark.usefixtures("session_zone")  # UTC, America/Los_Angeles, Asia/Kolkata
def test_step3_ttl_lower_bound_is_strict(spark: SparkSession, feats: DataFrame, tuning) -> None:
    spine = spark.createDataFrame(
        [(1, h(12), "exactly_ttl"), (1, h(11.99), "inside"), (1, h(20), "expired")],
        "k int, prediction_time timestamp, id string",
    )
    # h(12) - 2h = h(10): the h(10) row is exactly ttl old, so it has expired
    src = AsOfSource(feats, ("k",), "et", ("v",), ttl=timedelta(hours=2))
    out = point_in_time_join(spine, [src], tuning=tuning)
    assert rows(out, "id", "v") == [("exactly_ttl", None), ("expired", None), ("inside", 20.0)]


@EVERY_PLAN
def test_step4_ties(spark: SparkSession, tuning) -> None:
    feats = spark.createDataFrame(
        [
            (1, h(1), h(0), 1.0),
            (1, h(1), h(2), 2.0),  # latest created time wins
            (1, h(1), None, 3.0),  # null created time loses
            (2, h(1), h(0), 5.0),  # tie on time and created time: the greatest value wins
            (2, h(1), h(0), 6.0),
            (2, h(1), h(0), 6.0),
        ],
        "k int, et timestamp, created timestamp, v double",
    )
    spine = spark.createDataFrame(
        [(1, h(2)), (2, h(2)), (2, h(2))], "k int, prediction_time timestamp"
    )
    src = AsOfSource(feats, ("k",), "et", ("v",), tie_break_cols=("created",))
    first = rows(point_in_time_join(spine, [src], tuning=tuning), "k", "v")
    assert len(first) == 3
    assert first[0] == (1, 2.0)
    assert first[1] == first[2] == (2, 6.0)
    # the same answer from another order of the input rows
    shuffled = feats.orderBy(F.rand(3)).repartition(3)
    src2 = AsOfSource(shuffled, ("k",), "et", ("v",), tie_break_cols=("created",))
    assert rows(point_in_time_join(spine, [src2], tuning=tuning), "k", "v") == first


@EVERY_PLAN
def test_step4_ties_on_values_that_cannot_be_ordered(spark: SparkSession, tuning) -> None:
    feats = spark.createDataFrame(
        [(1, h(1), 1.0, [1, 2]), (1, h(1), 1.0, [3]), (1, h(1), 1.0, [0, 0, 7])],
        "k int, et timestamp, v double, arr array<int>",
    )
    spine = spark.createDataFrame([(1, h(2)), (1, h(3))], "k int, prediction_time timestamp")
    winner = (
        feats.select("arr", feature_hash([F.col("arr")]).alias("hash"))
        .orderBy(F.col("hash").desc())
        .first()
    )
    assert winner is not None
    for df in (feats, feats.orderBy(F.rand(4)).repartition(3)):
        src = AsOfSource(df, ("k",), "et", ("v", "arr"))
        got = rows(point_in_time_join(spine, [src], tuning=tuning), "v", "arr")
        assert got == [(1.0, winner["arr"]), (1.0, winner["arr"])]


def test_step5_defaults_only_fill_missing_matches(spark: SparkSession) -> None:
    feats = spark.createDataFrame([(1, h(0), None, "a")], "k int, et timestamp, v double, s string")
    spine = spark.createDataFrame([(1, h(1)), (2, h(1))], "k int, prediction_time timestamp")
    src = AsOfSource(
        feats, ("k",), "et", ("v", "s"), defaults={"v": -1.0, "s": "none"}, output_names={"s": "fs"}
    )
    out = point_in_time_join(spine, [src])
    assert out.columns == ["k", "prediction_time", "v", "fs"]
    assert rows(out, "k", "v", "fs") == [(1, None, "a"), (2, -1.0, "none")]


def test_step6_feature_start_time_prunes_before_ttl(spark: SparkSession, feats: DataFrame) -> None:
    spine = spark.createDataFrame([(1, h(4)), (1, h(6))], "k int, prediction_time timestamp")
    src = AsOfSource(feats, ("k",), "et", ("v",), ttl=timedelta(days=1))
    out = point_in_time_join(spine, [src], feature_start_time=h(1))
    # the h(0) row is within the TTL at h(4) but older than feature_start_time: dropped
    assert rows(out, "prediction_time", "v") == [(h(4), None), (h(6), 15.0)]


def test_step7_utc_whatever_the_session_zone(spark: SparkSession) -> None:
    feats = spark.createDataFrame(
        [(1, h(0), 1.0), (1, h(24), 2.0)], "k int, et timestamp, v double"
    )
    spine_date = spark.createDataFrame(
        [(1, date(2024, 1, 1)), (1, date(2024, 1, 2))], "k int, prediction_time date"
    )
    src = AsOfSource(feats, ("k",), "et", ("v",))
    old = spark.conf.get("spark.sql.session.timeZone")
    try:
        spark.conf.set("spark.sql.session.timeZone", "America/Los_Angeles")
        spine_ntz = spine_date.select("k", F.col("prediction_time").cast("timestamp_ntz"))
        got_date = rows(point_in_time_join(spine_date, [src]), "v")
        got_ntz = rows(point_in_time_join(spine_ntz, [src]), "v")
    finally:
        spark.conf.set("spark.sql.session.timeZone", old)
    # dates are midnight UTC: 2024-01-02 sees the h(24) row exactly (inclusive)
    assert got_date == [(1.0,), (2.0,)]
    assert got_ntz == [(1.0,), (2.0,)]


@EVERY_PLAN
def test_step8_all_rows_kept(spark: SparkSession, feats: DataFrame, tuning) -> None:
    spine = spark.createDataFrame(
        [
            (1, h(6), {"m": 1}, [1, 2]),
            (1, h(6), {"m": 1}, [1, 2]),
            (None, h(6), None, None),
            (1, None, None, None),
            (None, None, None, None),
        ],
        "k int, prediction_time timestamp, extra map<string,int>, arr array<int>",
    )
    out = point_in_time_join(spine, [AsOfSource(feats, ("k",), "et", ("v",))], tuning=tuning)
    assert out.columns == ["k", "prediction_time", "extra", "arr", "v"]
    got = rows(out, "k", "prediction_time", "v")
    assert got == sorted(
        [(1, h(6), 15.0), (1, h(6), 15.0), (None, h(6), None), (1, None, None), (None, None, None)],
        key=lambda t: tuple(map(repr, t)),
    )


@pytest.mark.parametrize("ttl", [None, timedelta(hours=7)])
@pytest.mark.usefixtures("session_zone")  # UTC, America/Los_Angeles, Asia/Kolkata
def test_windows_plan_equals_plain_plan(spark: SparkSession, ttl: timedelta | None) -> None:
    rng = random.Random(5)
    feats = spark.createDataFrame(
        [(rng.randint(0, 3), h(rng.randint(0, 100)), float(rng.randint(0, 9))) for _ in range(300)],
        "k int, et timestamp, v double",
    )
    spine = spark.createDataFrame(
        [(rng.randint(0, 4), h(rng.randint(20, 120))) for _ in range(120)],
        "k int, prediction_time timestamp",
    )
    src = AsOfSource(feats, ("k",), "et", ("v",), ttl=ttl)
    plain = rows(point_in_time_join(spine, [src], tuning=NO_TRICKS), "k", "prediction_time", "v")
    split = rows(point_in_time_join(spine, [src], tuning=ALL_TRICKS), "k", "prediction_time", "v")
    assert split == plain
    bucket = rows(point_in_time_join(spine, [src], tuning=ONE_BUCKET), "k", "prediction_time", "v")
    assert (
        rows(point_in_time_join(spine, [src], tuning=ONE_HOT), "k", "prediction_time", "v") == plain
    )
    assert bucket == plain
    assert sum(v is not None for _, _, v in plain) > 60


def test_empty_feature_table_and_empty_spine(spark: SparkSession, feats: DataFrame) -> None:
    spine = spark.createDataFrame([(1, h(6))], "k int, prediction_time timestamp")
    empty = feats.where("false")
    out = point_in_time_join(spine, [AsOfSource(empty, ("k",), "et", ("v",), defaults={"v": 0.0})])
    assert rows(out, "k", "v") == [(1, 0.0)]
    no_spine = spine.where("false")
    assert point_in_time_join(no_spine, [AsOfSource(feats, ("k",), "et", ("v",))]).count() == 0


def test_several_sources_same_keys_one_pass(spark: SparkSession, feats: DataFrame) -> None:
    other = spark.createDataFrame(
        [(1, h(6), "late"), (1, h(1), "early")], "k int, t2 timestamp, s string"
    )
    spine = spark.createDataFrame([(1, h(5)), (2, h(5))], "k int, prediction_time timestamp")
    out = point_in_time_join(
        spine,
        [
            AsOfSource(feats, ("k",), "et", ("v",), output_names={"v": "a_v"}),
            AsOfSource(
                feats, ("k",), "et", ("v",), ttl=timedelta(hours=1), output_names={"v": "b_v"}
            ),
            AsOfSource(other, ("k",), "t2", ("s",)),
        ],
        tuning=ALL_TRICKS,
    )
    assert out.columns == ["k", "prediction_time", "a_v", "b_v", "s"]
    assert rows(out, "k", "a_v", "b_v", "s") == [(1, 15.0, 15.0, "early"), (2, 30.0, None, None)]


def test_bad_input_is_refused_before_any_job(spark: SparkSession, feats: DataFrame) -> None:
    spine = spark.createDataFrame([(1, h(6))], "k int, prediction_time timestamp")
    src = AsOfSource(feats, ("k",), "et", ("v",))
    with pytest.raises(MissingColumnError, match="'ts'"):
        point_in_time_join(spine, [src], timestamp_col="ts")
    with pytest.raises(ColumnTypeError, match="'k'"):
        point_in_time_join(spine, [src], timestamp_col="k")
    with pytest.raises(ConfigurationError, match="'k'"):
        point_in_time_join(
            spine, [AsOfSource(feats, ("k",), "et", ("v",), output_names={"v": "k"})]
        )
    with pytest.raises(ConfigurationError, match="'v'"):
        point_in_time_join(spine, [src, src])
    with pytest.raises(MissingColumnError, match="'nope'"):
        point_in_time_join(spine, [AsOfSource(feats, ("k",), "et", ("nope",))])
    with pytest.raises(ValueError, match="ttl"):
        AsOfSource(feats, ("k",), "et", ("v",), ttl=timedelta(hours=-1))


def test_auto_plan_choice(spark: SparkSession) -> None:
    """The auto plan: the merge when rows are pruned by key or a key is hot; else the key join
    unless a key has more than join_max_spine_rows spine rows."""
    from seeknal_spark.offline.pit.planner import use_key_join as _key_join_plan

    light = spark.createDataFrame([(k, D) for k in range(5)], "k int, prediction_time timestamp")
    crowded = light.unionByName(
        spark.createDataFrame([(1, D)] * 20, "k int, prediction_time timestamp")
    )
    auto = PitTuning()
    assert _key_join_plan(auto, light, ("k",), pruned=False, hot=False)
    assert not _key_join_plan(auto, crowded, ("k",), pruned=False, hot=False)
    assert not _key_join_plan(auto, light, ("k",), pruned=True, hot=False)
    assert not _key_join_plan(auto, light, ("k",), pruned=False, hot=True)
    assert _key_join_plan(JOIN, crowded, ("k",), pruned=True, hot=True)
    assert not _key_join_plan(NO_TRICKS, light, ("k",), pruned=False, hot=False)


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Asia/Kolkata"])
def test_nested_timestamp_features_under_any_session_zone(spark: SparkSession, zone: str) -> None:
    """Issue 16: timestamps inside a struct or an array feature cross the Arrow kernel
    (labelled with the session zone there) and come back as the same UTC instants."""
    utc = timezone.utc
    t0 = datetime(2020, 3, 8, 1, tzinfo=utc)  # a DST change in Los Angeles that day
    feats = spark.createDataFrame([(1, t0, t0)], "k int, et timestamp, ts timestamp").select(
        "k", "et", F.struct("ts").alias("st"), F.array("ts").alias("arr")
    )
    spine = spark.createDataFrame([(1, t0 + timedelta(hours=3))], "k int, t timestamp")
    src = AsOfSource(feats, ("k",), "et", ("st", "arr"))
    before = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", zone)
    try:
        out = point_in_time_join(spine, [src], timestamp_col="t", tuning=NO_TRICKS)
        got = out.select(F.unix_micros("st.ts"), F.unix_micros(F.col("arr")[0])).collect()
    finally:
        spark.conf.set("spark.sql.session.timeZone", before)
    micros = int(t0.timestamp()) * 1_000_000
    assert [tuple(r) for r in got] == [(micros, micros)]

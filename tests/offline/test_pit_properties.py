"""Property tests: point_in_time_join equals a pandas merge_asof oracle on random small data.

The data are drawn to hit the edges: equal event times (ties broken by a created-time
column, nulls included, then by the values), spine times equal to event times, spine
times exactly one TTL after an event, duplicate spine rows, null spine keys and times,
empty feature tables, several sources with different keys at once, and every plan (plain
merge, every key or only the busiest key split into time windows, all keys in one hash
bucket, and the key join).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pyspark.sql import DataFrame, SparkSession

from seeknal_spark.offline.pit.join import AsOfSource, PitTuning, point_in_time_join

BASE = datetime(2024, 3, 1)
PLANS = {
    "plain": PitTuning(max_hot_keys=0, prune_keys_max=0, plan="merge"),
    "join": PitTuning(plan="join"),
    "windows": PitTuning(sample_rows=None, hot_key_share=0.0, hot_key_windows=4),
    "one_bucket": PitTuning(max_hot_keys=0, buckets=1, plan="merge"),
    "one_hot": PitTuning(sample_rows=None, hot_key_share=0.0, max_hot_keys=1, hot_key_windows=3),
}

hours = st.integers(min_value=0, max_value=12)
key = st.integers(min_value=0, max_value=2)
feature_rows = st.lists(
    st.tuples(
        key,
        key,
        hours,
        st.one_of(st.none(), st.integers(0, 1)),  # created time: ties and nulls
        st.sampled_from([1.0, 2.0, 3.0, None]),  # value: equal values and nulls
    ),
    max_size=14,
)
spine_hours = st.integers(min_value=3, max_value=15)  # often after every feature row
spine_rows = st.lists(
    st.tuples(st.one_of(key, st.none()), key, st.one_of(spine_hours, st.none())),
    min_size=1,
    max_size=12,
).map(lambda rows: rows + rows[:2])  # always some duplicate spine rows


def _ts(h: int | None) -> datetime | None:
    return None if h is None else BASE + timedelta(hours=h)


def _oracle(
    spine: pd.DataFrame,
    feats: pd.DataFrame,
    keys: list[str],
    ttl_h: int | None,
    inclusive: bool,
    start_h: int | None,
    default: float | None,
    name: str,
) -> pd.Series:
    """merge_asof(by=keys, backward) after keeping the best row per (keys, time)."""
    f = feats if start_h is None else feats[feats["t"] >= start_h]
    f = f.assign(c_sort=f["c"].astype("float64").fillna(-1.0)).sort_values(
        ["t", "c_sort", "v"], na_position="first"
    )
    f = f.drop_duplicates([*keys, "t"], keep="last")  # the tie rule: greatest wins
    valid = spine[[*keys, "t"]].notna().all(axis=1)
    left = spine[valid].assign(_i=spine.index[valid]).astype({k: "int64" for k in keys})
    result = pd.Series([default] * len(spine), index=spine.index, dtype="object")
    if len(f) and len(left):
        right = f[[*keys, "t", "v"]].rename(columns={"t": "ft"}).astype({k: "int64" for k in keys})
        right = right.assign(t=right["ft"]).astype({"t": "int64"}).sort_values("t")
        merged = pd.merge_asof(
            left.astype({"t": "int64"}).sort_values("t"),
            right,
            on="t",
            by=keys,
            direction="backward",
            allow_exact_matches=inclusive,
        )
        matched = merged["ft"].notna()
        if ttl_h is not None:
            matched &= (merged["t"] - merged["ft"]) < ttl_h  # strict: exactly ttl old expired
        for i, ok, v in zip(merged["_i"], matched, merged["v"], strict=True):
            if ok:
                result[i] = None if pd.isna(v) else float(v)
    return result.rename(name)


def _feature_frame(spark: SparkSession, rows: list[tuple[Any, ...]]) -> DataFrame:
    df = spark.createDataFrame(
        [(a, b, _ts(t), _ts(c), v) for a, b, t, c, v in rows],
        "k int, k2 int, et timestamp, created timestamp, v double",
    )
    return df


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    spine=spine_rows,
    f1=feature_rows,
    f2=feature_rows,
    ttl=st.one_of(st.none(), st.integers(1, 4)),
    inclusive=st.booleans(),
    start=st.one_of(st.none(), st.integers(0, 6)),
    plan=st.sampled_from(sorted(PLANS)),
)
@example(  # prehistory: the only earlier rows are before the first spine time
    spine=[(0, 0, 5), (0, 0, 9), (1, 1, 14), (0, 0, 5)],
    f1=[(0, 0, 1, None, 1.0), (0, 0, 2, 0, 2.0), (1, 1, 10, None, 3.0)],
    f2=[(0, 0, 0, 1, 1.0), (0, 0, 0, 1, 2.0)],
    ttl=None,
    inclusive=True,
    start=None,
    plan="windows",
)
def test_matches_merge_asof(
    spark: SparkSession,
    spine: list[tuple[Any, ...]],
    f1: list[tuple[Any, ...]],
    f2: list[tuple[Any, ...]],
    ttl: int | None,
    inclusive: bool,
    start: int | None,
    plan: str,
) -> None:
    spine_df = spark.createDataFrame(
        [(a, b, _ts(t)) for a, b, t in spine], "k int, k2 int, prediction_time timestamp"
    )
    df1, df2 = _feature_frame(spark, f1), _feature_frame(spark, f2)
    sources = [
        # one key, with TTL and a default
        AsOfSource(
            df1,
            ("k",),
            "et",
            ("v",),
            output_names={"v": "a"},
            ttl=None if ttl is None else timedelta(hours=ttl),
            tie_break_cols=("created",),
            defaults={"v": -1.0},
        ),
        # composite key, another table
        AsOfSource(
            df2, ("k", "k2"), "et", ("v",), output_names={"v": "b"}, tie_break_cols=("created",)
        ),
        # same key as the first, no TTL: rides in the same shuffle
        AsOfSource(df2, ("k",), "et", ("v",), output_names={"v": "c"}, tie_break_cols=("created",)),
    ]
    out = point_in_time_join(
        spine_df,
        sources,
        inclusive=inclusive,
        feature_start_time=_ts(start),
        tuning=PLANS[plan],
    )
    assert out.columns == ["k", "k2", "prediction_time", "a", "b", "c"]

    sp = pd.DataFrame(spine, columns=["k", "k2", "t"], dtype="object")

    def pframe(rows: list[tuple[Any, ...]], df: DataFrame) -> pd.DataFrame:
        frame = pd.DataFrame(rows, columns=["k", "k2", "t", "c", "v"], dtype="object")
        return frame.astype({"t": "int64"})

    p1, p2 = pframe(f1, df1), pframe(f2, df2)
    expected = pd.concat(
        [
            sp,
            _oracle(sp, p1, ["k"], ttl, inclusive, start, -1.0, "a"),
            _oracle(sp, p2, ["k", "k2"], None, inclusive, start, None, "b"),
            _oracle(sp, p2, ["k"], None, inclusive, start, None, "c"),
        ],
        axis=1,
    )
    want = sorted(
        (
            (r.k, r.k2, _ts(r.t), r.a, r.b, r.c)
            for r in expected.astype(object).where(expected.notna(), None).itertuples()
        ),
        key=repr,
    )
    got = sorted((tuple(r) for r in out.collect()), key=repr)
    assert got == want


busy_rows = st.lists(
    st.tuples(
        st.integers(0, 1),
        st.integers(0, 40),
        st.one_of(st.none(), st.integers(0, 1)),
        st.sampled_from([1.0, 2.0, None]),
    ),
    max_size=30,
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    spine=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 44)), min_size=1, max_size=20),
    f1=busy_rows,
    f2=busy_rows,
    windows=st.integers(2, 6),
    ttl=st.one_of(st.none(), st.integers(1, 10)),
    inclusive=st.booleans(),
)
def test_shared_time_windows_match_merge_asof(
    spark: SparkSession,
    spine: list[tuple[int, int]],
    f1: list[tuple[Any, ...]],
    f2: list[tuple[Any, ...]],
    windows: int,
    ttl: int | None,
    inclusive: bool,
) -> None:
    """Two tables on one key, every key split into windows they share (with lead-ins)."""
    spine_df = spark.createDataFrame(
        [(k, 0, _ts(t)) for k, t in spine], "k int, k2 int, prediction_time timestamp"
    )
    frames = [_feature_frame(spark, [(k, 0, t, c, v) for k, t, c, v in f]) for f in (f1, f2)]
    sources = [
        AsOfSource(
            df,
            ("k",),
            "et",
            ("v",),
            output_names={"v": name},
            ttl=None if ttl is None else timedelta(hours=ttl),
            tie_break_cols=("created",),
        )
        for df, name in zip(frames, ("a", "b"), strict=True)
    ]
    tuning = PitTuning(sample_rows=None, hot_key_share=0.0, hot_key_windows=windows)
    out = point_in_time_join(spine_df, sources, inclusive=inclusive, tuning=tuning)
    sp = pd.DataFrame([(k, 0, t) for k, t in spine], columns=["k", "k2", "t"], dtype="object")
    parts = [sp]
    for f, name in zip((f1, f2), ("a", "b"), strict=True):
        cols = ["k", "k2", "t", "c", "v"]
        frame = pd.DataFrame([(k, 0, t, c, v) for k, t, c, v in f], columns=cols, dtype="object")
        frame = frame.astype({"t": "int64"})
        parts.append(_oracle(sp, frame, ["k"], ttl, inclusive, None, None, name))
    expected = pd.concat(parts, axis=1)
    want = sorted(
        (
            (r.k, r.k2, _ts(r.t), r.a, r.b)
            for r in expected.astype(object).where(expected.notna(), None).itertuples()
        ),
        key=repr,
    )
    assert sorted((tuple(r) for r in out.collect()), key=repr) == want

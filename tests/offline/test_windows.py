"""Unit tests of window_aggregates and Aggregation: exact values on small hand-made data."""

from __future__ import annotations

import logging
import math
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seeknal_spark.definitions.aggregation import (
    Aggregation,
    check_columns,
    check_names,
    parse_window,
)
from seeknal_spark.errors import (
    ColumnTypeError,
    ConfigurationError,
    InvalidNameError,
    MissingColumnError,
)
from seeknal_spark.offline.windows import WindowTuning, window_aggregates
from seeknal_spark.offline.windows.kernel import WindowFeature, WindowKernel
from seeknal_spark.offline.windows.reducers import float_sums, integer_sums

D = datetime(2024, 1, 1)
PLAIN = WindowTuning(max_hot_keys=0, prune_keys_max=0)
#: every sampled key split into time ranges, events pruned per key
SPLIT = WindowTuning(sample_rows=None, hot_key_share=0.0, hot_key_windows=4)
#: every key in one bucket: one kernel call sees many keys
ONE_BUCKET = WindowTuning(max_hot_keys=0, buckets=1)
EVERY_PLAN = pytest.mark.parametrize(
    "tuning", [PLAIN, SPLIT, ONE_BUCKET], ids=["plain", "split", "one_bucket"]
)


def h(n: float) -> datetime:
    return D + timedelta(hours=n)


def rows(df: DataFrame, *cols: str) -> list[tuple[Any, ...]]:
    return sorted(
        (tuple(r[c] for c in cols) for r in df.collect()), key=lambda t: tuple(map(repr, t))
    )


@pytest.fixture()
def events(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(
        [
            (1, h(0), 1.0),
            (1, h(1), 2.0),
            (1, h(2), None),
            (1, h(3), 4.0),
            (2, h(1), 10.0),
        ],
        "k int, ts timestamp, v double",
    )


AGGS = [
    Aggregation("v", "sum", ["2h", "3h"]),
    Aggregation("v", "count", "3h"),
    Aggregation("*", "count_events", "3h"),
    Aggregation("v", "last", "3h"),
]
COLS = ("k", "t", "v_sum_2h", "v_sum_3h", "v_count_3h", "count_events_3h", "v_last_3h")


@EVERY_PLAN
@pytest.mark.usefixtures("session_zone")  # UTC, America/Los_Angeles, Asia/Kolkata
def test_window_edges_event_at_t_in_event_at_t_minus_w_out(
    spark: SparkSession, events: DataFrame, tuning: WindowTuning
) -> None:
    spine = spark.createDataFrame(
        [(1, h(3)), (1, h(2)), (2, h(4)), (2, h(1)), (3, h(3))], "k int, t timestamp"
    )
    out = window_aggregates(
        spine, events, keys="k", spine_time_col="t", event_time_col="ts",
        aggregations=AGGS, tuning=tuning,
    )  # fmt: skip
    assert rows(out, *COLS) == [
        # at 3h: 2h holds (1h, 3h] -> null at 2h ignored, 4.0; 3h holds (0h, 3h]
        (1, h(2), 2.0, 3.0, 2, 3, 2.0),
        (1, h(3), 4.0, 6.0, 2, 3, 4.0),
        (2, h(1), 10.0, 10.0, 1, 1, 10.0),
        (2, h(4), None, None, 0, 0, None),  # the event is exactly 3h old: out
        (3, h(3), None, None, 0, 0, None),  # no events for the key
    ]


@pytest.mark.usefixtures("session_zone")
def test_not_inclusive_excludes_events_at_the_spine_time(
    spark: SparkSession, events: DataFrame
) -> None:
    spine = spark.createDataFrame([(1, h(3)), (2, h(1))], "k int, t timestamp")
    out = window_aggregates(
        spine, events, keys="k", spine_time_col="t", event_time_col="ts",
        aggregations=AGGS, inclusive=False, tuning=SPLIT,
    )  # fmt: skip
    assert rows(out, *COLS) == [
        (1, h(3), None, 2.0, 1, 2, 2.0),  # 2h: (1h, 3h) holds a null; 3h: (0h, 3h)
        (2, h(1), None, None, 0, 0, None),
    ]


def test_every_function_ties_nulls_and_empty_windows(spark: SparkSession) -> None:
    events = spark.createDataFrame(
        [
            ("a", h(1), 3),
            ("a", h(1), 7),  # a tie on time: last takes the greatest value
            ("a", h(1), None),
            ("a", h(2), 3),
            ("a", h(2), None),  # the latest event is null: last skips it
            ("b", h(2), None),  # only nulls
        ],
        "k string, ts timestamp, v int",
    )
    functions = ["count", "count_events", "sum", "avg", "min", "max", "stddev", "variance"]
    aggs = [Aggregation("v", f, "1d") for f in [*functions, "last", "approx_count_distinct"]]
    spine = spark.createDataFrame(
        [("a", h(2)), ("a", h(2)), ("b", h(3)), (None, h(2)), ("a", None)], "k string, t timestamp"
    )
    out = window_aggregates(
        spine, events, keys=["k"], spine_time_col="t", event_time_col="ts", aggregations=aggs
    )
    assert out.count() == 5  # one row per spine row, duplicates included
    cols = ["k", "t", *(a.names[0] for a in aggs)]
    var = ((3 - 13 / 3) ** 2 * 2 + (7 - 13 / 3) ** 2) / 2
    got = sorted(
        (tuple(r[c] for c in cols) for r in out.collect()),
        key=lambda r: (r[0] is None, r[0] or "", r[1] is None, r[1] or D),
    )
    assert got[0][:2] == got[1][:2] == ("a", h(2))
    assert got[0][2:8] == (3, 5, 13, 13 / 3, 3, 7)
    assert math.isclose(got[0][8], math.sqrt(var), rel_tol=1e-12)
    assert math.isclose(got[0][9], var, rel_tol=1e-12)
    assert got[0][10:] == (3, 2)
    assert got[0] == got[1]
    assert got[2:] == [
        ("a", None, 0, 0, None, None, None, None, None, None, None, 0),  # null time
        ("b", h(3), 0, 1, None, None, None, None, None, None, None, 0),  # nulls ignored
        (None, h(2), 0, 0, None, None, None, None, None, None, None, 0),  # null key
    ]
    types = dict(out.dtypes)
    assert [types[a.names[0]] for a in aggs] == [
        "bigint", "bigint", "bigint", "double", "int", "int", "double", "double", "int", "bigint",
    ]  # fmt: skip


def test_composite_keys_cast_spine_keys_and_dates(spark: SparkSession) -> None:
    events = spark.createDataFrame(
        [
            (1, "x", date(2024, 1, 1), "m1"),
            (1, "x", date(2024, 1, 5), "m2"),
            (1, "x", date(2024, 1, 6), "m1"),
            (1, "y", date(2024, 1, 6), "m3"),
            (11, "", date(2024, 1, 6), "m4"),  # ("1", "1x") style collisions must not match
        ],
        "a long, b string, day date, merchant string",
    )
    spine = spark.createDataFrame(
        [(1, "x", datetime(2024, 1, 6, 12)), (1, "y", datetime(2024, 1, 7)), (1, "1", D)],
        "a int, b string, t timestamp_ntz",
    )
    aggs = [
        Aggregation("merchant", "approx_count_distinct", ["2d", timedelta(weeks=1)]),
        Aggregation("merchant", "max", "1w", name="top_merchant"),
        Aggregation("day", "last", "1w", name="last_day"),
    ]
    out = window_aggregates(
        spine, events, keys=("a", "b"), spine_time_col="t", event_time_col="day",
        aggregations=aggs, tuning=SPLIT,
    )  # fmt: skip
    assert out.columns == [
        "a", "b", "t", "merchant_approx_count_distinct_2d",
        "merchant_approx_count_distinct_7d", "top_merchant", "last_day",
    ]  # fmt: skip
    assert dict(out.dtypes)["a"] == "int"  # the spine's own columns are kept as they are
    assert rows(out, *out.columns) == [
        (1, "1", D, 0, 0, None, None),
        (1, "x", datetime(2024, 1, 6, 12), 2, 2, "m2", date(2024, 1, 6)),
        (1, "y", datetime(2024, 1, 7), 1, 1, "m3", date(2024, 1, 6)),
    ]


def test_spark_semantics_of_types_nan_and_decimals(spark: SparkSession) -> None:
    """Against Spark's own aggregates over a range join (one window, small data)."""
    events = spark.createDataFrame(
        [
            (1, h(0), 1.5, Decimal("1.25"), "b", True),
            (1, h(1), float("nan"), Decimal("2.50"), "a", False),
            (1, h(2), -2.0, None, None, None),
            (2, h(0), float("inf"), Decimal("-1.00"), "c", True),
            (2, h(1), 3.0, Decimal("0.25"), "c", False),
        ],
        "k int, ts timestamp, f double, d decimal(10, 2), s string, b boolean",
    )
    spine = spark.createDataFrame(
        [(1, h(2)), (1, h(0)), (2, h(1)), (2, h(3))], "k int, t timestamp"
    )
    aggs = [
        Aggregation("f", "sum", "2h", name="f_sum"),
        Aggregation("f", "max", "2h", name="f_max"),
        Aggregation("f", "min", "2h", name="f_min"),
        Aggregation("d", "sum", "2h", name="d_sum"),
        Aggregation("d", "avg", "2h", name="d_avg"),
        Aggregation("d", "min", "2h", name="d_min"),
        Aggregation("s", "min", "2h", name="s_min"),
        Aggregation("b", "max", "2h", name="b_max"),
        Aggregation("b", "approx_count_distinct", "2h", name="b_n"),
    ]
    out = window_aggregates(
        spine, events, keys="k", spine_time_col="t", event_time_col="ts", aggregations=aggs
    )
    e, s = events.alias("e"), spine.alias("s")
    cond = (F.col("e.k") == F.col("s.k")) & (F.col("e.ts") <= F.col("s.t"))
    cond &= F.col("e.ts") > F.col("s.t") - F.expr("INTERVAL 2 HOURS")
    expected = (
        s.join(e, cond, "left")
        .groupBy("s.k", "s.t")
        .agg(
            F.when(F.count("e.f") > 0, F.sum("e.f")).alias("f_sum"),
            F.max("e.f").alias("f_max"),
            F.min("e.f").alias("f_min"),
            F.sum("e.d").cast("double").alias("d_sum"),
            F.avg("e.d").cast("double").alias("d_avg"),
            F.min("e.d").alias("d_min"),
            F.min("e.s").alias("s_min"),
            F.max("e.b").alias("b_max"),
            F.count_distinct("e.b").alias("b_n"),
        )
    )
    cols = ["k", "t", *(a.names[0] for a in aggs)]
    assert [(r[0], r[1], *map(repr, r[2:])) for r in rows(out, *cols)] == [
        (r[0], r[1], *map(repr, r[2:])) for r in rows(expected, *cols)
    ]  # repr: NaN equals NaN
    assert dict(out.dtypes)["d_min"] == "decimal(10,2)"


@pytest.mark.usefixtures("session_zone")
def test_a_hot_key_split_into_time_ranges_gives_the_same_answer(
    spark: SparkSession, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(7)
    n = 300
    keys = np.where(rng.random(n) < 0.8, 0, rng.integers(1, 5, n))  # key 0 is hot
    events = spark.createDataFrame(
        [
            (int(k), h(float(t)), None if v < 0 else float(v), int(m))
            for k, t, v, m in zip(
                keys, rng.integers(0, 200, n), rng.integers(-2, 9, n), rng.integers(0, 6, n),
                strict=True,
            )
        ],
        "k int, ts timestamp, v double, m int",
    )  # fmt: skip
    spine = spark.createDataFrame(
        [
            (int(k), h(float(t)))
            for k, t in zip(rng.integers(0, 6, 80), rng.integers(0, 210, 80), strict=True)
        ],
        "k int, t timestamp",
    )
    aggs = [
        Aggregation("v", f, ["5h", "1d", "3d"])
        for f in ("sum", "avg", "min", "max", "stddev", "last", "count")
    ]
    aggs.append(Aggregation("m", "approx_count_distinct", ["5h", "3d"]))
    cols = [*spine.columns, *(n for a in aggs for n in a.names)]

    def run(tuning: WindowTuning) -> list[tuple[Any, ...]]:
        out = window_aggregates(
            spine, events, keys="k", spine_time_col="t", event_time_col="ts",
            aggregations=aggs, tuning=tuning,
        )  # fmt: skip
        return [
            tuple(round(x, 9) if isinstance(x, float) else x for x in r) for r in rows(out, *cols)
        ]

    forced = WindowTuning(sample_rows=None, hot_key_share=0.3, hot_key_windows=6)
    plain = run(PLAIN)
    assert len(plain) == 80
    with caplog.at_level(logging.INFO, logger="seeknal_spark.offline.windows.aggregate"):
        assert run(forced) == plain
    assert "1 hot keys split into time ranges" in caplog.text  # key 0 only
    assert run(ONE_BUCKET) == plain


def test_bad_declarations_raise_typed_errors_naming_the_aggregation() -> None:
    with pytest.raises(ConfigurationError, match=r"aggregation median\(v\).*unknown function"):
        Aggregation("v", "median", "1d")
    for window in ("0d", "7 days", "1y", "-1h", "", timedelta(0), timedelta(hours=-1)):
        with pytest.raises(ConfigurationError, match=r"aggregation sum\(v\)"):
            Aggregation("v", "sum", [window])
    with pytest.raises(ConfigurationError, match="at least one window"):
        Aggregation("v", "sum", [])
    with pytest.raises(ConfigurationError, match="listed twice"):
        Aggregation("v", "sum", ["1d", "24h"])
    with pytest.raises(ConfigurationError, match="one name per window"):
        Aggregation("v", "sum", ["1d", "2d"], name="total")
    with pytest.raises(ConfigurationError, match="only for count_events"):
        Aggregation("*", "sum", "1d")
    with pytest.raises(InvalidNameError, match="pass name="):
        Aggregation("amount-usd", "sum", "1d")
    assert parse_window("90s") == ("90s", timedelta(seconds=90))
    assert parse_window(timedelta(milliseconds=1500)) == ("1500ms", timedelta(seconds=1.5))
    assert Aggregation("v", "sum", timedelta(days=14)).feature_names() == ["v_sum_14d"]


def test_bad_columns_and_clashes_raise_before_any_job(spark: SparkSession) -> None:
    # any Spark job over these frames fails: the typed errors come before one runs
    poison = F.raise_error(F.lit("a Spark job ran"))
    events = spark.range(1).select(
        poison.cast("int").alias("k"),
        poison.cast("timestamp").alias("ts"),
        poison.cast("string").alias("s"),
        poison.cast("array<int>").alias("xs"),
        poison.cast("double").alias("v"),
    )
    spine = spark.range(1).select(
        poison.cast("int").alias("k"),
        poison.cast("timestamp").alias("t"),
        poison.cast("double").alias("v_sum_1d"),
    )

    def run(*aggs: Aggregation, **kw: Any) -> None:
        args = {"keys": "k", "spine_time_col": "t", "event_time_col": "ts", **kw}
        window_aggregates(spine, events, aggregations=list(aggs), **args)

    with pytest.raises(MissingColumnError, match=r"aggregation sum\(amount\).*'amount'"):
        run(Aggregation("amount", "sum", "1d"))
    with pytest.raises(ColumnTypeError, match=r"aggregation avg\(s\).*needs a number"):
        run(Aggregation("s", "avg", "1d"))
    with pytest.raises(ColumnTypeError, match=r"aggregation max\(xs\).*cannot order"):
        run(Aggregation("xs", "max", "1d"))
    with pytest.raises(ConfigurationError, match=r"'v_sum_1d' of aggregation sum.*spine"):
        run(Aggregation("v", "sum", "1d"))
    with pytest.raises(ConfigurationError, match="comes from both"):
        run(Aggregation("v", "min", "1d", name="x"), Aggregation("v", "max", "1d", name="X"))
    with pytest.raises(MissingColumnError, match="the events has no column 'day'"):
        run(Aggregation("v", "max", "1d"), event_time_col="day")
    with pytest.raises(ColumnTypeError, match="'s' of the events is string"):
        run(Aggregation("v", "max", "1d"), event_time_col="s")
    with pytest.raises(ColumnTypeError, match="key column 'k'"):
        window_aggregates(
            spine.withColumn("k", F.lit(None).cast("date")), events, keys="k",
            spine_time_col="t", event_time_col="ts", aggregations=[Aggregation("v", "max", "1d")],
        )  # fmt: skip
    with pytest.raises(TypeError):
        check_columns(["v_sum"], events.schema)  # type: ignore[list-item]
    check_names([Aggregation("v", "max", "1d")], ["k", "t"])


def test_kernel_float_sums_stay_exact_beside_a_huge_prefix() -> None:
    values = np.array([1e17, 0.1, 0.2, 0.3, -1e17, 0.7] * 50)
    lo = np.arange(0, 300, 6) + 1
    hi = lo + 3  # windows of 0.1, 0.2, 0.3 beside prefixes of about 1e17
    exact = math.fsum([0.1, 0.2, 0.3])
    assert np.allclose(float_sums(values, lo, hi), exact, rtol=1e-12, atol=0)
    naive = np.concatenate(([0.0], np.cumsum(values)))
    assert not np.allclose(naive[hi] - naive[lo], exact, rtol=1e-3)  # what it avoids
    with pytest.raises(OverflowError, match="does not fit a long"):
        integer_sums(np.array([2**62, 2**62]), np.array([0]), np.array([2]), what="v")
    assert integer_sums(np.array([2**62, 2**62, -(2**62)]), np.array([1]), np.array([3]))[0] == 0


def test_kernel_returns_spine_columns_and_empty_groups() -> None:
    kernel = WindowKernel(
        spine_cols=("id",), key_cols=("k",), time_col="t", inclusive=True,
        features=(WindowFeature("n", "count", "v", 10), WindowFeature("s", "sum", "v", 10)),
    )  # fmt: skip
    spine = pa.table({"id": [1, 2], "k": pa.array([1, 1], pa.int64()), "t": [5, 20]})
    events = pa.table(
        {
            "k": pa.array([], pa.int64()),
            "t": pa.array([], pa.int64()),
            "v": pa.array([], pa.int32()),
        }
    )
    assert kernel(spine, events).to_pydict() == {"id": [1, 2], "n": [0, 0], "s": [None, None]}

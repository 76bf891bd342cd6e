"""Property tests: window_aggregates equals a brute-force pandas oracle on random small data.

The oracle filters, per spine row and window, the events of its key with ``t - w <
event time <= t`` (``< t`` when not inclusive) and aggregates them with pandas. The data
are drawn to hit the edges: times on an hour grid with windows of whole hours (events
exactly at ``t`` and exactly at ``t - w``), ties on time, null values, null spine keys and
times, empty windows, duplicate spine rows, composite keys with Zipf-like skew (key 0 the
most frequent), and every plan (plain, every key or one key split into time ranges, one
bucket). The kernel alone is also checked against a pure-Python oracle on many more
examples, with floats that cancel.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession

from seeknal_spark.definitions.aggregation import Aggregation
from seeknal_spark.offline.windows import WindowTuning, window_aggregates
from seeknal_spark.offline.windows.kernel import WindowFeature, WindowKernel

BASE = datetime(2024, 3, 1)
PLANS = {
    "plain": WindowTuning(max_hot_keys=0, prune_keys_max=0),
    "split": WindowTuning(sample_rows=None, hot_key_share=0.0, hot_key_windows=4),
    "one_hot": WindowTuning(sample_rows=None, hot_key_share=0.0, max_hot_keys=1, hot_key_windows=3),
    "one_bucket": WindowTuning(max_hot_keys=0, buckets=1),
}
FUNCTIONS = [
    "count", "count_events", "sum", "avg", "min", "max", "stddev", "variance", "last",
    "approx_count_distinct",
]  # fmt: skip
WINDOWS_H = [1, 3, 8]
# Zipf-like keys: 0 half of the time, 1 a quarter, ...
zipf_key = st.integers(min_value=1, max_value=15).map(lambda n: 4 - n.bit_length())
hours = st.integers(min_value=0, max_value=12)
values = st.sampled_from([None, 1.0, 2.5, -3.0, 4.25, 1e6 + 0.5])  # dyadic: sums are exact
merchants = st.sampled_from([None, "a", "b", "c"])
event_rows = st.lists(st.tuples(zipf_key, zipf_key, hours, values, merchants), max_size=30)
spine_rows = st.lists(
    st.tuples(st.one_of(zipf_key, st.none()), zipf_key, st.one_of(hours, st.none())),
    min_size=1,
    max_size=12,
).map(lambda rows: rows + rows[:2])  # always some duplicate spine rows


def _ts(hour: int | None) -> datetime | None:
    return None if hour is None else BASE + timedelta(hours=hour)


def _aggregate(function: str, frame: pd.DataFrame, column: str) -> Any:
    """``function`` of the events in ``frame`` (one window), by pandas."""
    if function == "count_events":
        return len(frame)
    present = frame[frame[column].notna()]
    col = present[column]
    if function == "count":
        return len(col)
    if function == "approx_count_distinct":
        return int(col.nunique())
    if col.empty:
        return None
    if function == "last":  # the latest time, then the greatest value
        return present.sort_values(["t", column]).iloc[-1][column]
    if function in ("stddev", "variance") and len(col) < 2:
        return None
    result = {
        "sum": col.sum, "avg": col.mean, "min": col.min, "max": col.max,
        "stddev": lambda: col.std(ddof=1), "variance": lambda: col.var(ddof=1),
    }[function]()  # fmt: skip
    return result.item() if hasattr(result, "item") else result


def _oracle(
    spine: list[tuple[Any, ...]],
    events: list[tuple[Any, ...]],
    aggs: list[tuple[str, str, int]],
    inclusive: bool,
) -> list[tuple[Any, ...]]:
    ev = pd.DataFrame(events, columns=["k1", "k2", "t", "v", "m"]).astype({"v": "float64"})
    out = []
    for k1, k2, t in spine:
        row: list[Any] = [k1, k2, _ts(t)]
        for column, function, w in aggs:
            if k1 is None or t is None:
                frame = ev.iloc[0:0]
            else:
                upper = ev["t"] <= t if inclusive else ev["t"] < t
                frame = ev[(ev["k1"] == k1) & (ev["k2"] == k2) & (ev["t"] > t - w) & upper]
            row.append(_aggregate(function, frame, column))
        out.append(tuple(row))
    return out


def _same(got: Any, expected: Any) -> bool:
    if isinstance(expected, float) and isinstance(got, float):
        return math.isclose(got, expected, rel_tol=1e-9, abs_tol=0.0)
    return bool(got == expected)


def _sort_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((x is None, x if x is not None else 0) for x in row[:3])


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    events=event_rows,
    spine=spine_rows,
    inclusive=st.booleans(),
    plan=st.sampled_from(sorted(PLANS)),
    zone=st.sampled_from(["UTC", "America/Los_Angeles", "Asia/Kolkata"]),
)
def test_window_aggregates_equal_the_oracle(
    spark: SparkSession,
    events: list[tuple[Any, ...]],
    spine: list[tuple[Any, ...]],
    inclusive: bool,
    plan: str,
    zone: str,
) -> None:
    ev = spark.createDataFrame(
        [(k1, k2, _ts(t), v, m) for k1, k2, t, v, m in events],
        "k1 int, k2 int, ts timestamp, v double, m string",
    )
    sp = spark.createDataFrame(
        [(k1, k2, _ts(t)) for k1, k2, t in spine], "k1 int, k2 int, t timestamp"
    )
    declared = [Aggregation("v", f, [f"{w}h" for w in WINDOWS_H]) for f in FUNCTIONS]
    declared += [Aggregation("m", f, "3h") for f in ("approx_count_distinct", "min", "max", "last")]
    previous = spark.conf.get("spark.sql.session.timeZone") or "UTC"
    spark.conf.set("spark.sql.session.timeZone", zone)  # the test's setting, restored below
    try:
        out = window_aggregates(
            sp, ev, keys=["k1", "k2"], spine_time_col="t", event_time_col="ts",
            aggregations=declared, inclusive=inclusive, tuning=PLANS[plan],
        )  # fmt: skip
        names = [n for a in declared for n in a.names]
        got = sorted((tuple(r) for r in out.select("k1", "k2", "t", *names).collect()), key=repr)
    finally:
        spark.conf.set("spark.sql.session.timeZone", previous)
    aggs = [(a.column, a.function, w // timedelta(hours=1)) for a in declared for w in a.windows]
    expected = sorted(_oracle(spine, events, aggs, inclusive), key=repr)
    got = sorted(got, key=_sort_key)
    expected = sorted(expected, key=_sort_key)
    assert len(got) == len(spine)
    # rows with equal (keys, time) are equal, so the sorted lists line up
    for g, e in zip(got, expected, strict=True):
        bad = [
            (name, gv, ev_)
            for name, gv, ev_ in zip(["k1", "k2", "t", *names], g, e, strict=True)
            if not _same(gv, ev_)
        ]
        assert not bad, f"spine row {e[:3]}: (feature, got, expected) {bad}"


kernel_events = st.lists(
    st.tuples(
        st.one_of(zipf_key, st.none()),
        st.integers(0, 20),
        st.one_of(st.none(), st.floats(-1e12, 1e12, allow_nan=False), st.sampled_from([0.1, 7.0])),
    ),
    max_size=40,
)
kernel_spine = st.lists(
    st.tuples(st.one_of(zipf_key, st.none()), st.one_of(st.integers(0, 25), st.none())),
    min_size=1,
    max_size=20,
)


@settings(max_examples=300, deadline=None)
@given(events=kernel_events, spine=kernel_spine, inclusive=st.booleans())
def test_kernel_equals_a_python_oracle_with_cancelling_floats(
    events: list[tuple[Any, ...]], spine: list[tuple[Any, ...]], inclusive: bool
) -> None:
    windows = [1, 4, 30]
    kernel = WindowKernel(
        spine_cols=("id",), key_cols=("k",), time_col="t", inclusive=inclusive,
        features=tuple(
            WindowFeature(f"{f}_{w}", f, None if f == "count_events" else "v", w)
            for f in FUNCTIONS for w in windows
        ),
    )  # fmt: skip
    out = kernel(
        pa.table({
            "id": list(range(len(spine))),
            "k": pa.array([k for k, _ in spine], pa.int64()),
            "t": pa.array([t for _, t in spine], pa.int64()),
        }),
        pa.table({
            "k": pa.array([k for k, _, _ in events], pa.int64()),
            "t": pa.array([t for _, t, _ in events], pa.int64()),
            "v": pa.array([v for _, _, v in events], pa.float64()),
        }),
    ).to_pydict()  # fmt: skip
    for i, (k, t) in enumerate(spine):
        for w in windows:
            inside = [
                (et, v)
                for ek, et, v in events
                if k is not None and t is not None and ek == k and t - w < et
                and (et <= t if inclusive else et < t)
            ]  # fmt: skip
            xs = [v for _, v in inside if v is not None]
            scale = math.fsum(abs(x) for x in xs)  # any summation order errs relative to it
            mean = math.fsum(xs) / len(xs) if xs else None
            var = math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1) if len(xs) > 1 else None
            spread = math.fsum((abs(x) + abs(mean)) ** 2 for x in xs) if mean is not None else 0.0
            want = {
                "count": len(xs), "count_events": len(inside),
                "sum": math.fsum(xs) if xs else None, "avg": mean,
                "min": min(xs, default=None), "max": max(xs, default=None),
                "variance": var, "stddev": None if var is None else math.sqrt(var),
                "last": max(((et, v) for et, v in inside if v is not None), default=(0, None))[1],
                "approx_count_distinct": len(set(xs)),
            }  # fmt: skip
            for f in FUNCTIONS:
                got, expected = out[f"{f}_{w}"][i], want[f]
                if f in ("sum", "avg", "variance", "stddev") and expected is not None:
                    tol = {"sum": scale, "avg": scale / max(len(xs), 1), "variance": spread}
                    slack = 1e-12 * tol.get(f, math.sqrt(spread)) + 1e-300
                    assert got is not None and abs(got - expected) <= slack, (f, w, k, t, got)
                else:
                    assert got == expected, (f, w, k, t, got, expected)
    assert np.all(np.array(out["count_1"]) <= np.array(out["count_30"]))

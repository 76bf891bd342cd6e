"""The per-group as-of merge (no Spark): random groups against a brute-force oracle."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from seeknal_spark.offline.pit.hot_keys import _boundaries, hot_tables, window_plan
from seeknal_spark.offline.pit.kernel import AsOfKernel, KernelSource
from seeknal_spark.offline.pit.tuning import PitTuning

small = st.integers(min_value=0, max_value=6)
feature_rows = st.lists(
    st.tuples(st.integers(0, 2), small, st.integers(0, 1), st.one_of(st.none(), small)),
    max_size=25,
)  # (source, key, time, value): ties on (key, time) are frequent
spine_rows = st.lists(
    st.tuples(st.one_of(st.none(), small), st.one_of(st.none(), small)), min_size=1, max_size=15
)


def _kernel(inclusive: bool, ttl: int | None) -> AsOfKernel:
    sources = tuple(
        KernelSource(
            index=s,
            tie_cols=(),
            value_cols=("v0",),
            out_names=(f"out{s}",),
            hash_col=None,
            matched_col=f"m{s}",
            ttl_us=ttl if s == 1 else None,
        )
        for s in range(3)
    )
    return AsOfKernel(
        spine_cols=("id",),
        key_cols=("k",),
        time_col="t",
        source_col="src",
        tie_order=("v0",),
        sources=sources,
        inclusive=inclusive,
    )


def _oracle(
    spine: list[tuple[Any, ...]],
    feats: list[tuple[Any, ...]],
    s: int,
    inclusive: bool,
    ttl: int | None,
) -> list[tuple[Any, bool]]:
    out = []
    for k, t in spine:
        cands = [
            (ft, v is not None, v if v is not None else 0, v)
            for src, fk, ft, v in feats
            if src == s
            and k is not None
            and t is not None
            and fk == k
            and (ft <= t if inclusive else ft < t)
            and (ttl is None or s != 1 or t - ft < ttl)
        ]
        if cands:
            best = max(cands)  # latest time, then greatest value (null lowest)
            out.append((best[3], True))
        else:
            out.append((None, False))
    return out


@settings(max_examples=300, deadline=None)
@given(
    spine=spine_rows,
    feats=feature_rows,
    inclusive=st.booleans(),
    ttl=st.one_of(st.none(), st.integers(1, 3)),
)
def test_kernel_matches_brute_force(
    spine: list[tuple[Any, ...]],
    feats: list[tuple[Any, ...]],
    inclusive: bool,
    ttl: int | None,
) -> None:
    spine_table = pa.table(
        {
            "id": pa.array(range(len(spine)), pa.int64()),
            "k": pa.array([k for k, _ in spine], pa.int64()),
            "t": pa.array([t for _, t in spine], pa.int64()),
        }
    )
    feat_table = pa.table(
        {
            "k": pa.array([k for _, k, _, _ in feats], pa.int64()),
            "t": pa.array([t for _, _, t, _ in feats], pa.int64()),
            "src": pa.array([s for s, _, _, _ in feats], pa.int16()),
            "v0": pa.array([v for _, _, _, v in feats], pa.float64()),
        }
    )
    out = _kernel(inclusive, ttl)(spine_table, feat_table)
    assert out.column("id").to_pylist() == list(range(len(spine)))
    for s in range(3):
        got = list(
            zip(out.column(f"out{s}").to_pylist(), out.column(f"m{s}").to_pylist(), strict=True)
        )
        want = [
            (None if v is None else float(v), m)
            for v, m in _oracle(spine, feats, s, inclusive, ttl)
        ]
        assert got == want


def test_boundaries_are_sampled_times_after_the_first() -> None:
    assert _boundaries([5, 7, 9, 11], 2) == (9,)
    assert _boundaries([5, 7, 9, 11], 4) == (7, 9, 11)
    assert _boundaries([5], 3) == ()


def test_shared_windows_keep_lead_ins_inside_the_previous_window() -> None:
    sampled = {0: {(1,): (0.5, (10, 20, 30, 40, 50, 60))}, 1: {(1,): (0.4, (15, 45))}}
    tuning = PitTuning(hot_key_share=0.1, hot_key_windows=4)
    [hot] = window_plan([0, 1], sampled, 1, tuning) or []
    # 40 is dropped: table 1 has no sampled row between 20 and 40
    assert hot.key == (1,) and hot.bounds == (20, 50)
    assert hot.leads == {0: (20, 50), 1: (15, 45)}


def test_one_table_windows_start_with_its_own_rows() -> None:
    sampled = {0: {(1,): (0.5, (10, 20, 30, 40, 50, 60)), (2,): (0.01, (5, 6))}}
    [hot] = window_plan([0], sampled, 1, PitTuning(hot_key_share=0.1, hot_key_windows=3)) or []
    assert hot.bounds == (30, 50) and hot.leads == {0: hot.bounds}


def test_tables_that_cannot_share_windows() -> None:
    sampled = {0: {(1,): (0.5, (10, 20, 30))}, 1: {(2,): (0.5, (10, 20, 30))}}
    tuning = PitTuning(hot_key_share=0.1)
    assert window_plan([0, 1], sampled, 1, tuning) is None
    assert hot_tables([0, 1], sampled, 1, tuning) == {0, 1}
    assert hot_tables([0, 1], sampled, 1, PitTuning(hot_key_share=0.6)) == set()

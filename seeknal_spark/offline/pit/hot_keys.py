"""Hot keys: which keys hold a large share of a feature table, and their time windows.

A sample of each table's keys and event times (at most ``PitTuning.sample_rows`` rows,
as Arrow) comes to the driver; a key holding more than ``hot_key_share`` of a table's
sampled rows is *hot*, and its history is split into time windows, each with a lead-in
that starts at a sampled real row (see :mod:`seeknal_spark.offline.pit.planner`).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from seeknal_spark.offline.pit.tables import SRC_COL, T_COL
from seeknal_spark.offline.pit.tuning import PitTuning

__all__ = [
    "HotKey",
    "SampledKeys",
    "hot_tables",
    "read_hot_keys",
    "sample_queries",
    "window_plan",
]

_SRC = SRC_COL


SampledKeys = dict[int, dict[tuple[Any, ...], tuple[float, tuple[int, ...]]]]
"""Per feature table index, its most frequent sampled keys: ``key values -> (share of the
table's sampled rows, sorted sampled event times of the rows the join keeps)``."""


@dataclass(frozen=True)
class HotKey:
    """A key whose rows are split into time windows in one merge pass.

    Window 0 holds the times before ``bounds[0]``, window ``j`` those from
    ``bounds[j - 1]`` on. ``leads[table][j - 1]`` is where window ``j``'s *lead-in* for that
    table starts: a sampled event time of the table's own rows at or before
    ``bounds[j - 1]``. The table's rows from there to the window start are copied into
    window ``j`` too, so the row a spine row needs from before its window is there.
    """

    key: tuple[Any, ...]
    bounds: tuple[int, ...]
    leads: dict[int, tuple[int, ...]]


def sample_queries(samples: Sequence[tuple[int, DataFrame]], tuning: PitTuning) -> list[DataFrame]:
    """The hot-key samples: one query per set of key types, rows ``(__pit_src, keys...,
    T_COL)``, at most ``sample_rows`` per table (the first rows of its partitions, which
    costs a fraction of a full scan). Bring them to the driver with ``toArrow()`` and read
    them with :func:`read_hot_keys`."""
    by_types: dict[tuple[str, ...], list[DataFrame]] = {}
    for index, frame in samples:
        rows = frame.select(F.lit(index).cast("int").alias(_SRC), *frame.columns)
        if tuning.sample_rows is not None:
            rows = rows.limit(tuning.sample_rows)
        types = tuple(f.dataType.json() for f in frame.schema.fields)
        by_types.setdefault(types, []).append(rows)
    queries = []
    for group in by_types.values():
        sample = group[0]
        for rows in group[1:]:
            sample = sample.unionByName(rows)
        queries.append(sample)
    return queries


def read_hot_keys(
    samples: Sequence[pa.Table], usable: Callable[[int, int], bool], tuning: PitTuning
) -> SampledKeys:
    """Per table, its ``max_hot_keys`` most frequent sampled keys (seen at least twice,
    unless ``hot_key_share`` is 0), with their share of the table's sampled rows and the
    sampled event times for which ``usable(table, time)`` holds (rows the join keeps)."""
    min_count = 1 if tuning.hot_key_share == 0.0 else 2
    count, times_col = f"{T_COL}_count", f"{T_COL}_list"
    sampled: SampledKeys = {}
    for sample in samples:
        if sample.num_rows == 0:
            continue
        kcols = [c for c in sample.column_names if c not in (_SRC, T_COL)]
        totals = sample.group_by([_SRC]).aggregate([(T_COL, "count")]).to_pydict()
        total = dict(zip(totals[_SRC], totals[count], strict=True))
        per_key = sample.group_by([_SRC, *kcols]).aggregate([(T_COL, "count"), (T_COL, "list")])
        per_key = per_key.filter(pc.field(count) >= min_count)
        per_key = per_key.sort_by([(_SRC, "ascending"), (count, "descending")])
        for row in per_key.to_pylist():
            keys = sampled.setdefault(row[_SRC], {})
            if len(keys) >= tuning.max_hot_keys:
                continue
            times = tuple(sorted({t for t in row[times_col] if usable(row[_SRC], t)}))
            keys[tuple(row[c] for c in kcols)] = (row[count] / total[row[_SRC]], times)
    return sampled


def hot_tables(
    tables: Sequence[int], sampled: SampledKeys, shuffle_parts: int, tuning: PitTuning
) -> set[int]:
    """The tables among ``tables`` that have a hot key: one holding more than
    ``hot_key_share`` of the table's sampled rows."""
    share = _share(shuffle_parts, tuning)
    return {
        s for s in tables if any(fraction > share for fraction, _ in sampled.get(s, {}).values())
    }


def _share(shuffle_parts: int, tuning: PitTuning) -> float:
    if tuning.hot_key_share is not None:
        return tuning.hot_key_share
    return 1.0 / (2 * max(shuffle_parts, 1))


def window_plan(
    tables: Sequence[int], sampled: SampledKeys, shuffle_parts: int, tuning: PitTuning
) -> list[HotKey] | None:
    """Time windows shared by ``tables`` for every key hot in one of them; None when they
    cannot share them (a hot key of one table is not among another's sampled keys).

    A key's boundaries cut the union of its sampled times into even parts. A boundary is
    kept only when every table has a sampled time between the previous kept boundary and
    it: a table's lead-in into a window then lies inside the previous window, so no row
    is copied more than twice. With one table, the boundaries are its own sampled times
    and every lead-in is empty.
    """
    parts = max(shuffle_parts, 1)
    share = _share(shuffle_parts, tuning)
    max_w = tuning.max_windows or 4 * parts
    hot: dict[tuple[Any, ...], float] = {}
    for s in tables:
        for key, (fraction, _) in sampled.get(s, {}).items():
            if fraction > share:
                hot[key] = max(hot.get(key, 0.0), fraction)
    plans = []
    for key, fraction in sorted(hot.items(), key=lambda item: -item[1]):
        per_table = {}
        for s in tables:
            entry = sampled.get(s, {}).get(key)
            if entry is None or (not entry[1] and len(tables) > 1):
                return None
            per_table[s] = entry[1]
        if not all(per_table.values()):
            continue  # none of its sampled rows is kept: nothing to split
        n = tuning.hot_key_windows or min(max_w, max(2, math.ceil(fraction * 2 * parts)))
        union = sorted(set().union(*per_table.values()))
        bounds: list[int] = []
        for b in _boundaries(union, n):
            low = bounds[-1] if bounds else None
            if all(_sampled_between(times, low, b) for times in per_table.values()):
                bounds.append(b)
        if bounds:
            leads = {
                s: tuple(times[bisect.bisect_right(times, b) - 1] for b in bounds)
                for s, times in per_table.items()
            }
            plans.append(HotKey(key, tuple(bounds), leads))
    return plans


def _sampled_between(times: Sequence[int], low: int | None, high: int) -> bool:
    """Whether ``times`` (sorted) has a time in ``[low, high]`` (``low`` None: unbounded)."""
    i = bisect.bisect_right(times, high) - 1
    return i >= 0 and (low is None or times[i] >= low)


def _boundaries(times: Sequence[int], windows: int) -> tuple[int, ...]:
    """``windows - 1`` increasing event times that cut ``times`` (sorted) into even parts."""
    picked = {times[len(times) * j // windows] for j in range(1, windows)}
    return tuple(sorted(t for t in picked if t > times[0]))

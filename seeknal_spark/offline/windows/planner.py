"""How :func:`~seeknal_spark.offline.windows.window_aggregates` runs: pruning and hot keys.

1. **Internal shape and time span.** The events become the as-of engine's internal shape
   (:func:`seeknal_spark.offline.pit.tables.source_plan`: keys ``__pit_k0``..., UTC
   microseconds ``__pit_t``, aggregated columns ``__pit_s0_f0``...), with the longest
   window as the TTL: events with a null key or time, after the last spine time, or at or
   before the first spine time minus the longest window are dropped, as no window can
   hold them.
2. **Per key.** When the spine has at most ``WindowTuning.prune_keys_max`` distinct keys
   (estimated), a table of each spine key's first and last spine time is broadcast and
   the events of other keys, after their key's last spine time or too old for its first
   one are dropped too (:func:`seeknal_spark.offline.pit.tables.prune_to_spine`), all
   before any shuffle.
3. **Hot keys.** A sample of the spine's and the events' keys and times (the as-of
   engine's sampler, at most ``sample_rows`` rows each, as Arrow) finds the keys holding
   more than ``hot_key_share`` of either; each is split into time ranges cut at sampled
   times (:class:`HotRange`), so no task holds one key's whole history.

The spine's time range and distinct-key estimate (one row) and the samples are computed
side by side, as two small jobs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DataType

from seeknal_spark.offline.pit.hot_keys import read_hot_keys, sample_queries
from seeknal_spark.offline.pit.source import AsOfSource
from seeknal_spark.offline.pit.tables import (
    T_COL,
    SourcePlan,
    key_times,
    prune_to_spine,
    source_plan,
    spine_key_ranges,
)
from seeknal_spark.offline.windows.tuning import WindowTuning

__all__ = ["HotRange", "WindowPlan", "plan_windows"]

_SPINE, _EVENTS = 0, 1  # table indexes in the hot-key sample


@dataclass(frozen=True)
class HotRange:
    """A hot key split into time ranges: range 0 holds the times before ``bounds[0]``,
    range ``j`` those from ``bounds[j - 1]`` to before ``bounds[j]``."""

    key: tuple[Any, ...]
    bounds: tuple[int, ...]


@dataclass(frozen=True)
class WindowPlan:
    """The decisions of one window aggregation.

    Parameters
    ----------
    source:
        The events in the internal shape (``source.feats``), pruned (steps 1-2).
    value_cols:
        ``{event column: internal column}`` of the aggregated columns.
    pruned:
        Whether the events were pruned per spine key (step 2).
    hot_keys:
        Keys split into time ranges (step 3).
    buckets:
        Hash buckets of the keys that are not hot.
    spine_time_range:
        The spine's first and last time (UTC microseconds); None when no spine row has one.
    """

    source: SourcePlan
    value_cols: Mapping[str, str]
    pruned: bool
    hot_keys: tuple[HotRange, ...]
    buckets: int
    spine_time_range: tuple[int, int] | None

    @property
    def events(self) -> DataFrame:
        return self.source.feats

    def describe(self) -> str:
        """One line: pruning, buckets and hot keys."""
        pruned = "pruned per key" if self.pruned else "not pruned per key"
        return (
            f"window aggregation: events {pruned}, {self.buckets} buckets, "
            f"{len(self.hot_keys)} hot key(s) split into time ranges"
        )


def _boundaries(times: Sequence[int], ranges: int) -> tuple[int, ...]:
    """``ranges - 1`` increasing times that cut ``times`` (sorted) into even parts."""
    picked = {times[len(times) * j // ranges] for j in range(1, ranges)}
    return tuple(sorted(t for t in picked if t > times[0]))


def _hot_ranges(
    sampled: Mapping[int, Mapping[tuple[Any, ...], tuple[float, tuple[int, ...]]]],
    shuffle_parts: int,
    tuning: WindowTuning,
) -> tuple[HotRange, ...]:
    """The hot keys of the sample and their time ranges (step 3)."""
    parts = max(shuffle_parts, 1)
    share = tuning.hot_key_share if tuning.hot_key_share is not None else 1.0 / (2 * parts)
    hot: dict[tuple[Any, ...], float] = {}
    for table in (_SPINE, _EVENTS):
        for key, (fraction, _) in sampled.get(table, {}).items():
            if fraction > share:
                hot[key] = max(hot.get(key, 0.0), fraction)
    most = tuning.max_windows or 4 * parts
    plans = []
    for key, fraction in sorted(hot.items(), key=lambda item: -item[1])[: tuning.max_hot_keys]:
        times = sorted(
            {t for table in (_SPINE, _EVENTS) for t in sampled.get(table, {}).get(key, (0, ()))[1]}
        )
        if not times:
            continue
        n = tuning.hot_key_windows or min(most, max(2, math.ceil(fraction * 2 * parts)))
        bounds = _boundaries(times, n)
        if bounds:
            plans.append(HotRange(key, bounds))
    return tuple(plans)


def plan_windows(
    spine: DataFrame,
    events: DataFrame,
    *,
    keys: tuple[str, ...],
    casts: dict[str, DataType],
    event_time_col: str,
    columns: Sequence[str],
    spine_time: Column,
    max_window: timedelta,
    inclusive: bool,
    tuning: WindowTuning,
) -> WindowPlan:
    """The plan of a window aggregation of ``columns`` of ``events`` onto ``spine``
    (validated); runs the two small jobs of the module docstring."""
    src = AsOfSource(events, keys, event_time_col, tuple(columns), ttl=max_window)
    shape = source_plan(0, src, casts, start_us=None, tmin=None, tmax=None)
    spine_keys = spine.select(*shape.spine_key_columns(), spine_time.alias(T_COL))
    present = F.col(T_COL).isNotNull()
    for kc in shape.key_cols:
        present = present & F.col(kc).isNotNull()
    queries = []
    if tuning.max_hot_keys > 0:
        frames = [(_SPINE, spine_keys.where(present)), (_EVENTS, key_times(src, None))]
        queries = sample_queries(frames, tuning.sampling())
    distinct = F.approx_count_distinct(F.struct(*[F.col(f"`{k}`") for k in keys]))
    stats_query = spine.agg(
        F.min(spine_time).alias("tmin"), F.max(spine_time).alias("tmax"), distinct.alias("nk")
    )
    with ThreadPoolExecutor(max_workers=1 + len(queries)) as pool:  # run side by side
        stats_job = pool.submit(stats_query.collect)
        sample_jobs = [pool.submit(query.toArrow) for query in queries]
        stats = stats_job.result()[0]
        samples = [job.result() for job in sample_jobs]
    tmin = None if stats["tmin"] is None else int(stats["tmin"])
    tmax = None if stats["tmax"] is None else int(stats["tmax"])
    plan = source_plan(0, src, casts, start_us=None, tmin=tmin, tmax=tmax)
    pruned = 0 < int(stats["nk"] or 0) <= tuning.prune_keys_max
    if pruned:
        ranges = spine_key_ranges(spine, plan, spine_time)
        plan = prune_to_spine(plan, ranges, inclusive)
    span = max_window // timedelta(microseconds=1)

    def usable(table: int, t: int) -> bool:  # the pruning of step 1, for one sampled time
        if table == _SPINE:
            return True
        return tmin is not None and tmax is not None and tmin - span < t <= tmax

    shuffle_parts = int(spine.sparkSession.conf.get("spark.sql.shuffle.partitions") or "8")
    sampled = read_hot_keys(samples, usable, tuning.sampling()) if samples else {}
    return WindowPlan(
        source=plan,
        value_cols=dict(zip(columns, plan.value_cols, strict=True)),
        pruned=pruned,
        hot_keys=_hot_ranges(sampled, shuffle_parts, tuning),
        buckets=tuning.buckets or max(8, 4 * shuffle_parts),
        spine_time_range=None if tmin is None or tmax is None else (tmin, tmax),
    )

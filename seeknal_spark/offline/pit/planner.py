"""How :func:`seeknal_spark.offline.pit.point_in_time_join` runs: cogrouped sort-and-scan merges.

Feature tables that share key columns are merged together, one pass per key set:

1. **Prune.** Feature rows with a null key or time are dropped, and so are rows after the
   last spine time, before ``feature_start_time``, and - with a TTL - at or before the first
   spine time minus the TTL. When the spine has few enough distinct keys
   (``PitTuning.prune_keys_max``), the same is done per key: a table of each spine key's
   first and last spine time is broadcast, and feature rows of keys not in the spine, after
   their key's last spine time, or expired before its first one are dropped, all before
   any shuffle (on uniform keys this removes about two thirds of the rows).
2. **Group.** Every spine row and feature row gets a group id: a hash bucket of its keys,
   or, for a *hot* key (one holding a large share of a sample of some table's rows), the
   key's own time window. A hot key's history is thereby split across tasks.
3. **Lead-ins carry the history.** A spine row needs, from each table, the latest row at
   or before its time, which may lie before its window. Each table has, per window, a
   *lead-in*: it starts at a sampled event time of the table's own rows at or before the
   window's start, and the table's rows from there to the window start are copied into the
   window as well. The sampled row is a real row, so the latest row before the window start
   is never older than it: the answer is always inside the window, exact, with no seed
   aggregate. A window boundary is kept only when every table has a sampled row since the
   previous boundary, so a lead-in never reaches back beyond the previous window (no row is
   copied more than twice); with one table the boundaries are its own sampled times and
   the lead-ins are empty. When a hot key of one table is not among another table's sampled
   keys, the tables cannot share windows and each table with a hot key gets its own pass.
4. **Merge.** Spine rows and feature rows are shuffled by group id (each side once, only
   its own columns) and every group is resolved by
   :class:`~seeknal_spark.offline.pit.kernel.AsOfKernel`: a sort and a linear scan, never a
   pairing of every row with every row.

The output of one pass is the spine of the next, so every spine column travels along.

:func:`plan_join` makes these decisions and returns them as a :class:`PitPlan` (which
passes, merge or key join, which keys are hot and how they are split, whether rows were
pruned per key); :func:`seeknal_spark.offline.pit.join.point_in_time_join` runs it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DataType

from seeknal_spark.offline.pit.hot_keys import (
    HotKey,
    hot_tables,
    read_hot_keys,
    sample_queries,
    window_plan,
)
from seeknal_spark.offline.pit.source import AsOfSource
from seeknal_spark.offline.pit.tables import (
    SourcePlan,
    key_times,
    prune_to_spine,
    source_plan,
    spine_key_ranges,
    ttl_us,
)
from seeknal_spark.offline.pit.tuning import PitTuning

__all__ = ["PassPlan", "PitPlan", "Strategy", "plan_join", "use_key_join"]

logger = logging.getLogger(__name__)

Strategy = Literal["merge", "join"]


@dataclass(frozen=True)
class PassPlan:
    """One pass of the join: feature tables sharing key columns (and key types).

    Parameters
    ----------
    keys:
        The key columns of its tables.
    strategy:
        ``"merge"`` (cogrouped sort-and-scan) or ``"join"`` (key join ranked per spine row).
    pruned:
        Whether its feature rows were pruned per spine key (step 1).
    tables:
        Its feature tables in the internal shape, pruned.
    hot_keys:
        Keys split into time windows (merge only), with their windows and lead-ins.
    """

    keys: tuple[str, ...]
    strategy: Strategy
    pruned: bool
    tables: tuple[SourcePlan, ...]
    hot_keys: tuple[HotKey, ...] = ()

    @property
    def sources(self) -> tuple[int, ...]:
        """Indexes (in the join's ``sources``) of the tables of this pass."""
        return tuple(t.index for t in self.tables)

    def describe(self) -> str:
        """One line: strategy, keys, tables, pruning and hot keys."""
        pruned = "pruned per key" if self.pruned else "not pruned per key"
        return (
            f"{self.strategy} on {list(self.keys)} for tables {list(self.sources)}, {pruned}, "
            f"{len(self.hot_keys)} hot key(s)"
        )


@dataclass(frozen=True)
class PitPlan:
    """How a point-in-time join runs: its passes, in order (each one's output is the
    spine of the next), and what they were chosen from.

    Parameters
    ----------
    passes:
        The passes, in order.
    buckets:
        Hash buckets of the keys that are not hot (merge passes).
    spine_time_range:
        The spine's first and last time (UTC microseconds); None when no spine row has one.
    distinct_keys:
        Per key set, the estimated distinct keys of the spine.
    """

    passes: tuple[PassPlan, ...]
    buckets: int
    spine_time_range: tuple[int, int] | None
    distinct_keys: Mapping[tuple[str, ...], int] = field(default_factory=dict)

    def describe(self) -> str:
        """The plan, one line per pass."""
        return "\n".join(f"pass {n}: {p.describe()}" for n, p in enumerate(self.passes))


def use_key_join(
    tuning: PitTuning, spine: DataFrame, keys: tuple[str, ...], *, pruned: bool, hot: bool
) -> bool:
    """Whether a pass uses the key join rather than the merge (``PitTuning.plan``).

    ``"auto"`` takes the merge when the feature rows were pruned per key (fewer rows
    reach the merge than the key join would pair: measured faster) or a table has a hot
    key; otherwise it runs one small job for the most spine rows of one key and takes the
    key join when that is at most ``join_max_spine_rows``.
    """
    if tuning.plan != "auto":
        return tuning.plan == "join"
    if pruned or hot:
        return False
    per_key = spine.groupBy(*[F.col(f"`{k}`") for k in keys]).count()
    most = per_key.agg(F.max("count")).collect()[0][0]
    return int(most or 0) <= tuning.join_max_spine_rows


def plan_join(
    spine: DataFrame,
    sources: Sequence[AsOfSource],
    casts: Sequence[dict[str, DataType]],
    *,
    spine_time: Column,
    inclusive: bool,
    start_us: int | None,
    tuning: PitTuning,
) -> PitPlan:
    """The plan of a join of ``sources`` (validated, non-empty) onto ``spine``.

    Two small jobs run side by side: the spine's time range and, per key set, an estimate
    of its distinct keys (one row to the driver); a sample of the feature keys to find
    hot keys (at most ``sample_rows`` rows per table, as Arrow). The auto strategy may
    run one more small job per pass (:func:`use_key_join`).
    """
    key_sets = sorted({src.keys for src in sources})
    stats_exprs = [F.min(spine_time).alias("tmin"), F.max(spine_time).alias("tmax")]
    for n, keys in enumerate(key_sets):
        distinct = F.approx_count_distinct(F.struct(*[F.col(f"`{k}`") for k in keys]))
        stats_exprs.append(distinct.alias(f"nk{n}"))
    queries = []
    if tuning.max_hot_keys > 0:
        frames = [(s, key_times(src, start_us)) for s, src in enumerate(sources)]
        queries = sample_queries(frames, tuning)
    with ThreadPoolExecutor(max_workers=1 + len(queries)) as pool:  # run side by side
        stats_job = pool.submit(spine.agg(*stats_exprs).collect)
        sample_jobs = [pool.submit(query.toArrow) for query in queries]
        rows = stats_job.result()
        samples = [job.result() for job in sample_jobs]
    stats = rows[0]
    tmin = None if stats["tmin"] is None else int(stats["tmin"])
    tmax = None if stats["tmax"] is None else int(stats["tmax"])
    n_keys = {keys: int(stats[f"nk{n}"] or 0) for n, keys in enumerate(key_sets)}
    logger.debug("point-in-time join: spine time range %s..%s", tmin, tmax)

    plans = [
        source_plan(s, src, casts[s], start_us=start_us, tmin=tmin, tmax=tmax)
        for s, src in enumerate(sources)
    ]
    shuffle_parts = int(spine.sparkSession.conf.get("spark.sql.shuffle.partitions") or "8")

    def usable(s: int, t: int) -> bool:  # the pruning of source_plan, for one time
        ttl = sources[s].ttl
        if tmax is None or tmin is None or t > tmax:
            return False
        return ttl is None or t > tmin - ttl_us(ttl)

    sampled = read_hot_keys(samples, usable, tuning)
    buckets = tuning.buckets or max(8, 4 * shuffle_parts)

    # passes: tables with the same key columns and key types are merged together, sharing
    # the time windows of their hot keys; when they cannot share them, every table with a
    # hot key is merged in a pass of its own
    by_keys: dict[tuple[Any, ...], list[SourcePlan]] = {}
    for plan in plans:
        types = tuple(plan.feats.schema[c].dataType.json() for c in plan.key_cols)
        by_keys.setdefault((plan.keys, types), []).append(plan)
    groups: list[tuple[tuple[str, ...], bool, list[SourcePlan], list[HotKey]]] = []
    for (keys, _), unpruned in by_keys.items():
        pruned = 0 < n_keys[keys] <= tuning.prune_keys_max
        tables = unpruned
        if pruned:  # one spine-key table per key set, shared by its passes
            ranges = spine_key_ranges(spine, unpruned[0], spine_time)
            tables = [prune_to_spine(plan, ranges, inclusive) for plan in unpruned]
        shared = window_plan([p.index for p in tables], sampled, shuffle_parts, tuning)
        if shared is not None:
            groups.append((keys, pruned, tables, shared))
            continue
        alone = hot_tables([p.index for p in tables], sampled, shuffle_parts, tuning)
        rest = [p for p in tables if p.index not in alone]
        if rest:
            groups.append((keys, pruned, rest, []))
        for p in tables:
            if p.index in alone:
                own = window_plan([p.index], sampled, shuffle_parts, tuning) or []
                groups.append((keys, pruned, [p], own))
    passes = []
    for keys, pruned, tables, hot_keys in groups:
        join = use_key_join(tuning, spine, keys, pruned=pruned, hot=bool(hot_keys))
        passes.append(
            PassPlan(
                keys=keys,
                strategy="join" if join else "merge",
                pruned=pruned,
                tables=tuple(tables),
                hot_keys=() if join else tuple(hot_keys),
            )
        )
    return PitPlan(
        passes=tuple(passes),
        buckets=buckets,
        spine_time_range=None if tmin is None or tmax is None else (tmin, tmax),
        distinct_keys=n_keys,
    )

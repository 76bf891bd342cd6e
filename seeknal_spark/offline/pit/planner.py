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
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    IntegerType,
    LongType,
    MapType,
    ShortType,
    StructField,
    StructType,
)

from seeknal_spark.offline.pit.kernel import AsOfKernel, KernelSource, as_cogroup_function

__all__ = [
    "HASH_COL",
    "HotKey",
    "SampledKeys",
    "PitTuning",
    "SourcePlan",
    "sample_queries",
    "join_pass",
    "merge_pass",
    "read_hot_keys",
    "hot_tables",
    "window_plan",
]

logger = logging.getLogger(__name__)

P = "__pit_"  # prefix of every internal column
T_COL = f"{P}t"  # UTC microseconds
_G = f"{P}g"  # group id of the cogroup
_HI = f"{P}hi"  # index of a hot key
_BOUNDS = f"{P}bounds"  # event times where the time windows of a hot key start
_LEADS = f"{P}leads"  # event times where the lead-ins of a table into those windows start
HASH_COL = f"{P}h"  # hash of the feature values that cannot be ordered
_SRC = f"{P}src"  # index of the feature table a row comes from


@dataclass(frozen=True)
class PitTuning:
    """Knobs of the join plan; they never change the result, only how it is computed.

    Parameters
    ----------
    sample_rows:
        Feature rows per table read to find hot keys: the first rows of its partitions,
        which costs a fraction of a full scan (a biased sample when files are sorted by
        key: a missed hot key only costs time). None: every row.
    hot_key_share:
        A key holding more than this share of the sampled rows of a feature table is split
        into time windows. None: ``1 / (2 * shuffle partitions)``. ``0.0`` splits every
        sampled key (for tests).
    max_hot_keys:
        At most this many keys per feature table are split (the hot-key table is broadcast).
    max_windows:
        At most this many time windows per hot key. None: ``4 * shuffle partitions``.
    hot_key_windows:
        Split every hot key into this many windows (for tests; fewer when its sample has
        fewer distinct times); None: from its share.
    prune_keys_max:
        Feature rows are pruned per key (a broadcast table of each spine key's first and
        last spine time) when the spine has at most this many distinct keys (estimated):
        about 32 bytes per key for a numeric key go through the driver. 0 disables it.
    plan:
        ``"merge"``: the cogrouped merge above. ``"join"``: per table, a key join on
        ``event time <= spine time`` ranked per spine row, inside key partitions (the spine
        is shuffled by key once). Cheaper when keys have few spine rows and the feature
        rows could not be pruned per key, ruinous when a key has many spine rows and many
        feature rows. ``"auto"``: the merge when the feature rows are pruned per key (see
        ``prune_keys_max``) or a table has a hot key; else one small job finds the most
        spine rows of one key, and the join is used when that is at most
        ``join_max_spine_rows`` (each feature row then pairs with at most that many spine
        rows).
    join_max_spine_rows:
        See ``plan``.
    buckets:
        Hash buckets the keys that are not hot fall into (each bucket is merged in one
        Python call, so its rows must fit in a worker's memory). None: ``4 * shuffle
        partitions``, at least 8.
    """

    sample_rows: int | None = 50_000
    hot_key_share: float | None = None
    max_hot_keys: int = 64
    max_windows: int | None = None
    hot_key_windows: int | None = None
    prune_keys_max: int = 1_000_000
    buckets: int | None = None
    plan: str = "auto"
    join_max_spine_rows: int = 16

    def __post_init__(self) -> None:
        if self.plan not in ("auto", "merge", "join"):
            raise ValueError(f"plan must be 'auto', 'merge' or 'join', got {self.plan!r}")
        if self.sample_rows is not None and self.sample_rows < 1:
            raise ValueError(f"sample_rows must be >= 1 (or None), got {self.sample_rows}")
        if self.hot_key_share is not None and not 0.0 <= self.hot_key_share <= 1.0:
            raise ValueError(f"hot_key_share must be in [0, 1], got {self.hot_key_share}")
        if self.max_hot_keys < 0 or self.prune_keys_max < 0:
            raise ValueError("max_hot_keys and prune_keys_max must be >= 0")
        for name in ("max_windows", "hot_key_windows", "buckets"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")


def sortable(dtype: DataType) -> bool:
    """Whether values of ``dtype`` can be ordered by the merge (atomic types only)."""
    return not isinstance(dtype, (ArrayType, MapType, StructType))


@dataclass(frozen=True)
class SourcePlan:
    """One feature table in the internal shape, pruned, ready to merge.

    ``feats`` has the key columns ``key_cols``, ``T_COL``, the tie-breakers ``tie_cols``,
    the value columns ``value_cols`` (named as in the output) and, when some values
    cannot be ordered, ``hash_col``: a hash of those, the last tie-breaker.
    """

    index: int
    feats: DataFrame
    keys: tuple[str, ...]
    key_cols: tuple[str, ...]
    key_casts: dict[str, DataType]
    tie_cols: tuple[str, ...]
    value_cols: tuple[str, ...]
    sortable_value_cols: tuple[str, ...]
    hash_col: str | None
    matched_col: str
    ttl_us: int | None

    def spine_key_columns(self) -> list[Column]:
        """The spine's key columns, cast to this table's key types, named ``key_cols``."""
        cols = []
        for key, kc in zip(self.keys, self.key_cols, strict=True):
            cast = self.key_casts.get(key)
            col = F.col(f"`{key}`")
            cols.append((col if cast is None else col.cast(cast)).alias(kc))
        return cols


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


def _slots(types: Sequence[DataType], slots: list[DataType], prefix: str) -> list[str]:
    """Slot column names for columns of ``types``: a slot of the same type after the
    previous column's slot is reused, else a new one is added (so each table's columns
    keep their order in the slots)."""
    names, after = [], -1
    for dtype in types:
        found = next((i for i in range(after + 1, len(slots)) if slots[i] == dtype), None)
        if found is None:
            slots.append(dtype)
            found = len(slots) - 1
        names.append(f"{prefix}{found}")
        after = found
    return names


def merge_pass(
    spine: DataFrame,
    plans: Sequence[SourcePlan],
    *,
    spine_time: Column,
    hot_keys: Sequence[HotKey],
    buckets: int,
    inclusive: bool,
) -> DataFrame:
    """``spine`` with the value columns and matched flag of every plan appended (steps 1-4).

    ``plans`` share their key columns and types: their rows are merged in one cogroup,
    sharing columns (slots) of equal types.
    """
    first = plans[0]
    kcols = list(first.key_cols)
    spine_cols = list(spine.columns)
    left = spine.select(
        *[F.col(f"`{c}`") for c in spine_cols],
        *first.spine_key_columns(),
        spine_time.alias(T_COL),
    )

    # the feature rows of every table, in shared slot columns
    tie_slots: list[DataType] = []
    value_slots: list[DataType] = []
    frames, kernel_sources = [], []
    for plan in plans:
        ftypes = {f.name: f.dataType for f in plan.feats.schema.fields}
        ties = _slots([ftypes[c] for c in plan.tie_cols], tie_slots, f"{P}tb")
        values = _slots([ftypes[c] for c in plan.value_cols], value_slots, f"{P}v")
        sel = [F.col(c) for c in (*kcols, T_COL)] + [F.lit(plan.index).cast("short").alias(_SRC)]
        sel += [F.col(c).alias(n) for c, n in zip(plan.tie_cols, ties, strict=True)]
        sel += [F.col(c).alias(n) for c, n in zip(plan.value_cols, values, strict=True)]
        if plan.hash_col is not None:
            sel.append(F.col(plan.hash_col).alias(HASH_COL))
        frames.append(plan.feats.select(*sel))
        kernel_sources.append(
            KernelSource(
                index=plan.index,
                tie_cols=tuple(ties),
                value_cols=tuple(values),
                out_names=plan.value_cols,
                hash_col=HASH_COL if plan.hash_col is not None else None,
                matched_col=plan.matched_col,
                ttl_us=plan.ttl_us,
            )
        )
    right = frames[0]
    for frame in frames[1:]:
        right = right.unionByName(frame, allowMissingColumns=True)
    tie_order = [f"{P}tb{i}" for i in range(len(tie_slots))]
    tie_order += [f"{P}v{i}" for i, t in enumerate(value_slots) if sortable(t)]
    if any(plan.hash_col is not None for plan in plans):
        tie_order.append(HASH_COL)

    bucket = F.pmod(F.xxhash64(*[F.col(c) for c in kcols]), F.lit(buckets)).cast("int")
    if hot_keys:
        logger.info("point-in-time join: %d hot keys split into time windows", len(hot_keys))
        session = spine.sparkSession
        key_fields = [StructField(kc, right.schema[kc].dataType, False) for kc in kcols]
        bounds_field = StructField(_BOUNDS, ArrayType(LongType(), False), False)
        spine_hot = session.createDataFrame(
            [(*h.key, i, list(h.bounds)) for i, h in enumerate(hot_keys)],
            StructType([*key_fields, StructField(_HI, IntegerType(), False), bounds_field]),
        )
        feat_hot = session.createDataFrame(
            [
                (*h.key, src, i, list(h.bounds), list(leads))
                for i, h in enumerate(hot_keys)
                for src, leads in h.leads.items()
            ],
            StructType(
                [
                    *key_fields,
                    StructField(_SRC, ShortType(), False),
                    StructField(_HI, IntegerType(), False),
                    bounds_field,
                    StructField(_LEADS, ArrayType(LongType(), False), False),
                ]
            ),
        )
        max_w = max(len(h.bounds) for h in hot_keys) + 1
        t = F.col(T_COL)
        # window = how many boundaries are at or before the row's time (a spine row of a
        # strict join: before it); a feature row also goes to the later windows whose
        # lead-in starts at or before it
        window = F.size(F.filter(F.col(_BOUNDS), lambda b: b <= t))
        spine_window = window if inclusive else F.size(F.filter(F.col(_BOUNDS), lambda b: b < t))
        last = F.greatest(window, F.size(F.filter(F.col(_LEADS), lambda b: b <= t)))

        def group_of(w: Column) -> Column:
            return F.lit(buckets) + F.col(_HI) * F.lit(max_w) + w

        left = left.join(F.broadcast(spine_hot), kcols, "left").select(
            *[F.col(f"`{c}`") for c in left.columns],
            F.when(F.col(_HI).isNull(), bucket).otherwise(group_of(spine_window)).alias(_G),
        )
        # a row's own group, then as many copies as it has lead-ins (the groups of one
        # hot key's windows are consecutive); measured: one conditional array per row
        # inside explode costs twice as much as this
        frame_cols = right.columns
        right = right.join(F.broadcast(feat_hot), [*kcols, _SRC], "left")
        own_group = F.when(F.col(_HI).isNull(), bucket).otherwise(group_of(window))
        if any(leads != h.bounds for h in hot_keys for leads in h.leads.values()):
            copies = F.when(F.col(_HI).isNull(), F.lit(0)).otherwise(last - window)
            right = right.select(
                *frame_cols, own_group.alias(_G), copies.alias(f"{P}copies")
            ).select(
                *frame_cols,
                F.explode(F.sequence(F.col(_G), F.col(_G) + F.col(f"{P}copies"))).alias(_G),
            )
        else:  # every lead-in is empty: no copies
            right = right.select(*frame_cols, own_group.alias(_G))
    else:
        left = left.withColumn(_G, bucket)
        right = right.withColumn(_G, bucket)

    kernel = AsOfKernel(
        spine_cols=tuple(spine_cols),
        key_cols=tuple(kcols),
        time_col=T_COL,
        source_col=_SRC,
        tie_order=tuple(tie_order),
        sources=tuple(kernel_sources),
        inclusive=inclusive,
    )
    fields = list(spine.schema.fields)
    for ks in kernel_sources:
        fields += [
            StructField(name, right.schema[slot].dataType, True)
            for name, slot in zip(ks.out_names, ks.value_cols, strict=True)
        ]
        fields.append(StructField(ks.matched_col, BooleanType(), False))
    schema = StructType(fields)
    merge = as_cogroup_function(kernel, schema.fieldNames())
    return left.groupBy(_G).cogroup(right.groupBy(_G)).applyInArrow(merge, schema)


def join_pass(
    spine: DataFrame,
    plans: Sequence[SourcePlan],
    *,
    spine_time: Column,
    inclusive: bool,
) -> DataFrame:
    """The key-join plan (``PitTuning.plan``): same output as :func:`merge_pass`.

    The spine is shuffled by key once; each table is joined on keys and the time bounds
    and the best row per spine row is kept by a rank over (keys, spine row), which the
    key partitioning already groups: no second shuffle. The spine row id only has to be
    unique: nothing is joined back on it.
    """
    first = plans[0]
    kcols = list(first.key_cols)
    rid = f"{P}rid"
    cur = spine.select(
        *[F.col(f"`{c}`") for c in spine.columns],
        *first.spine_key_columns(),
        spine_time.alias(T_COL),
        F.monotonically_increasing_id().alias(rid),
    ).repartition(*[F.col(c) for c in kcols])
    for plan in plans:
        right = plan.feats
        ft = f"{P}ft"
        renamed = [F.col(c).alias(f"{c}_r") for c in kcols]
        others = [c for c in right.columns if c not in (*kcols, T_COL)]
        right = right.select(*renamed, F.col(T_COL).alias(ft), *others)
        cond = (right[ft] <= cur[T_COL]) if inclusive else (right[ft] < cur[T_COL])
        for kc in kcols:
            cond = cond & (cur[kc] == right[f"{kc}_r"])
        if plan.ttl_us is not None:
            cond = cond & (right[ft] > cur[T_COL] - F.lit(plan.ttl_us))
        order = [F.col(ft).desc_nulls_last()]
        order += [F.col(c).desc_nulls_last() for c in (*plan.tie_cols, *plan.sortable_value_cols)]
        if plan.hash_col is not None:
            order.append(F.col(plan.hash_col).desc_nulls_last())
        rank = F.row_number().over(Window.partitionBy(*kcols, rid).orderBy(*order))
        cur = (
            cur.join(right, cond, "left")
            .withColumn(f"{P}rn", rank)
            .where(F.col(f"{P}rn") == 1)
            .withColumn(plan.matched_col, F.col(ft).isNotNull())
            .select(*cur.columns, *plan.value_cols, plan.matched_col)
        )
    return cur.drop(*kcols, T_COL, rid)

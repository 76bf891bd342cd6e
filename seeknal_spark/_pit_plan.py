"""How :func:`seeknal_spark.pit.point_in_time_join` runs: one cogrouped merge per source.

For each feature table (an ``AsOfSource``), in order:

1. **Prune.** Feature rows with a null key or time are dropped, and so are rows after the
   last spine time, before ``feature_start_time``, and - with a TTL - at or before the first
   spine time minus the TTL. When the spine has few enough distinct keys, rows whose key
   is not in the spine are dropped by a broadcast semi-join.
2. **Group.** Every spine row and feature row gets a group id: a hash bucket of its keys,
   or, for a *hot* key (one holding a large share of a sample of the feature rows), the
   key's own time window. A hot key's history is thereby split across tasks.
3. **Seed.** A small aggregate finds, for each hot key and each of its windows, the latest
   event time of all earlier windows; the feature rows at that time are merged in that
   window too (as its *seed*), so the answer stays exact whatever the window boundaries.
4. **Merge.** Spine rows and feature rows are shuffled by group id (each side once, only
   its own columns) and every group is resolved by :class:`~seeknal_spark._asof_kernel.AsOfKernel`:
   a sort and a linear scan, never a pairing of every row with every row.

The output of one source is the spine of the next, so every spine column travels along.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    LongType,
    MapType,
    StructField,
    StructType,
)

from seeknal_spark._asof_kernel import AsOfKernel, KernelSource, as_cogroup_function

__all__ = ["HASH_COL", "PitTuning", "SourcePlan", "find_hot_keys", "merge_pass"]

logger = logging.getLogger(__name__)

P = "__pit_"  # prefix of every internal column
T_COL = f"{P}t"  # UTC microseconds
_G = f"{P}g"  # group id of the cogroup
_HI = f"{P}hi"  # index of a hot key
_NW = f"{P}nw"  # number of time windows of a hot key
_B = f"{P}b"  # time window of a row of a hot key (-1: before the first spine time)
HASH_COL = f"{P}h"  # hash of the feature values that cannot be ordered
_TARGETS = f"{P}targets"  # later windows a feature row also seeds
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
        Split every hot key into exactly this many windows (for tests); None: from its share.
    prune_keys_max:
        Feature rows are semi-joined to the spine's keys (broadcast) when the spine has at
        most this many distinct keys (estimated); 0 disables key pruning.
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
    prune_keys_max: int = 200_000
    buckets: int | None = None

    def __post_init__(self) -> None:
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


def find_hot_keys(
    plans: Sequence[SourcePlan], shuffle_parts: int, tuning: PitTuning
) -> dict[int, list[tuple[Any, ...]]]:
    """Per source index, its hot keys as ``(*key values, windows)`` rows.

    One small job per set of key types (sources with the same key types are sampled
    together); at most ``max_hot_keys`` keys per source reach the driver. A key must hold
    more than ``hot_key_share`` of its source's sampled rows, and appear twice.
    """
    parts = max(shuffle_parts, 1)
    share = tuning.hot_key_share if tuning.hot_key_share is not None else 1.0 / (2 * parts)
    min_count = 2 if share > 0 else 1  # a key seen once in the sample is not hot
    max_w = tuning.max_windows or 4 * parts
    by_types: dict[tuple[str, ...], list[SourcePlan]] = {}
    for plan in plans:
        types = tuple(plan.feats.schema[c].dataType.json() for c in plan.key_cols)
        by_types.setdefault(types, []).append(plan)
    hot: dict[int, list[tuple[Any, ...]]] = {plan.index: [] for plan in plans}
    src = f"{P}src"
    for group in by_types.values():
        kcols = [f"{P}hk{j}" for j in range(len(group[0].key_cols))]
        sample: DataFrame | None = None
        for plan in group:
            keys = plan.feats.select(
                F.lit(plan.index).alias(src),
                *[F.col(c).alias(k) for c, k in zip(plan.key_cols, kcols, strict=True)],
            )
            if tuning.sample_rows is not None:
                keys = keys.limit(tuning.sample_rows)
            sample = keys if sample is None else sample.unionByName(keys)
        assert sample is not None  # every group has a source
        counts = sample.groupBy(src, *kcols).count()
        candidate = F.when(F.col("count") >= min_count, F.struct(F.col("count"), *kcols))
        top = F.slice(F.sort_array(F.collect_list(candidate), asc=False), 1, tuning.max_hot_keys)
        per_source = counts.groupBy(src).agg(F.sum("count").alias("total"), top.alias("top"))
        for row in per_source.collect():
            for entry in row["top"]:
                if entry["count"] <= row["total"] * share:
                    break
                fraction = entry["count"] / row["total"]
                windows = tuning.hot_key_windows or min(
                    max_w, max(2, math.ceil(fraction * 2 * parts))
                )
                hot[row[src]].append((*[entry[k] for k in kcols], windows))
    return hot


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
    hot_rows: dict[int, list[tuple[Any, ...]]],
    tmin: int | None,
    tmax: int | None,
    spine_keys: DataFrame | None,
    buckets: int,
    inclusive: bool,
) -> DataFrame:
    """``spine`` with the value columns and matched flag of every plan appended (steps 1-4).

    ``plans`` share their key columns and types: their rows are merged in one cogroup,
    sharing columns (slots) of equal types. ``spine_keys``, when given, holds the spine's
    distinct non-null keys (cast to the key types): feature rows of other keys are dropped
    before the shuffle.
    """
    first = plans[0]
    kcols = list(first.key_cols)
    spine_cols = list(spine.columns)
    key_sel = []
    for key, kc in zip(first.keys, kcols, strict=True):
        col = F.col(f"`{key}`")
        key_sel.append(
            (col.cast(first.key_casts[key]) if key in first.key_casts else col).alias(kc)
        )
    left = spine.select(*[F.col(f"`{c}`") for c in spine_cols], *key_sel, spine_time.alias(T_COL))

    # the feature rows of every table, in shared slot columns
    tie_slots: list[DataType] = []
    value_slots: list[DataType] = []
    frames, kernel_sources = [], []
    for plan in plans:
        ftypes = {f.name: f.dataType for f in plan.feats.schema.fields}
        ties = _slots([ftypes[c] for c in plan.tie_cols], tie_slots, f"{P}tb")
        values = _slots([ftypes[c] for c in plan.value_cols], value_slots, f"{P}v")
        sel = [F.col(c) for c in (*kcols, T_COL)] + [F.lit(plan.index).alias(_SRC)]
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

    if spine_keys is not None:
        right = right.join(F.broadcast(spine_keys.toDF(*kcols)), kcols, "left_semi")

    hot_keys: dict[tuple[Any, ...], int] = {}
    for plan in plans:
        for row in hot_rows.get(plan.index, []):
            hot_keys[row[:-1]] = max(hot_keys.get(row[:-1], 0), row[-1])
    bucket = F.pmod(F.xxhash64(*[F.col(c) for c in kcols]), F.lit(buckets))
    if hot_keys and tmin is not None and tmax is not None and tmax > tmin:
        logger.info("point-in-time join: %d hot keys split into time windows", len(hot_keys))
        hot = spine.sparkSession.createDataFrame(
            [(*key, i, nw) for i, (key, nw) in enumerate(sorted(hot_keys.items(), key=repr))],
            StructType(
                [
                    *[StructField(kc, right.schema[kc].dataType, False) for kc in kcols],
                    StructField(_HI, LongType(), False),
                    StructField(_NW, LongType(), False),
                ]
            ),
        )
        max_w = max(hot_keys.values())
        width = F.ceil(F.lit(tmax - tmin + 1) / F.col(_NW)).cast("long")
        window = (
            F.when(F.col(T_COL).isNull(), F.lit(0))
            .when(F.col(T_COL) < F.lit(tmin), F.lit(-1))
            .otherwise(F.least(F.floor((F.col(T_COL) - F.lit(tmin)) / width), F.col(_NW) - 1))
            .cast("long")
        )

        def group_of(window_col: Column) -> Column:
            hot_group = F.lit(buckets) + F.col(_HI) * F.lit(max_w) + window_col
            return F.when(F.col(_HI).isNull(), bucket).otherwise(hot_group)

        left = (
            left.join(F.broadcast(hot), kcols, "left")
            .withColumn(_B, window)
            .select(*[F.col(f"`{c}`") for c in left.columns], group_of(F.col(_B)).alias(_G))
        )
        marked = right.join(F.broadcast(hot), kcols, "left").withColumn(_B, window)
        seeds = _seed_targets(marked, hot, kcols)
        # a row is merged in its own window (if after the first spine time; rows of keys
        # that are not hot have one group, their bucket) and, as a seed, in the later
        # windows listed for it: one row out per group it belongs to
        in_window = F.col(_HI).isNull() | (F.col(_B) >= 0)
        own = F.when(in_window, F.array(F.coalesce(F.col(_B), F.lit(0).cast("long"))))
        own = own.otherwise(F.array().cast("array<long>"))
        windows = F.concat(own, F.coalesce(F.col(_TARGETS), F.array().cast("array<long>")))
        right = (
            marked.join(F.broadcast(seeds), [*kcols, _HI, _SRC, T_COL], "left")
            .withColumn(_B, F.explode(windows))
            .select(*right.columns, group_of(F.col(_B)).alias(_G))
        )
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


def _seed_targets(marked: DataFrame, hot: DataFrame, kcols: list[str]) -> DataFrame:
    """Seeds: per table, hot key and window w, the latest event time of the windows before w.

    Returns ``(keys, hot index, table, event time, windows)`` rows: the feature rows of
    that table and key at that time (several when tied: the merge breaks the tie as
    everywhere else) are also merged in each listed window. Only a long maximum per window
    is aggregated, over the keys and times alone; the result, a few rows per hot key, is
    broadcast.
    """
    tails = (
        marked.where(F.col(_HI).isNotNull() & (F.col(_B) < F.col(_NW) - 1))
        .groupBy(*kcols, _HI, _SRC, _B)
        .agg(F.max(T_COL).alias(f"{P}tt"))
    )
    target = f"{P}tw"
    targets = hot.select(
        *kcols, _HI, F.explode(F.sequence(F.lit(0).cast("long"), F.col(_NW) - 1)).alias(target)
    )
    return (
        targets.join(tails, [*kcols, _HI])
        .where(F.col(_B) < F.col(target))
        .groupBy(*kcols, _HI, _SRC, target)
        .agg(F.max(f"{P}tt").alias(T_COL))
        .groupBy(*kcols, _HI, _SRC, T_COL)
        .agg(F.collect_list(target).alias(_TARGETS))
    )

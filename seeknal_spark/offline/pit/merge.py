"""The merge plan of one pass: spine and feature rows cogrouped, each group merged in Arrow.

Spine rows and feature rows get a group id - a hash bucket of their keys or, for a hot
key, its time window (feature rows are copied into the later windows whose lead-in starts
at or before them) - are shuffled by it, each side once with only its own columns, and
every group is resolved by :class:`~seeknal_spark.offline.pit.kernel.AsOfKernel`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    IntegerType,
    LongType,
    ShortType,
    StructField,
    StructType,
)

from seeknal_spark.offline.pit.hot_keys import HotKey
from seeknal_spark.offline.pit.kernel import AsOfKernel, KernelSource, as_cogroup_function
from seeknal_spark.offline.pit.tables import HASH_COL, SRC_COL, T_COL, P, SourcePlan, sortable

__all__ = ["merge_pass"]

logger = logging.getLogger(__name__)

_SRC = SRC_COL
_G = f"{P}g"  # group id of the cogroup
_HI = f"{P}hi"  # index of a hot key
_BOUNDS = f"{P}bounds"  # event times where the time windows of a hot key start
_LEADS = f"{P}leads"  # event times where the lead-ins of a table into those windows start


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

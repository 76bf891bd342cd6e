"""The key-join plan of one pass: a key join on the time bounds, ranked per spine row."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from seeknal_spark.offline.pit.tables import T_COL, P, SourcePlan

__all__ = ["join_pass"]


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

"""The drift statistics in Spark: PSI over bins or categories, exact KS, null rates.

Both sides are projected into one DataFrame (:func:`side_union`) and every statistic is a
Spark aggregation over it; only small aggregates (bin edges, bucket counts, one maximum per
feature) reach the driver. The definitions (bins, buckets, PSI, KS, missing values) are in
:mod:`seeknal_spark.monitoring.drift`'s docstring.

>>> psi([50, 50], [50, 50], 1e-4)
0.0
>>> round(psi([90, 10], [50, 50], 1e-4), 4)
0.8789
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from seeknal_spark.definitions.naming import quote_identifier
from seeknal_spark.monitoring.drift_results import DriftThresholds, FeatureDrift, judge

__all__ = ["categorical_drift", "numeric_drift", "psi", "side_union"]

_REF, _CUR = 0, 1


def side_union(ref: DataFrame, cur: DataFrame, numeric: list[str], cats: list[str]) -> DataFrame:
    """Both sides as one DataFrame: ``side`` (0 ref, 1 cur), ``n0..`` doubles (NaN as null),
    ``c0..`` strings."""

    def project(df: DataFrame, side: int) -> DataFrame:
        cols: list[Column] = [F.lit(side).alias("side")]
        for i, name in enumerate(numeric):
            x = df[quote_identifier(name)].cast("double")
            cols.append(F.when(~F.isnan(x), x).alias(f"n{i}"))
        for i, name in enumerate(cats):
            cols.append(df[quote_identifier(name)].cast("string").alias(f"c{i}"))
        return df.select(*cols)

    return project(ref, _REF).unionByName(project(cur, _CUR))


def _bin_expr(x: Column, edges: Sequence[float]) -> Column:
    """Right-closed bin index of ``x``: 0 for x <= e1, ..., k for x > ek; null for null."""
    expr = F.when(x.isNull(), F.lit(None).cast("int"))
    for i, edge in enumerate(edges):
        expr = expr.when(x <= F.lit(edge), F.lit(i))
    return expr.otherwise(F.lit(len(edges)))


def _hist_expr(x: Column, lo: float, hi: float, n: int) -> Column:
    """Equal-width bin of ``x`` over ``[lo, hi]`` (finite); outside values go to the end bins."""
    if not hi > lo:
        return F.when(x.isNotNull(), F.lit(0))
    raw = F.floor((x - F.lit(lo)) / F.lit(hi - lo) * F.lit(n)).cast("int")
    return (
        F.when(x.isNull(), F.lit(None).cast("int"))
        .when(x <= F.lit(lo), F.lit(0))
        .when(x >= F.lit(hi), F.lit(n - 1))
        .otherwise(raw)
    )


def psi(ref_counts: Sequence[int], cur_counts: Sequence[int], epsilon: float) -> float | None:
    n_ref, n_cur = sum(ref_counts), sum(cur_counts)
    if n_ref == 0 or n_cur == 0:
        return None
    r = [max(c / n_ref, epsilon) for c in ref_counts]
    c = [max(v / n_cur, epsilon) for v in cur_counts]
    sr, sc = sum(r), sum(c)
    return float(
        sum(
            (ci / sc - ri / sr) * math.log((ci / sc) / (ri / sr))
            for ri, ci in zip(r, c, strict=True)
        )
    )


def numeric_drift(
    union: DataFrame,
    names: list[str],
    bins: int,
    accuracy: int,
    hist_bins: int,
    epsilon: float,
    thresholds: DriftThresholds,
) -> dict[str, FeatureDrift]:
    probs = [i / bins for i in range(1, bins)]
    # Job 1: reference quantile edges, and the range of both sides for the display histogram.
    aggs: list[Column] = []
    for i in range(len(names)):
        x = F.col(f"n{i}")
        finite = F.when(F.abs(x) != F.lit(math.inf), x)
        aggs += [
            F.percentile_approx(F.when(F.col("side") == _REF, x), probs, accuracy),
            F.min(finite),
            F.max(finite),
        ]
    row = union.agg(*aggs).collect()[0]
    edges: list[tuple[float, ...]] = []
    ranges: list[tuple[float, float] | None] = []
    for i in range(len(names)):
        q, lo, hi = row[3 * i], row[3 * i + 1], row[3 * i + 2]
        edges.append(tuple(sorted({float(v) for v in q})) if q is not None else ())
        ranges.append((float(lo), float(hi)) if lo is not None else None)
    # Job 2: rows per (side, feature, quantile bin, display bin); nulls give null bins.
    structs = []
    for i in range(len(names)):
        x = F.col(f"n{i}")
        rng = ranges[i]
        hist = _hist_expr(x, rng[0], rng[1], hist_bins) if rng else F.lit(None).cast("int")
        qbin = _bin_expr(x, edges[i]) if edges[i] else F.when(x.isNotNull(), F.lit(0))
        structs.append(F.struct(F.lit(i).alias("f"), qbin.alias("q"), hist.alias("h")))
    counted = (
        union.select("side", F.explode(F.array(*structs)).alias("p"))
        .groupBy("side", "p.f", "p.q", "p.h")
        .count()
        .collect()
    )
    rows = {(s, i): 0 for s in (_REF, _CUR) for i in range(len(names))}
    nulls = dict(rows)
    qcounts = {(s, i): [0] * (len(edges[i]) + 1) for s in (_REF, _CUR) for i in range(len(names))}
    hcounts = {(s, i): [0] * hist_bins for s in (_REF, _CUR) for i in range(len(names))}
    for side, i, q, h, count in counted:
        rows[side, i] += count
        if q is None:
            nulls[side, i] += count
        else:
            qcounts[side, i][q] += count
            if h is not None:
                hcounts[side, i][h] += count
    # Job 3: exact KS for the features with values on both sides.
    both = [i for i in range(len(names)) if edges[i] and sum(qcounts[_CUR, i]) > 0]
    ks = (
        _ks_statistics(
            union,
            both,
            edges,
            [qcounts[_REF, i] for i in range(len(names))],
            [qcounts[_CUR, i] for i in range(len(names))],
        )
        if both
        else {}
    )
    out: dict[str, FeatureDrift] = {}
    for i, name in enumerate(names):
        rng = ranges[i]
        h_edges: tuple[float, ...] = ()
        if rng is not None:
            lo, hi = rng
            width = (hi - lo) / hist_bins if hi > lo else 1.0
            h_edges = tuple(lo + j * width for j in range(hist_bins + 1))
        labels = _interval_labels(edges[i])
        out[name] = judge(
            name,
            "numeric",
            psi(qcounts[_REF, i], qcounts[_CUR, i], epsilon),
            ks.get(i),
            (rows[_REF, i], nulls[_REF, i]),
            (rows[_CUR, i], nulls[_CUR, i]),
            thresholds,
            bin_edges=edges[i],
            bin_labels=labels,
            ref_bin_counts=tuple(qcounts[_REF, i]),
            cur_bin_counts=tuple(qcounts[_CUR, i]),
            hist_edges=h_edges,
            ref_hist_counts=tuple(hcounts[_REF, i]) if h_edges else (),
            cur_hist_counts=tuple(hcounts[_CUR, i]) if h_edges else (),
        )
    return out


def _interval_labels(edges: Sequence[float]) -> tuple[str, ...]:
    if not edges:
        return ("(all)",)
    bounds = ["-inf", *(f"{e:.6g}" for e in edges), "+inf"]
    return tuple(
        f"({bounds[j]}, {bounds[j + 1]}{')' if j == len(edges) else ']'}"
        for j in range(len(edges) + 1)
    )


def _ks_statistics(
    union: DataFrame,
    features: list[int],
    edges: list[tuple[float, ...]],
    ref_bins: list[list[int]],
    cur_bins: list[list[int]],
) -> dict[int, float]:
    """Exact KS: running counts over distinct values, in windows per (feature, quantile bin).

    A window gives the running counts inside a bin; the counts of the bins below it (known
    from the bin-count job, passed in as literals) are added, so the empirical CDFs are
    exact and no window spans a whole feature.
    """
    structs = [
        F.struct(
            F.lit(i).alias("f"),
            F.col(f"n{i}").alias("x"),
            _bin_expr(F.col(f"n{i}"), edges[i]).alias("b"),
        )
        for i in features
    ]
    width = max(len(edges[i]) + 1 for i in features)
    offsets_r: list[int] = []
    offsets_c: list[int] = []
    for i in range(max(features) + 1):
        counts_r = ref_bins[i] if i in features else []
        counts_c = cur_bins[i] if i in features else []
        for j in range(width):
            offsets_r.append(sum(counts_r[:j]))
            offsets_c.append(sum(counts_c[:j]))
    n_r = [max(sum(ref_bins[i]), 1) for i in range(max(features) + 1)]
    n_c = [max(sum(cur_bins[i]), 1) for i in range(max(features) + 1)]

    def lookup(values: list[int], index: Column) -> Column:
        return F.array(*[F.lit(v) for v in values])[index]

    is_ref = (F.col("side") == _REF).cast("long")
    long = (
        union.select("side", F.explode(F.array(*structs)).alias("p"))
        .select("side", "p.f", "p.x", "p.b")
        .where(F.col("x").isNotNull())
    )
    per_value = long.groupBy("f", "b", "x").agg(
        F.sum(is_ref).alias("rc"), F.sum(1 - is_ref).alias("cc")
    )
    running = (
        Window.partitionBy("f", "b")
        .orderBy("x")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    k = F.col("f") * F.lit(width) + F.col("b")
    cdf_r = (lookup(offsets_r, k) + F.sum("rc").over(running)) / lookup(n_r, F.col("f"))
    cdf_c = (lookup(offsets_c, k) + F.sum("cc").over(running)) / lookup(n_c, F.col("f"))
    result = (
        per_value.select("f", F.abs(cdf_r - cdf_c).alias("d"))
        .groupBy("f")
        .agg(F.max("d").alias("d"))
        .collect()
    )
    return {int(r["f"]): float(r["d"]) for r in result}


def categorical_drift(
    union: DataFrame,
    names: list[str],
    max_categories: int,
    epsilon: float,
    thresholds: DriftThresholds,
) -> dict[str, FeatureDrift]:
    # Job 4: per (feature, value) counts of both sides; top categories of the reference kept.
    is_ref = (F.col("side") == _REF).cast("long")
    structs = [F.struct(F.lit(i).alias("f"), F.col(f"c{i}").alias("v")) for i in range(len(names))]
    counts = (
        union.select("side", F.explode(F.array(*structs)).alias("p"))
        .select("side", "p.f", "p.v")
        .groupBy("f", "v")
        .agg(F.sum(is_ref).alias("rc"), F.sum(1 - is_ref).alias("cc"))
    )
    rank = F.row_number().over(
        Window.partitionBy("f").orderBy(
            F.col("v").isNull().asc(), F.col("rc").desc(), F.col("cc").desc(), F.col("v").asc()
        )
    )
    bucket = (
        F.when(F.col("v").isNull(), F.lit("null"))
        .when(F.col("rank") <= max_categories, F.lit("value"))
        .otherwise(F.lit("other"))
    )
    collected = (
        counts.withColumn("rank", rank)
        .select(
            "f",
            bucket.alias("bucket"),
            F.when(F.col("rank") <= max_categories, F.col("v")).alias("label"),
            "rc",
            "cc",
            "rank",
        )
        .groupBy("f", "bucket", "label")
        .agg(F.sum("rc").alias("rc"), F.sum("cc").alias("cc"), F.min("rank").alias("r"))
        .collect()
    )
    out: dict[str, FeatureDrift] = {}
    for i, name in enumerate(names):
        mine = sorted((r for r in collected if r["f"] == i), key=lambda r: r["r"])
        values = [r for r in mine if r["bucket"] != "null"]
        null_r = sum(r["rc"] for r in mine if r["bucket"] == "null")
        null_c = sum(r["cc"] for r in mine if r["bucket"] == "null")
        labels = tuple(r["label"] if r["bucket"] == "value" else "(other)" for r in values)
        ref_counts = tuple(int(r["rc"]) for r in values)
        cur_counts = tuple(int(r["cc"]) for r in values)
        out[name] = judge(
            name,
            "categorical",
            psi(ref_counts, cur_counts, epsilon),
            None,
            (sum(ref_counts) + null_r, null_r),
            (sum(cur_counts) + null_c, null_c),
            thresholds,
            bin_labels=labels,
            ref_bin_counts=ref_counts,
            cur_bin_counts=cur_counts,
        )
    return out

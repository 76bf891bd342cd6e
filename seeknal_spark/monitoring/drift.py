"""Drift between a reference distribution (the training set) and a current one (served values).

Per feature, with Spark aggregations only (small aggregates are collected, never the data):

- **numeric** (integral, floating, decimal columns): PSI over bins cut at the reference's
  quantiles, and the exact two-sample Kolmogorov-Smirnov statistic;
- **categorical** (string, boolean columns, or any column named in ``categorical=``): PSI
  over the categories;
- for both, the null rate of each side and its change.

>>> report = compute_drift(training_df, served_df, exclude=["customer_id"])  # doctest: +SKIP
>>> report.to_dataframe()                                                      # doctest: +SKIP
>>> [str(a) for a in report.alerts]                                            # doctest: +SKIP
>>> report.to_html("drift.html")                                               # doctest: +SKIP

Definitions
-----------
1. **Missing values.** Nulls (and NaN in float/double columns) count toward the null rate
   only; PSI and KS compare the distributions of the non-missing values. A shift in
   missingness is caught by ``null_rate_change = cur_null_rate - ref_null_rate``.
2. **Numeric PSI bins.** Edges are the reference's ``1/bins, ..., (bins-1)/bins`` quantiles
   (``percentile_approx`` with ``quantile_accuracy``, default 10 000: an edge's rank is
   off by at most 0.01% of the rows), de-duplicated. PSI is then computed exactly on
   those edges. Bins are right-closed and open-ended:
   ``(-inf, e1], (e1, e2], ..., (ek, +inf)``, so values outside the reference range still
   land in the first or last bin. The edges are in :attr:`FeatureDrift.bin_edges`.
3. **Categorical PSI buckets.** The ``max_categories`` most frequent reference categories
   (ties: more frequent in current, then by value) each get a bucket; every other category
   of either side goes to one ``other`` bucket. Booleans compare as ``"true"``/``"false"``.
4. **PSI** ``= sum_i (c_i - r_i) * ln(c_i / r_i)`` over bucket fractions ``r`` (reference)
   and ``c`` (current). Empty buckets would make it infinite, so each fraction is first
   raised to at least ``epsilon`` and the fractions of each side are then renormalised to
   sum to 1 (equal to ``scipy.stats.entropy(c, r) + scipy.stats.entropy(r, c)``).
5. **KS** ``= max_x |F_ref(x) - F_cur(x)|`` over the union of both sides' distinct values,
   from exact empirical CDFs (cumulative counts in Spark), i.e. the statistic of
   ``scipy.stats.ks_2samp``. Values are compared as doubles (longs beyond 2**53 and wide
   decimals lose precision).
6. **Status.** ``alert`` when any metric reaches its alert threshold, else ``warn`` when any
   reaches its warn threshold, else ``ok``; ``no_data`` when a side has no non-missing value
   and no threshold fired (PSI/KS are then ``None``).

Feature selection: by default the columns both sides share, in the reference's order,
minus ``exclude``; columns of other types (timestamps, dates, arrays, maps, structs, binary)
are skipped with a logged warning. A feature named explicitly in ``features`` that one side
lacks raises :class:`~seeknal_spark.errors.MissingColumnError`; one of an unsupported type
raises :class:`~seeknal_spark.errors.ColumnTypeError`.

Each call runs four small Spark jobs over both inputs (quantiles, bin counts, KS,
categories); cache the inputs first if they are expensive to recompute.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from seeknal_spark.definitions.naming import quote_identifier
from seeknal_spark.errors import ColumnTypeError, ConfigurationError, MissingColumnError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DriftAlert", "DriftReport", "DriftThresholds", "FeatureDrift", "compute_drift"]

_log = logging.getLogger(__name__)

Kind = Literal["numeric", "categorical"]
Status = Literal["ok", "warn", "alert", "no_data"]

_NUMERIC = (
    T.ByteType,
    T.ShortType,
    T.IntegerType,
    T.LongType,
    T.FloatType,
    T.DoubleType,
    T.DecimalType,
)
_CATEGORICAL = (T.StringType, T.BooleanType)
_REF, _CUR = 0, 1


@dataclass(frozen=True, kw_only=True)
class DriftThresholds:
    """When a feature's drift is a warning or an alert (a metric >= its threshold).

    Parameters
    ----------
    psi_warn, psi_alert:
        PSI thresholds (the usual rule of thumb: < 0.1 stable, 0.1-0.25 moderate, > 0.25 major).
    ks_warn, ks_alert:
        Thresholds on the KS statistic (numeric features only).
    null_rate_warn, null_rate_alert:
        Thresholds on ``abs(cur_null_rate - ref_null_rate)``.

    Use ``math.inf`` to switch a check off.
    """

    psi_warn: float = 0.1
    psi_alert: float = 0.25
    ks_warn: float = 0.1
    ks_alert: float = 0.2
    null_rate_warn: float = 0.05
    null_rate_alert: float = 0.1

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> DriftThresholds:
        """Thresholds from a config mapping (e.g. parsed YAML); unknown keys are rejected."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigurationError(f"unknown drift threshold(s) {unknown}: use {sorted(known)}")
        return cls(**values)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ValueError(f"DriftThresholds.{f.name} must be a number >= 0, got {value!r}")
        for metric in ("psi", "ks", "null_rate"):
            warn, alert = getattr(self, f"{metric}_warn"), getattr(self, f"{metric}_alert")
            if warn > alert:
                raise ValueError(
                    f"DriftThresholds.{metric}_warn ({warn}) must not exceed "
                    f"{metric}_alert ({alert})"
                )


@dataclass(frozen=True)
class DriftAlert:
    """One metric of one feature at or over a threshold."""

    feature: str
    level: Literal["warn", "alert"]
    metric: str
    value: float
    threshold: float

    @property
    def message(self) -> str:
        """A sentence for people, e.g. ``"amount: psi 0.31 >= alert threshold 0.25"``."""
        return (
            f"{self.feature}: {self.metric} {self.value:.4g} >= {self.level} "
            f"threshold {self.threshold:.4g}"
        )

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class FeatureDrift:
    """The drift statistics of one feature, with the bucket counts behind them.

    ``bin_labels``/``ref_bin_counts``/``cur_bin_counts`` are the PSI buckets (quantile bins
    or categories; the categorical ``other`` bucket is labelled ``"(other)"``).
    ``hist_edges``/``ref_hist_counts``/``cur_hist_counts`` are an equal-width histogram over
    both sides' range, for display (numeric only; empty for categorical features).
    Counts exclude missing values.
    """

    feature: str
    kind: Kind
    psi: float | None
    ks: float | None
    ref_rows: int
    cur_rows: int
    ref_null_rate: float | None
    cur_null_rate: float | None
    null_rate_change: float | None
    status: Status
    bin_edges: tuple[float, ...] = ()
    bin_labels: tuple[str, ...] = ()
    ref_bin_counts: tuple[int, ...] = ()
    cur_bin_counts: tuple[int, ...] = ()
    hist_edges: tuple[float, ...] = ()
    ref_hist_counts: tuple[int, ...] = ()
    cur_hist_counts: tuple[int, ...] = ()
    alerts: tuple[DriftAlert, ...] = field(default=())


@dataclass(frozen=True)
class DriftReport:
    """The result of :func:`compute_drift`: one :class:`FeatureDrift` per feature."""

    features: tuple[FeatureDrift, ...]
    thresholds: DriftThresholds
    skipped: tuple[str, ...] = ()

    @property
    def alerts(self) -> list[DriftAlert]:
        """Every metric at or over its *alert* threshold (``str(a)`` is a message)."""
        return [a for f in self.features for a in f.alerts if a.level == "alert"]

    @property
    def warnings(self) -> list[DriftAlert]:
        """Every metric at or over its *warn* threshold but under its alert threshold."""
        return [a for f in self.features for a in f.alerts if a.level == "warn"]

    def __getitem__(self, feature: str) -> FeatureDrift:
        for f in self.features:
            if f.feature == feature:
                return f
        raise KeyError(
            f"no feature {feature!r} in this report; it has {[f.feature for f in self.features]}"
        )

    def to_dataframe(self) -> pd.DataFrame:
        """A pandas DataFrame, one row per feature.

        Columns: feature, kind, psi, ks, ref_null_rate, cur_null_rate, null_rate_change,
        status (``None`` where a statistic does not apply).
        """
        import pandas as pd

        columns = [
            "feature",
            "kind",
            "psi",
            "ks",
            "ref_null_rate",
            "cur_null_rate",
            "null_rate_change",
            "status",
        ]
        return pd.DataFrame(
            [[getattr(f, c) for c in columns] for f in self.features], columns=columns
        )

    def to_dict(self) -> dict[str, Any]:
        """Everything in the report as plain JSON-able Python values."""
        return {
            "thresholds": asdict(self.thresholds),
            "skipped": list(self.skipped),
            "alerts": [a.message for a in self.alerts],
            "warnings": [a.message for a in self.warnings],
            "features": [
                {
                    **{k: v for k, v in asdict(f).items() if k != "alerts"},
                    "alerts": [a.message for a in f.alerts],
                }
                for f in self.features
            ],
        }

    def to_json(self, path: str | Path | None = None, *, indent: int | None = 2) -> str:
        """The report as JSON text (``inf`` becomes ``null``); also written to ``path``."""
        text = json.dumps(_json_safe(self.to_dict()), indent=indent, sort_keys=True)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    def to_html(self, path: str | Path, *, title: str = "Feature drift report") -> Path:
        """Write one self-contained HTML file (inline SVG, no scripts); return its path."""
        from seeknal_spark.monitoring.drift_report import render_html

        out = Path(path)
        out.write_text(render_html(self, title=title), encoding="utf-8")
        return out


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def compute_drift(
    reference_df: DataFrame,
    current_df: DataFrame,
    features: Sequence[str] | None = None,
    *,
    exclude: Iterable[str] = (),
    categorical: Iterable[str] = (),
    bins: int = 10,
    thresholds: DriftThresholds | None = None,
    max_categories: int = 20,
    epsilon: float = 1e-4,
    quantile_accuracy: int = 10_000,
    hist_bins: int = 20,
) -> DriftReport:
    """Compare the current distribution of each feature with the reference one.

    The statistics are defined in this module's docstring (nulls, bins, PSI, KS, status).

    Parameters
    ----------
    reference_df:
        The reference sample, typically the training set.
    current_df:
        The current sample, typically the served values
        (:func:`seeknal_spark.online.serving_log.read_serving_log`) or a fresh export.
    features:
        Features to compare; default: the columns both sides share of a supported type.
    exclude:
        Columns never compared (keys, times, labels).
    categorical:
        Columns compared as categories even when numeric (e.g. integer codes).
    bins:
        Number of reference-quantile bins for numeric PSI (>= 2).
    thresholds:
        Warn/alert thresholds; default :class:`DriftThresholds` ``()``.
    max_categories:
        Categorical buckets kept before the rest is pooled into ``other`` (>= 1).
    epsilon:
        Floor of a bucket fraction in PSI (0 < epsilon < 1).
    quantile_accuracy:
        ``percentile_approx`` accuracy for the bin edges (relative rank error is its inverse).
    hist_bins:
        Equal-width bins of the display histogram (>= 1).

    Returns
    -------
    DriftReport
        One :class:`FeatureDrift` per feature, in order.

    Raises
    ------
    MissingColumnError
        A feature named in ``features`` (or ``categorical``) is absent from one side.
    ColumnTypeError
        A named feature is neither numeric nor categorical, or the two sides disagree.
    """
    thresholds = thresholds if thresholds is not None else DriftThresholds()
    _check_int("bins", bins, 2)
    _check_int("max_categories", max_categories, 1)
    _check_int("quantile_accuracy", quantile_accuracy, 1)
    _check_int("hist_bins", hist_bins, 1)
    if not 0 < epsilon < 1:
        raise ValueError(f"epsilon must be between 0 and 1, got {epsilon!r}")
    numeric, cats, skipped = _select_features(
        reference_df, current_df, features, set(exclude), list(categorical)
    )
    union = _side_union(reference_df, current_df, numeric, cats)
    results: dict[str, FeatureDrift] = {}
    if numeric:
        results.update(
            _numeric_drift(union, numeric, bins, quantile_accuracy, hist_bins, epsilon, thresholds)
        )
    if cats:
        results.update(_categorical_drift(union, cats, max_categories, epsilon, thresholds))
    ordered = [name for name in [*numeric, *cats] if name in results]
    order = {name: i for i, name in enumerate(_ordered_names(reference_df, features))}
    ordered.sort(key=lambda n: order.get(n, len(order)))
    return DriftReport(tuple(results[n] for n in ordered), thresholds, tuple(skipped))


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _ordered_names(reference_df: DataFrame, features: Sequence[str] | None) -> list[str]:
    return list(features) if features is not None else list(reference_df.columns)


def _kind(dtype: T.DataType) -> Kind | None:
    if isinstance(dtype, _NUMERIC):
        return "numeric"
    if isinstance(dtype, _CATEGORICAL):
        return "categorical"
    return None


def _select_features(
    ref: DataFrame,
    cur: DataFrame,
    features: Sequence[str] | None,
    exclude: set[str],
    categorical: list[str],
) -> tuple[list[str], list[str], list[str]]:
    ref_types = {f.name: f.dataType for f in ref.schema.fields}
    cur_types = {f.name: f.dataType for f in cur.schema.fields}
    explicit = features is not None
    if isinstance(features, str):
        raise TypeError(f"features must be a list of column names, not the string {features!r}")
    if features is None:
        names = [c for c in ref.columns if c in cur_types and c not in exclude]
        only = sorted((set(ref_types) ^ set(cur_types)) - exclude)
        if only:
            _log.info("drift: columns on one side only are not compared: %s", only)
    else:
        names = [c for c in dict.fromkeys(features) if c not in exclude]
    for name in [*names, *categorical]:
        for side, types in (("reference", ref_types), ("current", cur_types)):
            if name not in types and (explicit or name in categorical):
                raise MissingColumnError(
                    f"feature {name!r} is missing from the {side} DataFrame (it has "
                    f"{sorted(types)}): add the column, or leave it out of features=/categorical="
                )
    numeric: list[str] = []
    cats: list[str] = []
    skipped: list[str] = []
    for name in names:
        kinds = {_kind(ref_types[name]), _kind(cur_types[name])}
        pair = f"{ref_types[name].simpleString()} / {cur_types[name].simpleString()}"
        if name in categorical and None not in kinds:
            cats.append(name)
        elif len(kinds) == 1 and None not in kinds:
            (numeric if kinds == {"numeric"} else cats).append(name)
        elif explicit:
            raise ColumnTypeError(
                f"feature {name!r} has types {pair} (reference / current): drift needs both "
                "numeric or both string/boolean; cast the column or leave it out of features="
            )
        else:
            _log.warning(
                "drift: skipping column %r of types %s (reference / current): not "
                "numeric or string/boolean on both sides",
                name,
                pair,
            )
            skipped.append(name)
    return numeric, cats, skipped


def _side_union(ref: DataFrame, cur: DataFrame, numeric: list[str], cats: list[str]) -> DataFrame:
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


def _psi(ref_counts: Sequence[int], cur_counts: Sequence[int], epsilon: float) -> float | None:
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


def _numeric_drift(
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
        out[name] = _finish(
            name,
            "numeric",
            _psi(qcounts[_REF, i], qcounts[_CUR, i], epsilon),
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


def _categorical_drift(
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
        out[name] = _finish(
            name,
            "categorical",
            _psi(ref_counts, cur_counts, epsilon),
            None,
            (sum(ref_counts) + null_r, null_r),
            (sum(cur_counts) + null_c, null_c),
            thresholds,
            bin_labels=labels,
            ref_bin_counts=ref_counts,
            cur_bin_counts=cur_counts,
        )
    return out


def _finish(
    name: str,
    kind: Kind,
    psi: float | None,
    ks: float | None,
    ref: tuple[int, int],
    cur: tuple[int, int],
    thresholds: DriftThresholds,
    **buckets: Any,
) -> FeatureDrift:
    """Null rates, threshold checks and status of one feature."""
    ref_rate = ref[1] / ref[0] if ref[0] else None
    cur_rate = cur[1] / cur[0] if cur[0] else None
    change = cur_rate - ref_rate if ref_rate is not None and cur_rate is not None else None
    alerts: list[DriftAlert] = []
    for metric, value in (("psi", psi), ("ks", ks), ("null_rate_change", change)):
        if value is None:
            continue
        key = "null_rate" if metric == "null_rate_change" else metric
        warn, alert = getattr(thresholds, f"{key}_warn"), getattr(thresholds, f"{key}_alert")
        size = abs(value)
        if size >= alert:
            alerts.append(DriftAlert(name, "alert", metric, value, alert))
        elif size >= warn:
            alerts.append(DriftAlert(name, "warn", metric, value, warn))
    status: Status
    if any(a.level == "alert" for a in alerts):
        status = "alert"
    elif alerts:
        status = "warn"
    elif psi is None:
        status = "no_data"
    else:
        status = "ok"
    return FeatureDrift(
        name,
        kind,
        psi,
        ks,
        ref[0],
        cur[0],
        ref_rate,
        cur_rate,
        change,
        status,
        alerts=tuple(alerts),
        **buckets,
    )

"""Drift between a reference distribution (the training set) and a current one (served values).

Per feature, with Spark aggregations only (small aggregates are collected, never the data):

- **numeric** (integral, floating, decimal columns): PSI over bins cut at the reference's
  quantiles, and the exact two-sample Kolmogorov-Smirnov statistic;
- **categorical** (string, boolean columns, or any column named in ``categorical=``): PSI
  over the categories;
- for both, the null rate of each side and its change.

``report = compute_drift(training_df, served_df, exclude=["customer_id"])``, then
``report.alerts``, ``report.to_dataframe()``, ``report.to_json()`` and
``report.to_html("drift.html")`` (examples on :func:`compute_drift` and :class:`DriftReport`).
The statistics are computed in :mod:`~seeknal_spark.monitoring.drift_stats`, the result
types are in :mod:`~seeknal_spark.monitoring.drift_results` (re-exported here) and the page
is drawn by :mod:`~seeknal_spark.monitoring.drift_report`.

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
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame
from pyspark.sql import types as T

from seeknal_spark.errors import ColumnTypeError, MissingColumnError
from seeknal_spark.monitoring.drift_report import render_html
from seeknal_spark.monitoring.drift_results import DriftAlert, DriftThresholds, FeatureDrift, Kind
from seeknal_spark.monitoring.drift_stats import categorical_drift, numeric_drift, side_union

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DriftAlert", "DriftReport", "DriftThresholds", "FeatureDrift", "compute_drift"]

_log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class DriftReport:
    """The result of :func:`compute_drift`: one :class:`FeatureDrift` per feature.

    Examples
    --------
    >>> from seeknal_spark.monitoring.drift_results import judge
    >>> amount = judge("amount", "numeric", 0.3, 0.15, (100, 0), (100, 10), DriftThresholds())
    >>> report = DriftReport((amount,), DriftThresholds())
    >>> [str(a) for a in report.alerts]
    ['amount: psi 0.3 >= alert threshold 0.25',
     'amount: null_rate_change 0.1 >= alert threshold 0.1']
    >>> [str(a) for a in report.warnings], report["amount"].status
    (['amount: ks 0.15 >= warn threshold 0.1'], 'alert')
    >>> report.to_dict()["features"][0]["null_rate_change"]
    0.1
    """

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

    Examples
    --------
    >>> rows = range(200)
    >>> schema = "id long, x int, c string"
    >>> ref = spark.createDataFrame([(i, i % 10, "a" if i % 2 else "b") for i in rows], schema)
    >>> cur = spark.createDataFrame([(i, i % 10 + 3, "a") for i in rows], schema)
    >>> report = compute_drift(ref, cur, exclude=["id"])
    >>> [(f.feature, f.kind, f.status) for f in report.features]
    [('x', 'numeric', 'alert'), ('c', 'categorical', 'alert')]
    >>> round(report["x"].ks, 6), report["c"].ref_bin_counts, report["c"].cur_bin_counts
    (0.3, (100, 100), (200, 0))
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
    union = side_union(reference_df, current_df, numeric, cats)
    results: dict[str, FeatureDrift] = {}
    if numeric:
        results.update(
            numeric_drift(union, numeric, bins, quantile_accuracy, hist_bins, epsilon, thresholds)
        )
    if cats:
        results.update(categorical_drift(union, cats, max_categories, epsilon, thresholds))
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

"""The results of a drift comparison: thresholds, alerts and one feature's statistics.

Pure data (no Spark): :class:`DriftThresholds` says when a metric is a warning or an
alert, :class:`FeatureDrift` holds one feature's statistics with the bucket counts behind
them, and :func:`judge` turns the statistics into alerts and a status. The statistics are
computed in :mod:`seeknal_spark.monitoring.drift_stats`; the whole report is
:class:`seeknal_spark.monitoring.drift.DriftReport`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from seeknal_spark.errors import ConfigurationError

__all__ = ["DriftAlert", "DriftThresholds", "FeatureDrift", "Kind", "Status", "judge"]

Kind = Literal["numeric", "categorical"]
Status = Literal["ok", "warn", "alert", "no_data"]


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


def judge(
    name: str,
    kind: Kind,
    psi: float | None,
    ks: float | None,
    ref: tuple[int, int],
    cur: tuple[int, int],
    thresholds: DriftThresholds,
    **buckets: Any,
) -> FeatureDrift:
    """One feature's :class:`FeatureDrift`: null rates, threshold checks and status.

    ``ref`` and ``cur`` are ``(rows, missing rows)`` of each side; ``buckets`` are the
    bucket fields of :class:`FeatureDrift`.
    """
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

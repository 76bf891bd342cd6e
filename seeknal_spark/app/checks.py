"""The checks after training and serving: the parity gate and the drift report.

:func:`check_parity` compares an online table (and the on-demand functions it was opened
with) with a model's feature schema and, asked, its served values with the point-in-time
join; :func:`run_drift` compares two data sets and writes the HTML report. Both return
typed results; neither raises for a failed check (:meth:`ParityResult.raise_for_problems`
does).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from pyspark.sql import DataFrame, SparkSession

from seeknal_spark.app.results import DriftResult, ParityResult
from seeknal_spark.monitoring.drift import DriftThresholds, compute_drift
from seeknal_spark.monitoring.parity import check_values, table_problems
from seeknal_spark.online.table import OnlineTable
from seeknal_spark.store.inputs import read_path
from seeknal_spark.training.historical import HistoricalFeatures
from seeknal_spark.training.schema import FeatureSchema

__all__ = ["check_parity", "run_drift"]


def check_parity(
    schema_path: str,
    table: OnlineTable,
    *,
    historical: Callable[[], HistoricalFeatures] | None = None,
    requests: Callable[[], DataFrame] | None = None,
    sample: int | None = None,
    on_demand_from: str = "the functions given to the table",
) -> ParityResult:
    """Check ``table`` can serve the model whose feature schema is at ``schema_path``.

    The schema check covers the on-demand features twice: as recorded with the snapshot,
    and as ``table.on_demand`` (the functions this process would run, described as
    ``on_demand_from`` in a problem). With ``historical`` (a factory of the point-in-time
    join) the served values are compared too, for ``sample`` keys per lookup (default:
    all, up to 10,000), unless the schema check already failed; on-demand features are
    compared on a sample of the rows of ``requests`` (a factory of request rows, e.g.
    the training spine), needed when ``historical`` has on-demand features.
    """
    began = time.monotonic()
    if sample is not None and sample < 1:
        raise ValueError(f"sample: give a positive number of keys, got {sample}")
    schema = FeatureSchema.load(schema_path)
    problems = table_problems(schema, table, attached_as=on_demand_from, require_attached=True)
    schema_ok = not problems
    values: Mapping[str, object] | str | None = None
    if historical is not None:
        if problems:
            values = "skipped: the schema check failed"
        else:
            rows = None if requests is None else requests()
            report = check_values(table, historical(), sample=sample, requests=rows)
            values = report.to_dict()
            for feature, count in report.mismatches.items():
                if count:
                    examples = "; ".join(
                        f"key {k}: offline {a!r} online {b!r}"
                        for k, a, b in report.examples[feature]
                    )
                    problems.append(
                        f"feature {feature!r}: {count} of {report.keys_checked} keys differ, "
                        f"e.g. {examples}"
                    )
    return ParityResult(
        schema=schema_path,
        table=table.name,
        features=len(schema.features),
        schema_ok=schema_ok,
        problems=tuple(problems),
        values=values,
        duration_s=round(time.monotonic() - began, 3),
    )


def run_drift(
    spark: SparkSession,
    reference: str,
    current: str,
    out: str,
    *,
    features: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    fmt: str | None = None,
    thresholds: Mapping[str, float] | None = None,
) -> DriftResult:
    """PSI, KS and null-rate change per feature of ``current`` against ``reference``.

    Both paths are read by the one input-format policy
    (:func:`seeknal_spark.store.inputs.read_path`); the HTML report goes to ``out``.
    """
    began = time.monotonic()
    limits = DriftThresholds.from_mapping(dict(thresholds or {}))
    reference_df = read_path(spark, reference, fmt, what="drift --reference")
    current_df = read_path(spark, current, fmt, what="drift --current")
    report = compute_drift(
        reference_df, current_df, features, exclude=list(exclude), thresholds=limits
    )
    written = report.to_html(out)
    return DriftResult(
        reference=reference,
        current=current,
        report=str(written),
        features=tuple(
            {
                "feature": f.feature,
                "kind": f.kind,
                "status": f.status,
                "psi": f.psi,
                "ks": f.ks,
                "null_rate_change": f.null_rate_change,
            }
            for f in report.features
        ),
        skipped=tuple(report.skipped),
        alerts=tuple(str(a) for a in report.alerts),
        warnings=tuple(str(w) for w in report.warnings),
        duration_s=round(time.monotonic() - began, 3),
    )

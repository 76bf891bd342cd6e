"""``seeknal-spark parity | drift``: the parity gate and the drift report (``Project``)."""

from __future__ import annotations

import argparse

from seeknal_spark.app.checks import run_drift
from seeknal_spark.app.config import SparkConfig
from seeknal_spark.errors import SeeknalError
from seeknal_spark.interfaces.cli.common import UsageError, emit, load_project
from seeknal_spark.interfaces.cli.serving import online_arguments

__all__ = ["drift", "drift_arguments", "parity", "parity_arguments"]


def parity_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--schema", required=True, metavar="FILE", help="the model's feature_schema.json"
    )
    online_arguments(parser)
    parser.add_argument(
        "--values",
        action="store_true",
        help="also compare served values with the point-in-time join (the project's lookups)",
    )
    parser.add_argument(
        "--sample",
        type=int,
        metavar="N",
        help="keys compared per lookup (default: all, up to 10000)",
    )


def parity(args: argparse.Namespace) -> int:
    """The gate: print the summary, then fail (exit 1) naming every problem."""
    if args.sample is not None and args.sample < 1:
        raise UsageError(f"--sample: give a positive number of keys, got {args.sample}")
    result = load_project(args).parity(
        args.schema, table=args.table, sink=args.sink, values=args.values, sample=args.sample
    )
    emit(result.to_dict())
    result.raise_for_problems()
    return 0


def drift_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reference", required=True, metavar="PATH", help="reference data, e.g. the training set"
    )
    parser.add_argument(
        "--current", required=True, metavar="PATH", help="current data, e.g. served values"
    )
    parser.add_argument("--out", required=True, metavar="FILE", help="the HTML report to write")
    parser.add_argument(
        "--features",
        nargs="+",
        metavar="NAME",
        help="features to compare (default: the supported columns both sides share)",
    )
    parser.add_argument(
        "--exclude",
        nargs="+",
        default=[],
        metavar="NAME",
        help="columns never compared (keys, times, labels)",
    )
    parser.add_argument("--format", help="format of both inputs (default: from each path)")
    parser.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a drift threshold, e.g. psi_alert=0.3 (repeat for several)",
    )
    parser.add_argument(
        "--fail-on-alert", action="store_true", help="exit 1 when any feature has an alert"
    )


def _thresholds(items: list[str]) -> dict[str, float]:
    values: dict[str, float] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        try:
            values[key.strip()] = float(raw)
        except ValueError:
            raise UsageError(f"--threshold: expected NAME=NUMBER, got {item!r}") from None
        if not sep:
            raise UsageError(f"--threshold: expected NAME=NUMBER, got {item!r}")
    try:  # checked here, at the edge: a bad value is the user's input
        from seeknal_spark.monitoring.drift import DriftThresholds

        DriftThresholds.from_mapping(values)
    except ValueError as exc:
        raise UsageError(f"--threshold: {exc}") from None
    return values


def drift(args: argparse.Namespace) -> int:
    """Write the HTML report and print the summary; ``--fail-on-alert`` fails on alerts."""
    thresholds = _thresholds(args.threshold)
    if args.config is not None:
        spark = load_project(args).spark
    else:
        from seeknal_spark.app.project import session_for

        spark = session_for(SparkConfig(app_name="seeknal-spark-drift"))
    result = run_drift(
        spark,
        args.reference,
        args.current,
        args.out,
        features=args.features,
        exclude=args.exclude,
        fmt=args.format,
        thresholds=thresholds,
    )
    emit(result.to_dict())
    if result.alerts and args.fail_on_alert:
        raise SeeknalError(
            f"drift alert(s) on {len(result.alerts)} metric(s): "
            + "; ".join(result.alerts)
            + f" (report: {result.report})"
        )
    return 0

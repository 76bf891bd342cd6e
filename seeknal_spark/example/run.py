"""``run_example``: the example end to end on embedded defaults (local Spark, local Delta).

Later steps (training set, online export) extend :func:`run_example`; each adds its part
of the returned summary under its own key.
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import date, datetime, timedelta, timezone
from typing import Any

from pyspark.sql import SparkSession

from seeknal_spark.example.data import write_example_data
from seeknal_spark.example.features import example_feature_groups

__all__ = ["DEFAULT_WORKDIR", "EXAMPLE_SPARK_CONF", "run_example"]

logger = logging.getLogger(__name__)

#: Where the example writes by default, relative to the working directory.
DEFAULT_WORKDIR = os.path.join("runs", "example")

#: Settings for the local session the example builds when none is active.
EXAMPLE_SPARK_CONF = {
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.showConsoleProgress": "false",
    "spark.databricks.delta.snapshotPartitions": "1",
}


def _prepare_data(spark: SparkSession, data_dir: str, params: dict[str, Any]) -> dict[str, str]:
    """Generate the data unless ``data_dir`` already holds it for the same parameters."""
    marker = os.path.join(data_dir, "_params.json")
    wanted = json.dumps(params, sort_keys=True, default=str)
    names = ("customers", "transactions", "churn_spine")
    paths = {name: os.path.join(data_dir, f"{name}.parquet") for name in names}
    if os.path.exists(marker):
        with open(marker, encoding="utf-8") as handle:
            if handle.read() == wanted and all(os.path.isdir(p) for p in paths.values()):
                logger.info("example data already in %s", data_dir)
                return paths
    paths = write_example_data(spark, data_dir, **params)
    with open(marker, "w", encoding="utf-8") as handle:
        handle.write(wanted)
    return paths


def run_example(
    workdir: str | os.PathLike[str] = DEFAULT_WORKDIR,
    *,
    spark: SparkSession | None = None,
    n_customers: int = 500,
    n_days: int = 90,
    start: date | str = "2024-01-01",
    seed: int = 42,
    interval: timedelta | None = None,
) -> dict[str, Any]:
    """Generate the example data under ``workdir`` and materialize both feature groups.

    Parameters
    ----------
    workdir:
        Folder for ``data/`` (Parquet inputs) and ``store/`` (the feature store).
    spark:
        A session; by default the active one, or a new local session with Delta.
    n_customers, n_days, start, seed:
        Size and seed of the synthetic data (see :mod:`seeknal_spark.example.data`).
    interval:
        Write the period in windows of this length (default: one window per group).
        Windows already written with the same transform are skipped, so running the
        example twice writes nothing the second time.

    Returns
    -------
    dict
        ``workdir``, ``data`` (paths), ``store``, ``feature_groups`` (per group: version,
        rows written, windows written / skipped, Delta version), ``rows``,
        ``duration_s``.
    """
    from seeknal_spark.project import materialize_group
    from seeknal_spark.session import get_spark
    from seeknal_spark.store import FeatureStore

    began = time.monotonic()
    root = os.path.abspath(os.fspath(workdir))
    spark = spark or get_spark("seeknal-spark-example", conf=EXAMPLE_SPARK_CONF)
    first = date.fromisoformat(start) if isinstance(start, str) else start
    params = {"n_customers": n_customers, "n_days": n_days, "start": first.isoformat(),
              "seed": seed}
    paths = _prepare_data(spark, os.path.join(root, "data"), params)
    store = FeatureStore(os.path.join(root, "store"), spark=spark)
    groups = example_feature_groups(store, os.path.join(root, "data"))
    window_start = datetime(first.year, first.month, first.day, tzinfo=timezone.utc)
    window_end = window_start + timedelta(days=n_days)
    summary: dict[str, Any] = {
        "workdir": root,
        "data": paths,
        "store": store.path,
        "window": [window_start.isoformat(), window_end.isoformat()],
        "feature_groups": {},
    }
    for name, group in groups.items():
        results = materialize_group(group, window_start, window_end, interval=interval)
        written = [r for r in results if r.status == "written"]
        summary["feature_groups"][name] = {
            "version": "v1",
            "rows_written": sum(r.rows for r in written),
            "windows_written": len(written),
            "windows_skipped": len(results) - len(written),
            "delta_version": store.current_table_version(name, "v1"),
        }
    summary["rows"] = sum(g["rows_written"] for g in summary["feature_groups"].values())
    summary["duration_s"] = round(time.monotonic() - began, 3)
    return summary

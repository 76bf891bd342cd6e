"""``run_example``: the churn example end to end on embedded defaults (local Spark, Delta, SQLite).

The steps, each reported under its own key of the returned summary:

1. ``data``: generate seeded customers, transactions and a labelled churn spine (Parquet);
2. ``feature_groups``: materialize ``customer_spend`` (an event group: it stores the
   transactions) and ``customer_profile`` (daily rows), skipped when already written with
   the same definition;
3. ``training``: join both lookups onto the spine with
   :func:`~seeknal_spark.example.churn.churn_features` (the spend windows computed exactly
   at each prediction time, the profile as of it; both strictly before it), write the
   training set and its manifest;
4. ``model``: train a RandomForestClassifier, save it with the feature schema and the
   feature encoding next to it (``last_txn_time``, a timestamp, is looked up and served
   but is not a model input);
5. ``serving``: export the features as of the end of the data to the embedded online store
   (the spend windows as of that time);
6. ``parity``: :func:`~seeknal_spark.monitoring.parity.validate_parity` and
   :func:`~seeknal_spark.monitoring.parity.check_values` (every key, and every spine row as
   a request for the on-demand ``days_since_last_txn``; zero mismatches or it fails);
7. ``prediction``: fetch one customer's features online with a request (its time),
   predict the churn probability;
8. ``drift``: compare the training set with the served snapshot (the model's inputs),
   write an HTML report.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone
from functools import reduce
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame, SparkSession

from seeknal_spark.example.data import write_example_data
from seeknal_spark.example.features import example_feature_groups

if TYPE_CHECKING:
    from seeknal_spark.online.table import OnlineTable
    from seeknal_spark.training.historical import HistoricalFeatures
    from seeknal_spark.training.schema import FeatureSchema

__all__ = ["DEFAULT_WORKDIR", "EXAMPLE_SPARK_CONF", "ONLINE_TABLE", "format_summary", "run_example"]

logger = logging.getLogger(__name__)

#: Where the example writes by default, relative to the working directory.
DEFAULT_WORKDIR = os.path.join("runs", "example")

#: Settings for the local session the example builds when none is active.
EXAMPLE_SPARK_CONF = {
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.showConsoleProgress": "false",
    "spark.databricks.delta.snapshotPartitions": "1",
}

#: The online table the example serves.
ONLINE_TABLE = "customer_features"


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
    customer_id: str | None = None,
    n_estimators: int = 100,
) -> dict[str, Any]:
    """Run the churn example end to end under ``workdir`` (see the module docstring).

    Parameters
    ----------
    workdir:
        Folder for ``data/`` (Parquet inputs), ``store/`` (the feature store),
        ``training/``, ``model/`` (model, ``feature_schema.json``, ``encoding.json``),
        ``online/`` (the embedded online store) and ``drift_report.html``.
    spark:
        A session; by default the active one, or a new local session with Delta.
    n_customers, n_days, start, seed:
        Size and seed of the synthetic data (see :mod:`seeknal_spark.example.data`).
    interval:
        Write the period in windows of this length (default: one window per group).
        Windows already written with the same transform are skipped, so running the
        example twice writes no feature rows the second time.
    customer_id:
        The customer to predict for (default: the first customer, by id, of the latest
        prediction time of the spine).
    n_estimators:
        Trees of the random forest.

    Returns
    -------
    dict
        ``workdir``, ``data`` (paths), ``store``, ``window``, ``feature_groups`` (per
        group: version, rows written, windows written / skipped, Delta version), ``rows``
        (feature rows written), ``training``, ``model``, ``serving``, ``parity``,
        ``prediction`` (``customer_id``, ``churn_probability``), ``drift``, ``timings``
        and ``duration_s``.

    Raises
    ------
    ParityError
        When the online table does not serve what the model was trained on.
    ConfigurationError
        When scikit-learn is missing (``pip install seeknal-spark[ml]``).
    """
    from seeknal_spark.app.project import materialize_group
    from seeknal_spark.example.churn import ModelEncoding, require_sklearn
    from seeknal_spark.session import get_spark
    from seeknal_spark.store.feature_store import FeatureStore

    require_sklearn()  # fail before minutes of Spark work, not after
    began = time.monotonic()
    timings: dict[str, float] = {}
    clock = [began]

    def lap(step: str) -> None:
        now = time.monotonic()
        timings[step] = round(now - clock[0], 3)
        clock[0] = now
        logger.info("example step %s done in %.1f s", step, timings[step])

    root = os.path.abspath(os.fspath(workdir))
    spark = spark or get_spark("seeknal-spark-example", conf=EXAMPLE_SPARK_CONF)
    first = date.fromisoformat(start) if isinstance(start, str) else start
    params = {
        "n_customers": n_customers,
        "n_days": n_days,
        "start": first.isoformat(),
        "seed": seed,
    }
    paths = _prepare_data(spark, os.path.join(root, "data"), params)
    lap("data")
    store = FeatureStore(os.path.join(root, "store"), spark=spark)
    groups = example_feature_groups(store, os.path.join(root, "data"))
    window_start = datetime(first.year, first.month, first.day, tzinfo=timezone.utc)
    window_end = window_start + timedelta(days=n_days)
    summary: dict[str, Any] = {
        "status": "ok",
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
    lap("materialize")

    hist, training_df, summary["training"] = _training_set(
        spark, groups, paths["churn_spine"], os.path.join(root, "training")
    )
    lap("training_set")
    schema = hist.feature_schema()
    model_dir = os.path.join(root, "model")
    encoding = ModelEncoding.for_schema(schema)
    model, summary["model"] = _train(training_df, schema, encoding, model_dir, seed, n_estimators)
    lap("train")

    table = hist.serve(ONLINE_TABLE, sink=_sink(root), as_of=window_end)
    meta = table.metadata
    summary["serving"] = {
        "table": table.name,
        "sink": table.sink.describe(),
        "generation": meta["generation"],
        "as_of": meta["as_of"],
        "keys_written": {lk["feature_group"]: lk["keys_written"] for lk in meta["lookups"]},
    }
    lap("serve")
    summary["parity"] = _parity(schema, table, hist, spark.read.parquet(paths["churn_spine"]))
    lap("parity")

    if customer_id is None:
        latest = training_df[schema.timestamp_col].max()
        customer_id = str(
            sorted(training_df.loc[training_df[schema.timestamp_col] == latest, "customer_id"])[0]
        )
    summary["prediction"] = _predict(table, schema, encoding, model, customer_id, window_end)
    lap("predict")
    summary["drift"] = _drift(
        spark,
        hist,
        encoding.model_features,
        summary["training"]["path"],
        window_end,
        os.path.join(root, "drift_report.html"),
    )
    lap("drift")
    summary["timings"] = timings
    summary["duration_s"] = round(time.monotonic() - began, 3)
    return summary


def _sink(root: str) -> Any:
    from seeknal_spark.online.embedded import EmbeddedSink

    return EmbeddedSink(os.path.join(root, "online"))


def _training_set(
    spark: SparkSession, groups: Mapping[str, Any], spine_path: str, folder: str
) -> tuple[HistoricalFeatures, Any, dict[str, Any]]:
    """Point-in-time training set: written as Parquet with its manifest, returned in pandas."""
    from seeknal_spark.example.churn import LABEL_COL, TIMESTAMP_COL, churn_features

    hist = churn_features(groups)
    spine = spark.read.parquet(spine_path)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "churn_training.parquet")
    hist.to_dataframe(spine).write.mode("overwrite").parquet(path)
    manifest = hist.manifest
    assert manifest is not None  # set by to_dataframe
    manifest_path = os.path.join(folder, "churn_training.manifest.json")
    with open(manifest_path, "w", encoding="utf-8") as handle:
        handle.write(manifest.to_json() + "\n")
    # the training set is small (one row per customer and prediction time): sklearn
    # needs it in memory anyway
    frame = spark.read.parquet(path).toPandas()
    info = {
        "path": path,
        "manifest": manifest_path,
        "rows": len(frame),
        "prediction_times": int(frame[TIMESTAMP_COL].nunique()),
        "churned": int(frame[LABEL_COL].sum()),
        "delta_versions": {e.feature_group: e.delta_version for e in manifest.lookups},
    }
    return hist, frame, info


def _train(
    training: Any,
    schema: FeatureSchema,
    encoding: Any,
    folder: str,
    seed: int,
    n_estimators: int,
) -> tuple[Any, dict[str, Any]]:
    from seeknal_spark.example.churn import save_model, train_churn_model

    model, metrics = train_churn_model(
        training, schema, encoding, seed=seed, n_estimators=n_estimators
    )
    os.makedirs(folder, exist_ok=True)
    paths = {
        "model": os.path.join(folder, "model.pkl"),
        "schema": os.path.join(folder, "feature_schema.json"),
        "encoding": os.path.join(folder, "encoding.json"),
    }
    save_model(model, paths["model"])
    schema.save(paths["schema"])
    encoding.save(paths["encoding"])
    return model, {**paths, "features": schema.feature_names, **metrics}


def _parity(
    schema: FeatureSchema, table: OnlineTable, hist: HistoricalFeatures, spine: DataFrame
) -> dict[str, Any]:
    from seeknal_spark.monitoring.parity import check_values, validate_parity

    validate_parity(schema, table)
    report = check_values(table, hist, requests=spine)  # spine rows as requests (on-demand)
    report.raise_for_mismatches()
    return {
        "schema_ok": True,
        "values_ok": report.ok,
        "keys_checked": report.keys_checked,
        "mismatches": report.total_mismatches,
    }


def _predict(
    table: OnlineTable,
    schema: FeatureSchema,
    encoding: Any,
    model: Any,
    customer_id: str,
    now: datetime,
) -> dict[str, Any]:
    from seeknal_spark.example.churn import churn_probabilities

    feature_names = schema.feature_names
    features = table.get_features(
        keys=[{"customer_id": customer_id}],
        feature_names=feature_names,
        request=[{schema.timestamp_col: now}],  # the request's time: days_since_last_txn
    )
    row = [[features[f] for f in feature_names]]
    if row != schema.matrix(features):  # the two ways of building X agree
        raise AssertionError(f"schema.matrix disagrees with the feature order: {row}")
    probability = churn_probabilities(model, encoding.transform(row))[0]
    return {
        "customer_id": customer_id,
        "found": bool(features.found[0]),
        "features": {
            name: value.isoformat() if isinstance(value, datetime) else value
            for name, value in zip(feature_names, row[0], strict=True)
        },
        "churn_probability": round(probability, 4),
    }


def _drift(
    spark: SparkSession,
    hist: HistoricalFeatures,
    names: list[str],
    training_path: str,
    as_of: datetime,
    out: str,
) -> dict[str, Any]:
    """Training set (reference) against the served snapshot (current) for the features
    ``names``, as an HTML report; a key absent from a lookup's snapshot has its defaults,
    as ``get_features`` serves it."""
    from seeknal_spark._timestamps import utc_literal
    from seeknal_spark.definitions.on_demand import order_on_demand
    from seeknal_spark.monitoring.drift import compute_drift
    from seeknal_spark.training.on_demand import attach_on_demand

    reference = spark.read.parquet(training_path).select(*names)
    # the snapshot holds the stored features; on-demand ones are computed from them and
    # the request, here a request at the export time, by the function serving runs
    needed = set(names) | {i for f in hist.on_demand for i in f.inputs}
    parts: list[DataFrame] = [
        df.select(*lookup.feature_group.entity.join_keys, *[c for c in df.columns if c in needed])
        for lookup, df in hist.snapshot(as_of)
    ]
    # a key one lookup's snapshot lacks (no transaction in the last 30 days) reads that
    # lookup's defaults online, as in training: fill them, not nulls
    defaults = {
        lookup.output_name(f): value
        for lookup in hist.lookups
        for f, value in lookup.defaults.items()
        if lookup.output_name(f) in needed
    }
    current: DataFrame = reduce(
        lambda left, right: left.join(right, on=["customer_id"], how="full"), parts
    )
    if defaults:
        current = current.fillna(defaults)
    if hist.on_demand:
        types = {name: dtype.simpleString() for name, dtype, _ in hist.output_features()}
        current = attach_on_demand(
            current.withColumn(hist.timestamp_col, utc_literal(as_of)),
            order_on_demand(hist.on_demand),
            types,
        )
    current = current.select(*names)
    # compute_drift runs a few jobs over each side: compute the snapshot join once, into a
    # file rather than the cache (serverless Spark Connect refuses cache() and persist())
    snapshot_path = training_path.rstrip("/").rsplit("/", 1)[0] + "/served_snapshot"
    current.write.mode("overwrite").parquet(snapshot_path)
    report = compute_drift(reference, spark.read.parquet(snapshot_path), features=names)
    report.to_html(out)
    psi = [f.psi for f in report.features if f.psi is not None]
    return {
        "report": out,
        "features": len(report.features),
        "alerts": [str(a) for a in report.alerts],
        "warnings": len(report.warnings),
        "max_psi": None if not psi else round(max(psi), 4),
    }


def format_summary(summary: Mapping[str, Any]) -> str:
    """The example's summary for people, a few lines (the JSON line follows it)."""
    lines = ["seeknal-spark churn example", f"  workdir           {summary['workdir']}"]
    for name, g in summary.get("feature_groups", {}).items():
        lines.append(
            f"  {name:<18}{g['rows_written']:,} rows written, {g['windows_skipped']} window(s) "
            f"skipped, Delta version {g['delta_version']}"
        )
    t = summary.get("training")
    if t:
        lines.append(
            f"  training set      {t['rows']:,} rows at {t['prediction_times']} prediction "
            f"times, {t['churned']:,} churned -> {t['path']}"
        )
    m = summary.get("model")
    if m:
        auc = "n/a" if m["auc"] is None else f"{m['auc']:.3f}"
        skipped = m.get("skipped_features", [])
        served_only = f" (+ {', '.join(skipped)}: served, not a model input)" if skipped else ""
        lines.append(
            f"  model             RandomForest on {len(m['features']) - len(skipped)} features"
            f"{served_only}: AUC {auc}, accuracy {m['accuracy']:.3f} on {m['test_rows']:,} "
            "held-out rows"
        )
        lines.append(f"  feature schema    {m['schema']}")
    s = summary.get("serving")
    if s:
        keys = ", ".join(f"{k} {v:,}" for k, v in s["keys_written"].items())
        lines.append(f"  online table      {s['table']} as of {s['as_of']} ({keys} keys)")
    p = summary.get("parity")
    if p:
        lines.append(
            f"  parity            schema ok, {p['keys_checked']:,} keys compared, "
            f"{p['mismatches']} mismatching values"
        )
    pr = summary.get("prediction")
    if pr:
        lines.append(
            f"  prediction        customer {pr['customer_id']}: churn probability "
            f"{pr['churn_probability']:.3f}"
        )
    d = summary.get("drift")
    if d:
        lines.append(
            f"  drift             {d['features']} features, {len(d['alerts'])} alert(s), "
            f"max PSI {d['max_psi']} -> {d['report']}"
        )
    if "duration_s" in summary:
        lines.append(f"  done in {summary['duration_s']:.1f} s")
    return "\n".join(lines)

"""Writing a training set with its ``.manifest.json`` (Delta versions read) and ``.schema.json``.

The manifest rebuilds the same rows later (``as_of=``); the schema is what a model was
trained on, for the parity gate before serving.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime

from pyspark.sql import DataFrame, SparkSession

from seeknal_spark.app.results import TrainResult
from seeknal_spark.errors import ConfigurationError
from seeknal_spark.training.historical import HistoricalFeatures, TrainingManifest

__all__ = ["read_manifest", "write_text", "write_training_set"]


def read_manifest(path: str) -> TrainingManifest:
    """The training manifest at ``path`` (a local file).

    Raises
    ------
    ConfigurationError
        When there is no such file.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            return TrainingManifest.from_json(handle.read())
    except FileNotFoundError:
        raise ConfigurationError(
            f"--manifest: no manifest file {path!r}; give the .manifest.json written beside "
            "a training set"
        ) from None


def write_text(spark: SparkSession, path: str, text: str) -> None:
    """A small text file: a local file, or (URIs such as s3a://) a one-part Spark text folder."""
    if "://" in path and not path.startswith("file:"):
        frame = spark.createDataFrame([(text,)], "value string")
        frame.coalesce(1).write.mode("overwrite").text(path)
        return
    local = path[len("file:") :] if path.startswith("file:") else path
    os.makedirs(os.path.dirname(os.path.abspath(local)), exist_ok=True)
    with open(local, "w", encoding="utf-8") as handle:
        handle.write(text)


def write_training_set(
    hist: HistoricalFeatures,
    spine: DataFrame,
    *,
    output: str,
    fmt: str = "parquet",
    project: str = "",
    spine_name: str = "",
    label_col: str | None = None,
    as_of: TrainingManifest | None = None,
    feature_start_time: datetime | None = None,
) -> TrainResult:
    """Join ``hist`` onto ``spine``, write it to ``output`` and the manifest and schema beside it.

    Writes ``<output>.manifest.json`` and ``<output>.schema.json``.

    Raises
    ------
    ConfigurationError
        When the spine lacks the label column ``label_col``.
    """
    began = time.monotonic()
    if label_col is not None and label_col not in spine.columns:
        raise ConfigurationError(
            f"the spine {spine_name!r} has no label column {label_col!r} (training.label_col); "
            f"its columns are {spine.columns}"
        )
    spark = spine.sparkSession
    frame = hist.to_dataframe(spine, feature_start_time=feature_start_time, as_of=as_of)
    frame.write.mode("overwrite").format(fmt).save(output)
    manifest = hist.manifest
    if manifest is None:  # set by to_dataframe
        raise RuntimeError("HistoricalFeatures.to_dataframe left no manifest")
    manifest_path = output.rstrip("/") + ".manifest.json"
    schema_path = output.rstrip("/") + ".schema.json"
    write_text(
        spark, manifest_path, json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n"
    )
    write_text(spark, schema_path, hist.feature_schema().to_json())
    rows = spark.read.format(fmt).load(output).count()
    return TrainResult(
        project=project,
        spine=spine_name,
        output=output,
        format=fmt,
        rows=rows,
        features=(
            *(name for name, _, _ in hist.output_features()),
            *(f.name for f in hist.on_demand),
        ),
        manifest=manifest_path,
        schema=schema_path,
        versions={e.feature_group: e.version for e in manifest.lookups},
        delta_versions={e.feature_group: e.delta_version for e in manifest.lookups},
        duration_s=round(time.monotonic() - began, 3),
    )

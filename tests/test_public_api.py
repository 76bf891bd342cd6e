"""The public API is exactly the curated names, and importing it has no side effects."""

from __future__ import annotations

import subprocess
import sys

import seeknal_spark

EXPECTED = [
    "Aggregation",
    "AsOfSource",
    "ColumnTypeError",
    "ConfigurationError",
    "DriftReport",
    "DriftThresholds",
    "EmbeddedSink",
    "EmptyWindowError",
    "Entity",
    "Feature",
    "FeatureGroup",
    "FeatureGroupDefinition",
    "FeatureLookup",
    "FeatureSchema",
    "FeatureStore",
    "HistoricalFeatures",
    "InvalidNameError",
    "MissingColumnError",
    "NotFoundError",
    "NullValueError",
    "OnDemandFeature",
    "OnDemandFeatureError",
    "OnlineFeatures",
    "OnlineSink",
    "OnlineStoreError",
    "OnlineTable",
    "ParityError",
    "PitTuning",
    "RedisSink",
    "SchemaError",
    "SeeknalError",
    "ServingLogger",
    "TrainingManifest",
    "TransformError",
    "VersionConflictError",
    "WriteResult",
    "__version__",
    "check_values",
    "compute_drift",
    "get_spark",
    "point_in_time_join",
    "validate_parity",
    "window_aggregates",
]


def test_exports_are_exactly_the_curated_names() -> None:
    assert seeknal_spark.__all__ == EXPECTED == sorted(EXPECTED)
    for name in EXPECTED:
        assert hasattr(seeknal_spark, name), name


def test_import_starts_nothing_and_pulls_no_optional_dependency() -> None:
    code = (
        "import sys, seeknal_spark, seeknal_spark.errors, seeknal_spark.session\n"
        "from pyspark.sql import SparkSession\n"
        "assert SparkSession.getActiveSession() is None\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('redis', 'sklearn', 'scipy', 'airflow', 'matplotlib')]\n"
        "assert not heavy, heavy\n"
        "print('clean')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "clean"
    assert out.stderr == ""

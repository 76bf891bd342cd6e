"""seeknal-spark: feature groups on versioned Delta tables, point-in-time training data and
online serving from one set of definitions, so training and serving cannot drift apart.

The package follows the data's path; each layer imports only the ones before it:
``definitions`` -> ``store`` -> ``offline`` -> ``online`` -> ``training`` -> ``monitoring``
-> ``app`` -> ``example`` -> ``interfaces`` (``errors``, ``session``, ``_timestamps``
and ``_progress`` sit below all).
"""

from __future__ import annotations

# First: raises ImportError naming what to install when pyspark is missing or not Spark 4.0.x.
from seeknal_spark import _requirements  # noqa: F401
from seeknal_spark.definitions.aggregation import Aggregation
from seeknal_spark.definitions.entity import Entity
from seeknal_spark.definitions.on_demand import OnDemandFeature
from seeknal_spark.errors import (
    ColumnTypeError,
    ConfigurationError,
    EmptyWindowError,
    InvalidNameError,
    MissingColumnError,
    NotFoundError,
    NullValueError,
    OnDemandFeatureError,
    OnlineStoreError,
    ParityError,
    SchemaError,
    SeeknalError,
    TransformError,
    VersionConflictError,
)
from seeknal_spark.monitoring.drift import DriftReport, DriftThresholds, compute_drift
from seeknal_spark.monitoring.parity import check_values, validate_parity
from seeknal_spark.offline.pit import AsOfSource, PitTuning, point_in_time_join
from seeknal_spark.offline.windows import window_aggregates
from seeknal_spark.online import EmbeddedSink, OnlineFeatures, OnlineSink, OnlineTable, RedisSink
from seeknal_spark.online.serving_log import ServingLogger
from seeknal_spark.session import get_spark
from seeknal_spark.store.feature_group import FeatureGroup, WriteResult
from seeknal_spark.store.feature_store import FeatureStore
from seeknal_spark.store.registry import Feature, FeatureGroupDefinition
from seeknal_spark.training.historical import FeatureLookup, HistoricalFeatures, TrainingManifest
from seeknal_spark.training.schema import FeatureSchema

__version__ = "0.1.0"

__all__ = [
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

"""seeknal-spark: feature groups on versioned Delta tables, point-in-time training data and
online serving from one set of definitions, so training and serving cannot drift apart."""

from __future__ import annotations

from seeknal_spark.drift import DriftReport, DriftThresholds, compute_drift
from seeknal_spark.entity import Entity
from seeknal_spark.errors import SeeknalError
from seeknal_spark.feature_group import FeatureGroup, WriteResult
from seeknal_spark.historical import FeatureLookup, HistoricalFeatures, TrainingManifest
from seeknal_spark.online import EmbeddedSink, OnlineFeatures, OnlineSink, OnlineTable, RedisSink
from seeknal_spark.parity import check_values, validate_parity
from seeknal_spark.registry import Feature, FeatureGroupDefinition
from seeknal_spark.schema import FeatureSchema
from seeknal_spark.serving_log import ServingLogger
from seeknal_spark.store import FeatureStore

__version__ = "0.1.0"

__all__ = [
    "DriftReport",
    "DriftThresholds",
    "EmbeddedSink",
    "Entity",
    "Feature",
    "FeatureGroup",
    "FeatureGroupDefinition",
    "FeatureLookup",
    "FeatureSchema",
    "FeatureStore",
    "HistoricalFeatures",
    "OnlineFeatures",
    "OnlineSink",
    "OnlineTable",
    "RedisSink",
    "SeeknalError",
    "ServingLogger",
    "TrainingManifest",
    "WriteResult",
    "__version__",
    "check_values",
    "compute_drift",
    "validate_parity",
]

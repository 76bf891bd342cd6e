"""seeknal-spark: feature groups on versioned Delta tables, point-in-time training data and
online serving from one set of definitions, so training and serving cannot drift apart."""

from __future__ import annotations

from seeknal_spark.entity import Entity
from seeknal_spark.errors import SeeknalError
from seeknal_spark.feature_group import FeatureGroup, WriteResult
from seeknal_spark.registry import Feature, FeatureGroupDefinition
from seeknal_spark.store import FeatureStore

__version__ = "0.1.0"

__all__ = [
    "Entity",
    "Feature",
    "FeatureGroup",
    "FeatureGroupDefinition",
    "FeatureStore",
    "SeeknalError",
    "WriteResult",
    "__version__",
]

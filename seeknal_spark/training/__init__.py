"""Training data: feature lookups joined point-in-time onto a spine, the manifest, serving."""

from seeknal_spark.training.historical import HistoricalFeatures, historical_from_store
from seeknal_spark.training.lookup import FeatureLookup
from seeknal_spark.training.manifest import ManifestEntry, TrainingManifest
from seeknal_spark.training.serve import serve_historical

__all__ = [
    "FeatureLookup",
    "HistoricalFeatures",
    "ManifestEntry",
    "TrainingManifest",
    "historical_from_store",
    "serve_historical",
]

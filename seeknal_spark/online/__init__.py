"""Online serving: export point-in-time snapshots to a key-value sink and read features by key."""

from seeknal_spark.online.embedded import EmbeddedSink
from seeknal_spark.online.export import Snapshot, export_snapshots
from seeknal_spark.online.redis import RedisSink
from seeknal_spark.online.sink import OnlineSink, SinkWriter
from seeknal_spark.online.table import OnlineFeatures, OnlineTable

__all__ = [
    "EmbeddedSink",
    "OnlineFeatures",
    "OnlineSink",
    "OnlineTable",
    "RedisSink",
    "SinkWriter",
    "Snapshot",
    "export_snapshots",
]

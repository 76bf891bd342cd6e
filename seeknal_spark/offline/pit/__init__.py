"""The point-in-time join: validation, a planner with a typed plan, the merge and its kernel."""

from seeknal_spark.offline.pit.join import point_in_time_join
from seeknal_spark.offline.pit.source import AsOfSource, feature_hash
from seeknal_spark.offline.pit.tuning import PitTuning

__all__ = ["AsOfSource", "PitTuning", "feature_hash", "point_in_time_join"]

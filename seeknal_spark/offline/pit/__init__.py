"""The point-in-time join: validation, planner and the Arrow kernel."""

from seeknal_spark.offline.pit.join import AsOfSource, PitTuning, feature_hash, point_in_time_join

__all__ = ["AsOfSource", "PitTuning", "feature_hash", "point_in_time_join"]

"""Time-window aggregation: exact window aggregates at each spine time (planner, kernel)."""

from seeknal_spark.offline.windows.aggregate import window_aggregates
from seeknal_spark.offline.windows.tuning import WindowTuning

__all__ = ["WindowTuning", "window_aggregates"]

"""The YAML project file, parsed at the edge (CLI, ``jobs/``) into small frozen dataclasses.

:mod:`.durations` reads ``30d``-style durations, :mod:`.model` holds the frozen
dataclasses, :mod:`.reader`, :mod:`.sections` and :mod:`.on_demand` check each YAML section (unknown
keys, wrong types, file and line in every error) and :mod:`.loader` reads a whole file.
"""

from seeknal_spark.app.config.durations import parse_duration
from seeknal_spark.app.config.loader import load_config, parse_config
from seeknal_spark.app.config.model import (
    EmbeddedSinkConfig,
    EntityConfig,
    FeatureGroupConfig,
    InputConfig,
    LookupConfig,
    OnDemandConfig,
    OnlineConfig,
    ProjectConfig,
    RedisSinkConfig,
    SparkConfig,
    StoreConfig,
    TrainingConfig,
)

__all__ = [
    "EmbeddedSinkConfig",
    "EntityConfig",
    "FeatureGroupConfig",
    "InputConfig",
    "LookupConfig",
    "OnDemandConfig",
    "OnlineConfig",
    "ProjectConfig",
    "RedisSinkConfig",
    "SparkConfig",
    "StoreConfig",
    "TrainingConfig",
    "load_config",
    "parse_config",
    "parse_duration",
]

"""The frozen configuration objects a project file is parsed into.

Each section is a small frozen dataclass; the YAML reader (:mod:`.reader`,
:mod:`.sections`) rejects unknown keys before one is built, and the sections that can be
named in later errors remember the ``file:line`` of each of their keys.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from seeknal_spark.definitions.aggregation import Aggregation

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
]


class _Located:
    """Where a section came from, for error messages raised after parsing."""

    where: str
    lines: Mapping[str, str]

    def at(self, key: str) -> str:
        """``file:line`` of ``key`` in this section (or of the section)."""
        return self.lines.get(key) or self.where


@dataclass(frozen=True)
class SparkConfig:
    """Settings for a *new local* session; an existing session is never changed."""

    master: str = "local[*]"
    app_name: str = "seeknal-spark"
    conf: Mapping[str, str] = field(default_factory=dict)
    jars_dir: str | None = None


@dataclass(frozen=True)
class StoreConfig:
    """Where the feature store lives: a root ``path`` or a metastore ``catalog``."""

    path: str | None = None
    catalog: str | None = None


@dataclass(frozen=True)
class InputConfig(_Located):
    """A named data source: a ``path``, a ``table``, or a ``generator`` function.

    ``generator`` is ``"module:function"``, called as ``function(spark, **args)``.
    """

    name: str
    path: str | None = None
    table: str | None = None
    format: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    generator: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    where: str = field(default="", compare=False, repr=False)
    lines: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class EntityConfig(_Located):
    """An entity and its join keys."""

    name: str
    join_keys: tuple[str, ...]
    where: str = field(default="", compare=False, repr=False)
    lines: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class FeatureGroupConfig(_Located):
    """A feature group: its transform is an import path (``transform``) or ``sql`` text.

    With ``aggregations`` it is an event group: it stores events (its single input as is
    when it has no transform) and its features are the time-window aggregations.
    """

    name: str
    entity: str
    event_time_col: str
    transform: str | None = None
    sql: str | None = None
    inputs: tuple[str, ...] = ()
    features: Mapping[str, str] | None = None
    ttl: timedelta | None = None
    created_time_col: str | None = None
    description: str = ""
    owner: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    version: str = "v1"
    aggregations: tuple[Aggregation, ...] | None = None
    where: str = field(default="", compare=False, repr=False)
    lines: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class LookupConfig(_Located):
    """Features to look up from a group version (for training sets and serving)."""

    feature_group: str
    features: tuple[str, ...] | None = None
    version: str | None = None
    ttl: timedelta | None = None
    prefix: str | None = None
    default: Any = None
    where: str = field(default="", compare=False, repr=False)
    lines: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class OnDemandConfig(_Located):
    """A request-time feature: the function ``function`` (``"module:function"``) of
    ``inputs``, computed in the training set and at serving (see
    :class:`~seeknal_spark.definitions.on_demand.OnDemandFeature`)."""

    name: str
    inputs: tuple[str, ...]
    output_type: str
    function: str
    mode: str = "scalar"
    description: str = ""
    where: str = field(default="", compare=False, repr=False)
    lines: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class TrainingConfig(_Located):
    """How to build a training set: a spine input and where to write the result.

    ``inclusive``: whether a feature stamped exactly at a spine time may be used (the
    ``inclusive`` of :class:`~seeknal_spark.training.historical.HistoricalFeatures`, for
    training, serving and parity alike).
    """

    spine: str
    timestamp_col: str
    label_col: str | None = None
    output: str | None = None
    format: str = "parquet"
    inclusive: bool = True
    where: str = field(default="", compare=False, repr=False)
    lines: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class EmbeddedSinkConfig:
    """The embedded (SQLite) online store."""

    path: str | None = None


@dataclass(frozen=True)
class RedisSinkConfig:
    """A Redis online store; the password comes from the variable ``password_env``."""

    url: str = "redis://127.0.0.1:6379/0"
    url_env: str | None = None
    password_env: str | None = None
    key_prefix: str = "seeknal"
    socket_timeout: float = 30.0

    def resolved_url(self) -> str:
        """``url``, or the value of the environment variable ``url_env`` when it is set."""
        if self.url_env is not None and os.environ.get(self.url_env):
            return os.environ[self.url_env]
        return self.url


@dataclass(frozen=True)
class OnlineConfig:
    """Online sinks; ``sink`` names the one used by default."""

    sink: str = "embedded"
    table: str | None = None
    embedded: EmbeddedSinkConfig | None = None
    redis: RedisSinkConfig | None = None


@dataclass(frozen=True)
class ProjectConfig:
    """A whole project file."""

    name: str
    store: StoreConfig
    spark: SparkConfig = field(default_factory=SparkConfig)
    description: str = ""
    inputs: Mapping[str, InputConfig] = field(default_factory=dict)
    entities: Mapping[str, EntityConfig] = field(default_factory=dict)
    feature_groups: Mapping[str, FeatureGroupConfig] = field(default_factory=dict)
    lookups: tuple[LookupConfig, ...] = ()
    on_demand: tuple[OnDemandConfig, ...] = ()
    training: TrainingConfig | None = None
    online: OnlineConfig = field(default_factory=OnlineConfig)
    source: str | None = field(default=None, compare=False)

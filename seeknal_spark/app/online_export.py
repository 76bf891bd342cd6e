"""The export as a job: from a feature store and feature-group names to a served online table.

:func:`run_export` is what ``jobs/export_online.py`` (spark-submit) and the CLI's
``seeknal-spark serve`` call. It takes plain values (paths, names, a URL), builds the
point-in-time features of the named feature groups with
:class:`~seeknal_spark.training.historical.HistoricalFeatures`, exports their snapshot with
:func:`~seeknal_spark.online.export.serve_historical`, and returns an
:class:`ExportSummary`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pyspark.sql import SparkSession

from seeknal_spark.definitions.naming import validate_name
from seeknal_spark.errors import ConfigurationError
from seeknal_spark.online.embedded import EmbeddedSink
from seeknal_spark.online.export import serve_historical
from seeknal_spark.online.redis import RedisSink
from seeknal_spark.online.sink import OnlineSink

__all__ = ["ExportSummary", "make_sink", "parse_feature_group", "run_export"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportSummary:
    """What one export did."""

    table: str
    generation: str
    keys_written: int
    seconds: float
    sink: str
    as_of: str
    lookups: tuple[tuple[str, str, int], ...]  # (feature group, version, keys)

    def __str__(self) -> str:
        parts = ", ".join(f"{g} {v}: {n:,}" for g, v, n in self.lookups)
        return (
            f"online table {self.table}: {self.keys_written:,} keys written in "
            f"{self.seconds:.1f} s to {self.sink} (generation {self.generation}, as of "
            f"{self.as_of}; {parts})"
        )


def parse_feature_group(spec: str) -> tuple[str, str]:
    """``"name"`` or ``"name:version"`` -> ``(name, version)`` (version default ``v1``)."""
    name, _, version = spec.partition(":")
    return validate_name(name, "feature group"), validate_name(version or "v1", "version")


def make_sink(
    *,
    redis_url: str | None = None,
    redis_password_env: str | None = None,
    online_dir: str | None = None,
) -> OnlineSink:
    """A :class:`RedisSink` when ``redis_url`` is given, else an :class:`EmbeddedSink`."""
    if redis_url:
        if online_dir:
            raise ConfigurationError("give either a Redis URL or an online folder, not both")
        return RedisSink(redis_url, password_env=redis_password_env)
    if redis_password_env:
        raise ConfigurationError("redis_password_env needs a Redis URL (--redis-url)")
    return EmbeddedSink(online_dir)


def run_export(
    *,
    store_path: str,
    feature_groups: Sequence[str | tuple[str, str]],
    name: str,
    redis_url: str | None = None,
    redis_password_env: str | None = None,
    online_dir: str | None = None,
    sink: OnlineSink | None = None,
    as_of: datetime | None = None,
    expire_keys: bool = False,
    spark: SparkSession | None = None,
    progress: bool | None = None,
) -> ExportSummary:
    """Export the latest values of ``feature_groups`` to online table ``name``.

    Parameters
    ----------
    store_path:
        Root of the :class:`~seeknal_spark.store.feature_store.FeatureStore`.
    feature_groups:
        ``"name"``, ``"name:version"`` or ``(name, version)`` per feature group.
    name:
        The online table.
    redis_url, redis_password_env, online_dir, sink:
        Where to serve from (see :func:`make_sink`); ``sink`` overrides them.
    as_of:
        Snapshot time (default now).
    expire_keys:
        Keys expire at ``as_of + ttl`` of their feature group.
    spark:
        Session to use (default: the active one, or a new local one).
    progress:
        Progress on stderr (default: when stderr is a terminal).

    Returns
    -------
    ExportSummary
        Keys written, seconds, generation.
    """
    from seeknal_spark.training.historical import historical_from_store

    specs = [parse_feature_group(g) if isinstance(g, str) else g for g in feature_groups]
    if not specs:
        raise ConfigurationError("name at least one feature group to export (NAME[:VERSION])")
    target = sink or make_sink(
        redis_url=redis_url, redis_password_env=redis_password_env, online_dir=online_dir
    )
    started = time.monotonic()
    hist = historical_from_store(store_path, specs, spark=spark)
    table = serve_historical(
        hist, name=name, sink=target, as_of=as_of, expire_keys=expire_keys, progress=progress
    )
    meta: dict[str, Any] = table.metadata
    lookups = tuple(
        (str(lk["feature_group"]), str(lk["version"]), int(lk["keys_written"]))
        for lk in meta["lookups"]
    )
    summary = ExportSummary(
        table=table.name,
        generation=str(meta["generation"]),
        keys_written=sum(n for _, _, n in lookups),
        seconds=time.monotonic() - started,
        sink=target.describe(),
        as_of=str(meta["as_of"]),
        lookups=lookups,
    )
    logger.info("%s", summary)
    return summary

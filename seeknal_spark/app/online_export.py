"""The export as a job: from a feature store and feature-group names to a served online table.

:func:`run_export` is what ``jobs/export_online.py`` (spark-submit) calls without a project
file. It takes plain values (paths, names, a URL), builds the point-in-time features of the
named feature groups with :class:`~seeknal_spark.training.historical.HistoricalFeatures`
(a group without a version: its latest registered version,
:func:`~seeknal_spark.app.versions.latest_version`), exports their snapshot with
:func:`serve_snapshot` to the sink of :func:`~seeknal_spark.app.sinks.make_sink`, and
returns an :class:`ExportSummary`. ``Project.serve`` exports through the same
:func:`serve_snapshot`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pyspark.sql import SparkSession

from seeknal_spark.app.sinks import make_sink
from seeknal_spark.app.versions import latest_version
from seeknal_spark.definitions.naming import validate_name
from seeknal_spark.errors import ConfigurationError
from seeknal_spark.online.sink import OnlineSink
from seeknal_spark.online.table import OnlineTable
from seeknal_spark.store.feature_store import FeatureStore
from seeknal_spark.training.historical import HistoricalFeatures, historical_from_store

__all__ = ["ExportSummary", "make_sink", "parse_feature_group", "run_export", "serve_snapshot"]

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


def parse_feature_group(spec: str) -> tuple[str, str | None]:
    """``"name"`` or ``"name:version"`` -> ``(name, version)``; no version gives ``None``.

    ``None`` is resolved to the latest registered version when the export runs.

    Examples
    --------
    >>> parse_feature_group("customer_spend:v2"), parse_feature_group("customer_spend")
    (('customer_spend', 'v2'), ('customer_spend', None))
    """
    name, _, version = spec.partition(":")
    return (
        validate_name(name, "feature group"),
        None if not version else validate_name(version, "version"),
    )


def serve_snapshot(
    hist: HistoricalFeatures,
    *,
    name: str,
    sink: OnlineSink | None,
    as_of: datetime | None = None,
    expire_keys: bool = False,
    progress: bool | None = None,
) -> OnlineTable:
    """Export ``hist``'s snapshot as of ``as_of`` to the online table ``name``.

    :meth:`HistoricalFeatures.serve <seeknal_spark.training.historical.HistoricalFeatures.serve>`,
    the one export path of the library.
    """
    return hist.serve(name, sink, as_of, expire_keys=expire_keys, progress=progress)


def run_export(
    *,
    store_path: str,
    feature_groups: Sequence[str | tuple[str, str | None]],
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
        ``"name"``, ``"name:version"`` or ``(name, version)`` per feature group; without
        a version, the latest registered one.
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
    given = [parse_feature_group(g) if isinstance(g, str) else g for g in feature_groups]
    if not given:
        raise ConfigurationError("name at least one feature group to export (NAME[:VERSION])")
    target = sink or make_sink(
        redis_url=redis_url, redis_password_env=redis_password_env, online_dir=online_dir
    )
    started = time.monotonic()
    store = FeatureStore(store_path, spark=spark)
    specs = [(group, version or latest_version(store, group)) for group, version in given]
    hist = historical_from_store(store, specs)
    table = serve_snapshot(
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

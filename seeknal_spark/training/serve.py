"""Serving a training set's features: typed snapshots of :class:`HistoricalFeatures` exported
online.

:func:`serve_historical` (behind ``HistoricalFeatures.serve``) computes, per lookup, the
latest values of every key as of a time with the point-in-time join
(``HistoricalFeatures.snapshot``), describes each as an online
:class:`~seeknal_spark.online.export.Snapshot` (keys, features, TTL, defaults and the
Delta version read, from the training manifest) and hands them to
:func:`~seeknal_spark.online.export.export_snapshots`. The online layer knows nothing of
training: this module is the bridge.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Protocol

from pyspark.sql import DataFrame

from seeknal_spark._timestamps import to_utc_datetime
from seeknal_spark.definitions.on_demand import OnDemandFeature
from seeknal_spark.online.export import Snapshot, export_snapshots
from seeknal_spark.online.sink import OnlineSink
from seeknal_spark.online.table import OnlineTable
from seeknal_spark.training.lookup import FeatureLookup
from seeknal_spark.training.manifest import ManifestEntry, TrainingManifest

__all__ = ["Servable", "serve_historical", "snapshots_of"]


class Servable(Protocol):
    """What serving needs of a :class:`~seeknal_spark.training.historical.HistoricalFeatures`."""

    @property
    def manifest(self) -> TrainingManifest | None:
        """What the last snapshot read."""
        ...

    @property
    def on_demand(self) -> list[OnDemandFeature]:
        """The on-demand features the online table computes at request time."""
        ...

    def snapshot(
        self, as_of: datetime | date | None = None
    ) -> list[tuple[FeatureLookup, DataFrame]]:
        """Per resolved lookup, one row per key with its latest values as of ``as_of``."""
        ...


def _entry(manifest: TrainingManifest | None, lookup: FeatureLookup) -> ManifestEntry | None:
    for entry in manifest.lookups if manifest is not None else ():
        if entry.feature_group == lookup.name and entry.version == lookup.version:
            return entry
    return None


def snapshots_of(
    hist: Servable, as_of: datetime | date
) -> tuple[list[Snapshot], TrainingManifest | None]:
    """The online snapshots of ``hist`` as of ``as_of``, and the manifest of what they read.

    Each lookup is one snapshot keyed by its entity's join keys, with the lookup's output
    features, its TTL and defaults (under their output names), and the Delta version and
    transform hash it read.
    """
    pairs = hist.snapshot(as_of)
    manifest = hist.manifest  # set by snapshot(): what it read
    snapshots = []
    for lookup, df in pairs:
        entry = _entry(manifest, lookup)
        if entry is not None:
            ttl = None if entry.ttl_seconds is None else timedelta(seconds=entry.ttl_seconds)
        else:
            ttl = lookup.effective_ttl()
        snapshots.append(
            Snapshot(
                feature_group=lookup.name,
                version=str(lookup.version),
                key_columns=tuple(lookup.feature_group.entity.join_keys),
                dataframe=df,
                features=tuple(lookup.output_name(f) for f in lookup.features or ()),
                ttl=ttl,
                delta_version=None if entry is None else entry.delta_version,
                transform_hash=None if entry is None else entry.transform_hash,
                defaults={lookup.output_name(f): v for f, v in lookup.defaults.items()},
            )
        )
    return snapshots, manifest


def serve_historical(
    hist: Servable,
    *,
    name: str,
    sink: OnlineSink | None = None,
    as_of: datetime | None = None,
    expire_keys: bool = False,
    progress: bool | None = None,
) -> OnlineTable:
    """Export the latest features of every entity of ``hist`` as of ``as_of`` and serve them.

    Backs ``HistoricalFeatures.serve``. The rows come from ``hist.snapshot(as_of)``: per
    feature lookup, one row per entity key with its latest values as of ``as_of``, by the
    same point-in-time code path (TTL included) as training data. Each lookup is one
    namespace of the online table, keyed by its entity's join keys; the training manifest
    is stored with the table as JSON. The on-demand features of ``hist`` are recorded with
    the table (name, inputs, type, code hash) and attached to the returned table, which
    computes them in ``get_features``.

    Parameters
    ----------
    hist:
        A :class:`~seeknal_spark.training.historical.HistoricalFeatures`.
    name:
        The online table.
    sink:
        Where to serve from (default: :class:`~seeknal_spark.online.embedded.EmbeddedSink`).
    as_of:
        Snapshot time (default now, UTC; naive values are UTC).
    expire_keys, progress:
        See :func:`~seeknal_spark.online.export.export_snapshots`.

    Returns
    -------
    OnlineTable
        The table, now serving the new snapshot.
    """
    moment = to_utc_datetime(as_of) if as_of is not None else datetime.now(timezone.utc)
    snapshots, manifest = snapshots_of(hist, moment)
    return export_snapshots(
        snapshots,
        name=name,
        sink=sink,
        as_of=moment,
        expire_keys=expire_keys,
        manifest=None if manifest is None else manifest.to_dict(),
        progress=progress,
        on_demand=hist.on_demand,
    )

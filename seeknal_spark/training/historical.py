"""Training data: feature lookups joined point-in-time onto a spine, reproducibly.

:class:`HistoricalFeatures` takes :class:`FeatureLookup` objects (which features of which
feature-group version, with which TTL, prefix and defaults) and builds a training set
with :func:`seeknal_spark.offline.pit.point_in_time_join`. Each build records a
:class:`TrainingManifest` - for every lookup the feature-group version and the Delta table
version it read - and ``to_dataframe(spine, as_of=manifest)`` rebuilds the identical
training set after later writes. :meth:`HistoricalFeatures.snapshot` runs the same join
with a spine of (every key, one time): the rows an online store serves. A lookup of an
event group (time-window aggregations) is answered from its stored events by
:func:`seeknal_spark.training.windows.attach_windows`, in the same build, manifest and
snapshot as the as-of lookups. On-demand features (``on_demand=``) are computed last, on
the joined rows, by :func:`seeknal_spark.training.on_demand.attach_on_demand`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DataType

from seeknal_spark._timestamps import to_utc_datetime, utc_micros
from seeknal_spark.definitions.aggregation import aggregations_of
from seeknal_spark.definitions.entity import Entity
from seeknal_spark.definitions.naming import quote_identifier, validate_name
from seeknal_spark.definitions.on_demand import OnDemandFeature, order_on_demand
from seeknal_spark.errors import (
    ConfigurationError,
)
from seeknal_spark.offline.pit import AsOfSource, point_in_time_join
from seeknal_spark.store.feature_group import FeatureGroup
from seeknal_spark.store.feature_store import WRITE_TIME_COL, FeatureStore
from seeknal_spark.training.lookup import FeatureLookup
from seeknal_spark.training.manifest import AsOf, ManifestEntry, TrainingManifest, as_manifest
from seeknal_spark.training.on_demand import attach_on_demand, check_on_demand
from seeknal_spark.training.resolve import Resolved, current_delta, pin_lookups, resolve_lookups
from seeknal_spark.training.spine import check_spine, spine_frame
from seeknal_spark.training.windows import attach_windows, snapshot_spine

if TYPE_CHECKING:
    import pandas as pd

    from seeknal_spark.online.sink import OnlineSink
    from seeknal_spark.online.table import OnlineTable
    from seeknal_spark.training.schema import FeatureSchema

__all__ = [
    "FeatureLookup",
    "HistoricalFeatures",
    "ManifestEntry",
    "TrainingManifest",
    "historical_from_store",
]

logger = logging.getLogger(__name__)

#: Spine time column used by :meth:`HistoricalFeatures.snapshot`.
SNAPSHOT_TIME_COL = "_seeknal_as_of"


class HistoricalFeatures:
    """Point-in-time correct training sets from feature lookups.

    Parameters
    ----------
    lookups:
        The :class:`FeatureLookup` objects, in output column order.
    feature_start_time:
        Ignore feature rows older than this (overridable per call).
    timestamp_col:
        The spine's time column.
    inclusive:
        Whether a feature stamped exactly at the spine time may be used.
    on_demand:
        :class:`~seeknal_spark.definitions.on_demand.OnDemandFeature` objects computed
        from spine columns (request fields), looked-up features and each other, after the
        lookups; ``serve`` hands them to the online table, which runs the same functions
        at request time.

    Examples
    --------
    >>> import tempfile
    >>> from datetime import datetime
    >>> from seeknal_spark import Entity, FeatureGroup, FeatureStore
    >>> rows = spark.createDataFrame([("a", datetime(2024, 1, 1), 5.0)],
    ...                              "customer_id string, day timestamp, total double")
    >>> store = FeatureStore(tempfile.mkdtemp(), spark=spark)
    >>> fg = FeatureGroup("spend", Entity("customer", ["customer_id"]), "day",
    ...                   transform=lambda src: src, inputs={"src": rows}, store=store)
    >>> _ = fg.write(feature_start_time=datetime(2024, 1, 1))
    >>> hist = HistoricalFeatures([FeatureLookup(fg, prefix="c_")])
    >>> spine = spark.createDataFrame([("a", datetime(2024, 1, 2))],
    ...                               "customer_id string, prediction_time timestamp")
    >>> [(r.customer_id, r.c_total) for r in hist.to_dataframe(spine).collect()]
    [('a', 5.0)]
    >>> same = TrainingManifest.from_json(hist.manifest.to_json())
    >>> hist.to_dataframe(spine, as_of=same).count()
    1
    """

    def __init__(
        self,
        lookups: Sequence[FeatureLookup],
        feature_start_time: datetime | date | None = None,
        *,
        timestamp_col: str = "prediction_time",
        inclusive: bool = True,
        on_demand: Sequence[OnDemandFeature] = (),
    ) -> None:
        self._lookups = list(lookups)
        if not self._lookups:
            raise ValueError("HistoricalFeatures needs at least one FeatureLookup")
        for i, lookup in enumerate(self._lookups):
            if not isinstance(lookup, FeatureLookup):
                raise TypeError(f"lookups[{i}] is {type(lookup).__name__}, not a FeatureLookup")
        if not isinstance(timestamp_col, str) or not timestamp_col:
            raise ValueError("timestamp_col must be a column name")
        self.feature_start_time = (
            None if feature_start_time is None else to_utc_datetime(feature_start_time)
        )
        self._timestamp_col = timestamp_col
        self.inclusive = bool(inclusive)
        self._resolved: list[Resolved] | None = None
        self._manifest: TrainingManifest | None = None
        self._on_demand = list(on_demand)
        self._on_demand_order = order_on_demand(self._on_demand)  # cycles fail here

    def __repr__(self) -> str:
        names = ", ".join(lk.name for lk in self._lookups)
        return f"HistoricalFeatures([{names}], timestamp_col={self._timestamp_col!r})"

    # -- description ---------------------------------------------------------------------
    @property
    def timestamp_col(self) -> str:
        return self._timestamp_col

    @property
    def lookups(self) -> list[FeatureLookup]:
        """The lookups with version and features resolved (reads the registry once)."""
        return [r.lookup for r in self._resolve()]

    @property
    def on_demand(self) -> list[OnDemandFeature]:
        """The on-demand features, in output column order."""
        return list(self._on_demand)

    @property
    def manifest(self) -> TrainingManifest | None:
        """What the last :meth:`to_dataframe` (or :meth:`snapshot`) read; None before."""
        return self._manifest

    def manifest_dict(self) -> dict[str, Any]:
        """The manifest as a dict; before any build, what a build now would read."""
        if self._manifest is not None:
            return self._manifest.to_dict()
        resolved = [replace(r, delta_version=current_delta(r)) for r in self._resolve()]
        return self._make_manifest(resolved, self.feature_start_time).to_dict()

    def output_features(self) -> list[tuple[str, DataType, FeatureLookup]]:
        """``(output name, Spark type, lookup)`` of every output feature, in column order."""
        out = []
        for r in self._resolve():
            types = {f.name: f.dtype for f in r.definition.features}
            for feature in r.lookup.features or ():
                out.append((r.lookup.output_name(feature), types[feature], r.lookup))
        return out

    def feature_schema(self) -> FeatureSchema:
        """The :class:`~seeknal_spark.training.schema.FeatureSchema` of this training set."""
        from seeknal_spark.training.schema import FeatureSchema

        return FeatureSchema.from_historical(self)

    # -- building ------------------------------------------------------------------------
    def to_dataframe(
        self,
        spine_df: DataFrame | pd.DataFrame,
        feature_start_time: datetime | date | None = None,
        as_of: AsOf | None = None,
    ) -> DataFrame:
        """The spine with every lookup's features as of each row's time.

        Parameters
        ----------
        spine_df:
            A Spark or pandas DataFrame with every lookup's join keys and
            ``timestamp_col`` (timestamp, timestamp_ntz or date; naive pandas datetimes are
            UTC).
        feature_start_time:
            Overrides the constructor's value for this call.
        as_of:
            A :class:`TrainingManifest` (or its dict) to rebuild a training set exactly:
            the same versions, Delta table versions and ``feature_start_time``; or
            ``{feature_group: delta_version}`` to pin table versions.

        Returns
        -------
        DataFrame
            Spine columns, then each lookup's output features, then the on-demand
            features (computed in Spark by their functions, after the lookups' defaults
            are applied); one row per spine row. The
            semantics are those of :func:`seeknal_spark.offline.pit.point_in_time_join`; ties on
            event time go to the greatest created-time column, then the latest write. An
            event group's features are its window aggregates at each spine time
            (:mod:`seeknal_spark.training.windows`: ``t - w < event_time <= t``, ``< t``
            when not ``inclusive``; ``feature_start_time`` drops older events).

        Raises
        ------
        MissingColumnError
            The spine lacks a join key or the timestamp column.
        ColumnTypeError
            The timestamp column is not a date/timestamp, or a join key's type differs from
            the group's (numeric-numeric and string-string are cast to the group's type).
        NotFoundError
            Unknown feature group, version or feature, or a Delta version that is gone.
        ConfigurationError
            Output names collide (use ``prefix=``), or ``as_of`` does not fit the lookups.
        MissingColumnError
            Also: an on-demand input is neither a spine column, a looked-up feature nor an
            on-demand feature.

        An on-demand function that raises (or returns a wrong type) fails the Spark job
        that reads the result with the
        :class:`~seeknal_spark.errors.OnDemandFeatureError` message (feature and input
        row); the library's own jobs raise that error.
        """
        manifest = as_manifest(as_of)
        if manifest is not None:
            if (
                manifest.timestamp_col != self._timestamp_col
                or manifest.inclusive != self.inclusive
            ):
                raise ConfigurationError(
                    f"the manifest was built with timestamp_col={manifest.timestamp_col!r}, "
                    f"inclusive={manifest.inclusive}; this HistoricalFeatures uses "
                    f"{self._timestamp_col!r}, {self.inclusive}: build it with the same settings"
                )
            if feature_start_time is None and manifest.feature_start_time is not None:
                feature_start_time = datetime.fromisoformat(manifest.feature_start_time)
        start = feature_start_time if feature_start_time is not None else self.feature_start_time
        start = None if start is None else to_utc_datetime(start)
        spine = spine_frame(spine_df, self._timestamp_col, self._spark)
        resolved = pin_lookups(self._resolve(manifest), as_of, manifest)
        check_spine(spine, [(r.lookup, r.definition.join_keys) for r in resolved])
        outputs = [r.lookup.output_name(f) for r in resolved for f in r.lookup.features or ()]
        check_on_demand(self._on_demand_order, [*spine.columns, *outputs], outputs)
        tables: dict[tuple[str, str, int], DataFrame] = {}
        sources = [self._source(r, tables) for r in resolved if not r.definition.is_event_group]
        joined = spine
        if sources:
            joined = point_in_time_join(
                spine,
                sources,
                timestamp_col=self._timestamp_col,
                inclusive=self.inclusive,
                feature_start_time=start,
            )
        windows = [
            (r.lookup, r.definition, self._table(r, tables))
            for r in resolved
            if r.definition.is_event_group
        ]
        joined = attach_windows(
            joined,
            windows,
            timestamp_col=self._timestamp_col,
            inclusive=self.inclusive,
            start=start,
        )
        result = joined.select(*(F.col(quote_identifier(c)) for c in [*spine.columns, *outputs]))
        if self._on_demand:
            types = {name: dtype.simpleString() for name, dtype, _ in self.output_features()}
            result = attach_on_demand(result, self._on_demand_order, types)
            if [f.name for f in self._on_demand] != [f.name for f in self._on_demand_order]:
                columns = [*spine.columns, *outputs, *(f.name for f in self._on_demand)]
                result = result.select(*(F.col(quote_identifier(c)) for c in columns))
        self._manifest = self._make_manifest(resolved, start)
        logger.info(
            "training set from %s",
            ", ".join(
                f"{e.feature_group}/{e.version}@{e.delta_version}" for e in self._manifest.lookups
            ),
        )
        return result

    def snapshot(
        self, as_of: datetime | date | None = None
    ) -> list[tuple[FeatureLookup, DataFrame]]:
        """Per lookup, the latest feature values of every key as of ``as_of`` (default now).

        Each DataFrame has one row per distinct key of the lookup's table (keys with events
        at or after ``feature_start_time``), columns = the group's join keys + the lookup's
        output features, computed by :func:`~seeknal_spark.offline.pit.point_in_time_join` with a
        spine of (key, ``as_of``): TTL, tie-breaks, ``inclusive`` (a row stamped exactly at
        ``as_of`` is used only when inclusive) and defaults exactly as in training. For
        an event group, the keys with an event in ``(as_of - longest window, as_of]`` and
        their window aggregates at ``as_of``, by the code of training
        (:func:`~seeknal_spark.training.windows.attach_windows`). The Delta versions read
        become :attr:`manifest`.
        """
        moment = to_utc_datetime(as_of) if as_of is not None else datetime.now(timezone.utc)
        resolved = pin_lookups(self._resolve(None), None, None)
        start = self.feature_start_time
        out: list[tuple[FeatureLookup, DataFrame]] = []
        for r in resolved:
            keys = list(r.definition.join_keys)
            outputs = [r.lookup.output_name(f) for f in r.lookup.features or ()]
            if r.definition.is_event_group:
                table = self._table(r, {})
                spine = snapshot_spine(
                    table, r.lookup, r.definition, moment, start, SNAPSHOT_TIME_COL
                )
                windows = attach_windows(
                    spine,
                    [(r.lookup, r.definition, table)],
                    timestamp_col=SNAPSHOT_TIME_COL,
                    inclusive=self.inclusive,
                    start=start,
                    span=(moment, moment),
                )
                out.append((r.lookup, windows.select(*keys, *outputs)))
                continue
            source = self._source(r, {})
            table = source.df
            if start is not None:
                table = table.where(
                    F.unix_micros(F.col(r.definition.event_time_col)) >= F.lit(utc_micros(start))
                )
            spine = (
                table.select(*keys)
                .distinct()
                .withColumn(SNAPSHOT_TIME_COL, F.timestamp_micros(F.lit(utc_micros(moment))))
            )
            joined = point_in_time_join(
                spine,
                [source],
                timestamp_col=SNAPSHOT_TIME_COL,
                inclusive=self.inclusive,
                feature_start_time=start,
            )
            out.append((r.lookup, joined.select(*keys, *outputs)))
        self._manifest = self._make_manifest(resolved, start)
        return out

    def serve(
        self,
        name: str,
        sink: OnlineSink | None = None,
        as_of: datetime | None = None,
        *,
        expire_keys: bool = False,
        progress: bool | None = None,
    ) -> OnlineTable:
        """Export :meth:`snapshot` as of ``as_of`` (default now) to online table ``name``
        (default sink: the embedded store); see
        :func:`~seeknal_spark.training.serve.serve_historical`."""
        from seeknal_spark.training.serve import serve_historical

        return serve_historical(
            self, name=name, sink=sink, as_of=as_of, expire_keys=expire_keys, progress=progress
        )

    # -- internals -----------------------------------------------------------------------
    def _spark(self) -> SparkSession:
        return self._lookups[0].store.spark

    def _resolve(self, manifest: TrainingManifest | None = None) -> list[Resolved]:
        if manifest is None and self._resolved is not None:
            return self._resolved
        resolved = resolve_lookups(self._lookups, manifest)
        if manifest is None:
            self._resolved = resolved
        return resolved

    @staticmethod
    def _table(r: Resolved, tables: dict[tuple[str, str, int], DataFrame]) -> DataFrame:
        """The lookup's table at its pinned Delta version (read once per build)."""
        assert r.lookup.version is not None and r.delta_version is not None
        where = (r.lookup.name, r.lookup.version, r.delta_version)
        if where not in tables:
            tables[where] = r.lookup.store.read_table(*where[:2], as_of_version=where[2])
        return tables[where]

    def _source(self, r: Resolved, tables: dict[tuple[str, str, int], DataFrame]) -> AsOfSource:
        lookup, definition = r.lookup, r.definition
        table = self._table(r, tables)
        tie_breaks = []
        if definition.created_time_col and definition.created_time_col in table.columns:
            tie_breaks.append(definition.created_time_col)
        if WRITE_TIME_COL in table.columns:
            tie_breaks.append(WRITE_TIME_COL)
        features = tuple(lookup.features or ())
        return AsOfSource(
            df=table,
            keys=tuple(definition.join_keys),
            event_time_col=definition.event_time_col,
            features=features,
            output_names={f: lookup.output_name(f) for f in features},
            ttl=lookup.effective_ttl(definition.ttl),
            tie_break_cols=tuple(tie_breaks),
            defaults=lookup.defaults,
        )

    def _make_manifest(self, resolved: list[Resolved], start: datetime | None) -> TrainingManifest:
        entries = []
        for r in resolved:
            lookup = r.lookup
            ttl = lookup.effective_ttl(r.definition.ttl)
            features = tuple(lookup.features or ())
            assert lookup.version is not None and r.delta_version is not None
            entries.append(
                ManifestEntry(
                    feature_group=lookup.name,
                    version=lookup.version,
                    delta_version=r.delta_version,
                    transform_hash=r.definition.transform_hash,
                    features=features,
                    output_names=tuple(lookup.output_name(f) for f in features),
                    ttl_seconds=None if ttl is None else ttl.total_seconds(),
                )
            )
        return TrainingManifest(
            lookups=tuple(entries),
            timestamp_col=self._timestamp_col,
            inclusive=self.inclusive,
            feature_start_time=None if start is None else start.isoformat(),
        )


def _not_recomputable(**_: Any) -> DataFrame:
    raise ConfigurationError(
        "this feature group was loaded from the registry for reading; define it in code "
        "(FeatureGroup(..., transform=...)) to compute or write it"
    )


def historical_from_store(
    store: FeatureStore | str,
    specs: Sequence[tuple[str, str | None] | str],
    *,
    spark: SparkSession | None = None,
    **options: Any,
) -> HistoricalFeatures:
    """A :class:`HistoricalFeatures` over registered groups, without their code.

    ``specs`` are ``(name, version)`` pairs or ``"name[:version]"`` strings (no version:
    ``store.latest_version(name)``, the store's one default-version policy). The feature
    groups are rebuilt from the registry for reading
    only. ``options`` go to :class:`HistoricalFeatures`.
    """
    if isinstance(store, str):
        store = FeatureStore(store, spark=spark)
    lookups = []
    for spec in specs:
        if isinstance(spec, str):
            name, _, ver = spec.partition(":")
            version: str | None = ver or None
        else:
            name, version = spec
        name = validate_name(name, "feature group")
        # no version: the store's one default-version policy (its latest registered)
        definition = store.get_definition(name, version or store.latest_version(name))
        events = definition.is_event_group
        group = FeatureGroup(
            definition.name,
            Entity(definition.entity_name, definition.join_keys),
            definition.event_time_col,
            _not_recomputable,
            features=None if events else list(definition.features),
            ttl=None if events else definition.ttl,
            aggregations=aggregations_of(definition.features) if events else None,
            store=store,
            created_time_col=definition.created_time_col,
            description=definition.description,
            owner=definition.owner,
            tags=dict(definition.tags),
        )
        lookups.append(FeatureLookup(group, version=definition.version))
    return HistoricalFeatures(lookups, **options)

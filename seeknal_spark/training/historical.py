"""Training data: feature lookups joined point-in-time onto a spine, reproducibly.

:class:`HistoricalFeatures` takes :class:`FeatureLookup` objects (which features of which
feature-group version, with which TTL, prefix and defaults) and builds a training set
with :func:`seeknal_spark.offline.pit.point_in_time_join`. Each build records a
:class:`TrainingManifest` - for every lookup the feature-group version and the Delta table
version it read - and ``to_dataframe(spine, as_of=manifest)`` rebuilds the identical
training set after later writes. :meth:`HistoricalFeatures.snapshot` runs the same join
with a spine of (every key, one time): the rows an online store serves.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DataType

from seeknal_spark._timestamps import to_utc_datetime, utc_micros
from seeknal_spark.definitions.entity import Entity
from seeknal_spark.definitions.naming import validate_name
from seeknal_spark.errors import (
    ColumnTypeError,
    ConfigurationError,
    MissingColumnError,
    NotFoundError,
)
from seeknal_spark.offline.pit.join import AsOfSource, point_in_time_join
from seeknal_spark.store.feature_group import FeatureGroup
from seeknal_spark.store.feature_store import WRITE_TIME_COL, FeatureStore
from seeknal_spark.store.registry import FeatureGroupDefinition

if TYPE_CHECKING:
    import pandas as pd

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


@dataclass(frozen=True, init=False)
class FeatureLookup:
    """Which features of which feature-group version to join, and how.

    Parameters
    ----------
    feature_group:
        A :class:`~seeknal_spark.store.feature_group.FeatureGroup` attached to a store.
    features:
        Feature names to bring over; None means every feature of the version.
    version:
        The feature-group version; None means the latest registered version (the one
        registered last) at the time of the build. The version used is recorded in the
        manifest, so a rebuild from the manifest uses it even after newer versions appear.
    ttl:
        Overrides the group's TTL: a value is usable while ``event_time > spine_time - ttl``.
        None uses the group's TTL (no TTL when the group has none).
    prefix:
        Put before each output column name (``prefix="cust_"`` gives ``cust_spend``).
    default:
        Value for spine rows with no matching feature row: one value for every feature,
        or ``{feature: value}``.
    """

    feature_group: FeatureGroup
    features: tuple[str, ...] | None
    version: str | None
    ttl: timedelta | None
    prefix: str
    default: Any

    def __init__(
        self,
        feature_group: FeatureGroup,
        features: Sequence[str] | str | None = None,
        version: str | None = None,
        ttl: timedelta | None = None,
        prefix: str | None = None,
        default: Any = None,
    ) -> None:
        if not isinstance(feature_group, FeatureGroup):
            raise TypeError(
                f"FeatureLookup needs a FeatureGroup, got {type(feature_group).__name__}"
            )
        names = None
        if features is not None:
            names = (features,) if isinstance(features, str) else tuple(features)
            if not names:
                raise ValueError(
                    f"lookup of {feature_group.name!r}: features is empty; omit it for all"
                )
            for name in names:
                validate_name(name, "feature")
            if len(set(names)) != len(names):
                raise ValueError(f"lookup of {feature_group.name!r} lists a feature twice")
        if version is not None:
            validate_name(version, "version")
        if ttl is not None:
            if not isinstance(ttl, timedelta):
                raise TypeError(f"lookup of {feature_group.name!r}: ttl must be a timedelta")
            if ttl <= timedelta(0):
                raise ValueError(
                    f"lookup of {feature_group.name!r}: ttl must be positive, got {ttl}; "
                    "use None for the group's TTL"
                )
        if prefix is not None and prefix != "":
            validate_name(prefix, "prefix")
        if isinstance(default, Mapping) and names is not None:
            unknown = sorted(set(default) - set(names))
            if unknown:
                raise NotFoundError(
                    f"lookup of {feature_group.name!r}: defaults for {unknown}, which are not "
                    f"among its features {list(names)}"
                )
        object.__setattr__(self, "feature_group", feature_group)
        object.__setattr__(self, "features", names)
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "ttl", ttl)
        object.__setattr__(self, "prefix", prefix or "")
        object.__setattr__(
            self, "default", dict(default) if isinstance(default, Mapping) else default
        )

    def __hash__(self) -> int:
        return hash((id(self.feature_group), self.features, self.version, self.ttl, self.prefix))

    @property
    def name(self) -> str:
        """The feature group's name."""
        return self.feature_group.name

    @property
    def store(self) -> FeatureStore:
        """The feature group's store (a ConfigurationError when it has none)."""
        store = self.feature_group.store
        if store is None:
            raise ConfigurationError(
                f"feature group {self.name!r} has no store: pass store=FeatureStore(...) or "
                "call store.register(fg) before looking it up"
            )
        return store

    def resolved_version(self) -> str:
        """``version``, or the latest registered version when it is None."""
        if self.version is not None:
            return self.version
        known = self.store.versions(self.name)
        if not known:
            raise NotFoundError(
                f"feature group {self.name!r} has no registered version in {self.store!r}: "
                "write it first (fg.write(...))"
            )
        return known[-1]

    def effective_ttl(self) -> timedelta | None:
        """The TTL used: the lookup's, else the feature group's."""
        return self.ttl if self.ttl is not None else self.feature_group.ttl

    def output_name(self, feature: str) -> str:
        """The training-set column of ``feature``."""
        return f"{self.prefix}{feature}"

    def source_feature(self, output_name: str) -> str:
        """The feature behind an output column name."""
        if self.prefix and output_name.startswith(self.prefix):
            return output_name[len(self.prefix) :]
        return output_name

    @property
    def defaults(self) -> dict[str, Any]:
        """``{feature: default}`` for the lookup's features (empty when there is none)."""
        if isinstance(self.default, Mapping):
            return dict(self.default)
        if self.default is None or self.features is None:
            return {}
        return {f: self.default for f in self.features}


@dataclass(frozen=True)
class ManifestEntry:
    """What one lookup read: group, version, Delta table version and how it was joined."""

    feature_group: str
    version: str
    delta_version: int
    transform_hash: str
    features: tuple[str, ...]
    output_names: tuple[str, ...]
    ttl_seconds: float | None


@dataclass(frozen=True)
class TrainingManifest:
    """The exact inputs of a training set; ``to_dataframe(spine, as_of=manifest)`` rebuilds it.

    Serialise it with :meth:`to_json` next to the model.
    """

    lookups: tuple[ManifestEntry, ...]
    timestamp_col: str
    inclusive: bool
    feature_start_time: str | None = None
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for entry in data["lookups"]:
            entry["features"] = list(entry["features"])
            entry["output_names"] = list(entry["output_names"])
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingManifest:
        try:
            entries = tuple(
                ManifestEntry(
                    feature_group=str(e["feature_group"]),
                    version=str(e["version"]),
                    delta_version=int(e["delta_version"]),
                    transform_hash=str(e.get("transform_hash", "")),
                    features=tuple(e["features"]),
                    output_names=tuple(e["output_names"]),
                    ttl_seconds=None if e.get("ttl_seconds") is None else float(e["ttl_seconds"]),
                )
                for e in data["lookups"]
            )
            return cls(
                lookups=entries,
                timestamp_col=str(data["timestamp_col"]),
                inclusive=bool(data["inclusive"]),
                feature_start_time=data.get("feature_start_time"),
                created_at=str(data.get("created_at", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"not a training manifest ({exc!r}): {dict(data)!r}") from exc

    @classmethod
    def from_json(cls, text: str) -> TrainingManifest:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class _Resolved:
    lookup: FeatureLookup  # version and features filled in
    definition: FeatureGroupDefinition
    delta_version: int | None = None


AsOf = TrainingManifest | Mapping[str, Any]


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

    Examples
    --------
    >>> hist = HistoricalFeatures([FeatureLookup(spend_fg, prefix="c_")])  # doctest: +SKIP
    >>> train = hist.to_dataframe(spine_df)                               # doctest: +SKIP
    >>> saved = hist.manifest.to_json()                                   # doctest: +SKIP
    >>> same = TrainingManifest.from_json(saved)                           # doctest: +SKIP
    >>> again = hist.to_dataframe(spine_df, as_of=same)                   # doctest: +SKIP
    """

    def __init__(
        self,
        lookups: Sequence[FeatureLookup],
        feature_start_time: datetime | date | None = None,
        *,
        timestamp_col: str = "prediction_time",
        inclusive: bool = True,
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
        self._resolved: list[_Resolved] | None = None
        self._manifest: TrainingManifest | None = None

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
    def manifest(self) -> TrainingManifest | None:
        """What the last :meth:`to_dataframe` (or :meth:`snapshot`) read; None before."""
        return self._manifest

    def manifest_dict(self) -> dict[str, Any]:
        """The manifest as a dict; before any build, what a build now would read."""
        if self._manifest is not None:
            return self._manifest.to_dict()
        resolved = [replace(r, delta_version=self._current_delta(r)) for r in self._resolve()]
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
            Spine columns, then each lookup's output features; one row per spine row. The
            semantics are those of :func:`seeknal_spark.offline.pit.point_in_time_join`; ties on
            event time go to the greatest created-time column, then the latest write.

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
        """
        manifest = _as_manifest(as_of)
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
        spine = self._spine(spine_df)
        resolved = self._pin(self._resolve(manifest), as_of, manifest)
        self._check_spine(spine, resolved)
        tables: dict[tuple[str, str, int], DataFrame] = {}
        sources = [self._source(r, tables) for r in resolved]
        result = point_in_time_join(
            spine,
            sources,
            timestamp_col=self._timestamp_col,
            inclusive=self.inclusive,
            feature_start_time=start,
        )
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
        spine of (key, ``as_of``): TTL, tie-breaks and defaults exactly as in training. The
        Delta versions read become :attr:`manifest`.
        """
        moment = to_utc_datetime(as_of) if as_of is not None else datetime.now(timezone.utc)
        resolved = self._pin(self._resolve(None), None, None)
        start = self.feature_start_time
        out: list[tuple[FeatureLookup, DataFrame]] = []
        for r in resolved:
            source = self._source(r, {})
            keys = list(r.definition.join_keys)
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
                spine, [source], timestamp_col=SNAPSHOT_TIME_COL, feature_start_time=start
            )
            outputs = [r.lookup.output_name(f) for f in source.features]
            out.append((r.lookup, joined.select(*keys, *outputs)))
        self._manifest = self._make_manifest(resolved, start)
        return out

    def serve(self, name: str, sink: Any = None, as_of: datetime | None = None) -> Any:
        """Export :meth:`snapshot` to an online table (see ``seeknal_spark.online``)."""
        from seeknal_spark.online.export import serve_historical

        return serve_historical(self, name=name, sink=sink, as_of=as_of)

    # -- internals -----------------------------------------------------------------------
    def _spark(self) -> SparkSession:
        return self._lookups[0].store.spark

    def _spine(self, spine_df: Any) -> DataFrame:
        if isinstance(spine_df, DataFrame):
            spine = spine_df
        else:
            import pandas as pd

            if not isinstance(spine_df, pd.DataFrame):
                raise TypeError(
                    f"spine_df must be a Spark or pandas DataFrame, got {type(spine_df).__name__}"
                )
            frame = spine_df.copy()
            for col in frame.columns:  # naive pandas datetimes are UTC, not session time
                if pd.api.types.is_datetime64_dtype(frame[col]):
                    frame[col] = frame[col].dt.tz_localize("UTC")
            spine = self._spark().createDataFrame(frame)
        if self._timestamp_col not in spine.columns:
            raise MissingColumnError(
                f"the spine has no timestamp column {self._timestamp_col!r} (columns: "
                f"{spine.columns}); add it or pass timestamp_col= to HistoricalFeatures"
            )
        dtype = spine.schema[self._timestamp_col].dataType
        if dtype.typeName() not in ("timestamp", "timestamp_ntz", "date"):
            raise ColumnTypeError(
                f"spine column {self._timestamp_col!r} is {dtype.simpleString()}: it must be a "
                "timestamp or date; convert it with F.to_timestamp()"
            )
        return spine

    def _resolve(self, manifest: TrainingManifest | None = None) -> list[_Resolved]:
        if manifest is None and self._resolved is not None:
            return self._resolved
        if manifest is not None and len(manifest.lookups) != len(self._lookups):
            raise ConfigurationError(
                f"the manifest has {len(manifest.lookups)} lookups, this HistoricalFeatures "
                f"{len(self._lookups)}: rebuild with the lookups the manifest was made from"
            )
        resolved = []
        definitions: dict[tuple[str, str], FeatureGroupDefinition] = {}
        for i, lookup in enumerate(self._lookups):
            version = lookup.version
            entry = None if manifest is None else manifest.lookups[i]
            if entry is not None:
                if entry.feature_group != lookup.name or (version not in (None, entry.version)):
                    raise ConfigurationError(
                        f"lookup #{i} is {lookup.name!r} version {version!r} but the manifest "
                        f"recorded {entry.feature_group!r} version {entry.version!r}"
                    )
                version = entry.version
            version = version or lookup.resolved_version()
            if (lookup.name, version) not in definitions:
                definitions[lookup.name, version] = lookup.store.get_definition(
                    lookup.name, version
                )
            definition = definitions[lookup.name, version]
            available = definition.feature_names
            features = lookup.features or tuple(available)
            unknown = [f for f in features if f not in available]
            if unknown:
                raise NotFoundError(
                    f"feature group {lookup.name!r} version {version!r} has no feature(s) "
                    f"{unknown}; its features are {available}"
                )
            if isinstance(lookup.default, Mapping):
                bad = sorted(set(lookup.default) - set(features))
                if bad:
                    raise NotFoundError(
                        f"lookup of {lookup.name!r}: defaults for {bad}, which are not among "
                        f"its features {list(features)}"
                    )
            done = replace(lookup, version=version, features=tuple(features))
            if (
                entry is not None
                and tuple(done.output_name(f) for f in features) != entry.output_names
            ):
                raise ConfigurationError(
                    f"lookup #{i} ({lookup.name!r}) now outputs "
                    f"{[done.output_name(f) for f in features]} but the manifest recorded "
                    f"{list(entry.output_names)}"
                )
            resolved.append(_Resolved(done, definition))
        if manifest is None:
            self._resolved = resolved
        return resolved

    def _pin(
        self, resolved: list[_Resolved], as_of: AsOf | None, manifest: TrainingManifest | None
    ) -> list[_Resolved]:
        """Fill in the Delta table version each lookup reads."""
        if manifest is None and isinstance(as_of, Mapping):
            unknown = sorted(set(as_of) - {r.lookup.name for r in resolved})
            if unknown:
                raise NotFoundError(
                    f"as_of names feature group(s) {unknown} that no lookup reads; lookups: "
                    f"{[r.lookup.name for r in resolved]}"
                )
        out = []
        current: dict[tuple[str, str | None], int] = {}
        for i, r in enumerate(resolved):
            if manifest is not None:
                delta: int | None = manifest.lookups[i].delta_version
            elif isinstance(as_of, Mapping) and r.lookup.name in as_of:
                delta = int(as_of[r.lookup.name])
            else:
                where = (r.lookup.name, r.lookup.version)
                if where not in current:
                    current[where] = self._current_delta(r)
                delta = current[where]
            out.append(
                replace(r, delta_version=delta if delta is not None else self._current_delta(r))
            )
        return out

    @staticmethod
    def _current_delta(r: _Resolved) -> int:
        lookup = r.lookup
        return lookup.store.current_table_version(lookup.name, lookup.resolved_version())

    def _check_spine(self, spine: DataFrame, resolved: list[_Resolved]) -> None:
        columns = {c.lower(): c for c in spine.columns}
        owners: dict[str, str] = {}
        for r in resolved:
            for key in r.definition.join_keys:
                if key not in spine.columns:
                    raise MissingColumnError(
                        f"the spine has no join key {key!r} of feature group {r.lookup.name!r} "
                        f"(spine columns: {spine.columns}); add or rename it"
                    )
            for feature in r.lookup.features or ():
                out = r.lookup.output_name(feature)
                where = f"feature {feature!r} of {r.lookup.name!r}"
                if out.lower() in columns:
                    raise ConfigurationError(
                        f"output column {out!r} ({where}) collides with spine column "
                        f"{columns[out.lower()]!r}: give the lookup a prefix= or drop the column"
                    )
                if out.lower() in owners:
                    raise ConfigurationError(
                        f"output column {out!r} comes from both {owners[out.lower()]} and "
                        f"{where}: give one of the lookups a prefix="
                    )
                owners[out.lower()] = where

    def _source(self, r: _Resolved, tables: dict[tuple[str, str, int], DataFrame]) -> AsOfSource:
        lookup, definition = r.lookup, r.definition
        assert lookup.version is not None and r.delta_version is not None
        where = (lookup.name, lookup.version, r.delta_version)
        if where not in tables:
            tables[where] = lookup.store.read_table(*where[:2], as_of_version=where[2])
        table = tables[where]
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
            ttl=lookup.ttl
            if lookup.ttl is not None
            else (definition.ttl or lookup.feature_group.ttl),
            tie_break_cols=tuple(tie_breaks),
            defaults=lookup.defaults,
        )

    def _make_manifest(self, resolved: list[_Resolved], start: datetime | None) -> TrainingManifest:
        entries = []
        for r in resolved:
            lookup = r.lookup
            ttl = (
                lookup.ttl
                if lookup.ttl is not None
                else (r.definition.ttl or lookup.feature_group.ttl)
            )
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


def _as_manifest(as_of: AsOf | None) -> TrainingManifest | None:
    if as_of is None:
        return None
    if isinstance(as_of, TrainingManifest):
        return as_of
    if isinstance(as_of, Mapping):
        if "lookups" in as_of:
            return TrainingManifest.from_dict(as_of)
        for group, delta in as_of.items():
            if not isinstance(delta, int) or isinstance(delta, bool) or delta < 0:
                raise ConfigurationError(
                    f"as_of[{group!r}] = {delta!r}: give a Delta table version (an int >= 0)"
                )
        return None
    raise TypeError(
        f"as_of must be a TrainingManifest or a {{feature_group: delta_version}} dict, got "
        f"{type(as_of).__name__}"
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
    the latest registered). The feature groups are rebuilt from the registry for reading
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
        probe = store.versions(validate_name(name, "feature group"))
        if not probe:
            store.get_definition(name, version or "v1")  # raises NotFoundError with context
        definition = store.get_definition(name, version or probe[-1])
        group = FeatureGroup(
            definition.name,
            Entity(definition.entity_name, definition.join_keys),
            definition.event_time_col,
            _not_recomputable,
            features=list(definition.features),
            ttl=definition.ttl,
            store=store,
            created_time_col=definition.created_time_col,
            description=definition.description,
            owner=definition.owner,
            tags=dict(definition.tags),
        )
        lookups.append(FeatureLookup(group, version=definition.version))
    return HistoricalFeatures(lookups, **options)

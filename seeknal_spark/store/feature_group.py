"""Feature groups: a Spark transformation keyed by an entity and an event time.

A :class:`FeatureGroup` turns named inputs into feature rows (join keys, event time,
features) with a Python function over DataFrames or with SQL, and writes them to the
Delta table of a version in its :class:`~seeknal_spark.store.feature_store.FeatureStore`
through the store's one write protocol (:mod:`seeknal_spark.store.delta_protocol`).
A group with ``aggregations=`` is an *event group* (:mod:`seeknal_spark.store.events`):
it stores events, and its features are time-window aggregations of them.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Literal

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DataType

from seeknal_spark._timestamps import to_utc_datetime, utc_instant, utc_sql_literal
from seeknal_spark.definitions.aggregation import Aggregation
from seeknal_spark.definitions.entity import Entity
from seeknal_spark.definitions.feature import Feature, FeatureGroupDefinition, ttl_limit
from seeknal_spark.definitions.fingerprint import transform_hash
from seeknal_spark.definitions.naming import quote_identifier, validate_name
from seeknal_spark.errors import (
    ConfigurationError,
    TransformError,
    VersionConflictError,
)
from seeknal_spark.store.compute import (
    InputSource,
    Transform,
    check_output,
    declared_features,
    resolve_input,
    run_transform,
    write_failure,
)
from seeknal_spark.store.delta_protocol import commit_write
from seeknal_spark.store.events import check_event_group, event_output
from seeknal_spark.store.feature_store import WRITE_TIME_COL, FeatureStore
from seeknal_spark.store.write_guards import (
    merge_window,
    next_version,
    refuse_emptying,
    reject_nulls,
)

__all__ = ["Feature", "FeatureGroup", "InputSource", "TransformError", "WriteMode", "WriteResult"]

logger = logging.getLogger(__name__)

WriteMode = Literal["overwrite", "append", "merge"]

#: Table property of a version's Delta table holding its definition (set when created).
DEFINITION_PROPERTY = "seeknal.definition"

#: What the transform hash of an event group without a transform covers: the input as is.
_INPUT_AS_IS = "seeknal: the single input, as is"


@dataclass(frozen=True)
class WriteResult:
    """What one :meth:`FeatureGroup.write` did."""

    feature_group: str
    version: str
    mode: str
    window_start: datetime
    window_end: datetime | None
    delta_version: int
    table: str
    transform_hash: str
    #: Rows the transform gave for the window (what an overwrite or append stored; what a
    #: merge upserted). 0 is logged as a warning.
    rows_written: int = 0


class FeatureGroup:
    """A named set of features computed by one transformation.

    Parameters
    ----------
    name:
        Letters, digits and underscores; names the Delta table.
    entity:
        The :class:`~seeknal_spark.definitions.entity.Entity` whose join keys key every row.
    event_time_col:
        The column holding when each feature value became true (timestamp or date;
        stored as a UTC timestamp).
    transform:
        Either a Python function returning a DataFrame, called with the inputs as keyword
        arguments (and, when it declares them, ``spark``, ``window_start``,
        ``window_end``), or SQL text naming the inputs as ``{name}`` and, optionally,
        the window as ``:window_start`` / ``:window_end`` parameters. An event group may
        omit it: its single input is then stored as is.
    features:
        The declared features: ``{"name": "double", ...}``, a list of
        :class:`Feature` or of ``(name, type)`` pairs. When None, every output column
        other than keys, event time and created time is a feature, with its output type.
    ttl:
        How long a feature value stays valid for point-in-time joins and serving; None,
        or a "forever" value such as ``timedelta.max`` (see
        :func:`~seeknal_spark.definitions.feature.ttl_limit`), means no limit.
    inputs:
        ``{"txns": source}`` where a source is a DataFrame, a metastore table name
        (``"db.table"``), a path (read as Delta, or Parquet/CSV/JSON by suffix), or a
        function of the SparkSession returning a DataFrame; a function that declares
        ``window_start`` / ``window_end`` gets the write's window (UTC datetimes), so
        it can read only the partitions the window needs.
    store:
        The :class:`~seeknal_spark.store.feature_store.FeatureStore` to write to (or call
        ``store.register(fg)``).
    created_time_col:
        Optional ingestion/created timestamp column: breaks ties between rows with equal
        keys and event time (latest wins) before the latest Delta write does.
    description, owner, tags:
        Catalog information recorded in the registry.
    aggregations:
        :class:`~seeknal_spark.definitions.aggregation.Aggregation` objects: makes this an
        *event group*. Its Delta table stores the events (join keys, event time, created
        time, the columns the aggregations read); :meth:`write` stores a window of events
        like any group (idempotent overwrite of ``[start, end)``, time travel), so a write
        costs that window's events whatever the aggregation windows, and a late event is
        stored by re-writing its window. Its features are the aggregation features with
        their output types; a lookup computes them at each spine time (exact: ``t - w <
        event_time <= t``). ``features=`` and ``ttl=`` do not apply. The aggregations are
        part of the recorded definition: changing them under one version is a
        :class:`~seeknal_spark.errors.VersionConflictError`.
    """

    def __init__(
        self,
        name: str,
        entity: Entity,
        event_time_col: str,
        transform: Transform | None = None,
        features: Mapping[str, DataType | str]
        | Sequence[Feature | tuple[str, DataType | str]]
        | None = None,
        ttl: timedelta | None = None,
        *,
        inputs: Mapping[str, InputSource] | None = None,
        store: FeatureStore | None = None,
        created_time_col: str | None = None,
        description: str = "",
        owner: str = "",
        tags: Mapping[str, str] | None = None,
        aggregations: Sequence[Aggregation] | None = None,
    ) -> None:
        self.name = validate_name(name, "feature group")
        if not isinstance(entity, Entity):
            raise TypeError(f"feature group {name!r}: entity must be an Entity, got {entity!r}")
        self.entity = entity
        self.event_time_col = validate_name(event_time_col, "event time column")
        self.created_time_col = (
            None if created_time_col is None else validate_name(created_time_col, "created column")
        )
        if not (
            callable(transform)
            or (isinstance(transform, str) and transform.strip())
            or (transform is None and aggregations is not None)
        ):
            raise TypeError(
                f"feature group {name!r}: transform must be a function returning a DataFrame "
                "or SQL text"
            )
        self.transform = transform
        if ttl is not None:
            if not isinstance(ttl, timedelta):
                raise TypeError(f"feature group {name!r}: ttl must be a timedelta, got {ttl!r}")
            if ttl <= timedelta(0):
                raise ValueError(f"feature group {name!r}: ttl must be positive, got {ttl}")
            if ttl_limit(ttl) is None:
                logger.info("feature group %r: ttl %s means no limit", name, ttl)
        self.ttl = ttl_limit(ttl)
        self.features = None if features is None else declared_features(name, features)
        self.inputs: dict[str, InputSource] = {}
        for input_name, source in (inputs or {}).items():
            self.inputs[validate_name(input_name, "input")] = source
        self.store = store
        self.description = description
        self.owner = owner
        self.tags = dict(tags or {})
        reserved = set(entity.join_keys) | {event_time_col} | {created_time_col} - {None}
        if len(reserved) != len(entity.join_keys) + 1 + (created_time_col is not None):
            raise ConfigurationError(
                f"feature group {name!r}: join keys {list(entity.join_keys)}, event time "
                f"{event_time_col!r} and created time {created_time_col!r} must be distinct"
            )
        self.aggregations: tuple[Aggregation, ...] = ()
        if aggregations is not None:
            self.aggregations = check_event_group(
                name,
                aggregations,
                transform=transform,
                inputs=self.inputs,
                features=features,
                ttl=ttl,
                reserved=[
                    *entity.join_keys,
                    event_time_col,
                    *([created_time_col] if created_time_col else []),
                ],
            )
        for feature in self.features or ():
            if feature.name in reserved or feature.name == WRITE_TIME_COL:
                raise ConfigurationError(
                    f"feature group {name!r}: feature {feature.name!r} clashes with a key or "
                    "time column; rename it"
                )

    def __repr__(self) -> str:
        return f"FeatureGroup({self.name!r}, entity={self.entity.name!r})"

    # -- definition ----------------------------------------------------------------------
    def transform_hash(self) -> str:
        """A SHA-256 of the transformation's logic.

        See :func:`seeknal_spark.definitions.fingerprint.transform_hash`: comments,
        docstrings and formatting do not count; helpers of the transform's own module do;
        closure values, other packages and the data do not. An event group's hash also
        covers its aggregations (columns, functions, windows, names), so a backfill never
        skips a window written under other aggregations.
        """
        base = transform_hash(self.transform if self.transform is not None else _INPUT_AS_IS)
        if not self.aggregations:
            return base
        declared = repr(tuple(self.aggregations))
        return hashlib.sha256(f"{base}|aggregations:{declared}".encode()).hexdigest()

    @property
    def is_event_group(self) -> bool:
        """Whether it stores events and its features are time-window aggregations."""
        return bool(self.aggregations)

    def definition(self, version: str, features: Sequence[Feature]) -> FeatureGroupDefinition:
        """The registry record of this group at ``version`` with the given features."""
        return FeatureGroupDefinition(
            name=self.name,
            version=validate_name(version, "version"),
            entity_name=self.entity.name,
            join_keys=self.entity.join_keys,
            event_time_col=self.event_time_col,
            created_time_col=self.created_time_col,
            features=tuple(features),
            transform_hash=self.transform_hash(),
            ttl=self.ttl,
            description=self.description,
            owner=self.owner,
            tags=self.tags,
            created_at=datetime.now(timezone.utc),
        )

    def _require_store(self) -> FeatureStore:
        if self.store is None:
            raise ConfigurationError(
                f"feature group {self.name!r} has no store: pass store=FeatureStore(...) or "
                "call store.register(fg)"
            )
        return self.store

    # -- compute -------------------------------------------------------------------------
    def compute(
        self,
        feature_start_time: datetime | date,
        feature_end_time: datetime | date | None = None,
        *,
        spark: SparkSession | None = None,
    ) -> tuple[DataFrame, list[Feature]]:
        """Run the transform for a window and check its output; nothing is written.

        Returns the rows to store (keys, event time as UTC timestamp, created time,
        features - for an event group, the columns its aggregations read - in that order;
        event time in ``[start, end)``) and the features (of an event group: its
        aggregation features).

        Raises
        ------
        MissingColumnError, ColumnTypeError, SchemaError
            When the output lacks a key, event-time, created-time or declared feature
            column, has a wrong type, or repeats a column name.
        """
        start = to_utc_datetime(feature_start_time)
        end = None if feature_end_time is None else to_utc_datetime(feature_end_time)
        if end is not None and end <= start:
            raise ValueError(
                f"feature group {self.name!r}: feature_end_time {end.isoformat()} must be after "
                f"feature_start_time {start.isoformat()}"
            )
        if spark is None:
            spark = self._require_store().spark
        if self.transform is None:  # an event group's single input, as is
            [(source_name, source)] = self.inputs.items()
            raw = resolve_input(spark, self.name, source_name, source, start, end)
        else:
            raw = run_transform(spark, self.name, self.transform, self.inputs, start, end)
        required = [*self.entity.join_keys, self.event_time_col]
        times = [self.event_time_col]
        if self.created_time_col is not None:
            required.append(self.created_time_col)
            times.append(self.created_time_col)
        if self.aggregations:
            stored, features = event_output(raw, self.name, self.aggregations, required, times)
        else:
            features = check_output(raw, self.name, required, times, self.features)
            stored = [f.name for f in features]
        ev = self.event_time_col
        event_time = utc_instant(F.col(ev), raw.schema[ev].dataType).alias(ev)
        columns: list[Column] = [F.col(k) for k in self.entity.join_keys] + [event_time]
        if self.created_time_col is not None:
            ct = self.created_time_col
            columns.append(utc_instant(F.col(ct), raw.schema[ct].dataType).alias(ct))
        columns += [F.col(c) for c in stored]
        rows = raw.select(*columns)
        window = F.col(ev) >= F.lit(start)
        if end is not None:
            window = window & (F.col(ev) < F.lit(end))
        # rows with a null event time are kept by this filter so that the write can reject them
        return rows.where(window | F.col(ev).isNull()), features

    # -- write -----------------------------------------------------------------------------
    def write(
        self,
        feature_start_time: datetime | date,
        feature_end_time: datetime | date | None = None,
        version: str = "v1",
        mode: WriteMode = "overwrite",
        *,
        allow_definition_change: bool = False,
        allow_empty: bool = False,
    ) -> WriteResult:
        """Compute the window ``[feature_start_time, feature_end_time)`` and store it.

        Parameters
        ----------
        feature_start_time, feature_end_time:
            The event-time window (naive datetimes are UTC; no end means open-ended).
        version:
            The schema/logic version: each version is its own Delta table, which carries
            its definition as a table property from its first commit.
        mode:
            ``"overwrite"`` replaces exactly the window (Delta ``replaceWhere``; rewriting
            it is idempotent, and of two writers of one window the last commit wins),
            ``"append"`` adds rows, ``"merge"`` upserts on (join keys, event time) inside
            the window.
        allow_definition_change:
            Write even though ``version`` was created with another schema or transform
            hash (the table's definition and the registry are updated). Prefer a new version.
        allow_empty:
            Let an overwrite replace a window that holds rows with no rows.

        Returns
        -------
        WriteResult
            The exact Delta table version this write committed, and where.

        Raises
        ------
        VersionConflictError
            The version exists with another schema, keys or transform (also when another
            process created it a moment before, with another definition).
        EmptyWindowError
            An overwrite would replace a window holding rows with none.
        MissingColumnError, ColumnTypeError, NullValueError, SchemaError
            The transform output is invalid; nothing is written.
        TransformError
            The transform failed while Spark ran it (e.g. a UDF raised); nothing is written.
        ConfigurationError
            The store's path is a file or cannot be written.
        """
        if mode not in ("overwrite", "append", "merge"):
            raise ValueError(f"mode must be 'overwrite', 'append' or 'merge', got {mode!r}")
        store = self._require_store()
        validate_name(version, "version")
        store.check_writable()
        rows, features = self.compute(feature_start_time, feature_end_time, spark=store.spark)
        start = to_utc_datetime(feature_start_time)
        end = None if feature_end_time is None else to_utc_datetime(feature_end_time)
        definition = self.definition(version, features)
        event_time = quote_identifier(self.event_time_col)
        condition = f"{event_time} >= {utc_sql_literal(start)}"
        if end is not None:
            condition += f" AND {event_time} < {utc_sql_literal(end)}"
        if mode == "overwrite" and not allow_empty:
            window = f"[{start.isoformat()}, {'open' if end is None else end.isoformat()})"
            refuse_emptying(store, self.name, version, rows, condition, window)

        written_at = datetime.now(timezone.utc)
        checked = reject_nulls(rows, [*self.entity.join_keys, self.event_time_col]).withColumn(
            WRITE_TIME_COL, F.lit(written_at)
        )
        # counts the transform's rows as they are written (no extra Spark job)
        seen = Observation(f"seeknal_rows_{uuid.uuid4().hex}")
        counted = checked.observe(seen, F.count(F.lit(1)).alias("rows"))
        metadata = {
            "feature_group": self.name,
            "version": version,
            "mode": mode,
            "window_start": start.isoformat(),
            "window_end": None if end is None else end.isoformat(),
            "transform_hash": definition.transform_hash,
            "schema": [f.to_dict() for f in definition.features],
            "written_at": written_at.isoformat(),
        }

        def check(properties: dict[str, str]) -> dict[str, str]:
            recorded = properties.get(DEFINITION_PROPERTY)
            registered = (
                store.registry.get(self.name, version)  # a table from before this property
                if recorded is None
                else FeatureGroupDefinition.from_json(recorded)
            )
            problems = [] if registered is None else registered.differences(definition)
            if problems and not allow_definition_change:
                raise VersionConflictError(
                    f"feature group {self.name!r} version {version!r} was registered with a "
                    f"different definition: {'; '.join(problems)}. Write to a new version "
                    f"(e.g. version='{next_version(version)}') or pass "
                    "allow_definition_change=True"
                )
            if recorded is None or problems:
                return {DEFINITION_PROPERTY: definition.to_json()}
            return {}

        on = [*self.entity.join_keys, self.event_time_col]

        def merged(_: dict[str, str]) -> DataFrame:
            existing = store.read_table(self.name, version)
            return merge_window(existing, checked, counted, on, condition)

        try:
            delta_version, properties = commit_write(
                store.spark,
                store.target(self.name, version),
                counted,
                mode="append" if mode == "append" else "overwrite",
                condition=condition,
                metadata=metadata,
                properties={DEFINITION_PROPERTY: definition.to_json()},
                check=check,
                what=f"write of {self.name}/{version}",
                retry=merged if mode == "merge" else None,
                counted=seen,
            )
        except Exception as exc:
            failure = write_failure(self.name, version, exc)
            if failure is not None:
                raise failure from exc
            raise
        # the registry follows the table: it records the definition the table now carries
        store.record_definition(FeatureGroupDefinition.from_json(properties[DEFINITION_PROPERTY]))
        rows_written = int(seen.get["rows"])
        logger.log(
            logging.WARNING if rows_written == 0 else logging.INFO,
            "wrote %d rows to %s/%s window [%s, %s) mode=%s as Delta version %d%s",
            rows_written,
            self.name,
            version,
            start,
            end,
            mode,
            delta_version,
            " (the transform returned no rows: check its inputs)" if rows_written == 0 else "",
        )
        return WriteResult(
            feature_group=self.name,
            version=version,
            mode=mode,
            window_start=start,
            window_end=end,
            delta_version=delta_version,
            table=store.table_location(self.name, version),
            transform_hash=definition.transform_hash,
            rows_written=rows_written,
        )

    # -- read ----------------------------------------------------------------------------
    def read(
        self,
        version: str = "v1",
        as_of_version: int | None = None,
        as_of_timestamp: datetime | date | str | None = None,
        *,
        include_metadata: bool = False,
    ) -> DataFrame:
        """The stored features of a version, optionally as they were at a Delta version or time."""
        frame = self._require_store().read_table(
            self.name, version, as_of_version=as_of_version, as_of_timestamp=as_of_timestamp
        )
        return frame if include_metadata else frame.drop(WRITE_TIME_COL)

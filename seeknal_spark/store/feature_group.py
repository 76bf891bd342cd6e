"""Feature groups: a Spark transformation keyed by an entity and an event time.

A :class:`FeatureGroup` turns named inputs into feature rows (join keys, event time,
features) with a Python function over DataFrames or with SQL, and writes them to the
Delta table of a version in its :class:`~seeknal_spark.store.feature_store.FeatureStore`
through the store's one write protocol (:mod:`seeknal_spark.store.delta_protocol`).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Literal

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DataType

from seeknal_spark._timestamps import to_utc_datetime, utc_instant, utc_sql_literal
from seeknal_spark.definitions.entity import Entity
from seeknal_spark.definitions.feature import Feature, FeatureGroupDefinition, ttl_limit
from seeknal_spark.definitions.fingerprint import transform_hash
from seeknal_spark.definitions.naming import quote_identifier, validate_name
from seeknal_spark.errors import (
    ConfigurationError,
    EmptyWindowError,
    TransformError,
    VersionConflictError,
)
from seeknal_spark.store.compute import (
    NULL_MARKER,
    InputSource,
    Transform,
    check_output,
    declared_features,
    run_transform,
    transform_failure,
    write_failure,
)
from seeknal_spark.store.delta_protocol import commit_write
from seeknal_spark.store.feature_store import WRITE_TIME_COL, FeatureStore

__all__ = ["Feature", "FeatureGroup", "InputSource", "TransformError", "WriteMode", "WriteResult"]

logger = logging.getLogger(__name__)

WriteMode = Literal["overwrite", "append", "merge"]

#: Table property of a version's Delta table holding its definition (set when created).
DEFINITION_PROPERTY = "seeknal.definition"



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
        the window as ``:window_start`` / ``:window_end`` parameters.
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
        function of the SparkSession returning a DataFrame.
    store:
        The :class:`~seeknal_spark.store.feature_store.FeatureStore` to write to (or call
        ``store.register(fg)``).
    created_time_col:
        Optional ingestion/created timestamp column: breaks ties between rows with equal
        keys and event time (latest wins) before the latest Delta write does.
    description, owner, tags:
        Catalog information recorded in the registry.
    """

    def __init__(
        self,
        name: str,
        entity: Entity,
        event_time_col: str,
        transform: Transform,
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
    ) -> None:
        self.name = validate_name(name, "feature group")
        if not isinstance(entity, Entity):
            raise TypeError(f"feature group {name!r}: entity must be an Entity, got {entity!r}")
        self.entity = entity
        self.event_time_col = validate_name(event_time_col, "event time column")
        self.created_time_col = (
            None if created_time_col is None else validate_name(created_time_col, "created column")
        )
        if not (callable(transform) or (isinstance(transform, str) and transform.strip())):
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
        closure values, other packages and the data do not.
        """
        return transform_hash(self.transform)

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
        features, in that order; event time in ``[start, end)``) and the features.

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
        raw = run_transform(spark, self.name, self.transform, self.inputs, start, end)
        required = [*self.entity.join_keys, self.event_time_col]
        times = [self.event_time_col]
        if self.created_time_col is not None:
            required.append(self.created_time_col)
            times.append(self.created_time_col)
        features = check_output(raw, self.name, required, times, self.features)
        ev = self.event_time_col
        event_time = utc_instant(F.col(ev), raw.schema[ev].dataType).alias(ev)
        columns: list[Column] = [F.col(k) for k in self.entity.join_keys] + [event_time]
        if self.created_time_col is not None:
            ct = self.created_time_col
            columns.append(utc_instant(F.col(ct), raw.schema[ct].dataType).alias(ct))
        columns += [F.col(f.name) for f in features]
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
            self._refuse_emptying(store, version, rows, condition, window)

        written_at = datetime.now(timezone.utc)
        checked = self._reject_nulls(rows).withColumn(WRITE_TIME_COL, F.lit(written_at))
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
                    f"(e.g. version='{_next_version(version)}') or pass "
                    "allow_definition_change=True"
                )
            if recorded is None or problems:
                return {DEFINITION_PROPERTY: definition.to_json()}
            return {}

        def merged(_: dict[str, str]) -> DataFrame:
            existing = store.read_table(self.name, version)
            return _merge_window(existing, checked, counted, self, condition)

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
        in_table = FeatureGroupDefinition.from_json(properties[DEFINITION_PROPERTY])
        registered = store.registry.get(self.name, version)
        if registered is None or registered.differences(in_table):
            store.registry.upsert(in_table)
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

    def _refuse_emptying(
        self, store: FeatureStore, version: str, rows: DataFrame, condition: str, window: str
    ) -> None:
        """Raise :class:`EmptyWindowError` when ``rows`` is empty but the window is not."""
        try:
            empty = rows.isEmpty()
        except Exception as exc:
            failure = transform_failure(self.name, exc)
            if failure is not None:
                raise failure from exc
            raise
        if not empty or not store.table_exists(self.name, version):
            return
        if store.read_table(self.name, version).where(condition).isEmpty():
            return
        raise EmptyWindowError(
            f"feature group {self.name!r} version {version!r}: the transform returned no rows "
            f"for window {window}, which holds rows; an empty upstream would wipe it. "
            "Check the inputs, or pass allow_empty=True (on the command line: --allow-empty) "
            "to write the empty window. Nothing was written."
        )

    def _reject_nulls(self, rows: DataFrame) -> DataFrame:
        """Fail the write job (so Delta commits nothing) on a null key or event time."""
        guarded = []
        for column in [*self.entity.join_keys, self.event_time_col]:
            message = f"{NULL_MARKER}: column {column!r} holds null values"
            guarded.append(
                F.when(F.col(column).isNull(), F.raise_error(F.lit(message)))
                .otherwise(F.col(column))
                .alias(column)
            )
        others = [
            F.col(c) for c in rows.columns if c not in {*self.entity.join_keys, self.event_time_col}
        ]
        return rows.select(*guarded, *others)

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


def _merge_window(
    existing: DataFrame, incoming: DataFrame, counted: DataFrame, fg: FeatureGroup, condition: str
) -> DataFrame:
    """The window's rows after upserting ``incoming`` on (join keys, event time);
    ``counted`` is ``incoming`` under its row-count observation (used once in the plan)."""
    on = [*fg.entity.join_keys, fg.event_time_col]
    kept = existing.where(F.expr(condition)).join(incoming.select(*on).distinct(), on, "left_anti")
    return kept.unionByName(counted)


def _next_version(version: str) -> str:
    match = re.fullmatch(r"(.*?)(\d+)", version)
    return f"{match.group(1)}{int(match.group(2)) + 1}" if match else f"{version}_2"

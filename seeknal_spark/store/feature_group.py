"""Feature groups: a Spark transformation keyed by an entity and an event time.

A :class:`FeatureGroup` turns named inputs into feature rows (join keys, event time,
features) with a Python function over DataFrames or with SQL, and writes them to the
Delta table of a version in its :class:`~seeknal_spark.store.feature_store.FeatureStore`.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal, Union

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DataType

from seeknal_spark._timestamps import is_time_type, to_utc_datetime, utc_instant, utc_sql_literal
from seeknal_spark.definitions.entity import Entity
from seeknal_spark.definitions.naming import quote_identifier, validate_name
from seeknal_spark.definitions.types import parse_type
from seeknal_spark.errors import (
    ColumnTypeError,
    ConfigurationError,
    MissingColumnError,
    NullValueError,
    SchemaError,
    VersionConflictError,
)
from seeknal_spark.store.feature_store import COMMIT_METADATA_KEY, WRITE_TIME_COL
from seeknal_spark.store.registry import Feature, FeatureGroupDefinition, retry_on_conflict

if TYPE_CHECKING:
    from seeknal_spark.store.feature_store import FeatureStore

__all__ = ["Feature", "FeatureGroup", "WriteResult"]

logger = logging.getLogger(__name__)

InputSource = Union[DataFrame, str, Callable[[SparkSession], DataFrame]]
Transform = Union[str, Callable[..., DataFrame]]
WriteMode = Literal["overwrite", "append", "merge"]

_NULL_MARKER = "SEEKNAL_NULL_VALUE"
_SQL_PARAM = re.compile(r":(window_start|window_end)\b")


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
        How long a feature value stays valid for point-in-time joins and serving.
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
        self.ttl = ttl
        self.features = None if features is None else _declared_features(name, features)
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
        """A SHA-256 of the transformation's logic (SQL text, or the function's source)."""
        if isinstance(self.transform, str):
            text = "sql:" + " ".join(self.transform.split())
        else:
            text = "python:" + _function_fingerprint(self.transform)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

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
    def _resolve_input(
        self, spark: SparkSession, input_name: str, source: InputSource
    ) -> DataFrame:
        if isinstance(source, DataFrame):
            return source
        if callable(source):
            frame = source(spark)
            if not isinstance(frame, DataFrame):
                raise TypeError(
                    f"feature group {self.name!r}: input {input_name!r} function returned "
                    f"{type(frame).__name__}, not a DataFrame"
                )
            return frame
        if isinstance(source, str):
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}", source):
                return spark.read.table(source)
            lowered = source.lower()
            for suffix, fmt in ((".parquet", "parquet"), (".csv", "csv"), (".json", "json")):
                if lowered.endswith(suffix):
                    reader = spark.read.format(fmt)
                    if fmt == "csv":
                        reader = reader.option("header", "true").option("inferSchema", "true")
                    return reader.load(source)
            return spark.read.format("delta").load(source)
        raise TypeError(
            f"feature group {self.name!r}: input {input_name!r} must be a DataFrame, a table "
            f"name, a path or a function of the SparkSession, got {type(source).__name__}"
        )

    def _run_transform(
        self, spark: SparkSession, window_start: datetime, window_end: datetime | None
    ) -> DataFrame:
        frames = {n: self._resolve_input(spark, n, s) for n, s in self.inputs.items()}
        if isinstance(self.transform, str):
            args: dict[str, Any] = {}
            for param in set(_SQL_PARAM.findall(self.transform)):
                value = window_start if param == "window_start" else window_end
                if value is None:
                    raise ConfigurationError(
                        f"feature group {self.name!r}: the SQL uses :{param} but the write "
                        "has no feature_end_time; pass one"
                    )
                args[param] = value
            try:
                return spark.sql(self.transform, args=args or None, **frames)
            except Exception as exc:
                raise ConfigurationError(
                    f"feature group {self.name!r}: the SQL transform failed to analyse "
                    f"(inputs available as {{{', '.join(frames)}}}): {exc}"
                ) from exc
        params = inspect.signature(self.transform).parameters
        extra: dict[str, Any] = {
            "spark": spark,
            "window_start": window_start,
            "window_end": window_end,
        }
        kwargs: dict[str, Any] = dict(frames)
        accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        for key, value in extra.items():
            if key in params or (accepts_any and key not in frames):
                kwargs.setdefault(key, value)
        missing = [
            p.name
            for p in params.values()
            if p.default is inspect.Parameter.empty
            and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
            and p.name not in kwargs
        ]
        if missing:
            raise ConfigurationError(
                f"feature group {self.name!r}: transform needs {missing} but the inputs are "
                f"{sorted(frames)}; add them to inputs={{...}}"
            )
        if not accepts_any:
            kwargs = {k: v for k, v in kwargs.items() if k in params}
        result = self.transform(**kwargs)
        if not isinstance(result, DataFrame):
            raise TypeError(
                f"feature group {self.name!r}: transform returned {type(result).__name__}, "
                "not a Spark DataFrame"
            )
        return result

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
        raw = self._run_transform(spark, start, end)
        features = self._check_output(raw)
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

    def _check_output(self, frame: DataFrame) -> list[Feature]:
        schema = frame.schema
        names = schema.fieldNames()
        lowered = [n.lower() for n in names]
        duplicates = sorted({n for n in names if lowered.count(n.lower()) > 1})
        if duplicates:
            raise SchemaError(
                f"feature group {self.name!r}: the transform outputs column(s) {duplicates} "
                "more than once; alias them to distinct names"
            )
        required = [*self.entity.join_keys, self.event_time_col]
        if self.created_time_col is not None:
            required.append(self.created_time_col)
        for column in required:
            if column not in names:
                raise MissingColumnError(
                    f"feature group {self.name!r}: the transform output has no column "
                    f"{column!r} (columns: {names}); select it in the transform"
                )
        for column in filter(None, (self.event_time_col, self.created_time_col)):
            if not is_time_type(schema[column].dataType):
                raise ColumnTypeError(
                    f"feature group {self.name!r}: column {column!r} is "
                    f"{schema[column].dataType.simpleString()}; it must be a timestamp or date "
                    "(cast it with to_timestamp)"
                )
        if self.features is None:
            skip = set(required) | {WRITE_TIME_COL}
            features = [Feature(f.name, f.dataType) for f in schema.fields if f.name not in skip]
            for feature in features:
                validate_name(feature.name, "feature")
            if not features:
                raise SchemaError(
                    f"feature group {self.name!r}: the transform outputs no feature columns "
                    "besides keys and event time"
                )
            return features
        for feature in self.features:
            if feature.name not in names:
                raise MissingColumnError(
                    f"feature group {self.name!r}: declared feature {feature.name!r} is not in "
                    f"the transform output (columns: {names}); compute it or remove it from "
                    "features"
                )
            actual = schema[feature.name].dataType
            if actual != feature.dtype:
                raise ColumnTypeError(
                    f"feature group {self.name!r}: feature {feature.name!r} is "
                    f"{actual.simpleString()} but declared {feature.dtype.simpleString()}; cast "
                    "it in the transform or change the declaration"
                )
        return list(self.features)

    # -- write -----------------------------------------------------------------------------
    def write(
        self,
        feature_start_time: datetime | date,
        feature_end_time: datetime | date | None = None,
        version: str = "v1",
        mode: WriteMode = "overwrite",
        *,
        allow_definition_change: bool = False,
    ) -> WriteResult:
        """Compute the window ``[feature_start_time, feature_end_time)`` and store it.

        Parameters
        ----------
        feature_start_time, feature_end_time:
            The event-time window (naive datetimes are UTC; no end means open-ended).
        version:
            The schema/logic version: each version is its own Delta table.
        mode:
            ``"overwrite"`` replaces exactly the window (Delta ``replaceWhere``; rewriting
            it is idempotent), ``"append"`` adds rows, ``"merge"`` upserts on
            (join keys, event time) inside the window.
        allow_definition_change:
            Write even though ``version`` was registered with another schema or
            transform hash (the registry is updated). Prefer bumping the version.

        Returns
        -------
        WriteResult
            The Delta table version created and where.

        Raises
        ------
        VersionConflictError
            The version exists with another schema, keys or transform.
        MissingColumnError, ColumnTypeError, NullValueError, SchemaError
            The transform output is invalid; nothing is written.
        """
        if mode not in ("overwrite", "append", "merge"):
            raise ValueError(f"mode must be 'overwrite', 'append' or 'merge', got {mode!r}")
        store = self._require_store()
        validate_name(version, "version")
        rows, features = self.compute(feature_start_time, feature_end_time, spark=store.spark)
        start = to_utc_datetime(feature_start_time)
        end = None if feature_end_time is None else to_utc_datetime(feature_end_time)
        definition = self.definition(version, features)
        registered = store.registry.get(self.name, version)
        if registered is not None:
            problems = registered.differences(definition)
            if problems and not allow_definition_change:
                raise VersionConflictError(
                    f"feature group {self.name!r} version {version!r} was registered with a "
                    f"different definition: {'; '.join(problems)}. Write to a new version "
                    f"(e.g. version='{_next_version(version)}') or pass "
                    "allow_definition_change=True"
                )

        written_at = datetime.now(timezone.utc)
        checked = self._reject_nulls(rows).withColumn(WRITE_TIME_COL, F.lit(written_at))
        location = store.table_location(self.name, version)
        event_time = quote_identifier(self.event_time_col)
        condition = f"{event_time} >= {utc_sql_literal(start)}"
        if end is not None:
            condition += f" AND {event_time} < {utc_sql_literal(end)}"
        metadata = json.dumps(
            {
                COMMIT_METADATA_KEY: {
                    "feature_group": self.name,
                    "version": version,
                    "mode": mode,
                    "window_start": start.isoformat(),
                    "window_end": None if end is None else end.isoformat(),
                    "transform_hash": definition.transform_hash,
                    "schema": json.loads(definition.schema_json()),
                    "written_at": written_at.isoformat(),
                }
            },
            sort_keys=True,
        )

        def commit() -> None:
            frame = checked
            exists = store.table_exists(self.name, version)
            if mode == "merge" and exists:
                frame = _merge_window(
                    store.read_table(self.name, version), checked, self, condition
                )
            writer = frame.write.format("delta").option("userMetadata", metadata)
            if mode == "append":
                writer = writer.mode("append")
            elif exists:
                writer = writer.mode("overwrite").option("replaceWhere", condition)
            else:
                writer = writer.mode("append")
            if store.is_catalog:
                writer.saveAsTable(location)
            else:
                writer.save(location)

        try:
            retry_on_conflict(commit, what=f"write of {self.name}/{version}")
        except Exception as exc:
            if _NULL_MARKER in str(exc):
                detail = str(exc).split(_NULL_MARKER, 1)[1].split("\n", 1)[0]
                detail = detail.split(" SQLSTATE", 1)[0].strip(" :")
                raise NullValueError(
                    f"feature group {self.name!r}: {detail}; filter or fill those rows in the "
                    "transform. Nothing was written."
                ) from None
            raise
        if registered is None or registered.differences(definition):
            # recorded once the data is committed, so a failed write leaves no trace
            store.registry.upsert(definition)
        delta_version = store.commit_version(self.name, version, written_at.isoformat())
        logger.info(
            "wrote %s/%s window [%s, %s) mode=%s as Delta version %d",
            self.name,
            version,
            start,
            end,
            mode,
            delta_version,
        )
        return WriteResult(
            feature_group=self.name,
            version=version,
            mode=mode,
            window_start=start,
            window_end=end,
            delta_version=delta_version,
            table=location,
            transform_hash=definition.transform_hash,
        )

    def _reject_nulls(self, rows: DataFrame) -> DataFrame:
        """Fail the write job (so Delta commits nothing) on a null key or event time."""
        guarded = []
        for column in [*self.entity.join_keys, self.event_time_col]:
            message = f"{_NULL_MARKER}: column {column!r} holds null values"
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
    existing: DataFrame, incoming: DataFrame, fg: FeatureGroup, condition: str
) -> DataFrame:
    """The window's rows after upserting ``incoming`` on (join keys, event time)."""
    on = [*fg.entity.join_keys, fg.event_time_col]
    kept = existing.where(F.expr(condition)).join(incoming.select(*on).distinct(), on, "left_anti")
    return kept.unionByName(incoming)


def _declared_features(
    group: str,
    features: Mapping[str, DataType | str] | Sequence[Feature | tuple[str, DataType | str]],
) -> list[Feature]:
    items: list[tuple[str, DataType | str]]
    if isinstance(features, Mapping):
        items = list(features.items())
    else:
        items = [(f.name, f.dtype) if isinstance(f, Feature) else (f[0], f[1]) for f in features]
    out = []
    seen: set[str] = set()
    for name, dtype in items:
        validate_name(name, "feature")
        if name.lower() in seen:
            raise ConfigurationError(f"feature group {group!r}: feature {name!r} is declared twice")
        seen.add(name.lower())
        try:
            parsed = parse_type(dtype)
        except ValueError as exc:
            raise ConfigurationError(f"feature group {group!r}: feature {name!r}: {exc}") from exc
        out.append(Feature(name, parsed))
    if not out:
        raise ConfigurationError(f"feature group {group!r}: features is empty; omit it to infer")
    return out


def _function_fingerprint(function: Callable[..., Any]) -> str:
    try:
        return textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        code = getattr(function, "__code__", None)
        if code is None:
            return repr(function)
        return repr((code.co_code, code.co_consts, code.co_names))


def _next_version(version: str) -> str:
    match = re.fullmatch(r"(.*?)(\d+)", version)
    return f"{match.group(1)}{int(match.group(2)) + 1}" if match else f"{version}_2"

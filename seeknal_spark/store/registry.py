"""The registry: feature-group definitions kept as a Delta table beside the features.

Every (feature group, version) that was ever written has one row: entity, keys, event
time column, features and their Spark types, transform hash, TTL, description, owner,
tags and when it was created. Because it is a Delta table under the store, concurrent jobs
and notebook users share one catalog; upserts retry on Delta's optimistic-concurrency
conflicts.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql.types import (
    ArrayType,
    DataType,
    DoubleType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

__all__ = ["Feature", "FeatureGroupDefinition", "Registry"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Feature:
    """A feature column: its name and Spark type."""

    name: str
    dtype: DataType

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": json.loads(self.dtype.json())}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Feature:
        from pyspark.sql.types import _parse_datatype_json_value

        return cls(str(data["name"]), _parse_datatype_json_value(data["type"]))

    def __str__(self) -> str:
        return f"{self.name}: {self.dtype.simpleString()}"


@dataclass(frozen=True)
class FeatureGroupDefinition:
    """What the registry knows of one version of a feature group."""

    name: str
    version: str
    entity_name: str
    join_keys: tuple[str, ...]
    event_time_col: str
    features: tuple[Feature, ...]
    transform_hash: str
    created_time_col: str | None = None
    ttl: timedelta | None = None
    description: str = ""
    owner: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    created_at: datetime | None = None

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def schema_json(self) -> str:
        """The declared schema as stable JSON (sorted keys), as recorded in Delta commits."""
        return json.dumps([f.to_dict() for f in self.features], sort_keys=True)

    def differences(self, other: FeatureGroupDefinition) -> list[str]:
        """What makes ``other`` a different schema/logic than this definition."""
        problems = []
        if self.transform_hash != other.transform_hash:
            new_hash, old_hash = other.transform_hash[:12], self.transform_hash[:12]
            problems.append(f"transform hash {new_hash} != registered {old_hash}")
        if self.schema_json() != other.schema_json():
            old = ", ".join(map(str, self.features))
            new = ", ".join(map(str, other.features))
            problems.append(f"features [{new}] != registered [{old}]")
        if self.join_keys != other.join_keys:
            problems.append(
                f"join keys {list(other.join_keys)} != registered {list(self.join_keys)}"
            )
        if self.event_time_col != other.event_time_col:
            problems.append(
                f"event time column {other.event_time_col!r} != registered {self.event_time_col!r}"
            )
        if self.created_time_col != other.created_time_col:
            problems.append(
                f"created time column {other.created_time_col!r} != "
                f"registered {self.created_time_col!r}"
            )
        return problems

    def to_row(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "entity_name": self.entity_name,
            "join_keys": list(self.join_keys),
            "event_time_col": self.event_time_col,
            "created_time_col": self.created_time_col,
            "features_json": self.schema_json(),
            "transform_hash": self.transform_hash,
            "ttl_seconds": None if self.ttl is None else self.ttl.total_seconds(),
            "description": self.description,
            "owner": self.owner,
            "tags": dict(self.tags),
            "created_at": self.created_at or datetime.now(timezone.utc),
        }

    @classmethod
    def from_row(cls, row: Row) -> FeatureGroupDefinition:
        ttl = row["ttl_seconds"]
        created = row["created_at"]
        if created is not None and created.tzinfo is None:
            created = created.replace(tzinfo=timezone.utc)
        return cls(
            name=row["name"],
            version=row["version"],
            entity_name=row["entity_name"],
            join_keys=tuple(row["join_keys"]),
            event_time_col=row["event_time_col"],
            created_time_col=row["created_time_col"],
            features=tuple(Feature.from_dict(f) for f in json.loads(row["features_json"])),
            transform_hash=row["transform_hash"],
            ttl=None if ttl is None else timedelta(seconds=ttl),
            description=row["description"] or "",
            owner=row["owner"] or "",
            tags=dict(row["tags"] or {}),
            created_at=created,
        )


REGISTRY_SCHEMA = StructType(
    [
        StructField("name", StringType(), False),
        StructField("version", StringType(), False),
        StructField("entity_name", StringType(), False),
        StructField("join_keys", ArrayType(StringType(), False), False),
        StructField("event_time_col", StringType(), False),
        StructField("created_time_col", StringType(), True),
        StructField("features_json", StringType(), False),
        StructField("transform_hash", StringType(), False),
        StructField("ttl_seconds", DoubleType(), True),
        StructField("description", StringType(), True),
        StructField("owner", StringType(), True),
        StructField("tags", MapType(StringType(), StringType()), True),
        StructField("created_at", TimestampType(), False),
    ]
)


def retry_on_conflict(action: Callable[[], T], *, what: str, attempts: int = 8) -> T:
    """Run a Delta commit, retrying when a concurrent writer won the race."""
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:  # Delta's conflict errors arrive as JVM exceptions
            text = f"{type(exc).__name__}: {exc}"
            retryable = any(
                marker in text
                for marker in (
                    "ConcurrentAppendException",
                    "ConcurrentDeleteReadException",
                    "ConcurrentDeleteDeleteException",
                    "ConcurrentWriteException",
                    "ProtocolChangedException",
                    "MetadataChangedException",
                    "DELTA_CONCURRENT",
                    "FileAlreadyExistsException",
                )
            )
            if not retryable or attempt == attempts:
                raise
            delay = min(0.2 * 2**attempt, 5.0)
            logger.info("%s: concurrent Delta commit, retry %d in %.1fs", what, attempt, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


class Registry:
    """Reads and upserts :class:`FeatureGroupDefinition` rows in a Delta table.

    Parameters
    ----------
    spark:
        The session to use.
    location:
        A path (``is_table=False``) or a ``catalog.schema.table`` name (``is_table=True``).
    """

    def __init__(self, spark: SparkSession, location: str, *, is_table: bool) -> None:
        self._spark = spark
        self._location = location
        self._is_table = is_table

    def _exists(self) -> bool:
        from delta.tables import DeltaTable

        if self._is_table:
            return bool(self._spark.catalog.tableExists(self._location))
        return bool(DeltaTable.isDeltaTable(self._spark, self._location))

    def _frame(self) -> DataFrame | None:
        if not self._exists():
            return None
        if self._is_table:
            return self._spark.read.table(self._location)
        return self._spark.read.format("delta").load(self._location)

    def all(self) -> list[FeatureGroupDefinition]:
        """Every registered definition, sorted by name and version."""
        frame = self._frame()
        if frame is None:
            return []
        rows = frame.orderBy("name", "version").collect()  # metadata: one row per group version
        return [FeatureGroupDefinition.from_row(r) for r in rows]

    def get(self, name: str, version: str) -> FeatureGroupDefinition | None:
        frame = self._frame()
        if frame is None:
            return None
        rows = frame.where((frame["name"] == name) & (frame["version"] == version)).collect()
        return FeatureGroupDefinition.from_row(rows[0]) if rows else None

    def versions(self, name: str) -> list[FeatureGroupDefinition]:
        frame = self._frame()
        if frame is None:
            return []
        rows = frame.where(frame["name"] == name).orderBy("created_at", "version").collect()
        return [FeatureGroupDefinition.from_row(r) for r in rows]

    def upsert(self, definition: FeatureGroupDefinition) -> None:
        """Insert or replace the row of (name, version)."""
        row = definition.to_row()
        source = self._spark.createDataFrame([row], REGISTRY_SCHEMA)

        def commit() -> None:
            from delta.tables import DeltaTable

            if not self._exists():
                writer = source.write.format("delta").mode("append")
                if self._is_table:
                    writer.saveAsTable(self._location)
                else:
                    writer.save(self._location)
                return
            target = (
                DeltaTable.forName(self._spark, self._location)
                if self._is_table
                else DeltaTable.forPath(self._spark, self._location)
            )
            (
                target.alias("t")
                .merge(source.alias("s"), "t.name = s.name AND t.version = s.version")
                .whenMatchedUpdate(
                    set={c: f"s.{c}" for c in REGISTRY_SCHEMA.fieldNames() if c != "created_at"}
                )
                .whenNotMatchedInsertAll()
                .execute()
            )

        retry_on_conflict(commit, what=f"registry upsert of {definition.name}/{definition.version}")

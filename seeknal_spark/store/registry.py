"""The registry: feature-group definitions kept as a Delta table beside the features.

Every (feature group, version) that was ever written has one row: entity, keys, event
time column, features and their Spark types, transform hash, TTL, description, owner,
tags and when it was created. Because it is a Delta table under the store, concurrent jobs
and notebook users share one catalog; upserts retry on Delta's optimistic-concurrency
conflicts.
"""

from __future__ import annotations

import logging
import uuid

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import (
    ArrayType,
    DoubleType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from seeknal_spark.definitions.feature import Feature, FeatureGroupDefinition
from seeknal_spark.store.delta_protocol import DeltaTarget, retry_on_conflict, table_properties

__all__ = ["Feature", "FeatureGroupDefinition", "Registry"]  # the first two re-exported

logger = logging.getLogger(__name__)


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
        self._target = DeltaTarget(location, is_table)

    def _exists(self) -> bool:
        return table_properties(self._spark, self._target) is not None

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
        return [FeatureGroupDefinition.from_row(r.asDict()) for r in rows]

    def get(self, name: str, version: str) -> FeatureGroupDefinition | None:
        frame = self._frame()
        if frame is None:
            return None
        rows = frame.where((frame["name"] == name) & (frame["version"] == version)).collect()
        return FeatureGroupDefinition.from_row(rows[0].asDict()) if rows else None

    def versions(self, name: str) -> list[FeatureGroupDefinition]:
        frame = self._frame()
        if frame is None:
            return []
        rows = frame.where(frame["name"] == name).orderBy("created_at", "version").collect()
        return [FeatureGroupDefinition.from_row(r.asDict()) for r in rows]

    def upsert(self, definition: FeatureGroupDefinition) -> None:
        """Insert or replace the row of (name, version): ``MERGE INTO`` from a temp view.

        The table is created first with ``CREATE TABLE IF NOT EXISTS`` (one creator wins),
        so two first upserts never both append.
        """
        source = self._spark.createDataFrame([definition.to_row()], REGISTRY_SCHEMA)
        view = f"seeknal_registry_{uuid.uuid4().hex}"
        columns = [c for c in REGISTRY_SCHEMA.fieldNames() if c != "created_at"]
        updates = ", ".join(f"t.{c} = s.{c}" for c in columns)

        def commit() -> None:
            if not self._exists():
                self._spark.sql(
                    f"CREATE TABLE IF NOT EXISTS {self._target.sql} ({_REGISTRY_DDL}) USING delta"
                )
            source.createOrReplaceTempView(view)
            try:
                self._spark.sql(
                    f"MERGE INTO {self._target.sql} t USING {view} s "
                    "ON t.name = s.name AND t.version = s.version "
                    f"WHEN MATCHED THEN UPDATE SET {updates} WHEN NOT MATCHED THEN INSERT *"
                )
            finally:
                self._spark.catalog.dropTempView(view)

        retry_on_conflict(commit, what=f"registry upsert of {definition.name}/{definition.version}")


_REGISTRY_DDL = ", ".join(
    f"{f.name} {f.dataType.simpleString()}{'' if f.nullable else ' NOT NULL'}"
    for f in REGISTRY_SCHEMA.fields
)
